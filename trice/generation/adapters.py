"""Loading and saving LoRA adapters with checks that fail early and say what is wrong.

peft's own failure modes are quiet or cryptic: an adapter trained on another base model fails with a
``size mismatch`` RuntimeError from deep inside ``load_state_dict`` (or loads *partially* with only a
warning when layer counts differ), and a broken save can leave an adapter with no LoRA tensors at
all (the alpaca-lora "empty adapter" bug) that loads fine and silently does nothing. Here each of
those is a ``ValueError`` naming the adapter directory and the mismatch, and a save is atomic and
re-read before it replaces anything.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trice.utils.io import DataError

# torch, peft and safetensors are imported inside the functions that use them: this module is
# imported (through trice.generation.models) by commands that load no model.

log = logging.getLogger(__name__)


class AdapterError(DataError):
    """An adapter directory that cannot be used (missing, torn, empty, or for another base model), as
    one line naming it: a DataError (so a ValueError too), which every command prints without a traceback."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"adapter {path}", None, None, problem)


ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def weights_file(path: Path) -> Path:
    """The adapter directory's weights file; :class:`AdapterError` when it has none."""
    for name in ADAPTER_WEIGHTS:
        if (path / name).is_file():
            return path / name
    raise AdapterError(path, f"no weights file ({' or '.join(ADAPTER_WEIGHTS)})")


def adapter_files(path: Path) -> list[Path]:
    """What makes the adapter: its config and weights files that exist (not a save's tokenizer files or
    a checkpoint's optimizer state), for copying it or telling two adapters' weights apart."""
    return [path / name for name in (ADAPTER_CONFIG, *ADAPTER_WEIGHTS) if (path / name).is_file()]


def read_adapter_weights(path: str | os.PathLike) -> dict[str, Any]:
    """The tensors saved in an adapter directory, by their saved (peft) names."""
    path = Path(path)
    weights = weights_file(path)
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(weights), device="cpu")
        import torch

        return torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or corrupt file: say which one
        raise AdapterError(path, f"cannot read {weights.name}: {err}") from None


