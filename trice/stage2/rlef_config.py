"""The stage II config: RLEF on execution-scored candidates (``trice train-rlef``).

The data, start, checkpoint and dev-selection fields are those of every stage II trainer
(:class:`trice.stage2.config.StageIIConfig`); RLEF re-declares the batch shape (one group per
forward and 8 accumulated; the released code accumulates 16 forwards of 8) and adds the loss's
fields, among them ``reduction``: how a forward's groups and the SFT term's tokens are reduced
(:mod:`trice.stage2.rlef_loss` states each and how alpha converts between them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trice.stage2.rlef_forward import METHODS
from trice.stage2.rlef_loss import REDUCTIONS, check_reduction, check_sft_ties
from trice.stage2.config import StageIIConfig


@dataclass
class RLEFConfig(StageIIConfig):
    """Stage II: rank loss on length-normalised log-likelihoods of scored candidates plus SFT on the best."""

    gradient_accumulation_steps: int = field(default=8, metadata={"help": "Forwards per optimizer step (groups per step = groups_per_step x this)."})
    max_length: int = field(default=512, metadata={"help": "Longest prompt+response in tokens; a group with a longer one is dropped (and counted)."})
    logging_steps: int = field(default=1, metadata={"help": "Log the loss and its rank and sft parts every this many optimizer steps."})
    alpha: float = field(default=1.0, metadata={"help": "Weight of the rank loss: L = alpha * L_rank + L_sft (the paper: 0.01, 0.1 or 1)."})
    length_penalty: float = field(default=1.0, metadata={"help": "Model score = summed log-prob / length ** this (1: the paper's mean log-likelihood)."})
    margin: float = field(default=0.0, metadata={"help": "Hinge margin of the rank loss (the paper: 0)."})
    method: str = field(
        default="shared_prefix", metadata={"help": f"Forward of a group: {', '.join(METHODS)} (the same numbers; shared_prefix encodes the prompt once)."}
    )
    groups_per_step: int = field(default=1, metadata={"help": "Groups (a question's k candidates) per forward; accumulate for more."})
    sft_ties: str = field(
        default="first",
        metadata={
            "help": "SFT target when candidates tie for the best reward: first (one, the gold: the paper) or all (the mean over every tied "
            "candidate, so the model's own execution-verified True-Yes responses are imitated too)."
        },
    )

    decision_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight of each candidate's decision token (its call's first token, or an answer's first; trice.training.decision) "
            "in both terms: its log-prob counts this many times in the candidate's score and in the SFT term, normalised by the "
            "unweighted token count; 1 is the paper's loss."
        },
    )

    reduction: str = field(
        default="group_mean",
        metadata={
            "help": f"How the loss reduces a forward's groups, {', '.join(REDUCTIONS)}: group_mean averages both terms over the groups, "
            "the SFT term a mean over the best response's tokens; released is zjunlp/TRICE's code (rank summed over the groups, SFT "
            "summed over tokens and groups and divided by groups x padded prompt+response length); paper sums both terms over the "
            "groups and the SFT term over tokens. alpha converts as alpha_group_mean = alpha_paper / T = alpha_released * B * L / T "
            "(B groups per forward, T mean best-response tokens, L padded length; see trice.stage2.rlef_loss)."
        },
    )

    def validate(self) -> None:
        """As :meth:`StageIIConfig.validate`, plus the RLEF fields."""
        super().validate()
        for name in ("alpha", "length_penalty", "margin"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not (self.decision_weight > 0 and math.isfinite(self.decision_weight)):
            raise ValueError(f"decision_weight: must be a finite number > 0, got {self.decision_weight}")
        if self.method not in METHODS:
            raise ValueError(f"method: unknown {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.gradient_checkpointing and self.method == "shared_prefix":
            raise ValueError("gradient_checkpointing: transformers turns the KV cache off under it, which shared_prefix needs; use method naive")
        check_sft_ties(self.sft_ties)
        check_reduction(self.reduction)
        if self.groups_per_step < 1:
            raise ValueError(f"groups_per_step: must be >= 1, got {self.groups_per_step}")
