"""Per-token log-probabilities of a query's k candidate responses, for the RLEF loss.

The k candidates of one question share its prompt, which is long (the alpaca template and the
question: ~120 tokens) next to the responses (~5-30 tokens). Two ways to run them:

``naive``
    k full sequences ``prompt + response_i``, right-padded, in one forward: the prompt is encoded
    k times. (Logits are computed only at positions that predict a real response token, as in
    ``shared_prefix``, so the two differ by the prompt's repeated encoding alone.)
``shared_prefix``
    one forward of the prompt with ``use_cache=True``; its key/value cache is repeated to k rows
    and one forward of the k right-padded responses attends to it, with the prompt's positions
    masked in and the responses' positions continuing at P. The first response token is predicted
    by the prompt's last logit, kept from the prompt forward; the second forward projects only the
    positions whose next token is real, not the padding of the shorter responses (with k responses
    of mixed lengths that padding is a large share of rows, and in this forward the LM head is a
    large share of the work: each row is only a response long). Nothing is detached: the gradient of
    every candidate flows back through the shared cache into the prompt forward, summed over the
    k rows by ``repeat_interleave``'s backward, just as the naive forward sums it over k copies.

Both return the same numbers (tests/stage2/test_rlef_forward.py checks scores, loss and every
trainable parameter's gradient, for a plain model and a LoRA-wrapped one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from trice.training.response_logits import unflatten
from trice.stage2.rlef_loss import gather_logprobs, length_normalized

METHODS = ("naive", "shared_prefix")


@dataclass
class GroupLogprobs:
    """One group's candidates: per-token log-probs ``[k, R]`` (0 where padded), their mask, and
    the length-normalised scores and token counts ``[k]``."""

    token_logps: Tensor
    token_mask: Tensor
    scores: Tensor
    token_counts: Tensor


def _pad_responses(response_ids: Sequence[Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    if not response_ids or any(r.dim() != 1 or r.numel() == 0 for r in response_ids):
        raise ValueError("need at least one response, each a non-empty 1-D tensor of token ids")
    ids = pad_sequence([r.to(device) for r in response_ids], batch_first=True, padding_value=0)
    lengths = torch.tensor([r.numel() for r in response_ids], device=device)
    mask = torch.arange(ids.shape[1], device=device) < lengths.unsqueeze(1)
    return ids, mask


def _group(token_logps: Tensor, mask: Tensor, length_penalty: float) -> GroupLogprobs:
    token_logps = token_logps * mask
    scores, counts = length_normalized(token_logps, mask, length_penalty)
    return GroupLogprobs(token_logps, mask, scores, counts)


def naive_response_logprobs(model: Any, prompt_ids: Tensor, response_ids: Sequence[Tensor], length_penalty: float = 1.0) -> GroupLogprobs:
    """k full ``prompt + response`` sequences in one forward."""
    device = prompt_ids.device
    resp, mask = _pad_responses(response_ids, device)
    k, R = resp.shape
    P = prompt_ids.numel()
    input_ids = torch.cat([prompt_ids.expand(k, P), resp], dim=1)
    attention_mask = torch.cat([torch.ones(k, P, dtype=torch.long, device=device), mask.long()], dim=1)
    # position P - 1 + j predicts response token j; only a real token's position is projected
    keep = torch.zeros(k, P + R, dtype=torch.bool, device=device)
    keep[:, P - 1 : P - 1 + R] = mask
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, logits_to_keep=keep).logits
    return _group(unflatten(gather_logprobs(logits, resp[mask]), mask), mask, length_penalty)


def shared_prefix_response_logprobs(model: Any, prompt_ids: Tensor, response_ids: Sequence[Tensor], length_penalty: float = 1.0) -> GroupLogprobs:
    """The prompt encoded once; its cache repeated to the k responses (see the module docstring)."""
    device = prompt_ids.device
    resp, mask = _pad_responses(response_ids, device)
    k, R = resp.shape
    P = prompt_ids.numel()
    prefix = model(input_ids=prompt_ids.unsqueeze(0), use_cache=True, logits_to_keep=1)
    first = gather_logprobs(prefix.logits[:, -1].expand(k, -1), resp[:, 0]).unsqueeze(1)  # [k, 1]
    if R == 1:
        return _group(first, mask, length_penalty)
    cache = prefix.cache
    cache.batch_repeat_interleave(k)
    inputs = resp[:, :-1]  # the last token of the longest response predicts nothing we score
    attention_mask = torch.cat([torch.ones(k, P, dtype=torch.long, device=device), mask[:, :-1].long()], dim=1)
    position_ids = (P + torch.arange(R - 1, device=device)).expand(k, -1)
    keep = mask[:, 1:]  # input j predicts token j + 1: projected only where that token is real
    logits = model(input_ids=inputs, attention_mask=attention_mask, position_ids=position_ids, cache=cache, use_cache=True, logits_to_keep=keep).logits
    rest = unflatten(gather_logprobs(logits, resp[:, 1:][keep]), keep)
    return _group(torch.cat([first, rest], dim=1), mask, length_penalty)


def grouped_response_logprobs(
    model: Any, prompt_ids: Tensor, response_ids: Sequence[Tensor], length_penalty: float = 1.0, method: str = "shared_prefix"
) -> GroupLogprobs:
    """Per-token log-probs and scores of k responses to one prompt (``prompt_ids [P]``, unpadded)."""
    if method == "naive":
        return naive_response_logprobs(model, prompt_ids, response_ids, length_penalty)
    if method == "shared_prefix":
        return shared_prefix_response_logprobs(model, prompt_ids, response_ids, length_penalty)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
