"""The RLEF loss of stage II: a ranking hinge on the candidates' length-normalised log-likelihoods
plus an SFT term on the best-scored candidate (the paper, Qiao et al. NAACL 2024, "Stage II").

With candidates y_1..y_k of one query, rewards r_i and model scores
``p_i = sum_m log p(y_i,m | q, y_i,<m) / |y_i| ** length_penalty`` (``length_penalty=1`` is the
paper's mean log-likelihood)::

    L_rank = sum over pairs (i, j) with r_i < r_j of max(0, p_i - p_j + margin)   (margin 0: the paper)
    L_sft  = -sum_m log p(o_m | q, o_<m) over the best candidate o's tokens        (the paper's equation)
    L_RLEF = alpha * L_rank + L_sft

Shapes: one group is ``[k]`` (scores, rewards) and ``[k, T]`` (per-token values); a batch of B
groups (one forward) adds a leading ``B`` and a ``group_mask [B, k]`` marking real candidates, so
groups of different k can be padded together. Within a group the pairs are always *summed* (the
formula). How the B groups of a forward, and the SFT term's tokens, are reduced is ``reduction``:

``group_mean`` (the default)
    L_sft of a group is the *mean* over the best response's tokens; both terms are *averaged* over
    the groups, so the loss scale depends neither on the batch nor on the response length.
``released``
    what zjunlp/TRICE's released stage II (``train/train_stage2.py``, an RRHF-style trainer) ran:
    the rank term *summed* over the groups of the device batch, and the SFT term the best
    responses' summed log-likelihoods divided by batch x padded length, prompt positions and
    padding included. Its trainer reads::

        def rrhf_loss(self, scores, idxs, rw_scores):
            ...
            aval = torch.bitwise_and(rw_diff > 0, diff < 0)
            return -diff[aval].sum()

        def sft_loss(self, logit_label, idxs, rw_scores):
            ...
            logit_label_batch = torch.gather(logit_label_batch, dim=1, index=index).squeeze()
            return -torch.sum(logit_label_batch.mean())

        loss = self.args.rrhf_weight * rrhf_loss + sft_loss

    where ``scores`` hold every candidate of the whole device batch and ``logit_label`` is
    ``[B * k, L]``, L the padded width of all the batch's prompt+response sequences; its README runs
    ``--per_device_train_batch_size 8 --rrhf_weight 1`` (the code's default weight is 100): 8
    groups per device batch (``train()`` then sets ``gradient_accumulation_steps = batch_size //
    per_device_train_batch_size`` = 128 // 8 = 16, whatever ``--gradient_accumulation_steps 32``
    said). Here L is the longest prompt+response of the forward's groups (``padded_length``).
``paper``
    the equation as written: the rank term and the SFT term (summed over the best response's
    tokens) both *summed* over the groups.

``sft_ties="all"`` replaces the one best candidate by the mean over every candidate tied for the
best reward, under each reduction.

Converting alpha. With B groups per forward, T the best responses' mean token count and L the
padded length, the three losses of a forward are, up to an overall factor::

    group_mean:  alpha_g * mean_b R_b + mean_b S_b / T
    paper:       alpha_p * sum_b R_b + sum_b S_b      = B*T * [(alpha_p / T) * mean_b R_b + mean_b S_b / T]
    released:    alpha_r * sum_b R_b + sum_b S_b / (B*L)
                                                    = (T/L) * [(alpha_r * B*L / T) * mean_b R_b + mean_b S_b / T]

(R_b the rank term of group b, S_b its best response's summed NLL), so the two terms are weighed
alike when ``alpha_g = alpha_p / T = alpha_r * B * L / T``. For example the released run's
``rrhf_weight 1`` with B = 8, L = 150 and T = 20 weighs the rank term as ``group_mean`` does with
alpha = 60, and ``paper`` needs alpha = 20 for ``group_mean``'s alpha = 1. The
overall factor (B*T, T/L) acts as a learning-rate scale, which Adam mostly cancels but gradient
clipping (``max_grad_norm``) does not. Every reduction is then divided by the gradient
accumulation steps, as the released trainer's was.

Everything is a plain function of tensors, so a ``Trainer.compute_loss`` can call it on whatever
forward produced the per-token log-probabilities (see :mod:`trice.stage2.rlef_forward`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trice.training.response_logits import IGNORE_INDEX


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


def group_rank_losses(scores: Tensor, rewards: Tensor, group_mask: Tensor | None = None, margin: float = 0.0) -> Tensor:
    """``sum_{r_i < r_j} max(0, p_i - p_j + margin)`` of each group: ``[B]`` (``[1]`` for one group).

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
    return (hinge * pairs).sum((-1, -2))


def rank_loss(scores: Tensor, rewards: Tensor, group_mask: Tensor | None = None, margin: float = 0.0) -> Tensor:
    """:func:`group_rank_losses` averaged over the groups (the ``group_mean`` reduction)."""
    return group_rank_losses(scores, rewards, group_mask, margin).mean()


