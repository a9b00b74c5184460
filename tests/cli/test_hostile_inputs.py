"""Hostile input lines end every command with one located line and exit status 2 -- never a
traceback, never a partial output, and for the commands that load a model, before it loads.

(Recipes: tests/pipeline/test_stage_dirs.py; ordinary broken lines: tests/e2e/test_reliability.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.cli import main

NO_MODEL = "/nonexistent/model-dir"  # a command that got as far as loading it would name it


def _example(i: int) -> dict:
    return {"id": f"r{i}", "dataset": "svamp", "task": "math", "question": f"What is {i} + 1?", "answers": [str(i + 1)]}


GOOD = {
    "evaluate": lambda i: {"id": f"r{i}", "dataset": "gsm8k", "answers": ["72"], "response": "calculator(48+24)"},
    "score": lambda i: {"id": f"r{i}", "answers": ["72"], "responses": ["calculator(48+24)", "It is 72."]},
    "label": lambda i: {
        "id": f"r{i}",
        "dataset": "gsm8k",
        "task": "math",
        "question": "q",
        "answers": ["72"],
        "tool_call": "calculator(48+24)",
        "response": "72",
        "correct": True,
    },  # fmt: skip
    "generate": _example,
    "train-sft": lambda i: {"id": f"r{i}", "task": "math", "question": "q", "output": "72"},
}
SKIPS = ("evaluate", "score", "label")  # the commands with --skip_bad

HOSTILE = {
    "nested-200000": (b'{"id": "r1", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n", ":2: nested too deeply"),
    "int-5000-digits": (b'{"id": "r1", "x": ' + b"7" * 5000 + b"}\n", ":2: malformed JSON (Exceeds the limit"),
    "nan": (b'{"id": "r1", "x": NaN}\n', ":2: malformed JSON (NaN is not valid JSON"),
    "infinity": (b'{"id": "r1", "x": -Infinity}\n', ":2: malformed JSON (-Infinity is not valid JSON"),
    "lone-surrogate": (b'{"id": "r1", "x": "\\ud800"}\n', ":2: holds a lone UTF-16 surrogate"),
}


def _argv(command: str, src: Path, out: Path, *extra: str) -> list[str]:
    if command == "train-sft":
        return ["train-sft", "--data", str(src), "--output_dir", str(out), "--model", NO_MODEL, *extra]
    model = ["--model", NO_MODEL] if command == "generate" else []
    return [command, "--input", str(src), "--output", str(out), *model, *extra]


def _one_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("command", list(GOOD))
def test_hostile_lines_are_one_located_line(tmp_path, capsys, command, case) -> None:
    bad, where = HOSTILE[case]
    src, out = tmp_path / "input.jsonl", tmp_path / "out"
    src.write_bytes(json.dumps(GOOD[command](0)).encode() + b"\n" + bad)
    assert main(_argv(command, src, out)) == 2
    line = _one_error(capsys)
    assert line.startswith(f"trice {command}: error: {src}{where}"), line[:300]
    assert not out.exists()


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("command", SKIPS)
def test_hostile_lines_are_skipped_and_counted_with_skip_bad(tmp_path, capsys, command, case) -> None:
    bad, _ = HOSTILE[case]
    src, out = tmp_path / "input.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(json.dumps(GOOD[command](0)).encode() + b"\n" + bad)
    assert main(_argv(command, src, out, "--skip_bad")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["skipped_lines"] == 1
    assert all(json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())  # valid JSON, UTF-8


ROW_PROBLEMS = [
    ("evaluate", ["--task", "per-row"], GOOD["evaluate"](0), ":1: field 'task': missing"),
    ("evaluate", ["--task", "per-row"], GOOD["evaluate"](0) | {"task": "chess"}, ":1: field 'task': unknown task 'chess'"),
    ("evaluate", ["--task", "qa"], GOOD["evaluate"](0), ":1: field 'question': missing"),
    ("score", ["--task", "qa"], GOOD["score"](0), ":1: field 'question': missing"),
    ("generate", [], _example(0) | {"task": "chess"}, ":1: field 'task': unknown task 'chess'"),
    ("train-sft", [], GOOD["train-sft"](0) | {"task": "chess"}, ":1: field 'task': unknown task 'chess'"),
]


@pytest.mark.parametrize("command, extra, row, where", ROW_PROBLEMS, ids=[f"{c}-{w.split(': ')[-1]}" for c, _, _, w in ROW_PROBLEMS])
def test_rows_a_task_cannot_judge_are_located_before_any_work(tmp_path, capsys, command, extra, row, where) -> None:
    src, out = tmp_path / "input.jsonl", tmp_path / "out"
    src.write_text(json.dumps(row) + "\n")
    assert main(_argv(command, src, out, *extra)) == 2
    line = _one_error(capsys)
    assert line.startswith(f"trice {command}: error: {src}{where}"), line[:300]
    assert not out.exists()


@pytest.mark.parametrize("missing", ["--data", "--output_dir"])
def test_train_sft_without_data_or_output_dir_is_one_line(tmp_path, capsys, missing) -> None:
    src = tmp_path / "train.jsonl"
    src.write_text(json.dumps(GOOD["train-sft"](0)) + "\n")
    argv = {"--data": str(src), "--output_dir": str(tmp_path / "out")}
    flags = [x for key, value in argv.items() if key != missing for x in (key, value)]
    assert main(["train-sft", *flags, "--model", NO_MODEL]) == 2
    line = _one_error(capsys)
    assert line.startswith("trice train-sft: error: ") and missing.removeprefix("--") in line, line


def test_a_missing_local_model_path_is_named_as_such(tmp_path, capsys) -> None:
    src, out = tmp_path / "input.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps(_example(0)) + "\n")
    assert main(_argv("generate", src, out)) == 2
    assert _one_error(capsys) == f"trice generate: error: model: no such directory {NO_MODEL} (a local model path; hub names read org/name)"
    assert not out.exists()


def test_a_tool_option_typo_fails_the_recipe_status(tmp_path, capsys) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("run_dir: runs/x\ndata: {tasks: [qa]}\ntools: {QA: {max_new_tokns: 8}}\n")
    assert main(["run", str(recipe), "--status", "--run-dir", str(tmp_path / "run")]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"trice run: error: {recipe}: tools: QA: unknown option 'max_new_tokns' (known: "), line
