"""Judging the decision to call: how well a policy's P(call) separates the questions it cannot answer
alone from those it can, and the threshold a run chooses on its dev set.

P(call) is the probability of the call's first token at the response's first position
(:mod:`trice.generation.decision`). Its AUC is taken against the base model's own correctness on the
same questions (zero-shot right or wrong): 1.0 puts every question zero-shot got wrong above every
one it got right, 0.5 is no better than chance. The threshold rule calls iff P(call) > tau; tau is
chosen on dev questions answered both ways (the call branch and the answer branch), as the value
whose rule scores best there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def pair_auc(high: Sequence[float], low: Sequence[float]) -> float | None:
    """P(a random ``high`` value exceeds a random ``low`` one), ties counting half (the Mann-Whitney
    AUC); None when either side is empty. Sorted, so O(n log n)."""
    if not high or not low:
        return None
    ranked = sorted([(v, 1) for v in high] + [(v, 0) for v in low])
    wins, below, i = 0.0, 0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        tied_high = sum(flag for _, flag in ranked[i:j])
        tied_low = (j - i) - tied_high
        wins += tied_high * (below + 0.5 * tied_low)
        below += tied_low
        i = j
    return wins / (len(high) * len(low))


def threshold_curve(p_call: Sequence[float], call_right: Sequence[bool], answer_right: Sequence[bool]) -> list[dict[str, float]]:
    """Accuracy and tool use of "call iff P(call) > tau" for every tau that changes the rule (0: call
    wherever P(call) is above nothing; each distinct P(call): call above it, the largest: never), on
    questions answered both ways."""
    n = len(p_call)
    if not (n == len(call_right) == len(answer_right)) or n == 0:
        raise ValueError(
            f"threshold_curve: needs as many call and answer judgements as P(call) values, at least one (got {n}, {len(call_right)}, {len(answer_right)})"
        )
    curve = []
    for tau in sorted({0.0, *p_call}):
        calls = [p > tau for p in p_call]
        right = sum(c if call else a for call, c, a in zip(calls, call_right, answer_right))
        curve.append({"tau": tau, "accuracy": right / n, "tool_rate": sum(calls) / n})
    return curve


def choose_tau(curve: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """The tau of the best dev accuracy; of several, the middle one (in curve order), so the choice
    sits inside the best plateau rather than at its edge."""
    best = max(point["accuracy"] for point in curve)
    tied = [point for point in curve if point["accuracy"] == best]
    chosen = tied[(len(tied) - 1) // 2]
    return {"tau": chosen["tau"], "dev_accuracy": best, "dev_tool_rate": chosen["tool_rate"], "tied": len(tied)}


def decision_summary(rows: Sequence[Mapping[str, Any]], zero_shot_right: Mapping[Any, bool]) -> dict[str, Any]:
    """One setting's decision on its judged test rows: mean P(call), the AUC of P(call) for telling
    zero-shot-wrong questions from zero-shot-right ones, tool use on each, and the accuracy of the
    calls it made and of the answers it gave alone. Rows without P(call) leave the AUC out."""
    read = [r for r in rows if r.get("p_call") is not None and r["id"] in zero_shot_right]
    calls = [r for r in rows if r["used_tool"]]
    alone = [r for r in rows if not r["used_tool"]]
    split = {True: [r for r in rows if zero_shot_right.get(r["id"]) is True], False: [r for r in rows if zero_shot_right.get(r["id"]) is False]}
    return {
        "n": len(rows),
        "p_call_read": len(read),
        "mean_p_call": sum(r["p_call"] for r in read) / len(read) if read else None,
        "auc_zero_shot_wrong_over_right": pair_auc(
            [r["p_call"] for r in read if not zero_shot_right[r["id"]]], [r["p_call"] for r in read if zero_shot_right[r["id"]]]
        ),
        "tool_use_zero_shot_right": _share(split[True], "used_tool"),
        "tool_use_zero_shot_wrong": _share(split[False], "used_tool"),
        "call_accuracy": _share(calls, "correct"),
        "alone_accuracy": _share(alone, "correct"),
        "calls": len(calls),
    }


def _share(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    return sum(bool(r[key]) for r in rows) / len(rows) if rows else None


def oracle(zero_shot: Mapping[Any, bool], calling: Mapping[Any, bool]) -> dict[str, float]:
    """Answer alone exactly where zero-shot is right, call elsewhere (with ``calling``'s judged calls,
    a setting that always calls): the accuracy and tool use of a perfect decision."""
    ids = [i for i in zero_shot if i in calling]
    if not ids:
        raise ValueError("oracle: zero-shot and the calling setting share no question")
    right = sum(zero_shot[i] or calling[i] for i in ids)
    return {"accuracy": right / len(ids), "tool_rate": sum(not zero_shot[i] for i in ids) / len(ids), "n": len(ids)}


def break_even_precision(alone_right: Mapping[Any, bool], call_right: Mapping[Any, bool]) -> float | None:
    """The share of its own answers a gate ("answer alone here, call elsewhere") must get right
    before answering alone wins anything over always calling.

    Answering alone on a question wins where the own answer is right and the call wrong, and loses
    where the own answer is wrong and the call right. If the gate picked questions at random within
    each kind (own right / own wrong), a gated set of own accuracy p gains in proportion to
    ``p * P(call wrong | own right) - (1 - p) * P(call right | own wrong)``, so it breaks even at
    ``P(call right | own wrong) / (P(call right | own wrong) + P(call wrong | own right))``. A real
    gate picks the easy questions, where calls are right more often, so this is a lower bound on
    the precision it needs. None when either kind is absent or calls never differ from own answers."""
    ids = [i for i in alone_right if i in call_right]
    right = [i for i in ids if alone_right[i]]
    wrong = [i for i in ids if not alone_right[i]]
    if not right or not wrong:
        return None
    lose = sum(call_right[i] for i in wrong) / len(wrong)
    win = sum(not call_right[i] for i in right) / len(right)
    return None if lose + win == 0 else lose / (lose + win)
