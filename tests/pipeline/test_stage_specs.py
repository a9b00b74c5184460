"""An eval stage whose weights, test file and settings equal a finished sibling's copies its answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from trice.utils.io import read_json, write_json
from trice.pipeline.eval_stage import reuse_twin_eval
from trice.core.layout import EVAL_OUTPUTS
from trice.pipeline import stage_specs
from trice.pipeline.failures import ToolOutages
from trice.pipeline.plan import plan_recipe
from trice.pipeline.stage_dirs import run_stage

SETTINGS = {"model": "m", "max_new_tokens": 96, "tools": {"QA": {"k": 2}}}


@pytest.fixture()
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # stage configs hold run-relative paths, as the pipeline's do
    run = Path("runs/r")
    (run / "data").mkdir(parents=True)
    (run / "data" / "test.jsonl").write_text('{"id": "q1"}\n')
    for name, weights in (("stage-i", b"W1"), ("start-copy", b"W1"), ("trained", b"W2")):
        (run / name).mkdir()
        (run / name / "adapter_model.safetensors").write_bytes(weights)
        (run / name / "adapter_config.json").write_text('{"r": 8}')
    (run / "stage-i" / "tokenizer.json").write_text("{}")  # a stage-I save also holds the tokenizer; the copy does not
    return run


def _eval(run: Path, name: str, adapter: str | None, answer: str) -> tuple[dict, list[Path]]:
    """Run eval stage ``name`` with a fake evaluation that writes ``answer`` into every output."""
    config = SETTINGS | {"adapter": None if adapter is None else str(run / adapter)}
    inputs = [run / "data" / "test.jsonl"] + ([run / adapter] if adapter else [])

    def fake(d: Path) -> None:
        if reuse_twin_eval(d, config, inputs) is None:
            for out in EVAL_OUTPUTS:
                write_json(d / out, {"answer": answer})

    run_stage(run / name, name, config, inputs, fake)
    return config, inputs


def test_same_weights_under_another_path_are_copied_not_rerun(run: Path) -> None:
    _eval(run, "eval-trice-i", "stage-i", "first pass")
    _eval(run, "eval-trice-all", "start-copy", "second pass")
    assert read_json(run / "eval-trice-all" / "summary.json") == {"answer": "first pass"}
    assert read_json(run / "eval-trice-all" / "reused.json")["from"] == "eval-trice-i"
    assert read_json(run / "eval-trice-all" / "stage.json")["complete"]


def test_base_model_twins_reuse_and_other_weights_or_settings_do_not(run: Path) -> None:
    _eval(run, "eval-zero-shot", None, "base")
    _eval(run, "eval-trice-ii", None, "again")
    assert read_json(run / "eval-trice-ii" / "summary.json") == {"answer": "base"}
    _eval(run, "eval-trice-i", "stage-i", "stage one")
    _eval(run, "eval-trice-all", "trained", "trained")  # other weights
    assert read_json(run / "eval-trice-all" / "summary.json") == {"answer": "trained"}
    config, inputs = SETTINGS | {"adapter": str(run / "start-copy"), "max_new_tokens": 48}, [run / "data" / "test.jsonl", run / "start-copy"]
    (run / "eval-other").mkdir()
    assert reuse_twin_eval(run / "eval-other", config, inputs) is None  # other settings


def test_a_stale_sibling_is_never_copied(run: Path) -> None:
    _eval(run, "eval-trice-i", "stage-i", "old test set")
    (run / "data" / "test.jsonl").write_text('{"id": "q2"}\n')  # a changed test file: eval-trice-i is out of date
    _eval(run, "eval-trice-all", "start-copy", "fresh")
    assert read_json(run / "eval-trice-all" / "summary.json") == {"answer": "fresh"}
    assert not (run / "eval-trice-all" / "reused.json").exists()


def test_a_score_stage_with_rows_scored_on_outages_is_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_recipe(Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml", {"run_dir": str(tmp_path / "run")})
    summary = {"n": 4, "machine_failures": {"rows": 1, "first": "q1: timeout: no answer"}}
    monkeypatch.setattr(stage_specs, "run_score", lambda config: summary)
    _, _, score = stage_specs.stage(plan, "score")
    (tmp_path / "score").mkdir()
    with pytest.raises(ToolOutages, match=r"1 of 4 rows met a tool outage \(first: q1: timeout: no answer\)"):
        score(tmp_path / "score")
    assert read_json(tmp_path / "score" / "summary.json") == summary  # written before the stage stops


def test_a_dev_selection_made_on_tool_outages_keeps_its_training_stage_incomplete(tmp_path: Path) -> None:
    selection = tmp_path / "selection.json"
    stage_specs.raise_dev_outages(selection)  # no selection (no dev set): nothing to check
    write_json(selection, {"steps": [{"step": 0, "n": 10}, {"step": 5, "n": 10, "tool_outages": {"timeout": 2, "unavailable": 1}}]})
    with pytest.raises(ToolOutages, match=r"3 of 20 rows met a tool outage \(first: dev step 5: 2 timeout, 1 unavailable\)"):
        stage_specs.raise_dev_outages(selection)
    write_json(selection, {"steps": [{"step": 0, "n": 10}, {"step": 5, "n": 10}]})
    stage_specs.raise_dev_outages(selection)
