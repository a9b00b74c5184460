"""Your own questions from a recipe: JSONL, JSON and CSV files and hub datasets mapped onto the
schema by ``columns``, checked record by record when the recipe is planned, every error one line
naming the file, the line, the field and its column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from trice.data.mapped import SourceUnavailable, load_mapped, read_examples, source_name
from trice.data.prepare import DataConfig, load_split
from trice.pipeline.plan import plan_recipe
from trice.utils.config import ConfigError, build_config
from trice.utils.io import DataError

COLUMNS = {"question": "problem", "answers": "solution"}
ROWS = [
    {"problem": "What is 2 plus 3?", "solution": 5, "uid": "q1"},
    {"problem": "What is 10 minus 4?", "solution": ["6", "six"], "uid": "q2"},
    {"problem": "What is 3 times 3?", "solution": "9", "uid": "q3", "equation": "calculator(3*3)"},
]


def _jsonl(path: Path, rows: list[dict], blank_after_first: bool = False) -> Path:
    lines = [json.dumps(r) for r in rows]
    if blank_after_first:
        lines.insert(1, "")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_json_and_csv_map_onto_the_schema(tmp_path: Path) -> None:
    mapping = COLUMNS | {"id": "uid", "tool_call": "equation"}
    jsonl = read_examples(str(_jsonl(tmp_path / "mine.jsonl", ROWS)), "train", task="math", dataset="mine", columns=mapping)
    (tmp_path / "mine.json").write_text(json.dumps(ROWS, indent=2))
    from_json = read_examples(str(tmp_path / "mine.json"), "train", task="math", dataset="mine", columns=mapping)
    assert jsonl == from_json
    assert [(e.id, e.question, e.answers, e.tool_call, e.task, e.dataset) for e in jsonl] == [
        ("q1", "What is 2 plus 3?", ("5",), None, "math", "mine"),
        ("q2", "What is 10 minus 4?", ("6", "six"), None, "math", "mine"),
        ("q3", "What is 3 times 3?", ("9",), "calculator(3*3)", "math", "mine"),
    ]
    (tmp_path / "mine.csv").write_text('problem,solution\nWhat is 2 plus 3?,5\n"Two, plus three?",5\n')
    rows = read_examples(str(tmp_path / "mine.csv"), "test", task="math", dataset="mine", columns=COLUMNS)
    assert [(e.id, e.question, e.answers, e.split) for e in rows] == [
        ("mine-test-1", "What is 2 plus 3?", ("5",), "test"),
        ("mine-test-2", "Two, plus three?", ("5",), "test"),
    ]  # no id column: <dataset>-<split>-<record number>
    own_names = [{"question": r["problem"], "answers": [str(r["solution"])]} for r in ROWS[:1]]
    assert read_examples(str(_jsonl(tmp_path / "plain.jsonl", own_names)), "train", task="math", dataset="d", columns={})[0].answers == ("5",)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "a.jsonl",
            '{"problem": "q?", "solution": "1"}\n\n{"question": "q?", "solution": "1"}\n',
            "a.jsonl:3: field 'question (column 'problem')': missing; the record has question, solution",
        ),
        ("a.jsonl", '{"problem": "q?", "solution": []}\n', "a.jsonl:1: field 'answers (column 'solution')': expected a string, a number or a non-empty list"),
        ("a.jsonl", '{"problem": "q?", "solution": [true]}\n', "a.jsonl:1: field 'answers (column 'solution')': expected a string, a number"),
        ("a.jsonl", '{"problem": " ", "solution": "1"}\n', "a.jsonl:1: field 'question (column 'problem')': expected non-empty text"),
        (
            "a.jsonl",
            '{"problem": "q?", "solution": "1"}\n{"problem": "q?", "solution": " "}\n',
            "a.jsonl:2: field 'answers (column 'solution')': an empty answer",
        ),
        ("a.jsonl", '["q?", "1"]\n', "a.jsonl:1: expected a JSON object, got list"),
        ("a.jsonl", '{"problem": "q?", "solution": "1"\n', "a.jsonl:1: "),
        (
            "a.json",
            '[\n  {"problem": "q?", "solution": "1"},\n  {"problem": 7, "solution": "1"}\n]\n',
            "a.json:3: field 'question (column 'problem')': expected non-empty text, got 7",
        ),
        ("a.json", '{"problem": "q?"}', "a.json: expected a JSON array of records"),
        ("a.csv", "problem,answer\nq?,1\n", "a.csv:2: field 'answers (column 'solution')': missing; the record has problem, answer"),
        ("a.jsonl", "", "a.jsonl: empty file"),
    ],
)
def test_a_bad_record_is_one_located_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError) as err:
        read_examples(str(tmp_path / name), "train", task="math", dataset="d", columns=COLUMNS)
    assert str(err.value).startswith(str(tmp_path / message.split(":")[0])) and message.split(":", 1)[1] in str(err.value)
    assert "\n" not in str(err.value)


def test_ids_repeat_neither_in_a_file_nor_across_train_and_test(tmp_path: Path) -> None:
    train = _jsonl(tmp_path / "train.jsonl", [{"id": "a", "question": "q?", "answers": ["1"]}])
    test = _jsonl(tmp_path / "test.jsonl", [{"id": "b", "question": "q?", "answers": ["1"]}, {"id": "a", "question": "r?", "answers": ["2"]}])
    with pytest.raises(DataError, match=r"test.jsonl:2: field 'id': duplicate value \"a\""):
        load_mapped(str(train), str(test), task="math", dataset="d", columns={}, seed=0, test_fraction=0.3)


def test_train_alone_is_split_by_a_seeded_hash(tmp_path: Path) -> None:
    rows = [{"question": f"What is {i} plus 1?", "answers": [str(i + 1)]} for i in range(40)]
    train = str(_jsonl(tmp_path / "pool.jsonl", rows))
    first = load_mapped(train, "", task="math", dataset="pool", columns={}, seed=0, test_fraction=0.25)
    again = load_mapped(train, "", task="math", dataset="pool", columns={}, seed=0, test_fraction=0.25)
    assert first == again and 0 < len(first.test) < 40 and len(first.train) + len(first.test) == 40
    assert first.split_method.startswith("seeded hash split") and {e.split for e in first.test} == {"test"}


def test_a_hub_dataset_is_read_through_datasets(monkeypatch) -> None:
    import datasets

    calls = []

    def load_dataset(name, subset=None, split=None):
        calls.append((name, subset, split))
        if name == "nobody/offline":
            raise ConnectionError("Couldn't reach 'nobody/offline' on the Hub")
        return datasets.Dataset.from_list([{"question": f"{split} q{i}?", "answer": str(i)} for i in range(3)])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    loaded = load_mapped(
        "openai/gsm8k",
        "openai/gsm8k:validation",
        task="math",
        dataset=source_name("openai/gsm8k"),
        columns={"answers": "answer"},
        seed=0,
        test_fraction=0.3,
        subset="main",
    )
    assert calls == [("openai/gsm8k", "main", "train"), ("openai/gsm8k", "main", "validation")]
    assert [e.id for e in loaded.test] == ["gsm8k-test-1", "gsm8k-test-2", "gsm8k-test-3"] and loaded.test[0].question == "validation q0?"
    with pytest.raises(SourceUnavailable, match=r"^nobody/offline\[train\]: cannot load \(ConnectionError: Couldn't reach"):
        read_examples("nobody/offline", "train", task="math", dataset="x", columns={})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_list([{"question": "q?", "answer": None}]))
    with pytest.raises(DataError, match=r"^org/set\[train\]:1: field 'answers \(column 'answer'\)': expected"):
        read_examples("org/set", "train", task="math", dataset="x", columns={"answers": "answer"})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"test": "t.jsonl"}, "test: needs train"),
        ({"train": "t.jsonl", "tasks": {"math": ["gsm8k"]}}, "give either tasks or train"),
        ({"train": "t.jsonl", "datasets": ["a", "b"]}, "datasets: with train, at most one name"),
        ({"train": "t.jsonl", "columns": {"task": "kind"}}, "columns: unknown field 'task'"),
        ({"train": "t.jsonl", "n_train": 0}, "n_train must be >= 1"),
    ],
)
def test_what_can_be_said_before_reading_is_said_at_once(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(DataConfig, values, "data")


def test_a_recipe_reads_its_files_beside_it_and_checks_every_record_when_planned(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "project"
    home.mkdir()
    _jsonl(home / "train.jsonl", [{"problem": f"What is {i} plus 2?", "solution": i + 2} for i in range(12)])
    _jsonl(home / "test.jsonl", [{"problem": f"What is {i} minus 1?", "solution": i - 1} for i in range(5)])
    recipe = home / "mine.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {"settings": ["zero-shot", "trice-i"], "data": {"task": "math", "train": "train.jsonl", "test": "test.jsonl", "columns": COLUMNS, "n_train": 8}}
        )
    )
    monkeypatch.chdir(tmp_path)  # elsewhere: the files are read from the recipe's directory
    plan = plan_recipe(recipe)
    assert plan.data.all_datasets == ["train"] and plan.data.task_names == ["math"] and plan.run_dir == Path("runs/mine")
    train, test, splits = load_split(plan.data)
    assert len(train) == 8 and len(test) == 5 and splits["datasets"]["train"]["split"] == "the given train and test sets"

    recipe.write_text(
        yaml.safe_dump({"settings": ["zero-shot"], "data": {"task": "math", "train": "train.jsonl", "columns": COLUMNS, "datasets": ["sums"], "n_test": 50}})
    )
    with pytest.raises(ConfigError, match="data.n_test = 50 > .* test questions of sums"):
        plan_recipe(recipe)
    with (home / "train.jsonl").open("a") as fh:
        fh.write('{"problem": "What is 1 plus 1?"}\n')
    with pytest.raises(ConfigError, match=r"mine.yaml: .*train.jsonl:13: field 'answers \(column 'solution'\)': missing"):
        plan_recipe(recipe)
    recipe.write_text(yaml.safe_dump({"settings": ["zero-shot"], "data": {"task": "cooking", "train": "test.jsonl", "columns": COLUMNS}}))
    with pytest.raises(ConfigError, match="data: task: unknown 'cooking'"):
        plan_recipe(recipe)
