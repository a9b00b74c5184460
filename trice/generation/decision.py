"""The first token of a response, where the policy decides between calling its tool and answering.

D_tool's responses open either with the call (``calculator(`` in the paper's format, the
``<tool_call>`` marker in the native one) or with the answer's first word, so the probability the
policy gives the call's first token there, P(call), is its decision, and it is read off the logits
of the first generated token at no extra cost (:class:`FirstTokenDecision`). Greedy decoding takes
the single most likely token, and a policy trained on a mixed set puts the call's mass on one fixed
token while an answer's is spread over many first words: greedy then calls wherever P(call) beats
the largest answer token, well below one half. A rule acting on P(call) itself decides otherwise:

``greedy``     decode as usual (P(call) is still recorded);
``threshold``  call iff P(call) > ``decision_tau`` (force the call's first token, else forbid it);
``call``       always open with the call; ``answer``: never (the two branches a threshold is chosen from).

Only the local transformers backend reads logits, so only it records P(call) and applies a rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor

from trice.core.call_format import DECISIONS, TEXT, CallFormat
from trice.core.native import CALL_MARKERS


class Generated(str):
    """A response's text, with the P(call) its first token was decided with (None: not read)."""

    p_call: float | None = None

    @classmethod
    def of(cls, text: str, p_call: float | None) -> Generated:
        made = cls(text)
        made.p_call = p_call
        return made


@dataclass(frozen=True)
class CallOpening:
    """What opens a call of ``tool`` in the ``calls`` format, as the policy's first token."""

    tool: str
    calls: CallFormat = TEXT

    def token_ids(self, tokenizer: Any) -> tuple[int, ...]:
        """The token a call's target starts with (tokenized alone, as training tokenizes it); none
        for a native format without a marker token (llama3's calls open with a plain ``{``)."""
        if not self.calls.native:
            return tuple(tokenizer(f"{self.tool}(", add_special_tokens=False)["input_ids"][:1])
        markers = CALL_MARKERS[self.calls.parser or ""]
        ids = tokenizer(markers[0], add_special_tokens=False)["input_ids"] if markers else []
        return tuple(ids[:1]) if len(ids) == 1 else ()


class FirstTokenDecision(LogitsProcessor):
    """At a batch's first new token: records each row's P(call) (``p_call``) and applies ``rule``.

    ``openings``: per row, the token ids that open its call (empty: P(call) is not read there and
    the row decodes as it would). The scores of later steps pass through unchanged.
    """

    def __init__(self, openings: Sequence[tuple[int, ...]], prompt_length: int, rule: str = "greedy", tau: float = 0.5):
        if rule not in DECISIONS:
            raise ValueError(f"decision: unknown {rule!r}; choose one of {', '.join(DECISIONS)}")
        self.openings, self.prompt_length, self.rule, self.tau = list(openings), prompt_length, rule, tau
        self.p_call: list[float | None] = [None] * len(self.openings)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[1] != self.prompt_length or input_ids.shape[0] != len(self.openings):
            return scores
        probs = torch.softmax(scores.float(), dim=-1)
        self.p_call = [probs[row, list(ids)].sum().item() if ids else None for row, ids in enumerate(self.openings)]
        if self.rule == "greedy":
            return scores
        decided = scores.clone()
        for row, (ids, p) in enumerate(zip(self.openings, self.p_call)):
            if not ids:
                continue
            if self.rule == "call" or (self.rule == "threshold" and p is not None and p > self.tau):
                kept = decided[row, list(ids)].clone()
                decided[row] = float("-inf")
                decided[row, list(ids)] = kept
            else:
                decided[row, list(ids)] = float("-inf")
        return decided
