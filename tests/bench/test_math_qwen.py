"""bench/math_qwen.py's findings: each marked holds / does not hold from per-question results, and
"not measured yet" while its rows are missing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("math_qwen", Path(__file__).resolve().parents[2] / "bench" / "math_qwen.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

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
    assert bench.tool_raise_finding(judged)["holds"] is True  # 100% tool use against 50% wrong
    assert bench.tool_drop_finding(judged)["holds"] is True
    assert bench.tool_use_by_zero_shot(judged)["trice-all"] == {"zero-shot right": 0.0, "zero-shot wrong": 1.0}


def test_lower_accuracy_breaks_finding_three_and_missing_rows_are_not_measured() -> None:
    judged = {
        "trice-i": _setting([1] * 45 + [0] * 15, [1] * N),
        "trice-all": _setting([1] * 20 + [0] * 40, [0] * N),  # fewer calls, but far fewer right answers
    }
    assert bench.tool_drop_finding(judged)["holds"] is False
    assert bench.tool_raise_finding(judged)["verdict"] == bench.NOT_YET
    assert bench.order_finding({})["verdict"] == bench.NOT_YET


def test_mix_finding_uses_the_floor() -> None:
    assert bench.mix_finding({"trice": {"right": 30, "probed": 100, "tool_share": 0.7}})["holds"] is True
    assert bench.mix_finding({"trice": {"right": 5, "probed": 100, "tool_share": 0.95}})["holds"] is False
    assert bench.mix_finding({})["verdict"] == bench.NOT_YET


def test_the_readme_findings_table_is_the_committed_result() -> None:
    """Each finding's status in the README is its verdict in bench/results/math_qwen.json, and the
    numbers quoted for a measured finding are the recorded ones."""
    root = Path(__file__).resolve().parents[2]
    result = json.loads((root / "bench" / "results" / "math_qwen.json").read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme.split("| finding (the paper's) | status | measured |", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    findings = list(result["findings"].values())
    assert [r[1] for r in rows] == [f["verdict"] for f in findings]
    share = result["findings"]["1 D_tool is a mix"]["share"]
    assert f"{100 * share['estimate']:.1f}% [{100 * share['low']:.1f}, {100 * share['high']:.1f}]" in rows[0][2]


def _cell(p: float, interval: list[float]) -> str:
    return f"{100 * p:.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def test_the_readme_rows_are_the_committed_result() -> None:
    """Every evaluated row of bench/results/math_qwen.json is in the README's table, in its order, with
    the recorded accuracies, intervals and tool use."""
    root = Path(__file__).resolve().parents[2]
    result = json.loads((root / "bench" / "results" / "math_qwen.json").read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme.split("| setting | ASDiv-A | SVAMP | avg | tool use |", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    assert len(rows) == len(result["rows"])
    for cells, (setting, row) in zip(rows, result["rows"].items(), strict=True):
        intervals = result["intervals"][setting]
        expected = [_cell(row["accuracy"][ds], intervals[ds]) for ds in ("asdiv-a", "svamp")]
        assert cells[1:] == [*expected, _cell(row["accuracy"]["total"], intervals["avg"]), f"{row['tool_rate']:.0%}"], setting


TRIES = sorted((Path(__file__).resolve().parents[2] / "bench" / "tries").glob("*.yaml"))


@pytest.mark.parametrize("try_yaml", TRIES, ids=[t.stem for t in TRIES])
def test_a_try_reuses_exactly_what_its_stage_two_reads(tmp_path, try_yaml: Path) -> None:
    """Each committed try plans, changes stage II only (its candidates at most, never the data or
    stage I), and copies the stages TRICE-ALL's training and evaluation read, nothing it would not
    (not the other trainings, not TRICE-I's evaluation)."""
    plan = bench.plan_recipe(try_yaml, {"run_dir": str(tmp_path / "try")})
    main = bench.plan_recipe(bench.RECIPE, {"run_dir": str(tmp_path / "try")})
    assert plan.rlef != main.rlef
    assert (plan.data, plan.probe, plan.label, plan.train, plan.dev) == (main.data, main.probe, main.label, main.train, main.dev)
    assert bench.upstream(plan, ["train-trice-all", "eval-trice-all"]) == ["data", "probe", "label", "train-trice-i", "dev", "candidates", "score"]
