"""The fields every LoRA trainer shares (stage I's :class:`trice.stage1.config.SFTConfig`, stage II's
:class:`trice.stage2.config.StageIIConfig` build on them).

Defaults follow the paper's LoRA settings (r 8, alpha 16, dropout 0.05 on q_proj/v_proj, lr 1e-4,
max length 512). The CLI flags and YAML keys are generated from these fields, so every field has
a simple type and a help string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from trice.utils.config import ConfigError
from trice.generation.models import DEFAULT_MODEL
from trice.core.templates import TEMPLATES
from trice.core.call_format import call_format_field, check_call_format, tool_parser_field
from trice.utils.outputs import OVERWRITE_DIR_HELP

# transformers' SchedulerType values; kept here so validating a config does not import transformers
SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
    "greedy",
)


def check_report_to(report_to: str) -> None:
    """ValueError unless ``report_to`` names trackers transformers knows and that are installed
    (``none`` and ``all`` always pass). A trainer checks before it loads anything and ``trice run``
    before its first stage (:func:`trice.pipeline.runner.check_trainings`), not at planning: a recipe
    naming a tracker this machine lacks still plans and shows its ``--status``. transformers is
    imported only for a tracker other than none."""
    names = [n.strip() for n in report_to.split(",") if n.strip()]
    if not names or names in (["none"], ["all"]):
        return
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK, get_available_reporting_integrations

    available = set(get_available_reporting_integrations())
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise ValueError(f"report_to: unknown tracker {name!r}; choose none, all or of {', '.join(INTEGRATION_TO_CALLBACK)}")
        if name not in available:
            raise ValueError(f"report_to: {name} is not installed (pip install {name}), or set report_to none")


@dataclass
class LoRATrainingConfig:
    """What every LoRA training stage shares: model, data, run directory, LoRA, optimizer, schedule,
    checkpoints. Stage configs subclass it, add their own fields and re-declare a field where their
    default or help differs, so every trainer takes the same helpers (:mod:`trice.training.lora`)."""

    # How a training reports, never what it trains: out of the stage fingerprint (trice.utils.config.fingerprint_fields).
    not_fingerprinted: ClassVar[frozenset[str]] = frozenset({"report_to", "logging_steps"})

    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Base model: hub name, local directory or embedded alias."})
    data: str = field(default="", metadata={"help": "Training JSONL."})
    output_dir: str = field(default="", metadata={"help": "Run directory: checkpoints/, adapter/, train_log.json, the config."})
    template: str = field(default="alpaca", metadata={"help": "Prompt template: alpaca (the paper's) or chat."})
    call_format: str = call_format_field()
    tool_parser: str = tool_parser_field()
    init_adapter: str | None = field(default=None, metadata={"help": "Start from this saved LoRA adapter (trainable) instead of a fresh one."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"], metadata={"help": "Module names LoRA is applied to."})
    trainable_tokens: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Tokens whose input and output embedding rows are trained beside LoRA (PEFT trainable tokens), for tokens "
            "the base model never learned; each must be one token of its vocabulary. The native call format always trains "
            "its call markers (hermes: <tool_call>, </tool_call>). A stage started from init_adapter keeps that adapter's."
        },
    )
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (AdamW)."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs over the training set (ignored when max_steps > 0)."})
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps to train; -1 uses num_train_epochs."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Forward passes per optimizer step (effective batch = batch size x this)."})
    max_length: int = field(default=512, metadata={"help": "Longest prompt+response in tokens; longer examples are dropped (and counted)."})
    warmup_ratio: float = field(default=0.0, metadata={"help": "Share of the steps for linear warmup, in [0, 1) (used when warmup_steps is 0)."})
    warmup_steps: int = field(default=0, metadata={"help": "Warmup steps; overrides warmup_ratio when > 0."})
    lr_scheduler_type: str = field(default="linear", metadata={"help": f"Learning-rate schedule: {', '.join(SCHEDULERS)}."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables clipping)."})
    save_steps: int = field(default=50, metadata={"help": "Save a resumable checkpoint every this many optimizer steps."})
    save_total_limit: int = field(default=3, metadata={"help": "Checkpoints kept (older ones are deleted); 0 keeps all."})
    logging_steps: int = field(default=5, metadata={"help": "Log the training loss every this many optimizer steps."})
    seed: int = field(default=42, metadata={"help": "Seed for LoRA initialisation, data order and dropout."})
    resume: bool = field(
        default=True, metadata={"help": "Resume from the last complete checkpoint in output_dir (--no_resume starts over, deleting old checkpoints)."}
    )
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_DIR_HELP})
    report_to: str = field(default="none", metadata={"help": "Experiment tracker passed to transformers: none, tensorboard, wandb, all."})
    bf16: bool = field(default=False, metadata={"help": "Load the base model in bfloat16 and train with bf16 autocast."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations in the backward pass to save memory."})
    deepspeed: str | None = field(
        default=None,
        metadata={
            "help": "DeepSpeed JSON config (e.g. recipes/accelerate/ds_zero2.json) for the `deepspeed` launcher; "
            "with `accelerate launch --config_file recipes/accelerate/deepspeed_zero2.yaml` leave it unset."
        },
    )

    def run_dir(self, data_help: str) -> Path:
        """Validate for training and return ``output_dir``: a trainer needs ``data`` (described by
        ``data_help`` in the error), ``output_dir``, which a plan may still leave empty, and its
        ``report_to`` trackers installed."""
        self.validate()
        if not self.data:
            raise ConfigError(f"data: required ({data_help})")
        if not self.output_dir:
            raise ConfigError("output_dir: required")
        try:
            check_report_to(self.report_to)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return Path(self.output_dir)

    def validate(self) -> None:
        """Raise ValueError naming the first bad field. ``data`` may be empty here (the pipeline sets it
        later); the trainers require it and ``output_dir``."""
        if not self.model:
            raise ValueError("model: must name a hub model, a local directory or an embedded alias")
        if self.template not in TEMPLATES:
            raise ValueError(f"template: unknown {self.template!r}; choose one of {', '.join(TEMPLATES)}")
        check_call_format(self.call_format, self.tool_parser, self.template)
        if self.data and not Path(self.data).is_file():
            raise ValueError(f"data: no such file: {self.data}")
        positive = ("lora_r", "lora_alpha", "gradient_accumulation_steps", "max_length", "save_steps", "logging_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            raise ValueError(f"target_modules: must be a non-empty list of module names, got {self.target_modules!r}")
        if not all(isinstance(t, str) and t for t in self.trainable_tokens):
            raise ValueError(f"trainable_tokens: must be a list of non-empty token strings, got {self.trainable_tokens!r}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps: must be -1 (use num_train_epochs) or >= 1, got {self.max_steps}")
        if self.max_steps == -1 and not self.num_train_epochs > 0:
            raise ValueError(f"num_train_epochs: must be > 0 when max_steps is -1, got {self.num_train_epochs}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        for name in ("warmup_steps", "save_total_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm < 0:
            raise ValueError(f"max_grad_norm: must be >= 0, got {self.max_grad_norm}")
        if self.deepspeed and not Path(self.deepspeed).is_file():
            raise ValueError(f"deepspeed: no such file: {self.deepspeed}")
        if self.lr_scheduler_type not in SCHEDULERS:
            raise ValueError(f"lr_scheduler_type: unknown {self.lr_scheduler_type!r}; choose one of {', '.join(SCHEDULERS)}")
