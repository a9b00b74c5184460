"""bench/math_qwen.py: the tables of docs/benchmarks.md are the committed result, and a try reuses exactly the
main run's stages its stage II reads (the findings themselves: tests/pipeline/test_findings.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("math_qwen", Path(__file__).resolve().parents[2] / "bench" / "math_qwen.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def test_the_docs_findings_table_is_the_committed_result() -> None:
    """Each finding's status in docs/benchmarks.md is its verdict in bench/results/math_qwen/results.json, and the
    numbers quoted for a measured finding are the recorded ones."""
    root = Path(__file__).resolve().parents[2]
    result = json.loads((root / "bench" / "results" / "math_qwen" / "results.json").read_text(encoding="utf-8"))
    page = (root / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    table = page.split("| finding (the paper's) | status | measured |", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    findings = list(result["findings"].values())
    assert [r[1] for r in rows] == [f["verdict"] for f in findings]
    share = result["findings"]["1 D_tool is a mix"]["share"]
    assert f"{100 * share['estimate']:.1f}% [{100 * share['low']:.1f}, {100 * share['high']:.1f}]" in rows[0][2]


def _cell(p: float, interval: list[float]) -> str:
    return f"{100 * p:.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def test_the_docs_rows_are_the_committed_result() -> None:
    """Every evaluated row of bench/results/math_qwen/results.json is in docs/benchmarks.md's table, in its order, with
    the recorded accuracies, intervals and tool use."""
    root = Path(__file__).resolve().parents[2]
    result = json.loads((root / "bench" / "results" / "math_qwen" / "results.json").read_text(encoding="utf-8"))
    page = (root / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    table = page.split("| setting | ASDiv-A | SVAMP | avg | tool use |", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    assert len(rows) == len(result["rows"])
    for cells, (setting, row) in zip(rows, result["rows"].items(), strict=True):
        intervals = result["intervals"][setting]
        expected = [_cell(row["accuracy"][ds], intervals[ds]) for ds in ("asdiv-a", "svamp")]
        assert cells[1:] == [*expected, _cell(row["accuracy"]["total"], intervals["avg"]), f"{row['tool_rate']:.0%}"], setting


# The RLEF tries (the GRPO rows, tries too, have their own test in tests/recipes).
TRIES = sorted(t for t in (Path(__file__).resolve().parents[2] / "bench" / "tries").glob("math_qwen_*.yaml") if "grpo" not in t.stem)


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


def test_a_try_recorded_again_keeps_its_place_and_its_words_while_its_result_stands() -> None:
    tries = [{"name": "a", "test": 1, "measured": "a's words"}, {"name": "b", "test": 2, "measured": "b's words"}]
    again = bench.record_try(tries, {"name": "a", "test": 1})
    assert again == [{"name": "a", "test": 1, "measured": "a's words"}, tries[1]]
    changed = bench.record_try(tries, {"name": "a", "test": 3})
    assert changed[0] == {"name": "a", "test": 3}  # words about another result are not carried over
    assert bench.record_try(tries, {"name": "c", "test": 4})[-1] == {"name": "c", "test": 4}
