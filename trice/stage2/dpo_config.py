"""The config of DPO as an alternative stage II (``trice train-dpo``).

The data, start, checkpoint and dev-selection fields are those of every stage II trainer
(:class:`trice.stage2.config.StageIIConfig`), so DPO and RLEF compare on equal data and choose their
checkpoint alike. DPO re-declares the paper's stage II learning rate and the batch of pairs, and adds
its knobs: ``beta`` and how pairs are drawn from each question's scored candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trice.stage2.config import StageIIConfig

BOUNDARY = "boundary"
PAIR_MODES = ("all", "best_vs_rest", BOUNDARY)


@dataclass
class DPOStageConfig(StageIIConfig):
    """Stage II by DPO on preference pairs from execution-feedback scores."""

    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate (AdamW); the paper's stage II: 2e-5 or 1e-4."})
    max_length: int = field(default=512, metadata={"help": "Longest prompt+response in tokens; a longer response is cut to fit (TRL's truncation)."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Preference pairs per forward."})
    beta: float = field(default=0.1, metadata={"help": "DPO beta: how strongly the policy is held near the reference."})
    pairs: str = field(
        default="all",
        metadata={
            "help": "Pairs per question: all (every higher- over every lower-scored response), best_vs_rest (the first best over each "
            "lower one) or boundary (by the policy's own accuracy on the question: where it knows the answer, a right own answer over "
            "each call; where it does not, a right call over each own answer; trice.stage2.train_dpo.boundary_pairs)."
        },
    )
    boundary_own: float = field(default=0.5, metadata={"help": "pairs boundary: an own accuracy at or above this means the policy knows the answer."})
    own_accuracy: str = field(
        default="", metadata={"help": "pairs boundary: each question's own accuracy JSONL (the probe-samples stage's own_accuracy.jsonl)."}
    )

    def validate(self) -> None:
        """As :meth:`StageIIConfig.validate`, plus the DPO fields."""
        super().validate()
        if self.per_device_train_batch_size < 1:
            raise ValueError(f"per_device_train_batch_size: must be >= 1, got {self.per_device_train_batch_size}")
        if not self.beta > 0:
            raise ValueError(f"beta: must be > 0, got {self.beta}")
        if self.pairs not in PAIR_MODES:
            raise ValueError(f"pairs: unknown {self.pairs!r}; choose one of {', '.join(PAIR_MODES)}")
        if not 0.0 < self.boundary_own <= 1.0:
            raise ValueError(f"boundary_own: an accuracy in (0, 1], got {self.boundary_own}")

    @property
    def needs_own_accuracy(self) -> bool:
        """Whether the pairs are drawn by the policy's own accuracy (the pipeline then gives its file)."""
        return self.pairs == BOUNDARY
