"""What both stage II trainers share: scored candidates in, a stage-I adapter or a fresh LoRA to
start from, early checkpoints, and choosing among them on a held-out dev set.

RLEF (:class:`trice.stage2.rlef_config.RLEFConfig`) and DPO (:class:`trice.stage2.dpo_config.DPOStageConfig`) learn
from the same scored candidates and are compared on equal data, so they take the same data,
start, checkpoint and dev-selection fields from here, and the same stage II defaults: the paper's 2
epochs, a checkpoint every 10 steps and none deleted, because stage II peaks within 10-40 steps
and then decays, so the dev set picks the checkpoint (:mod:`trice.stage2.select_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trice.tools.factories import check_tool_options
from trice.core.prompts import INSTRUCTIONS
from trice.training.config import LoRATrainingConfig


@dataclass
class StageIIConfig(LoRATrainingConfig):
    """Stage II on execution-scored candidates; subclasses add their loss's fields."""

    data: str = field(default="", metadata={"help": "Scored JSONL from `trice score`: id, question, responses (gold first), scores; optional task, errors."})
    output_dir: str = field(
        default="",
        metadata={
            "help": "Run directory: checkpoints/, adapter/, train_log.json, the config; with dev_data also dev/, selection.json, dev_curve.png, adapter_best/ (absent where the base model was chosen)."
        },
    )
    init_adapter: str | None = field(
        default=None,
        metadata={
            "help": "Adapter to continue from: stage I's (TRICE-ALL), none for a fresh LoRA on the base model (TRICE-II). A recipe's "
            "pipeline gives these; a stage II section may name another (a second, online round starts from the first round's)."
        },
    )
    num_train_epochs: float = field(default=2.0, metadata={"help": "Epochs over the training data (ignored when max_steps > 0)."})
    max_length: int = field(default=512, metadata={"help": "Longest prompt+response in tokens."})
    save_steps: int = field(default=10, metadata={"help": "Save a checkpoint every this many optimizer steps (the dev set chooses among them)."})
    save_total_limit: int = field(default=0, metadata={"help": "Checkpoints kept (older ones are deleted); 0 keeps all, which selection needs."})
    task: str = field(default="math", metadata={"help": f"Task (its instruction starts the prompt) of rows without a task field: {', '.join(INSTRUCTIONS)}."})
    dev_data: str | None = field(
        default=None,
        metadata={
            "help": "Examples JSONL held out from the training data (never test): every checkpoint (and the start, see select_start) is evaluated on it and the best copied to adapter_best."
        },
    )
    select_start: bool = field(
        default=True,
        metadata={
            "help": "Judge the start on dev too, as step 0 (init_adapter, or the base model without one), so a checkpoint is kept only where it beats "
            "the start; false chooses among the checkpoints alone."
        },
    )
    dev_max_new_tokens: int = field(default=64, metadata={"help": "New tokens per dev response (greedy)."})
    dev_batch_size: int = field(default=16, metadata={"help": "Prompts per generate() call on the dev set."})
    dev_stop_after_call: bool = field(
        default=False, metadata={"help": "Stop each dev response at the end of its first tool call (GenerateConfig.stop_after_call)."}
    )
    tools: dict = field(default_factory=dict, metadata={"help": "YAML only: tool options keyed by tool name for judging the dev set, e.g. {QA: {k: 2}}."})

    @property
    def needs_own_accuracy(self) -> bool:
        """Whether the trainer reads each question's own accuracy (``own_accuracy``: the probe's samples)."""
        return False

    def validate(self) -> None:
        """As :meth:`LoRATrainingConfig.validate`, plus the task and the dev fields."""
        super().validate()
        if self.task not in INSTRUCTIONS:
            raise ValueError(f"task: unknown {self.task!r}; choose one of {', '.join(INSTRUCTIONS)}")
        for name in ("dev_max_new_tokens", "dev_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.dev_data and not Path(self.dev_data).is_file():
            raise ValueError(f"dev_data: no such file: {self.dev_data}")
        check_tool_options(self.tools)
