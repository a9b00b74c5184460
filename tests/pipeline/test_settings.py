"""The settings registry (trice.pipeline.settings) is the one place a setting and a trainer are
declared: the plan, the stages, the report and the CLI read it, so a training method is its config
module, its trainer module and one registry entry."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from trice.cli import commands, main
from trice.pipeline import settings, stage_specs
from trice.pipeline.plan import plan_recipe, recipe_class
from trice.pipeline.settings import BASELINES, COMPARED, DEFAULT_SETTINGS, DPO, SECTIONS, SETTINGS, SFT, TRAINERS, Setting, register_trainer
from trice.pipeline.stage_dirs import run_stage
from trice.pipeline.trainers import QUESTIONS, Section, Trainer
from trice.utils.config import ConfigError
from trice.utils.io import write_jsonl

DEMO = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"


def test_every_trainer_section_is_a_recipe_key_and_a_plan_config_of_its_trainers_class(tmp_path: Path) -> None:
    recipe_fields = {f.name for f in dataclasses.fields(recipe_class())}
    plan = plan_recipe(DEMO, {"run_dir": str(tmp_path)})
    for name, (trainer, section) in SECTIONS.items():
        assert name in recipe_fields and type(plan.sections[name]) is TRAINERS[trainer].config_class, name
        assert getattr(plan, name) is plan.sections[name]
        assert section.over is None or SECTIONS[section.over][0] == trainer, name  # laid over a section of the same trainer
    for s in SETTINGS.values():
        assert (s.label is not None) == (s.trainer == SFT), s.name  # an SFT setting names its training set
        assert (s.section is None) == (s.trainer is None), s.name
    assert [c for c in commands() if c.startswith("train-")] == [f"train-{t}" for t in TRAINERS]


def test_report_rows_and_comparisons_are_those_finished_runs_were_made_with() -> None:
    """A recipe naming no settings gets these rows (its report stage's fingerprint), and results.json
    pairs them in this order."""
    assert DEFAULT_SETTINGS == ("zero-shot", "sft-0", "sft-100", "trice-i", "trice-ii", "trice-all", "trice-all-dpo")
    assert COMPARED[:4] == ("trice-all", "trice-all-dpo", "trice-ii", "trice-i") and BASELINES == ("trice-i", "sft-100")
    assert COMPARED[4:] == ("trice-grpo", "trice-ii-grpo")  # added after: a run with the four above pairs them as before


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


TOY = Trainer(
    "toy",
    "tests.helpers.toy_method:ToyConfig",
    "tests.helpers.toy_method:train_toy",
    "Stage II by a toy method.",
    sections=(Section("toy", "ToyConfig keys."), Section("toy_ii", "ToyConfig keys overriding `toy` for toy-ii.", over="toy")),
    settings=(Setting("toy-all", from_stage_one=True), Setting("toy-ii", section="toy_ii")),
    reads=QUESTIONS,
)


@contextlib.contextmanager
def registered(trainer: Trainer) -> Iterator[None]:
    saved = [(registry, dict(registry)) for registry in (TRAINERS, SETTINGS, SECTIONS)]
    try:
        register_trainer(trainer)
        yield
    finally:
        for registry, before in saved:
            registry.clear()
            registry.update(before)


def test_a_method_registered_by_one_entry_is_planned_configured_trained_and_offered_on_the_cli(tmp_path: Path, capsys) -> None:
    """A trainer outside trice (tests/helpers/toy_method.py: its config and its trainer) registered by
    its entry alone: the recipe takes its sections, the plan orders and configures its settings (an
    online trainer reads D_tool's questions, so no candidates are collected), its train stage runs
    it, and `trice train-toy` takes its config's flags."""
    with registered(TOY):
        run = tmp_path / "run"
        body = {"run_dir": str(run), "settings": ["zero-shot", "trice-i", "toy-all", "toy-ii"], "toy": {"strength": 2.0}, "toy_ii": {"learning_rate": 0.5}}
        plan = plan_recipe(DEMO, body)
        assert plan.stages[plan.stages.index("train-trice-i") + 1 :][:3] == ["dev", "train-toy-all", "train-toy-ii"]
        assert "candidates" not in plan.stages and "score" not in plan.stages and "eval-toy-ii" in plan.stages
        assert (plan.toy.strength, plan.toy_ii.strength, plan.toy_ii.learning_rate, plan.toy.learning_rate) == (2.0, 2.0, 0.5, 1e-4)
        assert plan.toy.model == plan.recipe.model and plan.toy.task == "math"  # the pipeline's keys, as for every judging trainer

        config, inputs, train = stage_specs.stage(plan, "train-toy-all")
        d_tool, dev, start = run / "label" / "trice.jsonl", run / "dev" / "dev.jsonl", run / "train-trice-i" / "adapter"
        assert inputs == [d_tool, dev, start] and config["strength"] == 2.0 and config["init_adapter"] == str(start)
        for path in (d_tool, dev):
            write_jsonl(path, [])
        start.mkdir(parents=True)
        assert run_stage(run / "train-toy-all", "train-toy-all", config, inputs, train)
        trained = json.loads((run / "train-toy-all" / "toy_config.json").read_text())
        assert (trained["data"], trained["dev_data"], trained["strength"]) == (str(d_tool), str(dev), 2.0)
        assert stage_specs.stage(plan, "eval-toy-all")[1][-1] == run / "train-toy-all" / "adapter"  # evaluated with what it trained

        with pytest.raises(SystemExit):
            main(["train-toy", "--help"])
        assert "--strength" in capsys.readouterr().out
        with pytest.raises(ConfigError, match="toy_ii: unknown key 'strenght'"):
            plan_recipe(DEMO, body | {"toy_ii": {"strenght": 1.0}})
    with pytest.raises(ConfigError, match="unknown key 'toy'"):
        plan_recipe(DEMO, {"run_dir": str(run), "toy": {}})  # gone with its entry


def test_a_trainer_entry_that_clashes_or_names_no_section_of_its_own_is_refused() -> None:
    with pytest.raises(ValueError, match="'rlef' is already registered"):
        register_trainer(dataclasses.replace(TOY, name="other", sections=(Section("rlef", "taken"),), settings=()))
    with pytest.raises(ValueError, match="setting toy-x names section 'rlef'"):
        register_trainer(dataclasses.replace(TOY, settings=(Setting("toy-x", section="rlef"),)))
    assert "toy" not in TRAINERS and "toy-x" not in SETTINGS
