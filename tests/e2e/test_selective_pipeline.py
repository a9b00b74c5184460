"""`trice run` with every selective-calling key on, end to end with the tiny model: probe samples
and the knowledge-boundary label rule, decision-weighted stage I and RLEF, boundary DPO pairs, the
dev-chosen decision threshold, and the report's decision section. And with the keys off, nothing of
a run changes (its stage configs and fingerprints are the old ones)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_pipeline import recipe
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import run_plan
from trice.pipeline.stage_specs import stage
from trice.utils.io import read_json, read_jsonl

SMALL = {"max_new_tokens": 4, "batch_size": 4}
SOURCES = [
    {"name": "gold", "kind": "gold"},
    {"name": "base", "kind": "responses", "path": "probe"},
    {"name": "last", "kind": "model", "adapter": "stage-i", "do_sample": True, **SMALL},
]
STAGE_TWO = {"max_steps": 2, "save_steps": 1, "learning_rate": 1e-3, "dev_max_new_tokens": 4, "dev_batch_size": 4}
KEYS = {
    "probe": {"batch_size": 4, "max_new_tokens": 4, "samples": 2, "sample_temperature": 0.9},
    "label": {"own_if": 2},
    "train": {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "decision_weight": 5.0},
    "rlef": STAGE_TWO | {"gradient_accumulation_steps": 2, "decision_weight": 5.0},
    "dpo": STAGE_TWO | {"per_device_train_batch_size": 2, "pairs": "boundary", "boundary_own": 0.3},
    "eval": {"batch_size": 4, "max_new_tokens": 4, "decision": "threshold"},
}


def _recipe(tmp_path: Path, model: str, data_dir: Path, **keys: dict) -> Path:
    return recipe(
        tmp_path, model, data_dir, settings=["zero-shot", "sft-100", "trice-i", "trice-all", "trice-all-dpo"],
        dev={"n_per_dataset": 1}, candidates={"sources": SOURCES}, **keys,
    )  # fmt: skip


def test_every_selective_key_runs_end_to_end_and_the_report_shows_the_decision(tmp_path, tiny_model_dir, data_dir) -> None:
    path = _recipe(tmp_path, str(tiny_model_dir), data_dir, **KEYS)
    plan = plan_recipe(path)
    assert plan.stages[:4] == ["data", "probe", "probe-samples", "label"]
    run_plan(plan)
    run = tmp_path / "run"

    own = read_jsonl(run / "probe-samples" / "own_accuracy.jsonl")
    assert len(own) == 9 and all(r["answers"] == 3 and 0 <= r["right"] <= 3 for r in own)
    assert read_json(run / "label" / "trice.stats.json")["boundary"]["own_if"] == 2
    assert read_json(run / "train-trice-i" / "sft_config.json")["decision_weight"] == 5.0
    assert read_json(run / "train-trice-all" / "rlef_config.json")["decision_weight"] == 5.0
    assert read_json(run / "train-trice-all-dpo" / "dpo_config.json")["own_accuracy"] == str(run / "probe-samples" / "own_accuracy.jsonl")

    for setting in ("sft-100", "trice-i"):
        choice = read_json(run / f"eval-{setting}" / "threshold.json")
        assert choice["choice"]["dev_questions"] == 3 and choice["curve"][0]["tau"] == 0.0
        assert all(0.0 <= row["p_call"] <= 1.0 for row in read_jsonl(run / f"eval-{setting}" / "judged.jsonl"))
    results = read_json(run / "report" / "results.json")
    decision = results["decision"]
    assert set(decision["settings"]) == set(results["rows"]) and "tau" in decision["settings"]["trice-i"]["threshold"]
    assert 0.0 <= decision["oracle"]["avg"] <= 1.0
    report = (run / "report" / "report.md").read_text()
    assert "## The decision to call" in report and (run / "report" / "decision.png").read_bytes()[:4] == b"\x89PNG"


def test_with_the_keys_off_every_stage_is_configured_and_fingerprinted_as_before(tmp_path, tiny_model_dir, data_dir) -> None:
    """The keys at their defaults leave every stage's config, inputs and fingerprint as a recipe
    without them has them: a finished run of an earlier trice stays finished."""
    at_default = {"samples": 0, "sample_temperature": 0.7, "own_if": 0, "decision_weight": 1.0, "pairs": "all", "boundary_own": 0.5, "decision": "greedy"}
    without = {k: {key: v for key, v in section.items() if key not in at_default} for k, section in KEYS.items()}
    plain = plan_recipe(_recipe(tmp_path, str(tiny_model_dir), data_dir, **without))
    defaults = {k: without[k] | {key: at_default[key] for key in section if key in at_default} for k, section in KEYS.items()}
    explicit = plan_recipe(_recipe(tmp_path, str(tiny_model_dir), data_dir, **defaults))
    assert explicit.stages == plain.stages and "probe-samples" not in plain.stages
    for name in plain.stages[:-1]:
        (a_config, a_inputs, _), (b_config, b_inputs, _) = stage(plain, name), stage(explicit, name)
        assert json.dumps(a_config, sort_keys=True, default=str) == json.dumps(b_config, sort_keys=True, default=str), name
        assert a_inputs == b_inputs, name
