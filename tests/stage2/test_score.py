"""The ``trice score`` contract: fields added, summary line, resume by id, located errors."""

from __future__ import annotations

import json

import pytest

import trice.stage2.score
from trice.cli import main
from trice.core.tools import ToolError
from trice.tools.factories import TOOL_FACTORIES
from trice.utils.io import read_jsonl, write_jsonl


def _rows() -> list[dict]:
    return [
        {
            "id": "q1",
            "question": "48 + half of 48?",
            "answers": ["72"],
            "responses": ["calculator(48+48/2)", "The answer is 72.", "calculator(48+25)", "It is 70.", "calculator(1/0)"],
            "sources": ["gold", "chatgpt", "davinci", "vicuna", "alpaca"],
        },
        {
            "id": "q2",
            "task": "math",
            "answers": ["5"],
            "responses": ["5", "calculator(2+3)", "6", "calculator(2+4)", "5"],
            "sources": ["gold", "chatgpt", "davinci", "vicuna", "alpaca"],
        },
    ]


def _score(tmp_path, capsys, *extra: str) -> tuple[int, dict | None, str]:
    src, out = tmp_path / "candidates.jsonl", tmp_path / "scored.jsonl"
    code = main(["score", "--task", "math", "--input", str(src), "--output", str(out), *extra])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 else None, captured.err


def test_score_cli_contract(tmp_path, capsys):
    write_jsonl(tmp_path / "candidates.jsonl", _rows())
    code, summary, _ = _score(tmp_path, capsys)
    assert code == 0
    scored = read_jsonl(tmp_path / "scored.jsonl")
    assert [r["id"] for r in scored] == ["q1", "q2"]
    q1, q2 = scored
    assert {k: q1[k] for k in _rows()[0]} == _rows()[0]  # input fields kept as they were
    assert q1["predictions"] == ["72", "72", "73", "70", None]
    assert q1["scores"] == [20, 15, 10, 5, 0]
    assert q1["used_tool"] == [True, False, True, False, True]
    assert q1["states"] == ["gold", "True-No", "False-Yes", "False-No", "no-prediction"]
    assert q2["scores"] == [20, 15, 10, 5, 20] and q2["strategy"] == "paper"
    assert summary == {
        "n": 2,
        "strategy": "paper",
        "states": {"gold": 2, "True-Yes": 1, "True-No": 2, "False-Yes": 2, "False-No": 2, "no-prediction": 1},
        "mean_score_by_source": {"alpaca": 10.0, "chatgpt": 15.0, "davinci": 10.0, "gold": 20.0, "vicuna": 5.0},
    }


def test_score_cli_original_strategy_and_no_sources(tmp_path, capsys):
    rows = [{k: v for k, v in r.items() if k != "sources"} for r in _rows()]
    write_jsonl(tmp_path / "candidates.jsonl", rows)
    code, summary, _ = _score(tmp_path, capsys, "--strategy", "original")
    assert code == 0 and "mean_score_by_source" not in summary and summary["strategy"] == "original"
    q1, q2 = read_jsonl(tmp_path / "scored.jsonl")
    assert q1["scores"] == [20, 15, 10, 5, 0]
    assert q2["scores"] == [20, 15, 10, 10, 20]  # 6 and 2+4 are equally far from 5


def test_score_resumes_skipping_done_ids_and_keeps_input_order(tmp_path, capsys, monkeypatch):
    rows = _rows() + [{"id": "q3", "answers": ["2"], "responses": ["calculator(1+1)", "2"]}]
    write_jsonl(tmp_path / "candidates.jsonl", rows)
    out = tmp_path / "scored.jsonl"
    # a run killed after q2 (appended out of input order), with a torn last line
    done = trice.stage2.score.score_row(rows[1], "math", "paper")
    out.write_text(json.dumps(done) + "\n" + '{"id": "q1", "pred', encoding="utf-8")

    scored_ids = []
    real = trice.stage2.score.score_rows
    monkeypatch.setattr(trice.stage2.score, "score_rows", lambda rows, *a, **k: scored_ids.extend(r["id"] for r in rows) or real(rows, *a, **k))
    code, summary, _ = _score(tmp_path, capsys)
    assert code == 0 and summary["n"] == 3
    assert scored_ids == ["q1", "q3"]
    assert [r["id"] for r in read_jsonl(out)] == ["q1", "q2", "q3"]

    scored_ids.clear()  # a finished output: nothing left to do, same file again
    before = out.read_text()
    assert _score(tmp_path, capsys)[0] == 0
    assert scored_ids == [] and out.read_text() == before

    # another strategy or changed responses are scored again, not taken from the old output
    assert _score(tmp_path, capsys, "--strategy", "original")[0] == 0
    assert scored_ids == ["q1", "q2", "q3"]
    assert {r["strategy"] for r in read_jsonl(out)} == {"original"}
    scored_ids.clear()
    rows[2]["responses"] = ["calculator(1+1)", "3"]
    write_jsonl(tmp_path / "candidates.jsonl", rows)
    assert _score(tmp_path, capsys, "--strategy", "original")[0] == 0
    assert scored_ids == ["q3"] and read_jsonl(out)[2]["predictions"] == ["2", "3"]


