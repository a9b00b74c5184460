"""Recipes ship inside the package and `trice run NAME` finds them from any directory; a path
still names any recipe file; an unknown name gets one line listing the shipped ones."""

from __future__ import annotations

import json
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.utils.config import ConfigError
from trice.pipeline.plan import plan_recipe
from trice.pipeline.recipe_files import find_recipe, shipped_dir, shipped_names

ROOT = Path(__file__).resolve().parents[2]


def test_the_recipes_are_package_data() -> None:
    assert (files("trice") / "recipes" / "demo.yaml").is_file()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["trice"]
    assert "recipes/*.yaml" in declared
    assert {"demo", "gpu_7b", "mix_bench", "split_bench_qa"} <= set(shipped_names())
    assert (ROOT / "recipes").resolve() == shipped_dir().resolve()  # the checkout's recipes/ is the package's


def test_run_by_name_from_another_directory(tmp_path: Path, data_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TRICE_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demo", "--status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["data"] == "to do" and status["report"] == "waiting"
    assert plan_recipe(find_recipe("demo")).run_dir == Path("runs/demo")  # still relative to the working directory
    assert plan_recipe(find_recipe("split_bench_qa.yaml")).data.n_train == 96  # its base: mix_bench.yaml, beside it


def test_a_path_still_works_and_a_local_file_wins_over_a_shipped_name(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    local = yaml.safe_load((shipped_dir() / "demo.yaml").read_text()) | {"run_dir": "runs/local"}
    local["data"]["data_dir"] = str(data_dir)
    Path("demo.yaml").write_text(yaml.safe_dump(local))
    assert find_recipe("demo.yaml") == Path("demo.yaml")
    assert plan_recipe(find_recipe("demo.yaml")).run_dir == Path("runs/local")
    assert find_recipe("demo") == shipped_dir() / "demo.yaml"  # a bare name without the file is the shipped one
    assert find_recipe(str(ROOT / "recipes" / "qa.yaml")) == ROOT / "recipes" / "qa.yaml"


def test_an_unknown_name_lists_the_shipped_ones(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demoo", "--status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trice run: error: demoo: no such file, nor a shipped recipe of that name; shipped: demo, demo_native, gpu_7b,")
    assert main(["run", "sub/demo", "--status"]) == 2  # a path is never looked up by name
    assert capsys.readouterr().err.strip() == "trice run: error: sub/demo: no such file"


def test_command_line_overrides_lay_keys_over_the_recipe(tmp_path: Path, data_dir: Path, monkeypatch, capsys) -> None:
    """`trice run demo train.max_steps=2 --status`: dotted keys laid over the recipe, values read as YAML."""
    monkeypatch.setenv("TRICE_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demo", "train.max_steps=2", "--status"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["train-trice-i"] == "waiting"
    assert main(["run", "--status", "demo", "settings=[zero-shot, trice-i]"]) == 0  # options before or after
    assert list(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == [
        "data",
        "probe",
        "label",
        "train-trice-i",
        "eval-zero-shot",
        "eval-trice-i",
        "report",
    ]

    from trice.utils.config import parse_overrides

    over = parse_overrides(["train.max_steps=2", "train.learning_rate=5e-4", "data.n_test=null", "rlef.alpha=0.5", "train.max_steps=3"])
    plan = plan_recipe(find_recipe("demo"), over=over)
    assert (plan.train.max_steps, plan.train.learning_rate, plan.rlef.alpha) == (3, 5e-4, 0.5)
    assert plan.train.lora_r == 8 and plan.train.save_steps == 10  # the rest of the section stays the recipe's
    assert plan.data.n_test is None and plan.data.n_train == 24  # null removed the key: its default


def test_a_bad_override_is_one_line_naming_it(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demo", "train.max_stepz=2", "--status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train: unknown key 'max_stepz'" in err[0] and err[0].endswith("(with train.max_stepz=2)")
    assert main(["run", "demo", "max_steps", "--status"]) == 2
    assert "override 'max_steps': expected KEY=VALUE" in capsys.readouterr().err
    assert main(["run", "demo", "train.lora_r=[8", "--status"]) == 2
    assert "override 'train.lora_r=[8'" in capsys.readouterr().err and not (tmp_path / "runs").exists()


def test_base_names_a_shipped_recipe_and_run_dir_defaults_to_the_recipe_name(tmp_path: Path, data_dir: Path) -> None:
    mine = tmp_path / "elsewhere" / "my_math.yaml"
    mine.parent.mkdir()
    mine.write_text(f"base: demo\ndata: {{data_dir: {data_dir}, n_train: 5}}\nsettings: [zero-shot, trice-i]\n")
    plan = plan_recipe(mine)
    assert plan.data.n_train == 5 and plan.data.n_test == 20 and plan.train.save_steps == 10  # demo's, under mine
    assert plan.run_dir == Path("runs/my_math") and plan.recipe.run_dir == "runs/my_math"  # its own, not demo's runs/demo
    mine.write_text("base: demo.yaml\nrun_dir: runs/mine\nsettings: [zero-shot]\n")
    assert plan_recipe(mine).run_dir == Path("runs/mine")
    (tmp_path / "bare.yaml").write_text("settings: [zero-shot]\n")
    assert plan_recipe(tmp_path / "bare.yaml").run_dir == Path("runs/bare")  # never another recipe's runs/demo
    assert plan_recipe(find_recipe("demo")).run_dir == Path("runs/demo")
    mine.write_text("base: no_such_recipe\n")
    with pytest.raises(ConfigError, match="base: no such file .*no_such_recipe, nor a shipped recipe 'no_such_recipe'"):
        plan_recipe(mine)
