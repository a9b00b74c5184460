"""Finished runs keep their work: a stage's fingerprint hashes only the config fields set to something
other than their defaults (trice.utils.config.fingerprint_fields), so adding an option redoes no
finished stage; and a run whose stages were hashed under the earlier rule
(trice.pipeline.legacy_fingerprint) skips every stage and gets its hashes rewritten."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from trice.data.prepare import DataConfig
from trice.responses.generate import GenerateConfig
from trice.pipeline import stage_specs
from trice.pipeline.legacy_fingerprint import HASHED_AT_DEFAULT, legacy_config
from trice.pipeline.plan import DevConfig, plan_recipe
from trice.pipeline.runner import run_plan, stage_status
from trice.pipeline.shared_training import pointer_stale
from trice.pipeline.stage_dirs import claim_run_dir, moved_aside, respelled, run_stage, stage_hash, stage_verdict
from trice.utils.fingerprint import fingerprint
from trice.stage1.config import SFTConfig
from trice.stage2.candidates import CandidatesConfig
from trice.stage2.dpo_config import DPOStageConfig
from trice.stage2.rlef_config import RLEFConfig
from trice.stage2.score import ScoreConfig
from trice.utils.config import fingerprint_fields, load_layered_yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = json.loads((DATA / "config_keys_at_default.json").read_text())["keys"]
FINISHED = json.loads((DATA / "finished_runs.json").read_text())["runs"]
CLASSES = (DataConfig, GenerateConfig, SFTConfig, CandidatesConfig, ScoreConfig, RLEFConfig, DPOStageConfig, DevConfig)
LATER = {"tasks", "tools", "label", "reader", "read_max_new_tokens", "search_k", "teacher", "chunk"}
# Hashed at its default on purpose, so stages hashed without it were redone: stage II selection
# judges the start (step 0) too, and a selection.json without it may keep a checkpoint worse than the start.
REDONE = {"RLEFConfig": ["select_start"], "DPOStageConfig": ["select_start"]}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_frozen_table_gives_back_the_fields_finished_runs_were_hashed_with(cls) -> None:
    expected = sorted(EXPECTED[cls.__name__] + REDONE.get(cls.__name__, []))
    assert sorted(HASHED_AT_DEFAULT[cls.__name__]) == expected
    assert sorted(legacy_config(fingerprint_fields(cls()))) == expected


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


def test_a_stage_adding_keys_keeps_the_config_class_for_the_earlier_rule() -> None:
    fields = fingerprint_fields(GenerateConfig(seed=3)) | {"tools": {"QA": {"k": 2}}}
    assert fields.config_class is GenerateConfig
    earlier = legacy_config({"reader": fields})["reader"]
    assert earlier["tools"] == {"QA": {"k": 2}} and earlier["seed"] == 3 and earlier["top_p"] == GenerateConfig().top_p
    assert "stop_after_call" not in earlier  # a field the earlier rule too left out at its default


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


def _finished_run(run: Path, recipe: str) -> None:
    """Lay out the fixture's finished run of ``recipe`` at ``run``: its files and each stage's
    stage.json with the hash trice wrote under the earlier rule."""
    recorded = FINISHED[recipe]
    claim_run_dir(run)
    for rel, text in recorded["files"].items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    for name, stage in recorded["stages"].items():
        (run / name).mkdir(parents=True, exist_ok=True)
        marker = {"stage": name, "hash": stage["hash"], "complete": True, "config": respelled(stage["config"], str(run))}
        (run / name / "stage.json").write_text(json.dumps(marker))


def _stored_hashes(run: Path, names: list[str]) -> dict[str, str]:
    return {name: json.loads((run / name / "stage.json").read_text())["hash"] for name in names}


@pytest.mark.parametrize("recipe", sorted(FINISHED))
def test_a_run_hashed_under_the_earlier_rule_skips_every_stage_and_is_migrated(tmp_path, recipe: str) -> None:
    run = tmp_path / "run"
    _finished_run(run, recipe)
    plan = plan_recipe(ROOT / "recipes" / recipe, {"run_dir": str(run)})
    assert sorted(plan.stages) == sorted(FINISHED[recipe]["stages"])
    now = {name: stage_hash(run / name, *stage_specs.stage(plan, name)[:2]) for name in plan.stages}
    stored = _stored_hashes(run, plan.stages)
    assert {n for n in plan.stages if now[n] != stored[n]} >= {"data", "probe", "train-trice-i", "candidates", "eval-zero-shot"}
    assert set(stage_status(plan).values()) == {"up to date"}

    run_plan(plan)  # a stage not skipped would be moved aside and run (and fail: there is no model here)
    assert moved_aside(run) == [] and _stored_hashes(run, plan.stages) == now
    assert not any(pointer_stale(run / name) for name in plan.stages)
    assert set(stage_status(plan).values()) == {"up to date"}


def test_a_moved_run_keeps_its_shared_training(tmp_path, monkeypatch) -> None:
    """A shared training's pointer is checked against its twin's stored config, whose paths name the
    run directory as it was spelled when it ran: moved and reached from elsewhere, it still holds."""
    monkeypatch.chdir(tmp_path)
    _finished_run(Path("runs") / "x", "math_bench.yaml")  # spelled relative to the working directory
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "x"
    (tmp_path / "runs" / "x").rename(moved)
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert (moved / "train-sft-100" / "same_as.json").is_file() and not pointer_stale(moved / "train-sft-100")
    plan = plan_recipe(ROOT / "recipes" / "math_bench.yaml", {"run_dir": str(moved)})
    assert set(stage_status(plan).values()) == {"up to date"}


def test_a_changed_config_is_still_redone_after_the_earlier_rule(tmp_path) -> None:
    run = tmp_path / "run"
    _finished_run(run, "math_bench.yaml")
    assert (run / "train-sft-100" / "same_as.json").is_file()  # the fixture's shared training
    raw = load_layered_yaml(ROOT / "recipes" / "math_bench.yaml")
    changes = {"run_dir": str(run), "train": raw["train"] | {"learning_rate": 0.5}, "probe": raw["probe"] | {"stop_after_call": True}}
    plan = plan_recipe(ROOT / "recipes" / "math_bench.yaml", changes)
    status = stage_status(plan)
    assert sorted(s for s in plan.stages if status[s] == "changed") == ["probe", "train-sft-0", "train-sft-100", "train-trice-i"]
    assert status["data"] == "up to date" and status["label"] == "would redo"

    config, inputs, _ = stage_specs.stage(plan, "probe")
    ran = []
    assert run_stage(run / "probe", "probe", config, inputs, ran.append)
    assert ran == [run / "probe"] and [Path(p).name.split("-")[0] for p in moved_aside(run)] == ["probe"]


def test_keys_that_change_no_result_stay_out_of_the_hash() -> None:
    """report_to and logging_steps change how a training reports, not the adapter it makes."""
    plain = fingerprint_fields(SFTConfig(learning_rate=1e-3))
    logged = fingerprint_fields(SFTConfig(learning_rate=1e-3, report_to="tensorboard", logging_steps=1))
    assert logged == plain == {"learning_rate": 1e-3} and logged.left_out == {"report_to": "tensorboard", "logging_steps": 1}
    assert fingerprint_fields(RLEFConfig(logging_steps=4)) == {}
    assert legacy_config(logged)["report_to"] == "tensorboard"  # the first rule hashed it, at any value
    plan = plan_recipe(ROOT / "recipes" / "gpu_7b.yaml")
    assert plan.train.report_to == "tensorboard"
    for name in plan.stages:
        config = stage_specs.stage(plan, name)[0]
        assert "report_to" not in config and "logging_steps" not in config, name


def test_a_training_hashed_with_its_logging_keys_is_not_redone(tmp_path) -> None:
    """A training finished when report_to still entered the hash (the second rule) is the same stage:
    its hash is rewritten, nothing is redone; setting report_to on a finished run redoes nothing."""
    from trice.pipeline.legacy_fingerprint import with_left_out

    run = tmp_path / "run"
    claim_run_dir(run)
    raw = load_layered_yaml(ROOT / "recipes" / "demo.yaml")
    plan = plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": str(run), "train": raw["train"] | {"report_to": "tensorboard"}})
    rows = plan.layout.label_rows("sft-0")
    rows.parent.mkdir(parents=True)
    rows.write_text('{"id": "a"}\n')
    config, inputs, _ = stage_specs.stage(plan, "train-sft-0")
    assert with_left_out(config)["report_to"] == "tensorboard" and "report_to" not in config
    (run / "train-sft-0").mkdir()
    marker = {"stage": "train-sft-0", "hash": stage_hash(run / "train-sft-0", with_left_out(config), inputs), "complete": True, "config": {}}
    (run / "train-sft-0" / "stage.json").write_text(json.dumps(marker))
    assert stage_verdict(run / "train-sft-0", config, inputs) == "up to date"
    ran: list[Path] = []
    assert not run_stage(run / "train-sft-0", "train-sft-0", config, inputs, ran.append)
    assert ran == [] and moved_aside(run) == []
    assert _stored_hashes(run, ["train-sft-0"]) == {"train-sft-0": stage_hash(run / "train-sft-0", config, inputs)}