def test_score_resume_rescores_rows_whose_gold_answers_or_task_changed(tmp_path, capsys, monkeypatch):
    rows = _rows()
    write_jsonl(tmp_path / "candidates.jsonl", rows)
    out = tmp_path / "scored.jsonl"
    assert _score(tmp_path, capsys)[0] == 0
    scored_ids = []
    real = trice.stage2.score.score_rows
    monkeypatch.setattr(trice.stage2.score, "score_rows", lambda rows, *a, **k: scored_ids.extend(r["id"] for r in rows) or real(rows, *a, **k))

    rows[0]["answers"] = ["73"]  # the gold answer changed: q1's old scores are wrong now
    write_jsonl(tmp_path / "candidates.jsonl", rows)
    assert _score(tmp_path, capsys)[0] == 0
    assert scored_ids == ["q1"] and read_jsonl(out)[0]["answers"] == ["73"]

    scored_ids.clear()  # another task judges every row otherwise: all scored again, though no row names one
    rows[1].pop("task")
    write_jsonl(tmp_path / "candidates.jsonl", rows)
    assert _score(tmp_path, capsys)[0] == 0
    scored_ids.clear()
    src = tmp_path / "candidates.jsonl"
    assert main(["score", "--task", "lama", "--input", str(src), "--output", str(out)]) == 0
    capsys.readouterr()
    assert scored_ids == ["q1", "q2"]
    assert json.loads((tmp_path / "scored.jsonl.judging.json").read_text())["task"] == "lama"


@pytest.mark.parametrize(
    "line, where",
    [
        ({"id": "q9", "answers": ["1"]}, "field 'responses': missing"),
        ({"id": "q9", "answers": "1", "responses": ["1"]}, "field 'answers': expected list of string"),
        ({"id": "q9", "answers": ["1"], "responses": []}, "field 'responses': empty"),
        ({"id": "q9", "answers": ["1"], "responses": ["1", "2"], "sources": ["gold"]}, "field 'sources': 1 sources for 2 responses"),
        ({"id": "q9", "answers": ["1"], "responses": ["1"], "sources": [3]}, "field 'sources': expected a list of strings"),
        ({"id": "q9", "task": "qa", "answers": ["1"], "responses": ["1"]}, "field 'task'"),
        ({"id": "q1", "answers": ["1"], "responses": ["1"]}, "field 'id': duplicate"),
    ],
)
def test_score_cli_bad_line_is_located(tmp_path, capsys, line, where):
    src = tmp_path / "candidates.jsonl"
    # line 1, a blank line 2, then the bad line 3
    src.write_text(json.dumps(_rows()[0]) + "\n\n" + json.dumps(line) + "\n", encoding="utf-8")
    code, _, err = _score(tmp_path, capsys)
    assert code == 2
    assert f"{src}:3: {where}" in err
    assert not (tmp_path / "scored.jsonl").exists()  # nothing scored from a bad file


def test_score_cli_refuses_unknown_strategy_and_missing_paths(tmp_path, capsys):
    write_jsonl(tmp_path / "candidates.jsonl", _rows())
    code, _, err = _score(tmp_path, capsys, "--strategy", "nope")
    assert code == 2 and "unknown reward strategy 'nope'" in err
    assert main(["score", "--input", str(tmp_path / "candidates.jsonl")]) == 2
    assert "--output" in capsys.readouterr().err


def test_native_candidates_are_scored_with_the_runs_parser(tmp_path, capsys) -> None:
    native = '<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{}"}}}}\n</tool_call>'
    rows = [{"id": "q1", "task": "math", "answers": ["72"],
             "responses": [native.format("48+48/2"), "The answer is 72.", native.format("48+25"), '<tool_call>{"name": "calc"}</tool_call>']}]  # fmt: skip
    write_jsonl(tmp_path / "in.jsonl", rows)
    argv = ["score", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl"), "--call_format", "native"]
    assert main(argv + ["--tool_parser", "hermes"]) == 0
    (scored,) = read_jsonl(tmp_path / "out.jsonl")
    assert scored["used_tool"] == [True, False, True, True]
    assert scored["predictions"][:3] == ["72", "72", "73"] and scored["scores"][0] == max(scored["scores"])
    recorded = json.loads((tmp_path / "out.jsonl.judging.json").read_text())
    assert recorded["call_format"] == "native" and recorded["tool_parser"] == "hermes"


def test_rows_scored_on_a_tool_outage_are_scored_again(tmp_path, capsys, monkeypatch):
    up = {"calculator": False}
    real = TOOL_FACTORIES["calculator"]

    class Flaky:
        name = "calculator"

        def __init__(self):
            self.tool = real()

        def run(self, argument: str) -> str:
            if not up["calculator"]:
                raise ToolError("timeout", "no answer within 5 s")
            return self.tool.run(argument)

    monkeypatch.setitem(TOOL_FACTORIES, "calculator", lambda **_: Flaky())
    write_jsonl(tmp_path / "candidates.jsonl", _rows())
    code, summary, _ = _score(tmp_path, capsys)
    assert code == 0 and summary["machine_failures"] == {"rows": 2, "first": "q1: timeout: no answer within 5 s"}
    q1, q2 = read_jsonl(tmp_path / "scored.jsonl")
    assert q1["machine_failures"] == ["timeout: no answer within 5 s"] * 3  # its three calls

    up["calculator"] = True
    scored_ids = []
    score_rows = trice.stage2.score.score_rows
    monkeypatch.setattr(trice.stage2.score, "score_rows", lambda rows, *a, **k: scored_ids.extend(r["id"] for r in rows) or score_rows(rows, *a, **k))
    code, summary, _ = _score(tmp_path, capsys)
    assert code == 0 and scored_ids == ["q1", "q2"] and "machine_failures" not in summary
    assert [r["scores"] for r in read_jsonl(tmp_path / "scored.jsonl")] == [[20, 15, 10, 5, 0], [20, 15, 10, 5, 20]]
