"""Planning a recipe checks every dataset's pools against n_train, n_test and the dev size, so a
recipe that would stop at the dev stage after all of stage I stops before anything runs; without a
data directory the plan (and --status) still works and the run's data stage names what is missing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.utils.config import ConfigError
from trice.pipeline.plan import plan_recipe
from tests.helpers.models import hide_optional_models

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def write_recipe(tmp_path: Path, data: dict, settings: list[str], dev: int = 10) -> Path:
    body = {"run_dir": str(tmp_path / "run"), "model": "no-such-model", "settings": settings, "data": data, "dev": {"n_per_dataset": dev}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_every_shipped_recipe_plans_against_the_real_data(recipe: str, data_dir: Path, monkeypatch) -> None:
    """As on a fresh machine: no optional model package installed, whatever this one has cached."""
    monkeypatch.setenv("TRICE_DATA_DIR", str(data_dir))
    hide_optional_models(monkeypatch)
    plan = plan_recipe(RECIPES / recipe)
    assert plan.stages[0] == "data" and plan.stages[-1] == "report"


STAGE_TWO = ["zero-shot", "trice-i", "trice-all"]


@pytest.mark.parametrize(
    ("data", "settings", "dev", "message"),
    [
        (
            {"datasets": ["svamp", "gsm8k"], "n_train": 634},
            STAGE_TWO,
            50,
            "data.n_train + dev.n_per_dataset = 634 + 50 > 683 training questions of svamp; set data.n_train to at most 633",
        ),
        (
            {"datasets": ["asdiv", "svamp"]},
            STAGE_TWO,
            100,
            "data.n_train unset (every training question) leaves none of the 683 training questions of svamp for dev.n_per_dataset = 100",
        ),
        ({"datasets": ["svamp"], "n_train": 700}, ["zero-shot", "trice-i"], 10, "data.n_train = 700 > 683 training questions of svamp"),
        ({"datasets": ["gsm8k", "svamp"], "n_test": 400}, ["zero-shot"], 10, "data.n_test = 400 > 317 test questions of svamp"),
    ],
    ids=["dev-beyond-n_train", "dev-with-n_train-unset", "n_train", "n_test"],
)
def test_pools_too_small_fail_at_plan_naming_recipe_key_and_dataset(
    tmp_path: Path, data_dir: Path, data: dict, settings: list[str], dev: int, message: str
) -> None:
    path = write_recipe(tmp_path, {"task": "math", "data_dir": str(data_dir)} | data, settings, dev)
    with pytest.raises(ConfigError) as err:
        plan_recipe(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_every_question_without_stage_two_needs_no_dev_room(tmp_path: Path, data_dir: Path) -> None:
    path = write_recipe(tmp_path, {"task": "math", "datasets": ["svamp"], "data_dir": str(data_dir)}, ["zero-shot", "trice-i"], 500)
    assert "dev" not in plan_recipe(path).stages


def test_without_data_status_works_and_a_run_names_the_missing_directory(tmp_path: Path, monkeypatch, caplog, capsys) -> None:
    missing = tmp_path / "no-data"
    monkeypatch.setenv("TRICE_DATA_DIR", str(missing))
    path = write_recipe(tmp_path, {"task": "math", "n_train": 10_000}, STAGE_TWO)  # too many, but nothing to count
    with caplog.at_level(logging.WARNING, logger="trice.data.prepare"):
        assert plan_recipe(path).stages[0] == "data"
    assert f"pool sizes not checked: data directory {missing}" in caplog.text
    assert main(["run", str(path), "--status"]) == 0
    assert '"data": "to do"' in capsys.readouterr().out
    assert main(["run", str(path)]) == 2
    assert f"trice run: error: data directory {missing} (from $TRICE_DATA_DIR) does not exist" in capsys.readouterr().err


def test_a_native_recipe_with_auto_and_its_model_not_installed_names_the_parser_to_set(tmp_path: Path, monkeypatch) -> None:
    hide_optional_models(monkeypatch)
    path = tmp_path / "native.yaml"
    path.write_text(yaml.safe_dump({"base": str(RECIPES / "demo_native.yaml"), "tool_parser": "auto", "run_dir": str(tmp_path / "run")}))
    with pytest.raises(ConfigError, match=r"native.yaml: tool_parser: auto reads the call format from qwen2.5-coder-0.5b-instruct's chat template, and model"):
        plan_recipe(path)


@pytest.mark.parametrize(
    ("probe", "label", "message"),
    [
        ({}, {"own_if": 2}, "label: key 'own_if' counts the right answers among probe.samples sampled ones, and probe.samples is 0"),
        ({"samples": 2}, {"own_if": 4}, "label: key 'own_if' = 4 > the 3 answers per question"),
    ],
)
def test_the_boundary_label_rule_needs_enough_probe_samples(tmp_path: Path, data_dir: Path, probe: dict, label: dict, message: str) -> None:
    path = write_recipe(tmp_path, {"task": "math", "data_dir": str(data_dir), "datasets": ["svamp"], "n_train": 20, "n_test": 10}, ["zero-shot", "trice-i"])
    body = yaml.safe_load(path.read_text()) | {"probe": probe, "label": label}
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=message):
        plan_recipe(path)


def test_probe_samples_add_their_stage_and_leave_the_probes_config_alone(tmp_path: Path, data_dir: Path) -> None:
    path = write_recipe(tmp_path, {"task": "math", "data_dir": str(data_dir), "datasets": ["svamp"], "n_train": 20, "n_test": 10}, ["zero-shot", "trice-i"])
    plain = plan_recipe(path)
    body = yaml.safe_load(path.read_text()) | {"probe": {"samples": 4, "sample_temperature": 0.8}, "label": {"own_if": 3}}
    path.write_text(yaml.safe_dump(body))
    sampled = plan_recipe(path)
    assert sampled.stages[:4] == ["data", "probe", "probe-samples", "label"] and "probe-samples" not in plain.stages
    assert sampled.probe == plain.probe and (sampled.probe_samples.samples, sampled.probe_samples.sample_temperature) == (4, 0.8)
