"""Recipes ship inside the package and `trice run NAME` finds them from any directory; a path
still names any recipe file; an unknown name gets one line listing the shipped ones."""

from __future__ import annotations

import json
import tomllib
from importlib.resources import files
from pathlib import Path

import yaml

from trice.cli import main
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
