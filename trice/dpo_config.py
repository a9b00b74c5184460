"""The config of DPO as an alternative stage II (``trice train-dpo``).

It shares the LoRA, optimizer, schedule and checkpoint fields of every LoRA stage
(:class:`trice.sft_config.LoRATrainingConfig`, trained by the same helpers), re-declares those whose
stage II default differs (the paper's 2 epochs and lr 2e-5; a checkpoint every 10 steps, none
deleted, since stage II peaks early) and adds the DPO knobs: ``beta`` and how pairs are drawn from
each question's scored candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trice.prompts import INSTRUCTIONS
from trice.sft_config import LoRATrainingConfig

PAIR_MODES = ("all", "best_vs_rest")


@dataclass
class DPOStageConfig(LoRATrainingConfig):
    """Stage II by DPO on preference pairs from execution-feedback scores."""

    data: str = field(default="", metadata={"help": "Scored JSONL from `trice score`: id, question, responses (gold first), scores; optional task, errors."})
    output_dir: str = field(default="", metadata={"help": "Run directory: checkpoints/, adapter/, train_log.json, dpo_config.json."})
    init_adapter: str | None = field(default=None, metadata={"help": "Stage I adapter to continue from (trainable; also the DPO reference); none trains a fresh LoRA on the base model."})
    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate (AdamW); the paper's stage II: 2e-5 or 1e-4."})
    num_train_epochs: float = field(default=2.0, metadata={"help": "Epochs over the pairs (ignored when max_steps > 0)."})
    max_length: int = field(default=512, metadata={"help": "Longest prompt+response in tokens; a longer response is cut to fit (TRL's truncation)."})
    save_steps: int = field(default=10, metadata={"help": "Save a checkpoint every this many optimizer steps (stage II peaks early: keep them)."})
    save_total_limit: int = field(default=0, metadata={"help": "Checkpoints kept (older ones are deleted); 0 keeps all."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Preference pairs per forward."})
    task: str = field(default="math", metadata={"help": f"Task (its instruction starts the prompt) of rows without a task field: {', '.join(INSTRUCTIONS)}."})
    beta: float = field(default=0.1, metadata={"help": "DPO beta: how strongly the policy is held near the reference."})
    pairs: str = field(default="all", metadata={"help": "Pairs per question: all (every higher- over every lower-scored response) or best_vs_rest (the first best over each lower one)."})

    def validate(self) -> None:
        """As :meth:`LoRATrainingConfig.validate`, plus the DPO fields."""
        super().validate()
        if self.per_device_train_batch_size < 1:
            raise ValueError(f"per_device_train_batch_size: must be >= 1, got {self.per_device_train_batch_size}")
        if self.task not in INSTRUCTIONS:
            raise ValueError(f"task: unknown {self.task!r}; choose one of {', '.join(INSTRUCTIONS)}")
        if not self.beta > 0:
            raise ValueError(f"beta: must be > 0, got {self.beta}")
        if self.pairs not in PAIR_MODES:
            raise ValueError(f"pairs: unknown {self.pairs!r}; choose one of {', '.join(PAIR_MODES)}")
