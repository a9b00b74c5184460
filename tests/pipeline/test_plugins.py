"""User tasks, tools and loaders named in a recipe (``plugins:``): the weather example of docs/tools.md runs
end to end through `trice run` with the tiny model; bad plug-ins stop the plan naming the key."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.utils.config import ConfigError, to_dict
from trice.data.loaders import LOADERS
from trice.utils.io import read_json, read_jsonl
from trice.pipeline.plan import plan_recipe
from trice.core.prompts import INSTRUCTIONS, task_prompt
from trice.tasks import TASKS
from trice.tools.factories import TOOL_FACTORIES

TOOLS_PAGE = (Path(__file__).resolve().parents[2] / "docs" / "tools.md").read_text()


def docs_block(lang: str) -> str:
    """The first ``lang`` code block of docs/tools.md."""
    return re.search(rf"```{lang}\n(.*?)```", TOOLS_PAGE, re.S).group(1)


@pytest.fixture
def weather(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """docs/tools.md's plug-in module beside the recipes (not on the path: a recipe imports from its own
    directory); every registry restored afterwards, so the weather task never leaks into other tests."""
    tables = (TASKS, INSTRUCTIONS, LOADERS, TOOL_FACTORIES)
    saved = [dict(t) for t in tables]
    (tmp_path / "weather_plugin.py").write_text(docs_block("python"))
    for name in ("weather_plugin", "bad_loader"):  # imported afresh from this test's directory
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.chdir(tmp_path.parent)
    yield tmp_path
    for table, before in zip(tables, saved):
        table.clear()
        table.update(before)
    for name in ("weather_plugin", "bad_loader"):
        sys.modules.pop(name, None)


def write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "weather.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_the_docs_weather_plugin_runs_end_to_end(weather: Path, tiny_model_dir: Path) -> None:
    body = yaml.safe_load(docs_block("yaml")) | {
        "run_dir": str(weather / "run"),
        "model": str(tiny_model_dir),
        "probe": {"batch_size": 4, "max_new_tokens": 6},
        "train": {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3},
        "eval": {"batch_size": 4, "max_new_tokens": 6},
    }
    assert body["data"]["data_dir"] == "."  # the docs': a directory that always exists, as its loader reads none
    assert main(["run", str(write(weather, body))]) == 0
    run = weather / "run"
    results = read_json(run / "report" / "results.json")
    assert list(results["rows"]) == ["zero-shot", "trice-i"] and "cities" in results["rows"]["trice-i"]
    probe = read_jsonl(run / "probe" / "judged.jsonl")
    assert len(probe) == 4 and {r["task"] for r in probe} == {"weather"}
    assert "you can use a weather tool for help" in task_prompt("weather", probe[0]["question"])  # the task's instruction
    labelled = [r for r in read_jsonl(run / "label" / "trice.jsonl") if r["output"].startswith("weather(")]
    assert labelled, "D_tool's calls for the questions the tiny model got wrong: the loader's calls, run through the plug-in tool"
    assert len(read_jsonl(run / "eval-trice-i" / "judged.jsonl")) == 3


def test_a_recipe_without_plugins_registers_nothing(weather: Path, data_dir: Path) -> None:
    before = (set(TASKS), set(TOOL_FACTORIES), set(LOADERS))
    plan = plan_recipe(write(weather, {"run_dir": str(weather / "r"), "data": {"data_dir": str(data_dir), "n_train": 5, "n_test": 5}}))
    assert (set(TASKS), set(TOOL_FACTORIES), set(LOADERS)) == before
    assert to_dict(plan.recipe)["plugins"] == {}  # recipe.json records that none was named


GOOD = {"tools": {"weather": "weather_plugin:Weather"}, "tasks": {"weather": "weather_plugin:WEATHER"}}


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        ({"tools": {"weather": "no_such_module:Weather"}}, "plugins: tools: weather: cannot import 'no_such_module' (ModuleNotFoundError"),
        ({"tools": {"weather": "weather_plugin:Nope"}}, "plugins: tools: weather: 'weather_plugin' has no 'Nope'"),
        ({"tools": {"weather": "weather_plugin.Weather"}}, "plugins: tools: weather: expected 'module:object', got 'weather_plugin.Weather'"),
        ({"tools": {"weather": "weather_plugin:FORECASTS"}}, "plugins: tools: weather: weather_plugin:FORECASTS is not callable"),
        ({"tasks": {"weather": "weather_plugin:WEATHER"}}, "plugins: tasks: weather: its tool 'weather' is no known tool"),
        (GOOD | {"tasks": {"storm": "weather_plugin:WEATHER"}}, "plugins: tasks: storm: weather_plugin:WEATHER is not a trice.tasks.Task named 'storm'"),
        ({"tools": {"calculator": "weather_plugin:Weather"}}, "plugins: tools: calculator: a tool factory named 'calculator' is already registered"),
        ({"loaders": {"math": {"gsm8k": "weather_plugin:load_cities"}}}, "plugins: loaders: math: gsm8k: task 'math' already has a loader for dataset 'gsm8k'"),
        ({"models": {}}, "plugins: unknown key 'models' (known keys: tools, tasks, loaders)"),
        (["weather_plugin:Weather"], "plugins: expected a mapping of kinds"),
    ],
    ids=["import", "attribute", "no-colon", "not-callable", "task-tool-unknown", "task-name", "tool-taken", "loader-taken", "kind", "list"],
)
def test_bad_plugins_stop_the_plan_naming_the_key(weather: Path, plugins, message: str) -> None:
    path = write(weather, {"run_dir": str(weather / "r"), "plugins": plugins, "settings": ["zero-shot"]})
    with pytest.raises(ConfigError) as err:
        plan_recipe(path)
    assert str(err.value).startswith(f"{path}: plugins") and message in str(err.value)


def test_a_loader_of_the_wrong_shape_is_named_at_plan(weather: Path) -> None:
    (weather / "bad_loader.py").write_text("def load(data_dir, *, seed, test_fraction):\n    return [1, 2]\n")
    body = {
        "run_dir": str(weather / "r"),
        "settings": ["zero-shot"],
        "plugins": GOOD | {"loaders": {"weather": {"cities": "bad_loader:load"}}},
        "data": {"task": "weather", "datasets": ["cities"], "data_dir": str(weather)},
    }
    with pytest.raises(ConfigError, match="the loader of cities returned list, not a trice.core.schema.LoadedDataset"):
        plan_recipe(write(weather, body))


def test_a_plugin_module_is_found_beside_the_recipe_only(weather: Path) -> None:
    """Imported from the recipe's directory, which leaves the Python path as it was."""
    before = list(sys.path)
    loaders = {"loaders": {"weather": {"cities": "weather_plugin:load_cities"}}}
    plan_recipe(
        write(
            weather,
            {
                "run_dir": str(weather / "r"),
                "plugins": GOOD | loaders,
                "settings": ["zero-shot"],
                "data": {"task": "weather", "datasets": ["cities"], "data_dir": str(weather)},
            },
        )
    )
    assert sys.modules["weather_plugin"].__file__ == str(weather / "weather_plugin.py") and sys.path == before
    elsewhere = weather / "sub"
    elsewhere.mkdir()
    sys.modules.pop("weather_plugin")
    with pytest.raises(ConfigError, match=f"cannot import 'weather_plugin' .*; looked in {re.escape(str(elsewhere))} and the Python path"):
        plan_recipe(write(elsewhere, {"plugins": GOOD, "settings": ["zero-shot"]}))
