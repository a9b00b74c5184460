"""The fingerprint rules older trice versions hashed stage configs by, frozen: what
``trice migrate-run`` (:mod:`trice.pipeline.migrate_run`) recomputes to recognise a finished stage
of an old run directory, before rewriting its ``stage.json`` under the one rule trice runs by
(:func:`trice.utils.config.fingerprint_fields`).

- :func:`first_rule`: a config's set fields, plus the fields :data:`HASHED_AT_DEFAULT` names for its
  class even at their defaults.
- :func:`second_rule`: every set field, the keys that change no result (``report_to``,
  ``logging_steps``: a config class's ``not_fingerprinted``) included.

Either, with every path under the run directory spelled as the run directory was (not yet relative
to it): see :func:`trice.pipeline.migrate_run.earlier_configs`. The table must never change: it
reproduces the hashes in existing ``stage.json`` files (``tests/fixtures/finished_runs.json``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from trice.utils.config import field_default, set_fields

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
"""Config class name -> the fields :func:`first_rule` hashed even at their default (every other
field of the class it hashed only when set to something else)."""


def with_hashed_defaults(config_class: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (fields of a ``config_class``) as :func:`first_rule` hashed them: each field it
    hashed at its default present (at that default where absent), and each other field present only
    where it is not equal to its default."""
    hashed = set(HASHED_AT_DEFAULT.get(config_class.__name__, ()))
    out = dict(values)
    for f in dataclasses.fields(config_class):
        if f.name in hashed:
            out.setdefault(f.name, field_default(f))
        elif f.name in out and out[f.name] == field_default(f):
            del out[f.name]
    return out


def first_rule(config: Any) -> dict[str, Any]:
    """A config dataclass as the first rule fingerprinted it."""
    return with_hashed_defaults(type(config), set_fields(config))


def second_rule(config: Any) -> dict[str, Any]:
    """A config dataclass as the second rule fingerprinted it: its set fields, reporting keys included."""
    return set_fields(config)


EARLIER_RULES = (first_rule, second_rule)
"""Every rule an older trice fingerprinted stage configs by, for :class:`trice.pipeline.plan.Plan`'s
``fields_of``."""
