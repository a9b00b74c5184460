"""bench/mix_qwen.py: the MIX-Qwen table of docs/benchmarks.md (and the README's summary of it) is
written from a run's results.json, and only a finished run is recorded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("mix_qwen", ROOT / "bench" / "mix_qwen.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

RESULTS = {
    "rows": {
        "zero-shot": {"asdiv-a": 0.5, "xquad-zh": 0.25, "avg": 0.375, "tool_rate": 0.0},
        "trice-all": {"asdiv-a": 0.75, "xquad-zh": 0.3, "avg": 0.525, "tool_rate": 0.456},
    },
    "intervals": {
        "zero-shot": {"asdiv-a": [0.4, 0.6], "xquad-zh": [0.2, 0.3], "avg": [0.33, 0.42]},
        "trice-all": {"asdiv-a": [0.65, 0.85], "xquad-zh": [0.25, 0.35], "avg": [0.48, 0.57]},
    },
    "findings": {"1 D_tool is a mix": {"verdict": "holds", "measured": "own right answers kept for 77/400"}},
}


def test_readme_table_keeps_the_runs_order_names_and_intervals() -> None:
    assert bench.docs_table(RESULTS) == [
        "| setting | ASDiv-A | XQuAD-zh | avg | tool use |",
        "|---|---|---|---|---|",
        "| zero-shot | 50.0 [40.0, 60.0] | 25.0 [20.0, 30.0] | 37.5 [33.0, 42.0] | 0% |",
        "| trice-all | 75.0 [65.0, 85.0] | 30.0 [25.0, 35.0] | 52.5 [48.0, 57.0] | 46% |",
    ]
    assert bench.findings_table(RESULTS)[2] == "| 1 D_tool is a mix | holds | own right answers kept for 77/400 |"


def test_an_unfinished_run_is_refused_and_a_finished_one_copied(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="has not finished"):
        bench.copy_report(tmp_path / "run", tmp_path / "out")
    report = tmp_path / "run" / "report"
    report.mkdir(parents=True)
    (report / "results.json").write_text(json.dumps(RESULTS))
    (report / "report.md").write_text("# trice report\n")
    (report / "accuracy.png").write_bytes(b"\x89PNG")
    (report / "stage.json").write_text("{}")  # the report stage's marker: not a result
    assert bench.copy_report(tmp_path / "run", tmp_path / "out") == RESULTS
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["accuracy.png", "report.md", "results.json"]


def test_a_report_so_far_is_copied_over_an_earlier_copy(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit, match="report-so-far/results.json does not exist: trice run mix_qwen --report-so-far"):
        bench.copy_report(tmp_path / "run", tmp_path / "out", so_far=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "dev_curve-trice-all.png").write_bytes(b"\x89PNG")  # from an earlier, fuller copy
    so_far = tmp_path / "run" / "report-so-far"
    so_far.mkdir(parents=True)
    partial = RESULTS | {"partial": {"evaluated": ["zero-shot", "trice-all"], "not_yet": ["sft-0"]}}
    (so_far / "results.json").write_text(json.dumps(partial))
    assert bench.main(["--run", str(tmp_path / "run"), "--out", str(out), "--so-far"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert capsys.readouterr().err.strip().endswith("not evaluated yet: sft-0")


def test_the_docs_table_is_the_committed_result() -> None:
    """The MIX-Qwen table of docs/benchmarks.md is bench/results/mix_qwen/results.json's, row for row,
    and names the settings a partial record has not evaluated yet."""
    results = json.loads((ROOT / "bench" / "results" / "mix_qwen" / "results.json").read_text(encoding="utf-8"))
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    table = bench.docs_table(results)
    start = page.index(table[0] + "\n")
    assert page[start:].splitlines()[: len(table)] == table
    for setting in results.get("partial", {}).get("not_yet", []):
        assert setting in page[start - 600 : start], f"docs/benchmarks.md does not say {setting} is not evaluated yet"


def test_the_readme_summary_is_the_committed_result() -> None:
    """The README's one result table: each setting's average over the eight sets with its interval,
    and its tool use, as the full table gives them."""
    results = json.loads((ROOT / "bench" / "results" / "mix_qwen" / "results.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| setting | avg accuracy | tool use |\n|---|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    full = [[c.strip() for c in line.strip("|").split("|")] for line in bench.docs_table(results)[2:]]
    assert rows == [[r[0], r[-2], r[-1]] for r in full]
