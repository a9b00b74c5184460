"""The GRPO recipes, checked at plan time: the math-Qwen rows (levels: paper alone, with a tool cost,
with EAPO's shaping) are tries that reuse every finished stage of the selective-calling benchmark's
main run, so they are judged on its test questions with its decision metrics; the GPU
recipe configures TRL's vLLM colocate mode, and its GRPOConfig builds on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.pipeline import stage_specs
from trice.pipeline.plan import plan_recipe
from trice.utils.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
ROWS = {
    "trice/recipes/math_qwen_grpo.yaml": {"levels": "paper", "tool_cost": 0.0, "difficulty_aware": 0.0, "tool_free": 0},
    "bench/tries/math_qwen_grpo_tool_cost.yaml": {"levels": "paper", "tool_cost": 0.1, "difficulty_aware": 0.0, "tool_free": 0},
    "bench/tries/math_qwen_grpo_eapo.yaml": {"levels": "paper", "tool_cost": 0.0, "difficulty_aware": 0.25, "tool_free": 1},
}


@pytest.mark.parametrize("recipe", sorted(ROWS))
def test_each_math_qwen_grpo_row_reuses_the_selective_runs_stages_and_sets_its_reward_table(recipe: str, tmp_path: Path) -> None:
    main = plan_recipe(ROOT / "trice" / "recipes" / "selective_math_qwen.yaml", {"run_dir": str(tmp_path)})
    row = plan_recipe(ROOT / recipe, {"run_dir": str(tmp_path)})
    assert "trice-grpo" in row.recipe.settings and "candidates" not in row.stages
    table = row.grpo.reward_table()
    assert {k: getattr(table, k) for k in ROWS[recipe]} == ROWS[recipe] and table.otc is None
    for stage in ("data", "probe", "label", "dev"):  # bench/selective_math_qwen.py --try copies these from the main run
        theirs, ours = stage_specs.stage(main, stage)[:2], stage_specs.stage(row, stage)[:2]
        assert json.dumps(ours[0], sort_keys=True, default=str) == json.dumps(theirs[0], sort_keys=True, default=str) and ours[1] == theirs[1], stage
    start = ROOT / row.grpo.init_adapter  # TRICE-I's committed weights, the trice-i row's own copy
    recorded = json.loads((ROOT / "bench" / "results" / "selective_math_qwen" / "results.json").read_text(encoding="utf-8"))
    assert (start / "adapter_model.safetensors").is_file() and row.grpo.init_adapter == recorded["rows"]["trice-i"]["adapter"]
    assert row.grpo.generation_batch == 32 and row.grpo.max_completion_length == main.eval.max_new_tokens


def test_the_gpu_recipe_generates_rollouts_with_vllm_colocated(tiny_model_dir: Path, tmp_path: Path) -> None:
    from trice.stage2.train_grpo import grpo_args

    plan = plan_recipe(ROOT / "recipes" / "gpu_grpo.yaml", {"model": str(tiny_model_dir), "run_dir": str(tmp_path)})
    assert plan.grpo.use_vllm and plan.grpo.vllm_mode == "colocate" and plan.probe.backend == plan.eval.backend == "vllm"
    args = grpo_args(plan.grpo, tmp_path / "checkpoints")
    assert args.use_vllm and args.vllm_mode == "colocate" and args.vllm_gpu_memory_utilization == 0.3 and args.bf16
    assert (args.generation_batch_size, args.per_device_train_batch_size, args.num_generations) == (256, 32, 8)
    assert not args.vllm_importance_sampling_correction  # the rollouts are cut after sampling
    with pytest.raises(ConfigError, match="tool_free: the tool-free rollouts forbid calls in transformers' generate"):
        plan_recipe(ROOT / "recipes" / "gpu_grpo.yaml", {"run_dir": str(tmp_path), "grpo": {"use_vllm": True, "reward": {"tool_free": 1}}})
