"""`trice run` with ``call_format: native``: the tiny model, given a Qwen-like chat template with tool
calling, through data -> probe -> label -> train -> stage II -> eval -> report; and the recipes a
native run refuses before any model loads."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.helpers.chat_template import with_chat_template
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import run_plan
from trice.core.native import NativeToolCall, parse_native_call
from trice.utils.config import ConfigError, fingerprint_fields
from trice.utils.io import read_json

SOURCES = [
    {"name": "gold", "kind": "gold"},
    {"name": "base", "kind": "responses", "path": "probe"},
    {"name": "early", "kind": "model", "adapter": "stage-i-early", "max_new_tokens": 4, "batch_size": 4},
]


@pytest.fixture(scope="module")
def chat_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_chat_template(tiny_model_dir, tmp_path_factory.mktemp("tiny-chat"))


def native_recipe(tmp_path: Path, model: str, data_dir: Path, **overrides) -> Path:
    small = {"max_steps": 2, "save_steps": 1, "learning_rate": 1e-3}
    body = {
        "run_dir": str(tmp_path / "run"),
        "model": model,
        "template": "chat",
        "call_format": "native",
        "seed": 0,
        "settings": ["zero-shot", "sft-100", "trice-i", "trice-all"],
        "data": {"data_dir": str(data_dir), "n_train": 3, "n_test": 2},
        "probe": {"batch_size": 4, "max_new_tokens": 4, "stop_after_call": True},
        "train": small | {"logging_steps": 1, "per_device_train_batch_size": 2, "max_length": 1024},
        "dev": {"n_per_dataset": 1},
        "candidates": {"sources": SOURCES},
        "rlef": small | {"dev_max_new_tokens": 4, "dev_batch_size": 4, "dev_stop_after_call": True, "max_length": 1024},
        "eval": {"batch_size": 4, "max_new_tokens": 4, "stop_after_call": True},
    } | overrides
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_native_run_trains_and_judges_the_models_own_call_format(tmp_path, chat_model_dir, data_dir) -> None:
    plan = plan_recipe(native_recipe(tmp_path, str(chat_model_dir), data_dir))
    # auto was resolved once, at plan time, into every stage that prompts, parses or trains on calls
    for config in (plan.probe, plan.eval, plan.label, plan.train, plan.candidates, plan.score, plan.rlef):
        assert fingerprint_fields(config)["call_format"] == "native" and config.tool_parser == "hermes"
    run_plan(plan)
    run = tmp_path / "run"

    labels = rows(plan.layout.label_rows("sft-100"))
    assert labels and all(r["used_tool"] for r in labels)
    for label in labels:  # the template's own call text, which the run's parser reads back
        assert label["output"].startswith("<tool_call>\n{") and label["output"].endswith("</tool_call>")
        call = parse_native_call(label["output"], ["calculator"], "hermes")
        assert isinstance(call, NativeToolCall) and call.name == "calculator"
    d_tool = {r["id"]: r for r in rows(plan.layout.label_rows("trice"))}
    assert all(r["output"].startswith("<tool_call>") for r in d_tool.values() if r["used_tool"])

    scored = rows(run / "score" / "scored.jsonl")
    gold = [r for r in scored if d_tool[r["id"]]["used_tool"]]
    assert gold and all(r["used_tool"][0] and r["scores"][0] == max(r["scores"]) for r in gold)  # the native gold call executed
    for name in ("probe", "eval-trice-i"):
        judged = rows(run / name / "judged.jsonl")
        assert judged and all({"prediction", "correct", "used_tool"} <= set(r) for r in judged)
    prompt = read_json(run / "train-trice-i" / "sft_config.json")
    assert prompt["call_format"] == "native" and prompt["tool_parser"] == "hermes"
    results = read_json(run / "report" / "results.json")
    assert list(results["rows"]) == ["zero-shot", "sft-100", "trice-i", "trice-all"]
    assert all("tool_rate" in row for row in results["rows"].values())


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"template": "alpaca"}, "template must be 'chat'"),
        ({"settings": ["zero-shot", "few-shot"]}, "few-shot prompts with the few-shot presets"),
        ({"candidates": {"sources": [*SOURCES, {"name": "always", "kind": "model", "few_shot": "math"}]}}, "source 'always' prompts with few_shot"),
        ({"settings": ["zero-shot", "trice-i", "trice-all"], "candidates": {}}, "source 'tool-always' prompts with few_shot"),
        ({"tool_parser": "json"}, "tool_parser: unknown 'json'"),
        ({"call_format": "xml"}, "call_format: unknown 'xml'"),
    ],
)
def test_a_native_recipe_that_cannot_work_fails_at_plan_time(tmp_path, data_dir, overrides, message, monkeypatch) -> None:
    import trice.generation.models

    monkeypatch.setattr(trice.generation.models, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    path = native_recipe(tmp_path, "m", data_dir, **({"tool_parser": "hermes"} | overrides))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        plan_recipe(path)


def test_auto_needs_a_chat_template_that_calls_tools(tmp_path, tiny_model_dir, data_dir) -> None:
    with pytest.raises(ConfigError, match="tool_parser: the tokenizer has no chat template"):
        plan_recipe(native_recipe(tmp_path, str(tiny_model_dir), data_dir))


def test_a_text_run_plans_as_before(tmp_path, data_dir) -> None:
    path = native_recipe(tmp_path, "m", data_dir, call_format="text", template="alpaca")
    plan = plan_recipe(path)
    for config in (plan.probe, plan.eval, plan.label, plan.train, plan.candidates, plan.score, plan.rlef):
        assert "call_format" not in fingerprint_fields(config) and "tool_parser" not in fingerprint_fields(config)


def test_the_shipped_native_demo_is_the_demo_in_qwens_own_call_format() -> None:
    root = Path(__file__).resolve().parents[2] / "trice" / "recipes"
    native, demo = plan_recipe(root / "demo_native.yaml"), plan_recipe(root / "demo.yaml")
    assert native.recipe.call_format == "native" and native.probe.tool_parser == "hermes"  # named: planning loads no model
    assert replace(native.data, output_dir="") == replace(demo.data, output_dir="")
    assert native.candidates.sources == [s | {"model": native.recipe.model} if "model" in s else s for s in demo.candidates.sources]
    for section in ("probe", "eval", "train", "rlef"):
        ours, theirs = fingerprint_fields(getattr(native, section)), fingerprint_fields(getattr(demo, section))
        differs = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
        assert differs <= {"model", "template", "call_format", "tool_parser", "run_dir"}, section
    assert "few-shot" not in native.recipe.settings and native.recipe.stage_two


def test_the_docs_show_the_shipped_native_recipe() -> None:
    repo = Path(__file__).resolve().parents[2]
    page = (repo / "docs" / "tools.md").read_text()
    block = page[page.index("`call_format: native` trains") :].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == yaml.safe_load((repo / "trice" / "recipes" / "demo_native.yaml").read_text())
