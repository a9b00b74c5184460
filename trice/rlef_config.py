"""The stage II config: RLEF on execution-scored candidates (``trice train-rlef``).

Stage II shares the LoRA, optimizer, schedule and checkpoint fields of stage I
(:class:`trice.sft_config.LoRATrainingConfig`) and re-declares those whose stage II default differs:
2 epochs, one group per forward and 8 accumulated (the paper accumulates 32 of 8), a checkpoint
every 10 steps and none deleted, because the paper saw stage II peak within 10-40 steps and then
decay, so the dev set picks the checkpoint (:mod:`trice.select_checkpoint`). Starting from a stage I
adapter (``init_adapter``) is TRICE-ALL; without one a fresh LoRA is trained on the base model
(TRICE-II), and the ``lora_*`` fields apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trice.prompts import INSTRUCTIONS
from trice.rlef_forward import METHODS
from trice.sft_config import LoRATrainingConfig


@dataclass
class RLEFConfig(LoRATrainingConfig):
    """Stage II: rank loss on length-normalised log-likelihoods of scored candidates plus SFT on the best."""

    data: str = field(
        default="",
        metadata={"help": "Scored JSONL from `trice score`: id, question, responses (gold first), scores; optional task."},
    )
    output_dir: str = field(
        default="",
        metadata={"help": "Run directory: checkpoints/, adapter/, train_log.json, rlef_config.json; with dev_data also dev/, selection.json, dev_curve.png, adapter_best/."},
    )
    init_adapter: str | None = field(
        default=None,
        metadata={"help": "Stage I adapter to continue from (TRICE-ALL); none trains a fresh LoRA on the base model (TRICE-II)."},
    )
    num_train_epochs: float = field(default=2.0, metadata={"help": "Epochs over the groups (ignored when max_steps > 0)."})
    gradient_accumulation_steps: int = field(default=8, metadata={"help": "Forwards per optimizer step (groups per step = groups_per_step x this)."})
    max_length: int = field(default=512, metadata={"help": "Longest prompt+response in tokens; a group with a longer one is dropped (and counted)."})
    save_steps: int = field(default=10, metadata={"help": "Save a checkpoint every this many optimizer steps (the dev set chooses among them)."})
    save_total_limit: int = field(default=0, metadata={"help": "Checkpoints kept (older ones are deleted); 0 keeps all, which selection needs."})
    logging_steps: int = field(default=1, metadata={"help": "Log the loss and its rank and sft parts every this many optimizer steps."})
    task: str = field(default="math", metadata={"help": f"Task (its instruction starts the prompt) of rows without a task field: {', '.join(INSTRUCTIONS)}."})
    alpha: float = field(default=1.0, metadata={"help": "Weight of the rank loss: L = alpha * L_rank + L_sft (the paper: 0.01, 0.1 or 1)."})
    length_penalty: float = field(default=1.0, metadata={"help": "Model score = summed log-prob / length ** this (1: the paper's mean log-likelihood)."})
    margin: float = field(default=0.0, metadata={"help": "Hinge margin of the rank loss (the paper: 0)."})
    method: str = field(default="shared_prefix", metadata={"help": f"Forward of a group: {', '.join(METHODS)} (the same numbers; shared_prefix encodes the prompt once)."})
    groups_per_step: int = field(default=1, metadata={"help": "Groups (a question's k candidates) per forward; accumulate for more."})
    dev_data: str | None = field(
        default=None,
        metadata={"help": "Examples JSONL held out from the training data (never test): every checkpoint is evaluated on it and the best copied to adapter_best."},
    )
    dev_max_new_tokens: int = field(default=64, metadata={"help": "New tokens per dev response (greedy)."})
    dev_batch_size: int = field(default=16, metadata={"help": "Prompts per generate() call on the dev set."})

    def validate(self) -> None:
        """As :meth:`LoRATrainingConfig.validate`, plus the stage II fields."""
        super().validate()
        if self.task not in INSTRUCTIONS:
            raise ValueError(f"task: unknown {self.task!r}; choose one of {', '.join(INSTRUCTIONS)}")
        for name in ("alpha", "length_penalty", "margin"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.method not in METHODS:
            raise ValueError(f"method: unknown {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.gradient_checkpointing and self.method == "shared_prefix":
            raise ValueError("gradient_checkpointing: transformers turns the KV cache off under it, which shared_prefix needs; use method naive")
        for name in ("groups_per_step", "dev_max_new_tokens", "dev_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.dev_data and not Path(self.dev_data).is_file():
            raise ValueError(f"dev_data: no such file: {self.dev_data}")
