"""TRICE's five findings as verdicts: each holds / does not hold from per-question results, and is
"not measured yet" while its rows are missing, "not measured" when the recipe lacks their settings."""

from __future__ import annotations

from trice.pipeline.findings import (
    NOT_RUN,
    NOT_YET,
    PAIRS,
    findings,
    findings_markdown,
    mix_finding,
    order_finding,
    tool_drop_finding,
    tool_raise_finding,
    tool_use_by_zero_shot,
)
from trice.pipeline.intervals import paired_rows

N = 60


def _setting(correct: list[int], used: list[int]) -> dict:
    """A setting's judged answers on one dataset of N questions."""
    return {"asdiv-a": {f"q{i}": (bool(c), bool(u)) for i, (c, u) in enumerate(zip(correct, used))}}


def test_stage_two_lowering_tool_use_without_losing_accuracy_holds() -> None:
    right = [1] * 30 + [0] * 30  # zero-shot right on the first half
    judged = {
        "zero-shot": _setting(right, [0] * N),
        "trice-i": _setting([1] * 45 + [0] * 15, [1] * N),  # calls everywhere
        "trice-all": _setting([1] * 45 + [0] * 15, [0] * 30 + [1] * 30),  # calls only where zero-shot was wrong
    }
    assert tool_raise_finding(judged, 0)["holds"] is True  # 100% tool use against 50% wrong
    assert tool_drop_finding(judged, 0)["holds"] is True
    assert tool_use_by_zero_shot(judged)["trice-all"] == {"zero-shot right": 0.0, "zero-shot wrong": 1.0}


def test_lower_accuracy_breaks_finding_three_and_missing_rows_are_not_measured() -> None:
    judged = {
        "trice-i": _setting([1] * 45 + [0] * 15, [1] * N),
        "trice-all": _setting([1] * 20 + [0] * 40, [0] * N),  # fewer calls, but far fewer right answers
    }
    assert tool_drop_finding(judged, 0)["holds"] is False
    assert tool_raise_finding(judged, 0)["verdict"] == NOT_YET
    assert order_finding(judged, {})["verdict"] == NOT_YET
    assert tool_raise_finding(judged, 0, planned=["trice-i", "trice-all"]) == {
        "holds": None, "verdict": NOT_RUN, "measured": "the recipe has no zero-shot setting"}  # fmt: skip
    assert tool_raise_finding(judged, 0, planned=["zero-shot", "trice-i", "trice-all"])["measured"] == "needs eval-zero-shot"


def test_mix_finding_uses_the_floor() -> None:
    assert mix_finding({"trice": {"right": 30, "probed": 100, "tool_share": 0.7}})["holds"] is True
    assert mix_finding({"trice": {"right": 5, "probed": 100, "tool_share": 0.95}})["holds"] is False
    assert mix_finding({})["verdict"] == NOT_YET


def _curve(*accuracies: float) -> dict:
    return {"curve": [{"step": 5 * i, "accuracy": a} for i, a in enumerate(accuracies)]}


def test_every_finding_from_one_run() -> None:
    """A run where TRICE-ALL beats every baseline with fewer calls, and TRICE-II trails it."""
    judged = {
        "zero-shot": _setting([1] * 30 + [0] * 30, [0] * N),
        "sft-0": _setting([1] * 25 + [0] * 35, [0] * N),
        "sft-100": _setting([1] * 35 + [0] * 25, [1] * N),
        "trice-i": _setting([1] * 40 + [0] * 20, [1] * N),
        "trice-all": _setting([1] * 55 + [0] * 5, [0] * 30 + [1] * 30),
        "trice-ii": _setting([1] * 30 + [0] * 30, [1] * N),
    }
    stage_two = {"selection": {"trice-all": _curve(0.6, 0.7, 0.75), "trice-ii": _curve(0.3, 0.6, 0.5)}}
    found = findings(judged, {"trice": {"right": 30, "probed": 100, "tool_share": 0.7}}, stage_two, seed=0)
    assert [f["verdict"] for f in found.values()] == ["holds"] * 5
    assert "trice-all vs sft-0: +50.0%" in found["4 TRICE-ALL above TRICE-I, SFT 100%, SFT 0%"]["measured"]
    table = "\n".join(findings_markdown(found))
    assert table.count("| holds |") == 5 and "| 3 stage II lowers tool use, accuracy kept | holds | tool use TRICE-ALL - TRICE-I -50.0%" in table
    judged["trice-all"] = judged["trice-i"]  # stage II kept the start
    found = findings(judged, {"trice": {"right": 30, "probed": 100, "tool_share": 0.7}}, stage_two, seed=0)
    assert found["3 stage II lowers tool use, accuracy kept"]["verdict"] == "does not hold"
    assert found["4 TRICE-ALL above TRICE-I, SFT 100%, SFT 0%"]["verdict"] == "does not hold"
    reused = paired_rows(judged, list(PAIRS[:2]), 0)  # what a report has bootstrapped already
    assert findings(judged, {}, stage_two, seed=0, paired=reused) == findings(judged, {}, stage_two, seed=0)
