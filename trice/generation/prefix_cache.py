"""The tokens every prompt of a generation starts with, encoded once and reused by every batch.

All prompts of a run share the alpaca header, and a few-shot source's prompts share hundreds of
tokens more (:func:`trice.core.prompts.few_shot_prefix`: three worked examples before each question).
Left-padded batches encode that prefix again in every row; here its keys and values are computed
once, copied to each batch's rows, and only the rest of each prompt (its *tail*) goes through the
model.

Exactness. The no-cache path lays a row out as ``[pad..., prefix, tail]``; here it is
``[prefix, pad..., tail]`` with the pads masked: every row is as long as before, the new tokens
start at the same column, and ``generate`` numbers positions by the attention mask's running sum
(pads do not count), so the prefix sits at positions ``0..P-1`` and the tail right after it in both
layouts, and every real token attends to the same real tokens. The prefix is found on token ids
(the longest common prefix of the tokenized prompts), never by splitting text, so each row's ids are
exactly the no-cache path's. Greedy outputs equal the no-cache path's (tests/generation/test_prefix_cache.py,
and bench/teacher_generation.py on a real model) up to floating-point summation order, which the
changed matrix shapes may move in the last bits.

Used only where that reasoning holds: one sequence per prompt (no beams, which would need the cache
expanded per beam) and a cache of plain, growing layers (no sliding window, which would drop
prefix positions, no linear attention).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

MIN_SHARED_TOKENS = 16
"""Shorter shared prefixes save less than the extra forward pass costs."""


def shared_prefix_length(ids: Sequence[Sequence[int]]) -> int:
    """The number of leading tokens every sequence in ``ids`` has in common, leaving each at least
    one token of its own (``generate`` needs one uncached token to start from)."""
    if not ids:
        return 0
    first = ids[0]
    n = min(len(s) for s in ids) - 1
    for seq in ids[1:]:
        k = 0
        while k < n and seq[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


class SharedPrefix:
    """The KV cache of ``prefix_ids`` (one row), and the batch inputs that continue from it."""

    def __init__(self, model: Any, prefix_ids: Sequence[int], cache: DynamicCache):
        self.model = model
        self.ids = list(prefix_ids)
        self.cache = cache

    @classmethod
    @torch.inference_mode()
    def encode(cls, model: Any, ids: Sequence[Sequence[int]], num_beams: int = 1) -> SharedPrefix | None:
        """The shared prefix of ``ids`` encoded by ``model``, or None where sharing does not apply
        (beams, fewer than two prompts, a prefix under :data:`MIN_SHARED_TOKENS`, a cache whose
        layers are not plain growing ones)."""
        if num_beams != 1 or len(ids) < 2:
            return None
        length = shared_prefix_length(ids)
        if length < MIN_SHARED_TOKENS:
            return None
        prefix = torch.tensor([list(ids[0][:length])], device=model.device)
        out = model(input_ids=prefix, attention_mask=torch.ones_like(prefix), use_cache=True)
        cache = out.cache
        if not isinstance(cache, DynamicCache) or any(type(layer) is not DynamicLayer for layer in cache.layers):
            return None
        return cls(model, prefix[0].tolist(), cache)

    def batch(self, ids: Sequence[Sequence[int]], pad_token_id: int) -> dict[str, Any]:
        """``generate`` keyword arguments for one batch of prompts that all start with the prefix:
        ``[prefix, pad..., tail]`` ids, their mask, and a copy of the prefix cache per row."""
        length = len(self.ids)
        width = max(len(s) for s in ids)
        rows, masks = [], []
        for seq in ids:
            if list(seq[:length]) != self.ids:
                raise ValueError("a prompt does not start with the shared prefix it was batched with")
            pads = width - len(seq)
            rows.append(self.ids + [pad_token_id] * pads + list(seq[length:]))
            masks.append([1] * length + [0] * pads + [1] * (len(seq) - length))
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(len(ids))
        device = self.model.device
        return {"input_ids": torch.tensor(rows, device=device), "attention_mask": torch.tensor(masks, device=device), "cache": cache}
