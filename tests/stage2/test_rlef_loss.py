"""The RLEF loss against a loop-by-loop transcription of the TRICE paper's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from trice.stage2.rlef_loss import RLEFLoss, best_index, length_normalized, rank_loss, sequence_logprobs, sft_loss_best, token_logprobs


# ---- the formulas, written out with Python loops -------------------------------------------------


def loop_rank_loss(p: list[float], r: list[float], margin: float = 0.0) -> float:
    """L_rank = sum over pairs with r_i < r_j of max(0, p_i - p_j)."""
    total = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if r[i] < r[j]:
                total += max(0.0, p[i] - p[j] + margin)
    return total


def loop_sequence_scores(logits: torch.Tensor, labels: torch.Tensor, length_penalty: float = 1.0) -> list[float]:
    """p = sum_m log p(y_m | y_<m) / |y| ** length_penalty, token by token."""
    out = []
    for b in range(logits.shape[0]):
        total, n = 0.0, 0
        for t in range(1, labels.shape[1]):
            if labels[b, t] == -100:
                continue
            probs = torch.softmax(logits[b, t - 1].double(), -1)
            total += math.log(probs[labels[b, t]].item())
            n += 1
        out.append(total / max(n, 1) ** length_penalty)
    return out


# ---- sequence scores -----------------------------------------------------------------------------


def test_sequence_logprobs_matches_loop_and_ignores_masked_labels():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 11)
    labels = torch.randint(0, 11, (3, 6))
    labels[:, :2] = -100  # prompt
    labels[1, 5] = -100  # padding
    for lp in (1.0, 0.0, 2.0):
        scores, counts = sequence_logprobs(logits, labels, length_penalty=lp)
        assert counts.tolist() == [4, 3, 4]
        assert scores.tolist() == pytest.approx(loop_sequence_scores(logits, labels, lp), abs=1e-5)


def test_token_logprobs_zero_where_masked_and_length_normalized_of_empty_is_zero():
    logits = torch.randn(2, 4, 5)
    labels = torch.full((2, 4), -100)
    labels[0, 3] = 1
    logps, mask = token_logprobs(logits, labels)
    assert mask.tolist() == [[False, False, True], [False, False, False]]
    assert (logps[~mask] == 0).all()
    scores, counts = length_normalized(logps, mask)
    assert counts.tolist() == [1, 0] and scores[1] == 0


# ---- rank loss -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, r",
    [
        ([-1.0, -2.0, -0.5, -3.0, -1.5], [20, 15, 10, 5, 0]),
        ([-1.0, -2.0, -0.5, -3.0, -1.5], [20, 20, 15, 15, 5]),  # ties
        ([-0.1, -0.3, -0.2], [5, 10, 20]),
        ([0.5], [20]),
    ],
)
def test_rank_loss_1d_equals_loop(p, r):
    got = rank_loss(torch.tensor(p), torch.tensor(r, dtype=torch.float))
    assert got.item() == pytest.approx(loop_rank_loss(p, r), abs=1e-6)


def test_rank_loss_margin():
    p, r = [-1.0, -1.2, -0.9], [20, 10, 5]
    got = rank_loss(torch.tensor(p), torch.tensor(r, dtype=torch.float), margin=0.5)
    assert got.item() == pytest.approx(loop_rank_loss(p, r, margin=0.5), abs=1e-6)


def test_equal_rewards_give_no_pairs():
    p = torch.tensor([-3.0, -1.0, -2.0, 0.0])
    assert rank_loss(p, torch.full((4,), 10.0)).item() == 0.0
    # tied pair (0, 1) misordered in p: it contributes nothing
    assert rank_loss(torch.tensor([-5.0, -1.0]), torch.tensor([20.0, 20.0])).item() == 0.0


def test_hinge_inactive_when_ordered_right():
    p = torch.tensor([-0.5, -1.0, -2.0, -3.0], requires_grad=True)
    loss = rank_loss(p, torch.tensor([20.0, 15.0, 10.0, 5.0]))
    loss.backward()
    assert loss.item() == 0.0 and (p.grad == 0).all()


def test_gradient_flows_only_through_violating_pairs():
    # pairs by reward (low, high): (1,0) ordered, (2,0) violated, (2,1) violated, (3,*) ordered
    p = torch.tensor([-1.0, -2.0, -0.5, -4.0], requires_grad=True)
    r = torch.tensor([20.0, 15.0, 10.0, 5.0])
    rank_loss(p, r).backward()
    # d/dp of (p2 - p0) + (p2 - p1): p2 +2, p0 -1, p1 -1, p3 untouched
    assert p.grad.tolist() == [-1.0, -1.0, 2.0, 0.0]


def test_batched_rank_loss_is_mean_over_groups_and_ignores_padding():
    groups = [([-1.0, -2.0, -0.5, -3.0, -1.5], [20, 15, 10, 5, 0]), ([-0.2, -0.1, -0.4], [20, 10, 15])]
    k = 5
    scores = torch.full((2, k), 123.0)  # padding candidates hold junk on purpose
    rewards = torch.full((2, k), -50.0)
    mask = torch.zeros(2, k, dtype=torch.bool)
    for b, (p, r) in enumerate(groups):
        scores[b, : len(p)] = torch.tensor(p)
        rewards[b, : len(r)] = torch.tensor(r, dtype=torch.float)
        mask[b, : len(p)] = True
    got = rank_loss(scores, rewards, mask)
    expected = sum(loop_rank_loss(p, r) for p, r in groups) / len(groups)
    assert got.item() == pytest.approx(expected, abs=1e-6)


# ---- SFT on the best candidate -------------------------------------------------------------------


def test_best_index_prefers_first_of_ties_and_skips_padding():
    assert best_index(torch.tensor([20.0, 20.0, 15.0])).item() == 0
    assert best_index(torch.tensor([10.0, 20.0, 20.0])).item() == 1
    assert best_index(torch.tensor([[5.0, 10.0, 99.0]]), torch.tensor([[True, True, False]])).tolist() == [1]


def test_sft_loss_best_is_token_mean_nll_of_best():
    logps = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -0.5], [-3.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True], [True, False, False]])
    assert sft_loss_best(logps, mask, torch.tensor([20.0, 20.0, 5.0])).item() == pytest.approx(1.5)  # gold wins the tie
    assert sft_loss_best(logps, mask, torch.tensor([10.0, 20.0, 5.0])).item() == pytest.approx(0.5)
    batched = sft_loss_best(torch.stack([logps, logps]), torch.stack([mask, mask]), torch.tensor([[20.0, 20.0, 5.0], [1.0, 2.0, 3.0]]))
    assert batched.item() == pytest.approx((1.5 + 3.0) / 2)


def test_sft_loss_all_ties_averages_every_best_candidate():
    logps = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -0.5], [-3.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True], [True, False, False]])
    # gold (1.5) and a True-Yes (0.5) tie at 20: both are imitated; the 5 is not
    assert sft_loss_best(logps, mask, torch.tensor([20.0, 20.0, 5.0]), ties="all").item() == pytest.approx(1.0)
    # one best: the same as "first"
    assert sft_loss_best(logps, mask, torch.tensor([10.0, 20.0, 5.0]), ties="all").item() == pytest.approx(0.5)
    # padding never counts, even where its reward would tie or win
    batched = sft_loss_best(
        torch.stack([logps, logps]),
        torch.stack([mask, mask]),
        torch.tensor([[20.0, 20.0, 20.0], [1.0, 2.0, 2.0]]),
        torch.tensor([[True, True, False], [True, True, False]]),
        ties="all",
    )
    assert batched.item() == pytest.approx((1.0 + 0.5) / 2)
    loss, parts = RLEFLoss(alpha=0.0, sft_ties="all")(logps, mask, torch.tensor([20.0, 20.0, 5.0]))
    assert parts["sft"].item() == pytest.approx(1.0) and loss.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="ties"):
        sft_loss_best(logps, mask, torch.tensor([20.0, 20.0, 5.0]), ties="best")
    with pytest.raises(ValueError, match="sft_ties"):
        RLEFLoss(sft_ties="random")


def test_rlef_loss_combines_parts():
    torch.manual_seed(1)
    logps = -torch.rand(4, 6) * 3
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[2, 4:] = False
    logps = logps * mask
    rewards = torch.tensor([20.0, 10.0, 15.0, 5.0])
    for alpha, lp in ((1.0, 1.0), (0.1, 1.0), (0.01, 0.5)):
        loss, parts = RLEFLoss(alpha=alpha, length_penalty=lp)(logps, mask, rewards)
        p = [(logps[i][mask[i]].sum() / mask[i].sum() ** lp).item() for i in range(4)]
        nll = -logps[0][mask[0]].mean().item()
        assert parts["scores"].tolist() == pytest.approx(p, abs=1e-6)
        assert parts["rank"].item() == pytest.approx(loop_rank_loss(p, rewards.tolist()), abs=1e-5)
        assert parts["sft"].item() == pytest.approx(nll, abs=1e-6)
        assert loss.item() == pytest.approx(alpha * parts["rank"].item() + nll, abs=1e-5)


# ---- reductions over a forward's groups ----------------------------------------------------------


def loop_rlef(logps, mask, rewards, group_mask, alpha, reduction, ties, padded_length, margin=0.0, lp=1.0):
    """The three reductions written out group by group, candidate by candidate, token by token.

    group_mean: mean_b [alpha * R_b + token-mean NLL of b's best];  paper: sum_b [alpha * R_b + summed NLL];
    released: alpha * sum_b R_b + (sum_b summed NLL of b's best) / (B * padded_length)."""
    B, K, T = logps.shape
    ranks, sfts = [], []
    for b in range(B):
        real = [i for i in range(K) if group_mask[b, i]]
        tokens = {i: [logps[b, i, t].item() for t in range(T) if mask[b, i, t]] for i in real}
        p = [sum(tokens[i]) / max(len(tokens[i]), 1) ** lp for i in real]
        ranks.append(loop_rank_loss(p, [rewards[b, i].item() for i in real], margin))
        top = max(rewards[b, i].item() for i in real)
        best = [i for i in real if rewards[b, i].item() == top]
        best = best[:1] if ties == "first" else best
        nll = [-sum(tokens[i]) / (max(len(tokens[i]), 1) if reduction == "group_mean" else 1) for i in best]
        sfts.append(sum(nll) / len(nll))
    if reduction == "group_mean":
        rank, sft = sum(ranks) / B, sum(sfts) / B
    elif reduction == "paper":
        rank, sft = sum(ranks), sum(sfts)
    else:
        rank, sft = sum(ranks), sum(sfts) / (B * padded_length)
    return alpha * rank + sft, rank, sft


def _random_groups(seed: int):
    """Three groups of up to five candidates: right padding, a masked candidate slot, a reward tie."""
    g = torch.Generator().manual_seed(seed)
    B, K, T = 3, 5, 7
    lengths = torch.randint(1, T + 1, (B, K), generator=g)
    mask = torch.arange(T) < lengths.unsqueeze(-1)
    logps = -torch.rand(B, K, T, generator=g) * 4 * mask + 9.0 * ~mask  # junk beyond the mask on purpose
    rewards = torch.randint(0, 4, (B, K), generator=g).float() * 5
    rewards[0, 2] = rewards[0, 0] = 20.0  # a tie for the best
    group_mask = torch.ones(B, K, dtype=torch.bool)
    group_mask[1, 3:] = False  # a group of k = 3 padded to 5
    rewards[1, 4] = 99.0  # a padded slot whose reward would win
    return logps, mask, rewards, group_mask


@pytest.mark.parametrize("reduction", ["group_mean", "released", "paper"])
@pytest.mark.parametrize("ties", ["first", "all"])
def test_each_reduction_equals_its_loop_transcription(reduction, ties):
    for seed in range(4):
        logps, mask, rewards, group_mask = _random_groups(seed)
        logps = logps * mask
        for alpha, margin, lp in ((1.0, 0.0, 1.0), (0.1, 0.5, 0.7)):
            loss_fn = RLEFLoss(alpha=alpha, length_penalty=lp, margin=margin, sft_ties=ties, reduction=reduction)
            loss, parts = loss_fn(logps, mask, rewards, group_mask, padded_length=23)
            want, rank, sft = loop_rlef(logps, mask, rewards, group_mask, alpha, reduction, ties, 23, margin, lp)
            assert parts["rank"].item() == pytest.approx(rank, rel=1e-5, abs=1e-5)
            assert parts["sft"].item() == pytest.approx(sft, rel=1e-5, abs=1e-6)
            assert loss.item() == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_reductions_scale_as_the_docstring_converts_alpha():
    """One group per forward (B = 1) whose every candidate has T tokens: paper = T * group_mean at
    alpha_paper = T * alpha_group_mean; released = group_mean * T / L at alpha_released = alpha_group_mean * T / L."""
    g = torch.Generator().manual_seed(3)
    T, L = 6, 20
    logps = -torch.rand(1, 4, T, generator=g)
    mask = torch.ones(1, 4, T, dtype=torch.bool)
    rewards = torch.tensor([[20.0, 5.0, 10.0, 0.0]])
    base, _ = RLEFLoss(alpha=0.3)(logps, mask, rewards)
    paper, _ = RLEFLoss(alpha=0.3 * T, reduction="paper")(logps, mask, rewards)
    released, _ = RLEFLoss(alpha=0.3 * T / L, reduction="released")(logps, mask, rewards, padded_length=L)
    assert paper.item() == pytest.approx(T * base.item(), rel=1e-5)
    assert released.item() == pytest.approx(base.item() * T / L, rel=1e-5)


def test_released_needs_the_padded_length_and_unknown_reductions_are_named():
    logps, mask, rewards, group_mask = _random_groups(0)
    with pytest.raises(ValueError, match="padded_length"):
        RLEFLoss(reduction="released")(logps * mask, mask, rewards, group_mask)
    with pytest.raises(ValueError, match="reduction: unknown 'sum'"):
        RLEFLoss(reduction="sum")
