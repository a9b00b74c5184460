"""Finished runs keep their work: a stage's fingerprint hashes only the config fields set to something
other than their defaults (trice.utils.config.fingerprint_fields), so adding an option redoes no
finished stage, and the keys that change no result stay out of it. Runs hashed under earlier rules:
tests/pipeline/test_migrate_run.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from trice.responses.generate import GenerateConfig
from trice.pipeline import stage_specs
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import stage_status
from trice.utils.fingerprint import fingerprint
from trice.stage1.config import SFTConfig
from trice.stage2.rlef_config import RLEFConfig
from trice.utils.config import fingerprint_fields

ROOT = Path(__file__).resolve().parents[2]
LATER = {"tasks", "tools", "label", "reader", "read_max_new_tokens", "search_k", "teacher", "chunk"}


def test_a_field_at_its_default_stays_out_of_the_hash_and_a_set_one_enters() -> None:
    assert fingerprint_fields(GenerateConfig()) == {}
    assert fingerprint_fields(GenerateConfig(max_new_tokens=GenerateConfig().max_new_tokens)) == {}  # given, but the default
    assert fingerprint_fields(GenerateConfig(max_new_tokens=7, stop_after_call=True)) == {"max_new_tokens": 7, "stop_after_call": True}
    assert fingerprint(fingerprint_fields(GenerateConfig(temperature=0.5)), []) != fingerprint(fingerprint_fields(GenerateConfig()), [])


def test_adding_a_field_to_a_config_class_changes_no_fingerprint() -> None:
    @dataclass
    class Before:
        learning_rate: float = 0.1
        steps: int = 10

    @dataclass
    class After(Before):
        warmup: int = 0

    for values in ({}, {"learning_rate": 0.2}, {"learning_rate": 0.2, "steps": 3}):
        assert fingerprint(fingerprint_fields(After(**values)), []) == fingerprint(fingerprint_fields(Before(**values)), [])
    assert fingerprint(fingerprint_fields(After(warmup=5)), []) != fingerprint(fingerprint_fields(Before()), [])


@pytest.mark.parametrize("recipe", ["demo.yaml", "math_bench.yaml"])
def test_math_recipes_stage_configs_hold_no_later_option(recipe: str) -> None:
    plan = plan_recipe(ROOT / "recipes" / recipe)
    for name in plan.stages:
        config, _, _ = stage_specs.stage(plan, name)
        assert not LATER & set(config), (name, sorted(LATER & set(config)))
    assert stage_specs.stage(plan, "label")[0] == {"modes": ["sft-0", "sft-100", "trice"]}
    assert plan.judge_task == "math" and plan.score.task == "math"


def test_status_shows_what_a_run_would_redo(tmp_path) -> None:
    plan = plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": str(tmp_path / "run")})
    status = stage_status(plan)
    assert status["data"] == "to do" and status["probe"] == "waiting" and set(status.values()) <= {"to do", "waiting"}


def test_keys_that_change_no_result_stay_out_of_the_hash() -> None:
    """report_to and logging_steps change how a training reports, not the adapter it makes."""
    plain = fingerprint_fields(SFTConfig(learning_rate=1e-3))
    logged = fingerprint_fields(SFTConfig(learning_rate=1e-3, report_to="tensorboard", logging_steps=1))
    assert logged == plain == {"learning_rate": 1e-3}
    assert fingerprint_fields(RLEFConfig(logging_steps=4)) == {}
    plan = plan_recipe(ROOT / "recipes" / "gpu_7b.yaml")
    assert plan.train.report_to == "tensorboard"
    for name in plan.stages:
        config = stage_specs.stage(plan, name)[0]
        assert "report_to" not in config and "logging_steps" not in config, name