def best_index(rewards: Tensor, group_mask: Tensor | None = None) -> Tensor:
    """Index of the best-rewarded candidate of each group; ties go to the first (the gold, when it ties)."""
    if group_mask is not None:
        rewards = rewards.masked_fill(~group_mask, float("-inf"))
    return rewards.argmax(-1)  # torch documents argmax as returning the first maximal index


SFT_TIES = ("first", "all")
REDUCTIONS = ("group_mean", "released", "paper")


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise ValueError(f"{name}: unknown {value!r}; choose one of {', '.join(choices)}")


def check_sft_ties(value: str, name: str = "sft_ties") -> None:
    """ValueError naming ``name`` unless ``value`` is one of :data:`SFT_TIES`."""
    _check_choice(value, SFT_TIES, name)


def check_reduction(value: str, name: str = "reduction") -> None:
    """ValueError naming ``name`` unless ``value`` is one of :data:`REDUCTIONS`."""
    _check_choice(value, REDUCTIONS, name)


def group_sft_nll(
    token_logps: Tensor, token_mask: Tensor, rewards: Tensor, group_mask: Tensor | None = None, ties: str = "first", per_token: bool = True
) -> Tensor:
    """NLL of each group's best-rewarded candidate: ``[B]`` (``[1]`` for one group).

    ``token_logps, token_mask``: ``[k, T]`` or ``[B, k, T]``; ``rewards``: ``[k]`` or ``[B, k]``.
    ``per_token``: the NLL averaged over the candidate's tokens (else summed over them).
    ``ties="first"`` takes one best candidate (the first: the gold, which the paper's reward puts on
    top); ``"all"`` averages the NLL over every candidate tied for the best reward, so the model's own
    execution-verified responses (True-Yes, which tie with gold) are imitated beside the gold.
    """
    check_sft_ties(ties, "ties")
    if rewards.dim() == 1:
        token_logps, token_mask, rewards, group_mask = _groups(token_logps, token_mask, rewards, group_mask)
    nll = -(token_logps * token_mask).sum(-1)  # [B, k]
    if per_token:
        nll = nll / token_mask.sum(-1).clamp(min=1)
    if ties == "first":
        best = best_index(rewards, group_mask)
        return nll[torch.arange(rewards.shape[0], device=rewards.device), best]
    masked = rewards if group_mask is None else rewards.masked_fill(~group_mask, float("-inf"))
    top = (masked == masked.max(-1, keepdim=True).values).to(nll.dtype)
    return (nll * top).sum(-1) / top.sum(-1)


def sft_loss_best(token_logps: Tensor, token_mask: Tensor, rewards: Tensor, group_mask: Tensor | None = None, ties: str = "first") -> Tensor:
    """Token-mean NLL of each group's best-rewarded candidate, averaged over groups (``group_mean``)."""
    return group_sft_nll(token_logps, token_mask, rewards, group_mask, ties).mean()


def reduce_groups(rank: Tensor, sft: Tensor, reduction: str, padded_length: int | Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The batch's ``(L_rank, L_sft)`` from per-group terms ``[B]`` (see the module docstring).

    ``sft`` holds token-mean NLLs for ``group_mean`` and summed ones for the others; ``released``
    needs ``padded_length``, the longest prompt+response of the forward in tokens.
    """
    check_reduction(reduction)
    if reduction == "group_mean":
        return rank.mean(), sft.mean()
    if reduction == "paper":
        return rank.sum(), sft.sum()
    if padded_length is None:
        raise ValueError("reduction released: needs padded_length (the longest prompt+response of the batch, in tokens)")
    return rank.sum(), sft.sum() / (sft.shape[0] * padded_length)


class RLEFLoss(nn.Module):
    """``L = alpha * L_rank + L_sft`` from per-token log-probabilities of each group's candidates."""

    def __init__(self, alpha: float = 1.0, length_penalty: float = 1.0, margin: float = 0.0, sft_ties: str = "first", reduction: str = "group_mean"):
        super().__init__()
        check_sft_ties(sft_ties)
        check_reduction(reduction)
        self.alpha, self.length_penalty, self.margin, self.sft_ties = alpha, length_penalty, margin, sft_ties
        self.reduction = reduction

    def forward(
        self, token_logps: Tensor, token_mask: Tensor, rewards: Tensor, group_mask: Tensor | None = None, padded_length: int | Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``(loss, {"rank", "sft", "scores"})``; shapes as in :func:`group_sft_nll`; ``padded_length``
        as in :func:`reduce_groups` (used by ``released`` only)."""
        scores, _ = length_normalized(token_logps, token_mask, self.length_penalty)
        per_group_rank = group_rank_losses(scores, rewards, group_mask, self.margin)
        per_group_sft = group_sft_nll(token_logps, token_mask, rewards, group_mask, self.sft_ties, per_token=self.reduction == "group_mean")
        rank, sft = reduce_groups(per_group_rank, per_group_sft, self.reduction, padded_length)
        return self.alpha * rank + sft, {"rank": rank.detach(), "sft": sft.detach(), "scores": scores.detach()}
