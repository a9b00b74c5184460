"""``trice export``: a trained adapter as a directory that transformers and vLLM load as is.

Merged (the default), the LoRA weights are folded into the base weights and the directory is a plain
model: ``config.json``, safetensors weights, ``generation_config.json`` and the tokenizer, loadable
with ``AutoModelForCausalLM.from_pretrained(dir)`` or ``vllm.LLM(dir)`` without trice or peft.
With ``--no_merge`` it is a PEFT adapter directory (adapter config and weights, tokenizer,
generation config) for ``PeftModel.from_pretrained(base, dir)`` or vLLM's LoRA support.

The base model is recorded by the name a reader can use: its hub name, or its embedded alias
(``smollm2-135m-instruct``). An adapter trained on an embedded model names the trice cache directory
the alias was converted into (``~/.cache/trice/models/<alias>``) as its base; that path means
nothing on another machine, so the export maps it back to the alias. ``trice_export.json`` and the
model card (``README.md``) say which base, whether merged, and the adapter weights' sha256.

``--push_to_hub REPO`` uploads the directory with huggingface_hub (a token from ``HF_TOKEN`` or
``hf auth login``); a failed upload is one line, and the local export stays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.generation.adapters import ADAPTER_CONFIG, check_adapter_dir, weights_file
from trice.utils.config import ConfigError
from trice.core.paths import cache_dir
from trice.generation.models import EMBEDDED, load_model, resolve_model

# transformers and huggingface_hub are imported where an export writes or pushes: `trice export --help`
# and the flag checks before a run import this module and need neither.

log = logging.getLogger(__name__)

MARKER = "trice_export.json"
DTYPES = ("float32", "bfloat16", "float16")


class ExportError(OSError):
    """The export could not be written or uploaded; an OSError, so the CLI prints one line (exit 2)."""


@dataclass
class ExportConfig:
    """What to export, how, and where."""

    output_dir: str = field(default="", metadata={"help": "Directory to write (must be new, empty, or an earlier export)."})
    adapter: str = field(
        default="", metadata={"help": "Saved LoRA adapter directory (e.g. runs/demo/trice-i/adapter); empty exports the base model alone."}
    )
    model: str = field(
        default="",
        metadata={
            "help": "Base model: hub name, directory or embedded alias; default: the base recorded in the adapter "
            "(an embedded model's cache path is mapped back to its alias)."
        },
    )
    merge: bool = field(
        default=True,
        metadata={"help": "Fold the adapter into the base weights (a plain transformers model); --no_merge keeps a PEFT adapter."},
    )
    dtype: str = field(default="float32", metadata={"help": f"Weights dtype of a merged export: {', '.join(DTYPES)}."})
    push_to_hub: str = field(default="", metadata={"help": "Also upload the export to this Hugging Face Hub repo id (e.g. you/model)."})
    private: bool = field(default=False, metadata={"help": "With --push_to_hub: create the repo as private."})

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ConfigError("output_dir: required (where to write the export)")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if not self.adapter and not self.model:
            raise ConfigError("adapter or model: name at least one (an adapter to export, or a base model alone)")
        if not self.adapter and not self.merge:
            raise ConfigError("merge: --no_merge needs an --adapter to keep unmerged")


def public_name(name_or_path: str) -> str:
    """The name a base model is recorded by: an embedded model's cache directory becomes its alias;
    any other name (alias, hub name, directory given by the user) is kept as given."""
    path = Path(name_or_path).expanduser()
    models = cache_dir() / "models"
    if path.parent.resolve() == models.resolve() and path.name in EMBEDDED:
        return path.name
    return name_or_path


def base_model(config: ExportConfig) -> str:
    """``--model``, else the base the adapter names in its adapter_config.json."""
    if config.model:
        return public_name(config.model)
    recorded = json.loads((Path(config.adapter) / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not recorded:
        raise ConfigError(f"model: {Path(config.adapter) / ADAPTER_CONFIG} names no base model; pass --model")
    return public_name(recorded)


def _prepare_output(out: Path) -> Path:
    """A fresh temp directory beside ``out``; ``out`` itself must be absent, empty or an earlier export."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(f"output_dir: {out} exists and is not an earlier export; choose a new directory")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _save_tokenizer_and_generation(base: str, out: Path) -> None:
    """The base's tokenizer and generation config as they ship (not trice's padding-side tweaks)."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    path = resolve_model(base)
    AutoTokenizer.from_pretrained(path).save_pretrained(out)
    try:
        generation = GenerationConfig.from_pretrained(path)
    except OSError:  # the base ships none: the defaults transformers derives from its config
        generation = GenerationConfig.from_model_config(AutoConfig.from_pretrained(path))
    generation.save_pretrained(out)


def _write_merged(config: ExportConfig, base: str, out: Path) -> None:
    model, _ = load_model(base, config.adapter or None, dtype=config.dtype, merge=True, device="cpu")
    model.save_pretrained(out)  # safetensors weights, config.json, generation_config.json
    _save_tokenizer_and_generation(base, out)


def _write_adapter(config: ExportConfig, base: str, out: Path) -> None:
    source = Path(config.adapter)
    adapter_config = json.loads((source / ADAPTER_CONFIG).read_text())
    adapter_config["base_model_name_or_path"] = base
    (out / ADAPTER_CONFIG).write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
    shutil.copy2(weights_file(source), out / weights_file(source).name)
    _save_tokenizer_and_generation(base, out)


def _model_card(base: str, merged: bool, name: str) -> str:
    hub_like = "/" in base and not Path(base).expanduser().exists()
    front = ["---", *([f"base_model: {base}"] if hub_like else []), f"library_name: {'transformers' if merged else 'peft'}",
             "tags:", "- trice", "- tool-use", "---", ""]
    how = "with the LoRA adapter merged into the weights" if merged else "as a PEFT LoRA adapter"
    return "\n".join(front) + f"# {name}\n\n`{base}` fine-tuned with TRICE (tool use from execution feedback), {how}.\n"


def _write_provenance(config: ExportConfig, base: str, out: Path, final: Path) -> None:
    adapter_sha = None
    if config.adapter:
        adapter_sha = hashlib.sha256(weights_file(Path(config.adapter)).read_bytes()).hexdigest()
    record = {"base_model": base, "merged": config.merge, "dtype": config.dtype if config.merge else None,
              "adapter_weights_sha256": adapter_sha}
    (out / MARKER).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    (out / "README.md").write_text(_model_card(base, config.merge, final.name))


def push(out: Path, repo: str, private: bool) -> str:
    """Upload ``out`` to the Hub repo ``repo`` (created if missing); ExportError in one line otherwise."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(out), repo_id=repo, commit_message="trice export")
    # any failure of the upload (no network, no token, no rights) is reported the same way, in one line;
    # huggingface_hub raises its own, httpx's or requests' errors depending on where it failed
    except Exception as err:  # noqa: BLE001
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(
            f"push to {repo} failed ({type(err).__name__}: {reason[:200]}); check the network and your token "
            f"(HF_TOKEN or `hf auth login`); the export is kept in {out}"
        ) from None
    return f"https://huggingface.co/{repo}"


def run_export(config: ExportConfig) -> dict[str, Any]:
    """The ``trice export`` command."""
    if config.adapter:
        try:
            check_adapter_dir(config.adapter)
        except ValueError as err:
            raise ConfigError(f"adapter: {err}") from None
    base = base_model(config)
    final = Path(config.output_dir)
    tmp = _prepare_output(final)
    try:
        (_write_merged if config.merge else _write_adapter)(config, base, tmp)
        _write_provenance(config, base, tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    log.info("exported %s (%s) to %s", base, "merged" if config.merge else "adapter", final)
    pushed = push(final, config.push_to_hub, config.private) if config.push_to_hub else None
    return {"output_dir": str(final), "base_model": base, "merged": config.merge,
            "files": sorted(p.name for p in final.iterdir()), "pushed": pushed}
