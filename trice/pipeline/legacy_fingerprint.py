"""The earlier fingerprint rules, frozen: how the hashes in existing ``stage.json`` files were made.

Under the first a stage config's fingerprint held every field of the config except a few named per
class, which were left out while at their default. Under the second every field at its default was
left out and every other one hashed, the keys that change no result (``report_to``, ``logging_steps``:
a config class's ``not_fingerprinted``) included (:func:`with_left_out`). The current rule is
:func:`trice.utils.config.fingerprint_fields`. :data:`HASHED_AT_DEFAULT` lists, per config class,
the fields that rule hashed even at their default; it must never change, since it reproduces the
hashes in existing ``stage.json`` files. A stage whose stored hash equals the one this rule gives
its config is the same stage, and :func:`trice.pipeline.stage_dirs.run_stage` rewrites its hash under
the current rule instead of redoing it (``tests/pipeline/test_fingerprints.py``, fixture
``tests/fixtures/finished_runs.json``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from trice.utils.config import ChangedFields, field_default

_LORA_TRAINING = (
    "model", "data", "output_dir", "template", "init_adapter", "lora_r", "lora_alpha", "lora_dropout", "target_modules",
    "learning_rate", "num_train_epochs", "max_steps", "gradient_accumulation_steps", "max_length", "warmup_ratio",
    "warmup_steps", "lr_scheduler_type", "weight_decay", "max_grad_norm", "save_steps", "save_total_limit", "logging_steps",
    "seed", "resume", "report_to", "bf16", "gradient_checkpointing",
)  # fmt: skip
_STAGE_TWO = (*_LORA_TRAINING, "task", "dev_data", "select_start", "dev_max_new_tokens", "dev_batch_size")

HASHED_AT_DEFAULT: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "DataConfig": ("output_dir", "task", "data_dir", "datasets", "n_train", "n_test", "test_fraction", "seed"),
    "DevConfig": ("n_per_dataset",),
    "GenerateConfig": (
        "input", "output", "model", "adapter", "template", "batch_size", "max_new_tokens", "do_sample", "temperature",
        "top_p", "num_beams", "repetition_penalty", "seed",
    ),
    "LabelConfig": (),  # the label stage hashed only the label options set to something else
    "SFTConfig": (*_LORA_TRAINING, "per_device_train_batch_size"),
    "CandidatesConfig": ("input", "output", "template", "seed", "n_questions", "sources"),
    "ScoreConfig": ("task", "input", "output", "strategy", "skip_bad"),
    "RLEFConfig": (*_STAGE_TWO, "alpha", "length_penalty", "margin", "method", "groups_per_step"),
    "DPOStageConfig": (*_STAGE_TWO, "per_device_train_batch_size", "beta", "pairs"),
})  # fmt: skip
"""Config class name -> the fields the earlier rule hashed even at their default (every other
field of the class it hashed only when set to something else, as the current rule does)."""


def with_hashed_defaults(config_class: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (fields of a ``config_class``, and keys a stage added) as the earlier rule hashed
    them: each field it hashed at its default present (at that default where absent), and each
    other field present only where it is not equal to its default."""
    hashed = set(HASHED_AT_DEFAULT.get(config_class.__name__, ()))
    out = dict(values)
    for f in dataclasses.fields(config_class):
        if f.name in hashed:
            out.setdefault(f.name, field_default(f))
        elif f.name in out and out[f.name] == field_default(f):
            del out[f.name]
    return out


def legacy_config(config: Any) -> Any:
    """A stage's fingerprinted config as the earlier rule gave it: every
    :class:`~trice.utils.config.ChangedFields` in it (at any depth) gets back the fields that rule
    hashed at their defaults; the rest is copied as it is."""
    if isinstance(config, ChangedFields):
        return with_hashed_defaults(config.config_class, {k: legacy_config(v) for k, v in {**config.left_out, **config}.items()})
    if isinstance(config, Mapping):
        return {k: legacy_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [legacy_config(v) for v in config]
    return config


def with_left_out(config: Any) -> Any:
    """A stage's fingerprinted config as the second rule gave it: every
    :class:`~trice.utils.config.ChangedFields` in it (at any depth) with its set fields that change
    no result (``left_out``) back in."""
    if isinstance(config, ChangedFields):
        return {k: with_left_out(v) for k, v in {**config.left_out, **config}.items()}
    if isinstance(config, Mapping):
        return {k: with_left_out(v) for k, v in config.items()}
    if isinstance(config, list):
        return [with_left_out(v) for v in config]
    return config
