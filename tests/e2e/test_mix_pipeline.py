"""TRICE-MIX end to end: one `trice run` over two tasks (math with the calculator, lama with the QA
tool) with the tiny model, stage I and stage II; the QA tool retrieves from a tiny corpus and its
reader is a fake OpenAI-compatible server on 127.0.0.1 (a model reader would be slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.utils.config import ConfigError
from trice.utils.io import read_json, read_jsonl, write_jsonl
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import stage_status
from trice.data.prepare import DataConfig, load_split

from tests.helpers.fake_servers import openai_reply, serve  # noqa: F401 (fixture)

SETTINGS = ["zero-shot", "sft-0", "sft-100", "trice-i", "trice-all"]
TASKS = {"math": ["svamp"], "lama": ["trex"]}


def first_passage(hit: int, path: str, request: dict):
    """The fake QA reader: answers with the text of the first passage it was given."""
    content = request["messages"][-1]["content"]
    line = next(line for line in content.splitlines() if line.startswith("1. "))
    return openai_reply(path, request, line.split(" | ", 1)[-1])


def lama_corpus(path: Path, data_dir: Path) -> Path:
    """One passage per lama question of the run (train, dev pool and test), titled with its reference
    QA question and starting with the answer, so the fake reader answers a reference call right."""
    train, test, _ = load_split(DataConfig(tasks={"lama": ["trex"]}, data_dir=str(data_dir), n_train=40, n_test=2))
    rows = [
        {"id": f"p{i}", "title": e.tool_call[3:-1], "text": f"{e.answers[0]} is the answer to: {e.question}"}
        for i, e in enumerate(train + test) if e.tool_call
    ]  # fmt: skip
    return write_jsonl(path, rows)


def mix_recipe(tmp_path: Path, model: str, data_dir: Path, url: str) -> Path:
    corpus = lama_corpus(tmp_path / "corpus.jsonl", data_dir)
    body = {
        "run_dir": str(tmp_path / "run"),
        "model": model,
        "seed": 0,
        "settings": SETTINGS,
        "data": {"tasks": TASKS, "data_dir": str(data_dir), "n_train": 3, "n_test": 2},
        "tools": {
            "QA": {
                "trex_evidence": False, "reader": "endpoint", "endpoint": {"base_url": url, "model": "fake", "max_retries": 0},
                "retriever": {"sources": [], "extra_passages": [str(corpus)], "index_dir": str(tmp_path / "indexes"), "bm25_backend": "numpy"},
            }
        },
        "probe": {"batch_size": 8, "max_new_tokens": 4},
        "train": {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3},
        "dev": {"n_per_dataset": 2},
        "candidates": {"sources": [
            {"name": "gold", "kind": "gold"},
            {"name": "base", "kind": "responses", "path": "probe"},
            {"name": "tool-always", "kind": "model", "few_shot": "task", "max_new_tokens": 4},
            {"name": "stage1-early", "kind": "model", "adapter": "stage-i-early", "max_new_tokens": 4},
        ]},
        "rlef": {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "gradient_accumulation_steps": 1, "dev_max_new_tokens": 4},
        "eval": {"batch_size": 8, "max_new_tokens": 4},
    }  # fmt: skip
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))  # the tasks' order is the report's column order
    return path


def test_mix_run_trains_one_model_on_two_tasks(tmp_path, tiny_model_dir, data_dir, serve, one_thread) -> None:  # noqa: F811
    server = serve(first_passage)
    path = mix_recipe(tmp_path, str(tiny_model_dir), data_dir, server.url)
    assert main(["run", str(path)]) == 0
    run = tmp_path / "run"
    plan = plan_recipe(path)
    assert all(read_json(run / s / "stage.json")["complete"] for s in plan.stages)

    train = read_jsonl(run / "data" / "train.jsonl")
    assert {r["task"] for r in train} == {"math", "lama"} and len(train) == 6
    assert read_json(run / "data" / "splits.json")["datasets"]["trex"]["task"] == "lama"

    stats = read_json(run / "label" / "trice.stats.json")
    assert set(stats["by_task"]) == {"math", "lama"}
    assert stats["by_task"]["lama"]["labelled"] >= 1  # reference QA calls the QA tool answered right
    d_tool = read_jsonl(run / "label" / "trice.jsonl")
    assert any(r["task"] == "lama" and r["output"].startswith("QA(") for r in d_tool)
    assert server.hits >= 1

    scored = read_jsonl(run / "score" / "scored.jsonl")
    assert {r["task"] for r in scored} == {"math", "lama"}  # stage II scores each question by its own task
    lama = next(r for r in scored if r["task"] == "lama" and r["responses"][0].startswith("QA("))
    assert lama["states"][0] == "gold" and lama["used_tool"][0] is True

    results = read_json(run / "report" / "results.json")
    assert list(results["rows"]) == SETTINGS
    for row in results["rows"].values():
        assert set(row) == {"svamp", "trex", "avg", "tool_rate"}
        assert row["avg"] == pytest.approx((row["svamp"] + row["trex"]) / 2)
    report = (run / "report" / "report.md").read_text()
    assert "| setting | svamp | trex | avg | tool use |" in report and "| trice | lama |" in report

    marks = {s: (run / s / "stage.json").stat().st_mtime_ns for s in plan.stages}
    assert main(["run", str(path)]) == 0  # nothing changed: every stage skipped
    assert {s: (run / s / "stage.json").stat().st_mtime_ns for s in plan.stages} == marks
    assert set(stage_status(plan).values()) == {"up to date"}
    changed = stage_status(plan_recipe(path, {"eval": {"batch_size": 8, "max_new_tokens": 5}}))
    assert {s for s, v in changed.items() if v == "changed"} == {f"eval-{s}" for s in SETTINGS}
    assert {s for s, v in changed.items() if v != "up to date"} == {f"eval-{s}" for s in SETTINGS} | {"report"}  # reads them


@pytest.mark.parametrize(
    ("data", "tools", "message"),
    [
        ({"tasks": {"math": ["svamp"]}, "task": "lama"}, {}, "give either tasks"),
        ({"tasks": {"math": ["webq"]}}, {}, "unknown ['webq'] for task math"),
        ({"tasks": {"chess": ["x"]}}, {}, "task: unknown 'chess'"),
        ({"tasks": {"math": ["svamp"], "qa": []}}, {}, "tasks: qa: datasets: none given"),
        ({"tasks": {"math": ["svamp"]}}, {"Wiki": {}}, "tools: unknown tool 'Wiki'"),
    ],
)
def test_bad_mix_recipe_fails_at_start(tmp_path, data_dir, data, tools, message) -> None:
    body = {"run_dir": str(tmp_path / "run"), "data": {"data_dir": str(data_dir)} | data, "tools": tools}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan_recipe(path)


RECIPES = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()


def _recipes_block(language: str, after: str) -> str:
    start = RECIPES.index(after)
    return re.search(rf"```{language}\n(.*?)```", RECIPES[start:], re.S).group(1)


def test_docs_task_recipes_plan_and_status_runs(tmp_path, data_dir, capsys) -> None:
    """docs/recipes.md's SPLIT/MIX commands: each shipped recipe plans (every config checked, nothing loaded;
    running them takes tens of minutes), --status runs, and the example keys make a valid recipe."""
    import json
    import shlex

    lines = [line.split("#")[0].strip() for line in _recipes_block("bash", "## Four tasks").splitlines() if line.strip()]
    argvs = [shlex.split(line)[1:] for line in lines]
    assert [a[:2] for a in argvs] == [["run", "recipes/lama.yaml"], ["run", "recipes/mix.yaml"], ["run", "recipes/math_bench.yaml"]]
    root = Path(__file__).resolve().parents[2]
    expected = {"qa": ["qa"], "lama": ["lama"], "mlqa": ["mlqa"], "mix": ["math", "qa", "lama", "mlqa"]}
    for name, tasks in expected.items():
        plan = plan_recipe(root / "recipes" / f"{name}.yaml")
        assert plan.data.task_names == tasks and "trice-all" in plan.recipe.settings
        assert plan.judge_task == (tasks[0] if len(tasks) == 1 else "per-row")
    status = argvs[2] + ["--run-dir", str(tmp_path / "run")]
    assert main([status[0], str(root / status[1]), *status[2:]]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["data"] == "to do"
    example = yaml.safe_load(_recipes_block("yaml", "## Four tasks"))
    example["data"]["data_dir"] = str(data_dir)
    (tmp_path / "example.yaml").write_text(yaml.safe_dump(example | {"run_dir": str(tmp_path / "x")}, sort_keys=False))
    assert plan_recipe(tmp_path / "example.yaml").data.all_datasets == ["asdiv", "svamp", "gsm8k", "webq", "nq", "triviaqa", "trex", "xquad-zh"]
