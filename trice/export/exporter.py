"""``trice export``: a trained adapter as a directory that transformers and vLLM load as is.

Merged (the default), the LoRA weights are folded into the base weights and the directory is a plain
model: ``config.json``, safetensors weights, ``generation_config.json`` and the tokenizer, loadable
with ``AutoModelForCausalLM.from_pretrained(dir)`` or ``vllm.LLM(dir)`` without trice or peft.
With ``--no_merge`` it is a PEFT adapter directory (adapter config and weights, tokenizer,
generation config) for ``PeftModel.from_pretrained(base, dir)`` or vLLM's LoRA support.

The export describes itself. Its chat template writes the prompt the adapter was trained on
(:mod:`trice.export.prompt`), so ``apply_chat_template`` and ``pipeline()`` prompt it as
trice does; its model card (``README.md``, :mod:`trice.export.card`) gives the base, the
licence, the prompt, the call syntax and how to run a call, the run's results and the training.

The base model is recorded by a name anyone can load: its Hub name, or the directory the user gave.
An adapter trained on an embedded model names the trice cache directory the alias was converted into
(``<cache>/models/<alias>``, under whichever ``TRICE_CACHE_DIR`` was set then) as its base; that path
means nothing on another machine, so the export records the alias's original on the Hub
(:data:`trice.generation.models.ORIGINALS`), and an unmerged export loads with peft's
``AutoPeftModelForCausalLM``. ``trice_export.json`` says which base (and alias), whether merged, the
prompt and the adapter weights' sha256.

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
from trice.export.prompt import TrainedPrompt, chat_template, trained_prompt
from trice.export.card import card_text
from trice.generation.models import EMBEDDED, ORIGINALS, load_model, resolve_model
from trice.core.templates import TEMPLATES
from trice.utils.config import ConfigError

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
    adapter: str = field(default="", metadata={"help": "Saved LoRA adapter directory (e.g. runs/demo/trice-i/adapter); empty exports the base model alone."})
    model: str = field(
        default="",
        metadata={
            "help": "Base model: hub name, directory or embedded alias; default: the base recorded in the adapter "
            "(an embedded model's cache path is mapped back to its alias)."
        },
    )
    merge: bool = field(
        default=True, metadata={"help": "Fold the adapter into the base weights (a plain transformers model); --no_merge keeps a PEFT adapter."}
    )
    dtype: str = field(default="float32", metadata={"help": f"Weights dtype of a merged export: {', '.join(DTYPES)}."})
    template: str = field(
        default="", metadata={"help": f"The prompt the adapter was trained on, {' or '.join(TEMPLATES)}; default: its training's record beside it."}
    )
    task: str = field(
        default="",
        metadata={
            "help": "The task whose instruction the chat template puts before a question; default: the training rows' one task "
            "(a model of several tasks takes it as a system message)."
        },
    )
    license: str = field(default="", metadata={"help": "The card's licence (a Hub licence id); default: the base's, where trice knows it."})
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
    """The name trice knows a base model by: an embedded model's cache directory (``<cache>/models/<alias>``,
    under any cache directory, this run's or an earlier one's) becomes its alias; any other name
    (alias, hub name, directory given by the user) is kept as given."""
    path = Path(name_or_path).expanduser()
    if path.name in EMBEDDED and path.parent.name == "models":
        return path.name
    return name_or_path


def loadable_name(base: str) -> str:
    """The base as an export records it for any reader: an embedded alias's original on the Hub."""
    return ORIGINALS[base][0] if base in ORIGINALS else base


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


def _save_tokenizer_and_generation(base: str, out: Path, prompt: TrainedPrompt | None) -> None:
    """The base's tokenizer (its chat template replaced by the trained prompt's) and generation config."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    path = resolve_model(base)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if prompt is not None:
        try:
            tokenizer.chat_template = chat_template(prompt, tokenizer.chat_template)
        except ValueError as err:
            raise ConfigError(f"template: {err}") from None
    tokenizer.save_pretrained(out)
    try:
        generation = GenerationConfig.from_pretrained(path)
    except OSError:  # the base ships none: the defaults transformers derives from its config
        generation = GenerationConfig.from_model_config(AutoConfig.from_pretrained(path))
    generation.save_pretrained(out)


def _write_merged(config: ExportConfig, base: str, out: Path, prompt: TrainedPrompt | None) -> None:
    model, _ = load_model(base, config.adapter or None, dtype=config.dtype, merge=True, device="cpu")
    model.save_pretrained(out)  # safetensors weights, config.json, generation_config.json
    _save_tokenizer_and_generation(base, out, prompt)


def _write_adapter(config: ExportConfig, base: str, out: Path, prompt: TrainedPrompt | None) -> None:
    source = Path(config.adapter)
    adapter_config = json.loads((source / ADAPTER_CONFIG).read_text())
    adapter_config["base_model_name_or_path"] = loadable_name(base)  # what AutoPeftModelForCausalLM loads
    (out / ADAPTER_CONFIG).write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
    shutil.copy2(weights_file(source), out / weights_file(source).name)
    _save_tokenizer_and_generation(base, out, prompt)


def _write_provenance(config: ExportConfig, base: str, out: Path, final: Path, prompt: TrainedPrompt | None) -> None:
    adapter = Path(config.adapter) if config.adapter else None
    adapter_sha = hashlib.sha256(weights_file(adapter).read_bytes()).hexdigest() if adapter is not None else None
    alias = base if base in EMBEDDED else None
    record = {
        "base_model": loadable_name(base),
        "embedded_alias": alias,
        "merged": config.merge,
        "dtype": config.dtype if config.merge else None,
        "adapter_weights_sha256": adapter_sha,
        "prompt": None if prompt is None else {"template": prompt.template, "call_format": prompt.call_format, "tasks": list(prompt.tasks)},
    }
    (out / MARKER).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    license = config.license or (ORIGINALS[base][1] if base in ORIGINALS else "")
    card = card_text(
        name=final.name,
        base=loadable_name(base),
        alias=alias,
        merged=config.merge,
        license=license,
        repo=config.push_to_hub or f"./{final.name}",
        prompt=prompt or TrainedPrompt(),
        adapter=adapter,
        adapter_sha=adapter_sha,
    )
    (out / "README.md").write_text(card, encoding="utf-8")


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
    try:  # an adapter's trained prompt; the base alone keeps its own chat template
        prompt = trained_prompt(Path(config.adapter), config.template, config.task) if config.adapter else None
    except ValueError as err:
        raise ConfigError(str(err)) from None
    final = Path(config.output_dir)
    tmp = _prepare_output(final)
    try:
        (_write_merged if config.merge else _write_adapter)(config, base, tmp, prompt)
        _write_provenance(config, base, tmp, final, prompt)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    log.info("exported %s (%s) to %s", base, "merged" if config.merge else "adapter", final)
    pushed = push(final, config.push_to_hub, config.private) if config.push_to_hub else None
    return {
        "output_dir": str(final),
        "base_model": loadable_name(base),
        "merged": config.merge,
        "files": sorted(p.name for p in final.iterdir()),
        "pushed": pushed,
    }
