"""The RLEF loss of stage II: a ranking hinge on the candidates' length-normalised log-likelihoods
plus an SFT term on the best-scored candidate (TRICE.md, "Stage II: RLEF").

With candidates y_1..y_k of one query, rewards r_i and model scores
``p_i = sum_m log p(y_i,m | q, y_i,<m) / |y_i| ** length_penalty`` (``length_penalty=1`` is the
paper's mean log-likelihood)::

    L_rank = sum over pairs (i, j) with r_i < r_j of max(0, p_i - p_j + margin)   (margin 0: the paper)
    L_sft  = mean over the best candidate's tokens of -log p(o_m | q, o_<m)
             (sft_ties="all": averaged over every candidate tied for the best reward)
    L_RLEF = alpha * L_rank + L_sft

Shapes: one group is ``[k]`` (scores, rewards) and ``[k, T]`` (per-token values); a batch of groups
adds a leading ``B`` and a ``group_mask [B, k]`` marking real candidates, so groups of different k
can be padded together. Within a group the pairs are *summed* (the formula); over groups both terms
are *averaged*, so the loss scale does not grow with the batch. The released code summed the rank
term over its batch, which was one group per device step, where the two agree. Its SFT term divided
the best response's summed log-likelihood by the padded sequence length (prompt included); here it
is the mean over that response's own tokens, as the brief asks, which does not depend on padding.

Everything is a plain function of tensors, so a ``Trainer.compute_loss`` can call it on whatever
forward produced the per-token log-probabilities (see :mod:`trice.rlef_forward`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

IGNORE_INDEX = -100


def token_logprobs(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Log-probability of each label token under a causal LM, and where the labels are real.

    ``logits [B, L, V]`` at position t predict ``labels [B, L]`` at t + 1 (the usual causal shift);
    labels equal to -100 are ignored. Returns ``(logps [B, L-1], mask [B, L-1])``, logps 0 where masked.
    """
    logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != IGNORE_INDEX
    return gather_logprobs(logits, labels.masked_fill(~mask, 0)) * mask, mask


def gather_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """``log softmax(logits)[..., tokens]`` without keeping a second vocabulary-sized tensor."""
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked.float() - torch.logsumexp(logits.float(), dim=-1)


def length_normalized(logps: Tensor, mask: Tensor, length_penalty: float = 1.0) -> tuple[Tensor, Tensor]:
    """``(sum of logps over mask / count ** length_penalty, count)`` along the last dimension.

    A candidate with no tokens scores 0 (its count is clamped to 1 for the division only).
    """
    counts = mask.sum(-1)
    scores = (logps * mask).sum(-1) / counts.clamp(min=1).to(logps.dtype) ** length_penalty
    return scores, counts


def sequence_logprobs(logits: Tensor, labels: Tensor, length_penalty: float = 1.0) -> tuple[Tensor, Tensor]:
    """The paper's model score p_i of each sequence, and its number of label tokens: ``(scores [B], counts [B])``."""
    logps, mask = token_logprobs(logits, labels)
    return length_normalized(logps, mask, length_penalty)


def _groups(*tensors: Tensor | None) -> list[Tensor | None]:
    """Give 1-D per-candidate tensors (and ``[k, T]`` per-token ones) a leading group dimension."""
    return [t if t is None else t.unsqueeze(0) for t in tensors]


def rank_loss(scores: Tensor, rewards: Tensor, group_mask: Tensor | None = None, margin: float = 0.0) -> Tensor:
    """``sum_{r_i < r_j} max(0, p_i - p_j + margin)`` per group, averaged over groups.

    ``scores, rewards``: ``[k]`` or ``[B, k]``; ``group_mask`` (bool, same shape) marks real
    candidates. Equal rewards form no pair, so tied candidates are never pushed apart.
    """
    if scores.dim() == 1:
        scores, rewards, group_mask = _groups(scores, rewards, group_mask)
    if group_mask is None:
        group_mask = torch.ones_like(scores, dtype=torch.bool)
    # pair [b, i, j]: candidate i should score below candidate j
    pairs = (rewards.unsqueeze(-1) < rewards.unsqueeze(-2)) & group_mask.unsqueeze(-1) & group_mask.unsqueeze(-2)
    hinge = torch.relu(scores.unsqueeze(-1) - scores.unsqueeze(-2) + margin)
    return (hinge * pairs).sum((-1, -2)).mean()


def best_index(rewards: Tensor, group_mask: Tensor | None = None) -> Tensor:
    """Index of the best-rewarded candidate of each group; ties go to the first (the gold, when it ties)."""
    if group_mask is not None:
        rewards = rewards.masked_fill(~group_mask, float("-inf"))
    return rewards.argmax(-1)  # torch documents argmax as returning the first maximal index


SFT_TIES = ("first", "all")


def check_sft_ties(value: str, name: str = "sft_ties") -> None:
    """ValueError naming ``name`` unless ``value`` is one of :data:`SFT_TIES`."""
    if value not in SFT_TIES:
        raise ValueError(f"{name}: unknown {value!r}; choose one of {', '.join(SFT_TIES)}")


def sft_loss_best(
    token_logps: Tensor, token_mask: Tensor, rewards: Tensor, group_mask: Tensor | None = None, ties: str = "first"
) -> Tensor:
    """Token-mean NLL of each group's best-rewarded candidate, averaged over groups.

    ``token_logps, token_mask``: ``[k, T]`` or ``[B, k, T]``; ``rewards``: ``[k]`` or ``[B, k]``.
    ``ties="first"`` takes one best candidate (the first: the gold, which the paper's reward puts on
    top); ``"all"`` averages the NLL over every candidate tied for the best reward, so the model's own
    execution-verified responses (True-Yes, which tie with gold) are imitated beside the gold.
    """
    check_sft_ties(ties, "ties")
    if rewards.dim() == 1:
        token_logps, token_mask, rewards, group_mask = _groups(token_logps, token_mask, rewards, group_mask)
    nll = -(token_logps * token_mask).sum(-1) / token_mask.sum(-1).clamp(min=1)  # [B, k]
    if ties == "first":
        best = best_index(rewards, group_mask)
        return nll[torch.arange(rewards.shape[0], device=rewards.device), best].mean()
    masked = rewards if group_mask is None else rewards.masked_fill(~group_mask, float("-inf"))
    top = (masked == masked.max(-1, keepdim=True).values).to(nll.dtype)
    return ((nll * top).sum(-1) / top.sum(-1)).mean()


class RLEFLoss(nn.Module):
    """``L = alpha * L_rank + L_sft`` from per-token log-probabilities of each group's candidates."""

    def __init__(self, alpha: float = 1.0, length_penalty: float = 1.0, margin: float = 0.0, sft_ties: str = "first"):
        super().__init__()
        check_sft_ties(sft_ties)
        self.alpha, self.length_penalty, self.margin, self.sft_ties = alpha, length_penalty, margin, sft_ties

    def forward(
        self, token_logps: Tensor, token_mask: Tensor, rewards: Tensor, group_mask: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, {"rank", "sft", "scores"})``; shapes as in :func:`sft_loss_best`."""
        scores, _ = length_normalized(token_logps, token_mask, self.length_penalty)
        rank = rank_loss(scores, rewards, group_mask, self.margin)
        sft = sft_loss_best(token_logps, token_mask, rewards, group_mask, self.sft_ties)
        return self.alpha * rank + sft, {"rank": rank.detach(), "sft": sft.detach(), "scores": scores.detach()}
