"""Where a response decides between calling a tool and answering alone, and a loss that weighs it.

A response of D_tool either calls (``calculator(48+48/2)``, or the native ``<tool_call>...``) or
answers in the model's own words. The two part at one token: the call's first token (the tool's
name, or the call marker) against the answer's first word. That is the *decision position*: the
first token of the response's first call, and for a response that makes no call its first token
(where a call would have begun). With Qwen2.5-Coder-0.5B on math, own answers run ~140 tokens and
calls ~8, so a loss averaged over tokens gives the decision 1/140 of an own answer's weight and 1/8
of a call's; trained so, the policy called on every test question, the ones it answered right alone
included. ``decision_weight`` w multiplies that one token's term (:func:`weighted_token_loss`).

How w combines with each reduction: every loss here sums token terms and then normalises by the
*unweighted* token count (stage I: ``num_items_in_batch``, the batch's target tokens; stage II's
rank term: each candidate's length; its SFT term: the best candidate's length or the batch's padded
width, by ``reduction``), so w = 1 is exactly the unweighted loss and the decision token's share of a
response's gradient grows from 1/T to w/(T - 1 + w).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trice.core.call_format import CallFormat


def decision_index(text: str, tokenizer: Any, names: Iterable[str], calls: CallFormat) -> int:
    """The index, among ``text``'s tokens (tokenized alone, as a training target is), of the token
    where its first call to one of ``names`` opens; 0 for a response that makes no call."""
    start = calls.start(text, names)
    if not start:
        return 0
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return next((i for i, (_, end) in enumerate(offsets) if end > start), 0)


def decision_weights(labels: Tensor, positions: Tensor, weight: float) -> Tensor:
    """Per-token weights on ``labels``' grid ``[B, L]``: ``weight`` at each row's decision position
    (``positions [B]``, an index into the row; -1: none), 1 elsewhere."""
    weights = torch.ones(labels.shape, dtype=torch.float32, device=labels.device)
    rows = (positions >= 0).nonzero().flatten()
    weights[rows, positions[rows]] = weight
    return weights


def weighted_token_loss(logits: Tensor, targets: Tensor, weights: Tensor, num_items: Tensor | int | None = None) -> Tensor:
    """Cross-entropy of ``logits [N, V]`` on ``targets [N]``, each token's term times its weight,
    summed and divided by ``num_items`` (the number of target tokens; their count when None): with
    every weight 1, the causal-LM loss transformers computes."""
    terms = F.cross_entropy(logits.float(), targets, reduction="none") * weights.to(logits.device)
    denominator = targets.numel() if num_items is None else num_items
    return terms.sum() / (denominator.to(terms.device) if isinstance(denominator, Tensor) else denominator)
