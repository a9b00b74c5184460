"""The stage I config: LoRA supervised fine-tuning on response tokens (``trice train-sft``), on the
fields every LoRA trainer shares (:class:`trice.training.config.LoRATrainingConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trice.training.config import LoRATrainingConfig


@dataclass
class SFTConfig(LoRATrainingConfig):
    """Stage I behaviour cloning: LoRA SFT with the loss on the response tokens only."""

    data: str = field(default="", metadata={"help": "Training JSONL: one row per example with id, task, question, output (the target response)."})
    output_dir: str = field(default="", metadata={"help": "Run directory: checkpoints/, adapter/, train_log.json, sft_config.json."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Examples per forward pass."})

    def validate(self) -> None:
        """As :meth:`LoRATrainingConfig.validate`, plus the batch size."""
        super().validate()
        if self.per_device_train_batch_size < 1:
            raise ValueError(f"per_device_train_batch_size: must be >= 1, got {self.per_device_train_batch_size}")
