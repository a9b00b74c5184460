"""`trice run` of a recipe with online stage II by GRPO, on real data with the tiny model: trice-grpo
(from the stage-I adapter) and trice-ii-grpo (a fresh LoRA) train on D_tool's questions, no
candidates are collected, the report has their rows and rollout curves; a tool outage while
rewarding leaves the training stage incomplete, --accept-outages or not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.pipeline.failures import StageIncomplete
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import run_plan, stage_status
from trice.stage2 import train_grpo
from trice.stage2.reward import RewardOutage
from trice.utils.io import read_json

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = ["zero-shot", "trice-i", "trice-grpo", "trice-ii-grpo"]
GRPO = {"max_steps": 2, "save_steps": 1, "prompts_per_step": 2, "num_generations": 4, "gradient_accumulation_steps": 2,
        "max_completion_length": 6, "learning_rate": 1e-3, "dev_max_new_tokens": 4, "dev_batch_size": 4,
        "reward": {"tool_free": 1, "difficulty_aware": 0.2}}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, data_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("grpo")
    body = {
        "run_dir": str(root / "run"), "model": str(tiny_model_dir), "seed": 0, "settings": SETTINGS,
        "data": {"data_dir": str(data_dir), "n_train": 3, "n_test": 2}, "dev": {"n_per_dataset": 1},
        "probe": {"batch_size": 4, "max_new_tokens": 4}, "eval": {"batch_size": 4, "max_new_tokens": 4},
        "train": {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3},
        "grpo": GRPO, "trice_ii_grpo": {"learning_rate": 5e-3},
    }  # fmt: skip
    (root / "recipe.yaml").write_text(yaml.safe_dump(body))
    assert main(["run", str(root / "recipe.yaml")]) == 0
    return root


def test_a_grpo_recipe_runs_end_to_end_and_reports_its_rollouts(run: Path) -> None:
    plan = plan_recipe(run / "recipe.yaml")
    assert plan.stages[plan.stages.index("train-trice-i") :][:4] == ["train-trice-i", "dev", "train-trice-grpo", "train-trice-ii-grpo"]
    assert "candidates" not in plan.stages and "score" not in plan.stages
    assert set(stage_status(plan).values()) == {"up to date"}
    grpo, fresh = (read_json(run / "run" / f"train-{s}" / "stage.json")["config"] for s in ("trice-grpo", "trice-ii-grpo"))
    assert grpo["init_adapter"].endswith("train-trice-i/adapter") and grpo["data"].endswith("label/trice.jsonl")
    assert "init_adapter" not in fresh and fresh["learning_rate"] == 5e-3 and fresh["reward"] == GRPO["reward"]
    steps = [e for e in read_json(run / "run" / "train-trice-grpo" / "train_log.json") if "reward" in e]
    assert [e["step"] for e in steps] == [1, 2] and all({"reward", "tool_rate", "kl", "step_time"} <= set(e) for e in steps)

    report = run / "run" / "report"
    results = read_json(report / "results.json")
    assert list(results["rows"]) == SETTINGS and set(results["stage_two"]["rollouts"]) == {"trice-grpo", "trice-ii-grpo"}
    assert "candidates" not in results["stage_two"] and (report / "rollouts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (report / "report.md").read_text()
    assert all(c["rollout_tokens_per_second"] > 0 for curve in results["stage_two"]["rollouts"].values() for c in curve)
    assert "| online setting | steps | reward (first -> last) | tool use (first -> last) | s / step | rollout tokens / s |" in md
    assert "| trice-ii-grpo | 2 |" in md and "![rollouts](rollouts.png)" in md
    lines = md.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("| online setting |")) :]
    row = next(line for line in table if line.startswith("| trice-grpo |")).split("|")
    assert float(row[-3]) > 0 and float(row[-2]) > 0  # s / step and rollout tokens / s, as measured


def test_a_tool_outage_while_rewarding_leaves_the_training_incomplete_even_when_outages_are_accepted(run: Path, monkeypatch) -> None:
    def outage(config):
        raise RewardOutage(3, 8, "timeout: no answer within 5 s")

    monkeypatch.setattr(train_grpo, "train_grpo", outage)
    plan = plan_recipe(run / "recipe.yaml")
    with pytest.raises(StageIncomplete, match=r"3 of 8 rows met a tool outage while rewarded .*resumes training from the last one"):
        run_plan(plan, only="train-trice-grpo", accept_outages=True)
    state = read_json(run / "run" / "train-trice-grpo" / "stage.json")
    assert not state["complete"] and state["failed_rows"] == 3
    assert stage_status(plan)["train-trice-grpo"] == "incomplete: 3 failed rows"