def adapter_config(path: str | os.PathLike) -> dict[str, Any]:
    """The adapter's ``adapter_config.json``; :class:`AdapterError` when it is not a JSON object."""
    config_file = Path(path) / ADAPTER_CONFIG
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AdapterError(path, f"{ADAPTER_CONFIG} is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise AdapterError(path, f"{ADAPTER_CONFIG} is not a JSON object")
    return config


def check_adapter_dir(path: str | os.PathLike) -> dict[str, Any]:
    """Raise :class:`AdapterError` unless ``path`` holds an adapter config and non-empty LoRA weights; return the weights."""
    path = Path(path)
    if not path.is_dir():
        raise AdapterError(path, "no such directory")
    config_file = path / ADAPTER_CONFIG
    if not config_file.is_file():
        raise AdapterError(path, f"no {ADAPTER_CONFIG} (not a saved peft adapter)")
    adapter_config(path)  # valid JSON
    weights = read_adapter_weights(path)
    lora_a = [k for k in weights if "lora_A" in k]
    lora_b = [k for k in weights if "lora_B" in k]
    if not lora_a or not lora_b:
        raise AdapterError(
            path,
            f"the weights hold no LoRA tensors ({len(weights)} tensors, {len(lora_a)} lora_A, {len(lora_b)} lora_B): "
            "an empty adapter would silently change nothing",
        )
    return weights


def _saved_state(model: Any, state_dict: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, state_dict=None if state_dict is None else dict(state_dict))


def lora_keys(model: Any) -> set[str]:
    """The names of the tensors a saved adapter of ``model`` (a PeftModel) holds."""
    return set(_saved_state(model))


def load_adapter(model: Any, path: str | os.PathLike, trainable: bool = False) -> Any:
    """``model`` (a plain transformers model) with the LoRA adapter at ``path`` applied: a ``PeftModel``.

    Raises :class:`AdapterError` naming ``path`` when the directory is not an adapter, its weights are empty, or
    it does not fit the base model (other hidden size, other layer count, modules the model lacks).
    ``trainable`` leaves the LoRA weights trainable (to continue training); otherwise they are frozen.
    ``model`` is modified in place by peft, also when loading fails: reload it after an error.
    """
    from peft import PeftModel

    path = Path(path)
    saved = check_adapter_dir(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            peft_model = PeftModel.from_pretrained(model, str(path), is_trainable=trainable)
        except RuntimeError as err:
            lines = [ln.strip() for ln in str(err).splitlines() if "size mismatch" in ln]
            detail = "; ".join(lines[:3]) + (f" (+{len(lines) - 3} more)" if len(lines) > 3 else "")
            raise AdapterError(
                path,
                f"does not match the base model {_model_name(model)}: {detail or err}. "
                "It was probably trained on another base model (see base_model_name_or_path in its adapter_config.json).",
            ) from None
        except ValueError as err:  # e.g. "Target modules {...} not found in the base model"
            raise AdapterError(path, f"does not match the base model {_model_name(model)}: {err}") from None
    for w in caught:  # re-emit what we do not turn into errors
        if "missing adapter keys" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    expected = _saved_state(peft_model)
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} LoRA tensors the model needs are not in the adapter (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} adapter tensors have no place in the model (first: {unexpected[0]})")
        raise AdapterError(
            path,
            f"does not match the base model {_model_name(model)}: {'; '.join(parts)}. "
            "It was probably trained on another base model (other layer count or module names).",
        )
    return peft_model


def _model_name(model: Any) -> str:
    config = getattr(model, "config", None)
    name = getattr(config, "_name_or_path", None) or type(model).__name__
    hidden = getattr(config, "hidden_size", None)
    return f"{name!r} (hidden size {hidden})" if hidden is not None else repr(name)


def save_adapter(model: Any, path: str | os.PathLike, tokenizer: Any = None, state_dict: Mapping[str, Any] | None = None) -> Path:
    """Save a PeftModel's adapter (and ``tokenizer``) to ``path`` atomically, after checking the result.

    The adapter is written to a temporary sibling directory, re-read, and must hold every LoRA tensor
    of the model (lora_A and lora_B) before it replaces ``path``; a failed check raises ValueError and
    leaves any previous adapter at ``path`` untouched. ``state_dict`` is the model's full state dict
    when the model's own parameters are only shards (DeepSpeed ZeRO-3, FSDP: gathered with
    ``Accelerator.get_state_dict``); the adapter's tensors are taken and checked from it.
    """
    import torch

    path = Path(path)
    if not hasattr(model, "peft_config"):
        raise ValueError(f"refusing to save {path}: {type(model).__name__} is not a peft model (lora_A missing)")
    expected = _saved_state(model, state_dict)
    if not any("lora_A" in k for k in expected):
        raise ValueError(f"refusing to save {path}: the model has no LoRA adapter (lora_A missing)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        model.save_pretrained(str(tmp), **({} if state_dict is None else {"state_dict": dict(state_dict)}))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        saved = check_adapter_dir(tmp)
        if set(saved) != set(expected):
            lost = sorted(set(expected) - set(saved))
            raise ValueError(f"refusing to save {path}: the saved adapter lacks {len(lost)} LoRA tensors (first: {lost[:1]})")
        for key, value in expected.items():
            if not torch.equal(saved[key].to(value.device, value.dtype), value):
                raise ValueError(f"refusing to save {path}: tensor {key} reads back different from the model")
        if all(not bool(saved[k].any()) for k in saved if "lora_B" in k):
            log.warning("adapter %s: every lora_B is zero, so it does not change the model (untrained?)", path)
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def copy_adapter(source: str | os.PathLike, path: str | os.PathLike, keys: Iterable[str], tokenizer: Any = None) -> Path:
    """The adapter saved in ``source`` (a training checkpoint) copied to ``path`` atomically, with
    ``tokenizer``, after checking it holds exactly the LoRA tensors ``keys`` (the model's, see
    :func:`save_adapter`); a failed check leaves any previous adapter at ``path`` untouched."""
    source, path = Path(source), Path(path)
    weights = check_adapter_dir(source)
    if set(weights) != set(keys):
        raise ValueError(f"refusing to copy {source}: its tensors are not the model's LoRA tensors ({len(weights)} vs {len(set(keys))})")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        for file in adapter_files(source):
            shutil.copy2(file, tmp / file.name)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        check_adapter_dir(tmp)
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _replace_dir(tmp: Path, path: Path) -> None:
    """``tmp`` renamed to ``path``, an existing ``path`` moved aside first and removed last."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        path.rename(old)
    tmp.rename(path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def merge_for_inference(model: Any) -> Any:
    """Fold LoRA weights into the base weights (faster generation); a non-peft model is returned as is."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    return model
