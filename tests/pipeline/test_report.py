"""The report: its stage II text says which model a stage II test row was made with, and every
accuracy comes with its 95% interval and the stage II rows with paired comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest

from trice.judge import evaluate
from trice.utils.io import DataError, read_json, write_json, write_jsonl
from trice.pipeline.plan import plan_recipe
from trice.pipeline.report import write_report
from trice.pipeline.stage_two_report import stage_two_markdown
from trice.pipeline.intervals import interval_text, judged_from_record, paired_rows, read_judged

CANDIDATES = {"n": 2, "strategy": "paper", "states": {"True-Yes": 2}}


def _selection(best_step: int, selected_from: str | None) -> dict:
    return {"best_step": best_step, "best_accuracy": 0.5, "n_dev": 4, "selected_from": selected_from}


@pytest.mark.parametrize(
    "best_step, selected_from, says",
    [
        (20, "run/train-trice-all/checkpoints/checkpoint-20", "the test row uses that checkpoint."),
        (0, "run/train-trice-i/adapter", "no stage II checkpoint beat the start (step 0) on dev, so the test row uses the adapter stage II started from"),
        (0, None, "no stage II checkpoint beat the start (step 0) on dev, so the test row uses the base model."),
    ],
)
def test_stage_two_text_names_the_chosen_step_or_the_start(best_step: int, selected_from: str | None, says: str) -> None:
    md = "\n".join(stage_two_markdown({"candidates": CANDIDATES, "selection": {"trice-x": _selection(best_step, selected_from)}}, with_loss=False))
    assert f"**trice-x**: best dev step {best_step} (dev accuracy 50.0% on 4 held-out training questions); {says}" in md


# A finished run's directory, written by hand: four settings on three test sets of 40 questions.
DATASETS = ["asdiv", "svamp", "gsm8k"]
N = 40
RIGHT = {"zero-shot": 0, "sft-100": 10, "trice-i": 20, "trice-all": 20}  # each right on its first k questions of every set


def _synthetic_run(run: Path) -> None:
    for setting, k in RIGHT.items():
        judged = [
            {"id": f"{ds}-{i}", "dataset": ds, "question": "q", "response": "r", "prediction": "p", "correct": i < k, "used_tool": setting != "zero-shot"}
            for ds in DATASETS
            for i in range(N)
        ]
        write_jsonl(run / f"eval-{setting}" / "judged.jsonl", judged)
        write_json(run / f"eval-{setting}" / "summary.json", evaluate.summarize(judged) | {"tool_rate_by_dataset": evaluate.tool_rate_by_dataset(judged)})
    write_json(run / "data" / "splits.json", {"datasets": {ds: {"split": "official", "train_used": 10, "test_used": N} for ds in DATASETS}})
    for label in ("sft-100", "trice"):
        write_json(run / "label" / f"{label}.stats.json", {"probed": 30, "kept": 30, "right": 6, "tool_share": 0.8})
    write_json(run / "probe" / "summary.json", {"accuracy": {"total": 0.1}, "tool_rate": 0.0})
    write_json(run / "score" / "summary.json", CANDIDATES)


def test_report_shows_intervals_and_paired_comparisons(tmp_path: Path) -> None:
    plan = plan_recipe(Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml", {"run_dir": str(tmp_path / "run"), "settings": list(RIGHT)})
    _synthetic_run(plan.run_dir)
    results = write_report(plan, tmp_path / "report")
    assert read_json(tmp_path / "report" / "results.json") == results
    for setting, row in results["rows"].items():
        assert set(results["intervals"][setting]) == set(row)
        assert all(low <= row[k] <= high for k, (low, high) in results["intervals"][setting].items())
    assert results["intervals"]["zero-shot"] == {k: [0.0, 0.0] for k in [*DATASETS, "avg", "tool_rate"]}
    assert results["intervals"]["trice-i"]["tool_rate"] == [1.0, 1.0]
    low, high = results["intervals"]["trice-i"]["asdiv"]  # 20 of 40: about 0.5 +- 15 points
    assert 0.3 < low < 0.4 and 0.6 < high < 0.7
    assert list(results["paired"]) == ["trice-all vs trice-i", "trice-all vs sft-100", "trice-i vs sft-100"]
    same = results["paired"]["trice-all vs trice-i"]
    assert all(d == {"difference": 0.0, "low": 0.0, "high": 0.0, "verdict": "no difference"} for d in same.values())
    better = results["paired"]["trice-i vs sft-100"]["avg"]  # right on a superset: 10 more questions of 40 per set
    assert better["difference"] == 0.25 and better["verdict"] == "higher" and better["low"] > 0.15
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| setting | asdiv | svamp | gsm8k | avg | tool use |" in report
    assert "| zero-shot | 0.0 [0.0, 0.0] (0%) | 0.0 [0.0, 0.0] (0%) | 0.0 [0.0, 0.0] (0%) | 0.0 [0.0, 0.0] | 0.0% [0.0, 0.0] |" in report
    assert f"| trice-i | 50.0 {interval_text(low, high)} (100%) |" in report
    assert "## Paired comparisons" in report
    assert "| trice-all vs trice-i | " + " | ".join(["+0.0 [+0.0, +0.0] no difference"] * 4) + " |" in report
    assert "| trice-i vs sft-100 | +25.0 [" in report and report.count("higher |") == 2 * 4  # both against sft-100
    assert judged_from_record(results["per_question"]) == read_judged(plan.run_dir, list(RIGHT), DATASETS)  # kept for bench/
    found = results["findings"]  # the recipe has no sft-0 or trice-ii setting: findings 4 and 5 are never measured
    assert [f["verdict"] for f in found.values()] == ["holds", "does not hold", "does not hold", "not measured", "not measured"]
    assert found["4 TRICE-ALL above TRICE-I, SFT 100%, SFT 0%"]["measured"] == "the recipe has no sft-0 setting"
    assert "## TRICE's findings on this run" in report and "| 2 stage I raises tool use | does not hold | TRICE-I tool use minus" in report
    assert results["figure4"]["trice-i"] == {"zero-shot wrong": 1.0}  # zero-shot got none right: that group is empty
    assert "| trice-i | - | 100% |" in report and "![tool use where zero-shot was right or wrong](tool_use_by_zero_shot.png)" in report
    assert (tmp_path / "report" / "tool_use_by_zero_shot.png").stat().st_size > 0
    again = write_report(plan, tmp_path / "again")  # the recipe's seed fixes the resamples
    assert again["intervals"] == results["intervals"] and again["paired"] == results["paired"]
    assert "tool_outages" not in results and "Tool outages" not in report
    assert "partial" not in results and "Partial report" not in report


def test_report_warns_when_a_tool_did_not_answer_some_calls(tmp_path: Path) -> None:
    plan = plan_recipe(Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml", {"run_dir": str(tmp_path / "run"), "settings": list(RIGHT)})
    _synthetic_run(plan.run_dir)
    summary = plan.run_dir / "eval-trice-i" / "summary.json"
    write_json(summary, read_json(summary) | {"tool_outages": {"unavailable": 3}})
    results = write_report(plan, tmp_path / "report")
    assert results["tool_outages"] == {"trice-i": {"unavailable": 3}}
    report = (tmp_path / "report" / "report.md").read_text()
    assert "**Tool outages**: calls a tool or its server did not answer, judged wrong (trice-i: 3 unavailable)." in report


def test_settings_judged_on_other_questions_are_not_paired(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _synthetic_run(run)
    judged = read_judged(run, list(RIGHT), DATASETS)
    del judged["trice-all"]["svamp"]["svamp-3"]
    with pytest.raises(ValueError, match="trice-all and trice-i were judged on different svamp questions"):
        paired_rows(judged, [("trice-all", "trice-i")], seed=0)
    with pytest.raises(DataError, match=r"eval-trice-i/judged.jsonl: field 'dataset': no judged questions of test set\(s\) trex"):
        read_judged(run, ["trice-i"], [*DATASETS, "trex"])


def test_a_report_of_the_settings_evaluated_so_far_names_the_rest(tmp_path: Path) -> None:
    settings = ["zero-shot", "sft-0", "sft-100", "trice-i", "trice-all"]
    plan = plan_recipe(Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml", {"run_dir": str(tmp_path / "run"), "settings": settings})
    _synthetic_run(plan.run_dir)
    results = write_report(plan, tmp_path / "so-far", ["zero-shot", "sft-100", "trice-i"])  # trice-all's files exist, unread
    assert list(results["rows"]) == ["zero-shot", "sft-100", "trice-i"]
    assert results["partial"] == {"evaluated": ["zero-shot", "sft-100", "trice-i"], "not_yet": ["sft-0", "trice-all"]}
    assert list(results["paired"]) == ["trice-i vs sft-100"]
    four, five = results["findings"]["4 TRICE-ALL above TRICE-I, SFT 100%, SFT 0%"], results["findings"]["5 TRICE-II less stable than TRICE-ALL"]
    assert (four["verdict"], four["measured"]) == ("not measured yet", "needs eval-trice-all and eval-sft-0")
    assert (five["verdict"], five["measured"]) == ("not measured", "the recipe has no trice-ii setting")
    report = (tmp_path / "so-far" / "report.md").read_text()
    assert "**Partial report**: evaluated so far zero-shot, sft-100, trice-i; not yet sft-0, trice-all." in report
