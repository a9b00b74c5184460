"""bench/gpu_recipe.py: the GPU recipe scaled to an embedded model still plans every setting with
the recipe's options, and the GPU/CPU comparison counts alike answers per setting."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from trice.pipeline.plan import plan_recipe
from trice.pipeline.recipe_files import find_recipe

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("gpu_recipe", ROOT / "bench" / "gpu_recipe.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def test_scaled_recipe_keeps_every_setting_and_option(tmp_path: Path) -> None:
    source = yaml.safe_load(find_recipe("gpu_7b").read_text())
    recipe, changed = bench.scaled_recipe(source, tmp_path / "run", have_vllm=False, have_tensorboard=False)
    path = tmp_path / "scaled.yaml"
    path.write_text(yaml.safe_dump(recipe))
    plan = plan_recipe(path)
    assert recipe["settings"] == source["settings"]
    assert recipe["model"] == bench.DEFAULT_MODEL and plan.run_dir == tmp_path / "run"
    assert recipe["train"]["bf16"] and recipe["train"]["gradient_checkpointing"] and recipe["dpo"]["bf16"]
    assert recipe["probe"]["repetition_penalty"] == source["probe"]["repetition_penalty"]
    assert recipe["probe"]["backend"] == recipe["eval"]["backend"] == "transformers"
    assert "vllm_gpu_memory_utilization" not in recipe["eval"]
    assert recipe["candidates"] == source["candidates"]
    assert any("vllm is not installed" in line for line in changed)
    assert source["eval"]["backend"] == "vllm", "the source recipe was changed in place"


def test_scaled_recipe_keeps_vllm_and_tensorboard_where_installed(tmp_path: Path) -> None:
    source = yaml.safe_load(find_recipe("gpu_7b").read_text())
    recipe, changed = bench.scaled_recipe(source, tmp_path, have_vllm=True, have_tensorboard=True)
    assert recipe["eval"]["backend"] == "vllm" and recipe["train"]["report_to"] == "tensorboard"
    assert len(changed) == 2


def write_run(root: Path, setting: str, rows: list[tuple[str, str, bool]], seconds: float) -> None:
    stage = root / f"eval-{setting}"
    stage.mkdir(parents=True)
    lines = [json.dumps({"id": i, "response": text, "correct": ok}) for i, text, ok in rows]
    (stage / "judged.jsonl").write_text("\n".join(lines) + "\n")
    (stage / "stage.json").write_text(json.dumps({"stage": stage.name, "seconds": seconds}))


def test_compare_runs_counts_alike_answers(tmp_path: Path) -> None:
    write_run(tmp_path / "gpu", "trice-i", [("a", "x", True), ("b", "y", False), ("c", "z", True)], 1.0)
    write_run(tmp_path / "cpu", "trice-i", [("a", "x", True), ("b", "y2", True), ("c", "z2", True)], 10.0)
    found = bench.compare_runs(tmp_path / "gpu", tmp_path / "cpu")
    assert found["settings"]["trice-i"] == {"questions": 3, "identical_responses": 1, "same_correctness": 2, "correct": [2, 3]}
    assert found["seconds"] == {"eval-trice-i": [1.0, 10.0]} and found["seconds_total"] == [1.0, 10.0]


def test_compare_runs_refuses_different_questions(tmp_path: Path) -> None:
    write_run(tmp_path / "gpu", "sft-0", [("a", "x", True)], 1.0)
    write_run(tmp_path / "cpu", "sft-0", [("b", "x", True)], 1.0)
    with pytest.raises(ValueError, match="different questions"):
        bench.compare_runs(tmp_path / "gpu", tmp_path / "cpu")
