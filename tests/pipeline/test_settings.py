"""The settings registry (trice.pipeline.settings) is the one place a setting is declared: the plan,
the stages and the report read it, and a setting whose trainer section exists needs nothing else."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from trice.pipeline import settings, stage_specs
from trice.pipeline.plan import Plan, Recipe, plan_recipe
from trice.pipeline.settings import BASELINES, COMPARED, DEFAULT_SETTINGS, DPO, SETTINGS, SFT, Setting, sections
from trice.pipeline.trainers import TRAINERS
from trice.utils.config import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"


def test_every_trainer_section_is_a_recipe_and_plan_field_of_its_trainers_config() -> None:
    recipe_fields = {f.name for f in dataclasses.fields(Recipe)}
    plan_types = typing.get_type_hints(Plan)
    for section, (trainer, over) in sections().items():
        assert section in recipe_fields and plan_types[section] is TRAINERS[trainer].config, section
        assert over is None or sections()[over][0] == trainer, section  # laid over a section of the same trainer
    for s in SETTINGS.values():
        assert (s.label is not None) == (s.trainer == SFT), s.name  # an SFT setting names its training set
        assert (s.section is None) == (s.trainer is None), s.name


def test_report_rows_and_comparisons_are_those_finished_runs_were_made_with() -> None:
    """A recipe naming no settings gets these rows (its report stage's fingerprint), and results.json
    pairs them in this order."""
    assert DEFAULT_SETTINGS == ("zero-shot", "sft-0", "sft-100", "trice-i", "trice-ii", "trice-all", "trice-all-dpo")
    assert COMPARED == ("trice-all", "trice-all-dpo", "trice-ii", "trice-i") and BASELINES == ("trice-i", "sft-100")


def test_an_empty_trice_ii_section_is_rlefs_and_its_own_errors_name_it(tmp_path: Path) -> None:
    plan = plan_recipe(DEMO, {"run_dir": str(tmp_path), "rlef": {"learning_rate": 0.5}})
    assert plan.trainer_config("trice-ii") == plan.trainer_config("trice-all") == plan.rlef
    with pytest.raises(ConfigError, match=r"demo.yaml: trice_ii: .*no_such_key"):
        plan_recipe(DEMO, {"run_dir": str(tmp_path), "trice_ii": {"no_such_key": 1}})


def test_a_setting_is_added_by_its_registry_entry_alone(tmp_path: Path, monkeypatch) -> None:
    """TRICE-II trained with DPO: a fresh LoRA, DPO's section; the plan orders and configures it."""
    monkeypatch.setitem(settings.SETTINGS, "trice-ii-dpo", Setting("trice-ii-dpo", DPO, section="dpo"))
    plan = plan_recipe(DEMO, {"run_dir": str(tmp_path), "settings": ["zero-shot", "trice-i", "trice-ii-dpo"], "dpo": {"beta": 0.3}})
    assert plan.stages[plan.stages.index("score") + 1] == "train-trice-ii-dpo" and "eval-trice-ii-dpo" in plan.stages
    config, inputs, _ = stage_specs.stage(plan, "train-trice-ii-dpo")
    assert config["beta"] == 0.3 and "init_adapter" not in config and config["output_dir"] == str(tmp_path / "train-trice-ii-dpo")
    assert inputs == [tmp_path / "score" / "scored.jsonl", tmp_path / "dev" / "dev.jsonl"]


def test_a_stage_two_section_may_name_its_start_and_only_its_own_setting_takes_it(tmp_path: Path) -> None:
    """An online round starts TRICE-ALL from the previous round's adapter; TRICE-II, laid over the
    same section, still starts fresh, and stage I's section may not name a start."""
    start = tmp_path / "round-1" / "adapter"
    for trice_ii in ({}, {"learning_rate": 0.5}):
        plan = plan_recipe(DEMO, {"run_dir": str(tmp_path), "rlef": {"init_adapter": str(start)}, "trice_ii": trice_ii})
        config, inputs, _ = stage_specs.stage(plan, "train-trice-all")
        assert config["init_adapter"] == str(start) and start in inputs and tmp_path / "train-trice-i" / "adapter" not in inputs
        config, inputs, _ = stage_specs.stage(plan, "train-trice-ii")
        assert "init_adapter" not in config and inputs == [tmp_path / "score" / "scored.jsonl", tmp_path / "dev" / "dev.jsonl"]
    config, inputs, _ = stage_specs.stage(plan_recipe(DEMO, {"run_dir": str(tmp_path)}), "train-trice-all")
    assert config["init_adapter"] == str(tmp_path / "train-trice-i" / "adapter")
    with pytest.raises(ConfigError, match=r"train: key 'init_adapter' is set by the pipeline"):
        plan_recipe(DEMO, {"run_dir": str(tmp_path), "train": {"init_adapter": str(start)}})
