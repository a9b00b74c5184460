"""bench/math_benchmark.py keeps the result file's notes and records every distinct stage II try."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("math_benchmark", Path(__file__).resolve().parents[1] / "bench" / "math_benchmark.py")
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
