"""The stage I config: LoRA supervised fine-tuning on response tokens (``trice train-sft``), on the
fields every LoRA trainer shares (:class:`trice.training.config.LoRATrainingConfig`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trice.training.config import LoRATrainingConfig


@dataclass
class SFTConfig(LoRATrainingConfig):
    """Stage I behaviour cloning: LoRA SFT with the loss on the response tokens only."""

    data: str = field(default="", metadata={"help": "Training JSONL: one row per example with id, task, question, output (the target response)."})
    output_dir: str = field(default="", metadata={"help": "Run directory: checkpoints/, adapter/, train_log.json, sft_config.json."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Examples per forward pass."})
    decision_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight of each target's decision token (its call's first token, or an answer's first; trice.training.decision) "
            "in the token-summed loss, normalised by the unweighted token count: 1 is plain SFT."
        },
    )

    def validate(self) -> None:
        """As :meth:`LoRATrainingConfig.validate`, plus the batch size and decision weight."""
        super().validate()
        if self.per_device_train_batch_size < 1:
            raise ValueError(f"per_device_train_batch_size: must be >= 1, got {self.per_device_train_batch_size}")
        if not (self.decision_weight > 0 and math.isfinite(self.decision_weight)):
            raise ValueError(f"decision_weight: must be a finite number > 0, got {self.decision_weight}")
