"""Judging with tool execution, the summary, and the evaluate CLI."""

from __future__ import annotations

import json

from trice.cli import main
from trice.judge.evaluate import judge_rows, summarize
from trice.tasks import tool_registries
from trice.core.tools import ToolSetupError
from trice.tools.calculator import Calculator
from trice.core.call_format import CallFormat
from trice.utils.io import read_jsonl, write_jsonl


def _row(i: int, response: str, answers: list[str], dataset: str = "svamp") -> dict:
    return {"id": f"x{i}", "dataset": dataset, "answers": answers, "response": response}


def test_judge_executes_tool_calls_and_counts_tool_use() -> None:
    rows = [
        _row(0, "calculator(48+48/2)", ["72"]),  # tool, right
        _row(1, "calculator(48*48)", ["72"]),  # tool, wrong
        _row(2, "calculator(__import__('os'))", ["72"]),  # hostile tool call: failed call, no prediction
        _row(3, "So the answer is 72.", ["72"], "gsm8k"),  # no tool, right
        _row(4, "I think 71", ["72"], "gsm8k"),  # no tool, wrong
    ]
    judged = judge_rows(rows, "math")
    assert [r["correct"] for r in judged] == [True, False, False, True, False]
    assert [r["used_tool"] for r in judged] == [True, True, True, False, False]
    assert judged[0]["prediction"] == "72"
    assert judged[2]["prediction"] is None and judged[2]["tool_error"].startswith("bad_argument")
    summary = summarize(judged)
    assert summary == {"accuracy": {"gsm8k": 0.5, "svamp": 1 / 3, "total": 0.4}, "tool_rate": 0.6, "n": 5}

    down = [row | {"correct": False, "tool_error": kind + ": server"} for row, kind in zip(judged, ["unavailable", "timeout", "unavailable"])]
    assert summarize(down)["tool_outages"] == {"timeout": 1, "unavailable": 2}  # the model's own bad calls are not outages


def test_judging_many_files_can_share_one_set_of_built_tools() -> None:
    shared = tool_registries()
    asked: list[str] = []

    def registry(task):  # noqa: ANN001, ANN202
        asked.append(task.name)
        return shared(task)

    for _ in range(2):
        judged = judge_rows([_row(0, "calculator(6*7)", ["42"])], "math", registry=registry)
        assert judged[0]["correct"] is True
    assert asked and set(asked) == {"math"}


def test_evaluate_cli_contract(tmp_path, capsys) -> None:
    src = tmp_path / "responses.jsonl"
    write_jsonl(src, [_row(0, "calculator(2^3)", ["8"]), _row(1, "The answer is 9", ["8"], "asdiv")])
    out = tmp_path / "judged.jsonl"
    assert main(["evaluate", "--task", "math", "--input", str(src), "--output", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == {"accuracy": {"asdiv": 0.0, "svamp": 1.0, "total": 0.5}, "tool_rate": 0.5, "n": 2}
    judged = read_jsonl(out)
    assert {"prediction", "correct", "used_tool"} <= set(judged[0])


def test_a_tool_that_cannot_be_set_up_stops_evaluate_with_its_error_on_a_line_of_its_own(tmp_path, capsys, monkeypatch) -> None:
    def broken(self, argument: str) -> str:  # noqa: ANN001
        raise ToolSetupError("cannot load calculator")

    monkeypatch.setattr(Calculator, "run", broken)
    src = tmp_path / "responses.jsonl"
    write_jsonl(src, [_row(i, "calculator(2^3)", ["8"]) for i in range(3)])
    assert main(["evaluate", "--task", "math", "--input", str(src), "--output", str(tmp_path / "judged.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "execute calls" in err  # the progress bar was drawn, and closed before the error
    assert err.replace("\r", "\n").splitlines()[-1] == "trice evaluate: error: cannot load calculator"


def test_evaluate_cli_bad_input_names_file_line_field(tmp_path, capsys) -> None:
    src = tmp_path / "responses.jsonl"
    src.write_text(json.dumps(_row(0, "1", ["1"])) + "\n" + json.dumps({"id": "y", "dataset": "a", "answers": "1", "response": "1"}) + "\n")
    assert main(["evaluate", "--input", str(src), "--output", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert f"{src}:2: field 'answers'" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_native_calls_are_judged_and_counted_as_tool_use(tmp_path) -> None:
    call = '<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{}"}}}}\n</tool_call>'
    rows = [
        _row(0, call.format("48+48/2"), ["72"]),  # tool, right
        _row(1, call.format("48*48"), ["72"]),  # tool, wrong
        _row(2, '<tool_call>{"name": "calculator", "arguments": "48+</tool_call>', ["72"]),  # malformed: a failed call
        _row(3, "So the answer is 72.", ["72"]),  # no tool, right
    ]
    judged = judge_rows(rows, "math", calls=CallFormat("hermes"))
    assert [r["correct"] for r in judged] == [True, False, False, True]
    assert [r["used_tool"] for r in judged] == [True, True, True, False]
    assert judged[2]["tool_error"].startswith("bad_argument:") and summarize(judged)["tool_rate"] == 0.75
    assert not any(r["used_tool"] for r in judge_rows(rows, "math"))  # the text format sees no call in them
    write_jsonl(tmp_path / "in.jsonl", rows)
    argv = ["evaluate", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl")]
    assert main(argv + ["--call_format", "native", "--tool_parser", "hermes"]) == 0
    assert [r["used_tool"] for r in read_jsonl(tmp_path / "out.jsonl")] == [True, True, True, False]
