"""Project only the positions that carry a loss through the language-model head.

A causal LM's head maps every position's hidden state to the vocabulary; for Qwen2.5-0.5B that
head (151,936 x 896) is about a quarter of the weights. In stage I and stage II the prompt
(the alpaca template and the question, ~120 tokens) is most of each row and carries no loss, and
padding carries none either, so projecting those positions is wasted work and memory (the logits
and their gradient are the largest activations of a step).

transformers' ``logits_to_keep`` argument, given a 2-D boolean mask, slices the decoder's hidden
states before the head and returns the kept logits flattened to ``[N, V]`` (row-major order, the
order of ``tensor[mask]``). It goes through the model's own forward, so PEFT wrappers and the DDP,
DeepSpeed and FSDP wrappers the Trainer adds run as usual (calling the decoder body directly would
bypass them). With ``shift_labels`` holding exactly the kept positions' targets, the model's own
loss function (the Trainer's normalisation by ``num_items_in_batch`` included) sees the same
tokens as before, minus the ignored ones: the loss and the gradients do not change.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

IGNORE_INDEX = -100


def loss_positions(labels: Tensor) -> Tensor:
    """``[B, L]`` bool: position t is kept when the token it predicts, ``labels[:, t + 1]``, is not
    -100 (the causal shift); the last position predicts nothing."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return keep


def response_only_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """A causal-LM batch (``input_ids``, ``attention_mask``, ``labels``) with ``logits_to_keep`` and
    ``shift_labels`` added, so the model projects and scores only the positions that carry a loss.

    The model's loss is unchanged (cross-entropy over the same targets, summed then divided by
    ``num_items_in_batch`` when given, else their mean); its ``logits`` come back as ``[N, V]``, one
    row per target token.
    """
    labels = inputs["labels"]
    keep = loss_positions(labels)
    return {**inputs, "logits_to_keep": keep, "shift_labels": labels[:, 1:][keep[:, :-1]]}


def unflatten(flat: Tensor, mask: Tensor) -> Tensor:
    """Values of the kept positions (``flat [N]``, in ``mask``'s row-major order) put back into a
    zero tensor of ``mask``'s shape; differentiable in ``flat``."""
    return torch.zeros(mask.shape, dtype=flat.dtype, device=flat.device).masked_scatter(mask, flat)
