"""`trice run`: every stage on real data with the tiny model; reruns skip; bad recipes fail early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.config import ConfigError
from trice.io import read_json
from trice.pipeline import plan_recipe, run_plan

STAGES = ["data", "probe", "label", "train-sft-0", "train-sft-100", "train-trice-i",
          "eval-zero-shot", "eval-sft-0", "eval-sft-100", "eval-trice-i", "report"]


def recipe(tmp_path: Path, model: str, data_dir: Path, **overrides) -> Path:
    body = {
        "run_dir": str(tmp_path / "run"),
        "model": model,
        "seed": 0,
        "data": {"data_dir": str(data_dir), "n_train": 3, "n_test": 2},
        "probe": {"batch_size": 4, "max_new_tokens": 4},
        "train": {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3},
        "eval": {"batch_size": 4, "max_new_tokens": 4},
    } | overrides
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_pipeline_end_to_end_and_rerun_skips(tmp_path, tiny_model_dir, data_dir, capsys) -> None:
    path = recipe(tmp_path, str(tiny_model_dir), data_dir)
    assert main(["run", str(path)]) == 0
    run = tmp_path / "run"
    assert [s for s in STAGES if read_json(run / s / "stage.json")["complete"]] == STAGES
    results = read_json(run / "report" / "results.json")
    assert list(results["rows"]) == ["zero-shot", "sft-0", "sft-100", "trice-i"]
    for row in results["rows"].values():
        assert set(row) == {"asdiv", "svamp", "gsm8k", "avg", "tool_rate"}
        assert all(0.0 <= v <= 1.0 for v in row.values())
    assert results["config"]["splits"]["datasets"]["svamp"]["split"].startswith("seeded")
    report = (run / "report" / "report.md").read_text()
    assert "| setting | asdiv | svamp | gsm8k | avg | tool use |" in report
    for png in ("accuracy.png", "tool_rate.png", "train_loss.png"):
        assert (run / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    judged = [json.loads(line) for line in (run / "eval-sft-0" / "judged.jsonl").read_text().splitlines()]
    assert len(judged) == 6 and {"prediction", "correct", "used_tool"} <= set(judged[0])

    marks = {s: (run / s / "stage.json").stat().st_mtime_ns for s in STAGES}
    capsys.readouterr()
    assert main(["run", str(path)]) == 0  # nothing changed: every stage skipped
    assert {s: (run / s / "stage.json").stat().st_mtime_ns for s in STAGES} == marks

    plan = plan_recipe(path)
    run_plan(plan, only="report")  # --only forces one stage
    assert (run / "report" / "stage.json").stat().st_mtime_ns != marks["report"]
    assert (run / "eval-sft-0" / "stage.json").stat().st_mtime_ns == marks["eval-sft-0"]


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"learning_rate": 1.0}, "unknown key 'learning_rate'"),
        ({"train": {"lora_r": "8"}}, "train: key 'lora_r': expected int"),
        ({"train": {"lora_rr": 8}}, "train: unknown key 'lora_rr'"),
        ({"eval": {"adapter": "x"}}, "eval: key 'adapter' is set by the pipeline"),
        ({"settings": ["zero-shot", "trice-iii"]}, "settings: unknown ['trice-iii']"),
        ({"data": {"datasets": ["mnist"]}}, "datasets: unknown ['mnist']"),
    ],
)
def test_bad_recipe_fails_before_any_model_loads(tmp_path, data_dir, overrides, message, monkeypatch) -> None:
    import trice.models

    monkeypatch.setattr(trice.models, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    path = recipe(tmp_path, "no-such-model", data_dir, **overrides)
    with pytest.raises(ConfigError) as info:
        plan_recipe(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_recipe_and_bad_stage_are_clear(tmp_path, data_dir, capsys) -> None:
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err
    path = recipe(tmp_path, "m", data_dir)
    assert main(["run", str(path), "--only", "traine"]) == 2
    assert "no stage 'traine'" in capsys.readouterr().err
