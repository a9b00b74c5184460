"""bench/math_benchmark.py keeps the result file's notes, records every distinct stage II try, and gives
results recorded without per-question data binomial intervals."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from tests.helpers.numbers import approx_tree
from trice.utils.io import read_json

SPEC = importlib.util.spec_from_file_location("math_benchmark", Path(__file__).resolve().parents[2] / "bench" / "math_benchmark.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def _results(lr: float, acc: float) -> dict:
    return {
        "config": {"recipe": {"rlef": {"learning_rate": lr}, "dev": {"n_per_dataset": 40}}},
        "rows": {"trice-i": {"avg": 0.18}, "trice-all": {"avg": acc}},
        "stage_two": {"selection": {"trice-all": {"best_step": 20, "best_accuracy": 0.3}}},
    }


def test_tries_accumulate_per_config_and_notes_survive() -> None:
    first = bench.record(_results(2e-4, 0.19), {"notes": ["hand-written"]})
    assert first["notes"] == ["hand-written"] and len(first["tries"]) == 1
    assert first["tries"][0]["rows"] == {"trice-all": {"avg": 0.19}} and first["tries"][0]["best_step"] == {"trice-all": 20}
    second = bench.record(_results(5e-4, 0.21), first)
    assert [t["config"]["rlef"]["learning_rate"] for t in second["tries"]] == [2e-4, 5e-4]
    second["tries"][1]["observed"] = "written by hand"
    again = bench.record(_results(5e-4, 0.22), second)  # the same config rerun replaces its numbers
    assert again["tries"][1]["observed"] == "written by hand"
    assert [t["rows"]["trice-all"]["avg"] for t in again["tries"]] == [0.19, 0.22]
    assert bench.record({"config": {"recipe": {}}, "rows": {}}, {"notes": ["n"]})["tries"] == []


def _recorded(acc: dict[str, float], **extra) -> dict:
    datasets = {"asdiv": {"test_used": 300}, "gsm8k": {"test_used": 100}}
    return {
        "config": {"recipe": {}, "splits": {"datasets": datasets}},
        "rows": {s: {"asdiv": a, "gsm8k": a, "avg": a, "tool_rate": 1.0} for s, a in acc.items()},
        "tool_rate_by_dataset": {s: {"asdiv": 1.0, "gsm8k": 1.0} for s in acc},
    } | extra


def test_results_without_intervals_get_binomial_ones_and_bootstrapped_ones_are_kept() -> None:
    results = bench.with_intervals(_recorded({"sft-100": 0.2, "trice-i": 0.2, "trice-all": 0.3}))
    assert results["interval_method"].startswith("95% intervals from each accuracy and its number of test questions")
    low, high = results["intervals"]["trice-all"]["gsm8k"]  # Wilson, 30 of 100
    assert low == pytest.approx(0.2189, abs=1e-3) and high == pytest.approx(0.3958, abs=1e-3)
    assert results["intervals"]["trice-all"]["tool_rate"] == [1.0, 1.0]
    assert list(results["unpaired"]) == ["trice-all vs trice-i", "trice-all vs sft-100", "trice-i vs sft-100"]
    assert results["unpaired"]["trice-all vs trice-i"]["avg"]["verdict"] == "higher"
    half = 1.96 * (2 * (0.16 / 300 + 0.16 / 100) / 4) ** 0.5  # both settings' variances of a two-set average
    assert results["unpaired"]["trice-i vs sft-100"]["avg"] == {
        "difference": 0.0,
        "low": pytest.approx(-half, rel=1e-4),
        "high": pytest.approx(half, rel=1e-4),
        "verdict": "no difference",
    }
    bootstrapped = _recorded({"trice-i": 0.2}, intervals={"trice-i": {"avg": [0.1, 0.3]}}, paired={})
    assert bench.with_intervals(bootstrapped) == bootstrapped


def test_the_committed_math_result_holds_the_intervals_of_its_run() -> None:
    results = bench.ROOT / "bench" / "results"
    expected = bench.with_intervals(read_json(results / "math_benchmark" / "report" / "results.json"))
    committed = read_json(results / "math_benchmark" / "results.json")
    keys = ("rows", "intervals", "unpaired", "interval_method")
    assert {k: committed[k] for k in keys} == approx_tree({k: expected[k] for k in keys})


def test_recording_a_run_copies_its_report_beside_the_result(tmp_path: Path, capsys) -> None:
    """The run's report and plots land in report/ beside the result, which keeps its notes."""
    committed = bench.ROOT / "bench" / "results" / "math_benchmark"
    shutil.copytree(committed / "report", tmp_path / "run" / "report")
    out = tmp_path / "math_benchmark" / "results.json"
    out.parent.mkdir()
    shutil.copy2(committed / "results.json", out)
    bench.main(["--results", str(tmp_path / "run" / "report" / "results.json"), "--output", str(out)])
    assert sorted(p.name for p in (out.parent / "report").iterdir()) == sorted(p.name for p in (committed / "report").iterdir())
    assert read_json(out)["notes"] == read_json(committed / "results.json")["notes"]
    assert "math benchmark: " in capsys.readouterr().out
