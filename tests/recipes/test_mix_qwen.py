"""The MIX benchmark on the findings policy (recipes/mix_qwen.yaml): Qwen2.5-Coder-0.5B on all four
tasks, 100 test questions per set, NQ split so that training and test questions see the same corpus,
and one generation limit chosen from the measured answer lengths everywhere the policy answers."""

from __future__ import annotations

from pathlib import Path

from trice.pipeline.plan import plan_recipe

ROOT = Path(__file__).resolve().parents[2]
PLAN = plan_recipe(ROOT / "recipes" / "mix_qwen.yaml")


def test_eight_test_sets_of_100_with_nq_drawn_from_one_pool() -> None:
    assert PLAN.recipe.model == "qwen2.5-coder-0.5b-instruct"
    assert PLAN.data.tasks == {"math": ["asdiv-a", "svamp", "gsm8k"], "qa": ["webq", "nq", "triviaqa"], "lama": ["trex"], "mlqa": ["xquad-zh"]}
    assert PLAN.data.n_test == 100 and "nq-dpr" not in PLAN.data.all_datasets  # nq-dpr: training questions the corpus cannot answer


def test_the_policy_answers_under_one_limit_everywhere() -> None:
    """Probe (the labels' own answers), stage I's candidates, dev and test: a shorter limit in one of
    them would turn answers right elsewhere into cut ones."""
    limit = PLAN.probe.max_new_tokens
    policy_sources = [s for s in PLAN.candidates.sources if s.get("kind") == "model" and s["model"] == PLAN.recipe.model]
    assert PLAN.eval.max_new_tokens == limit and PLAN.rlef.dev_max_new_tokens == limit
    assert policy_sources and all(s["max_new_tokens"] == limit for s in policy_sources)
    assert PLAN.probe.stop_after_call and PLAN.eval.stop_after_call
