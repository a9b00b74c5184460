"""D_tool: right -> the model's own response; wrong -> the annotated call, kept only if it executes to gold."""

from __future__ import annotations

import json

from trice.cli import main
from trice.utils.io import read_json, read_jsonl, write_jsonl
from trice.stage1.label import label_rows


def _probed(i: int, correct: bool, call: str | None, answers=("72",)) -> dict:
    return {
        "id": f"q{i}",
        "dataset": "gsm8k",
        "task": "math",
        "question": f"question {i}",
        "answers": list(answers),
        "tool_call": call,
        "response": f"my answer is {answers[0] if correct else 1}",
        "correct": correct,
    }


ROWS = [
    _probed(0, True, "calculator(48+24)"),  # right: own response, no tool
    _probed(1, False, "calculator(48+48/2)"),  # wrong, call verifies -> labelled
    _probed(2, False, "calculator(48+48)"),  # wrong, call gives 96 != 72 -> dropped
    _probed(3, False, None),  # wrong, no annotation -> dropped
    _probed(4, False, "calculator(__import__('os'))"),  # hostile annotation -> dropped, not a crash
]


def test_d_tool_labels() -> None:
    out, stats = label_rows(ROWS, "trice")
    assert [(r["id"], r["output"], r["used_tool"]) for r in out] == [("q0", "my answer is 72", False), ("q1", "calculator(48+48/2)", True)]
    assert stats == {
        "mode": "trice",
        "probed": 5,
        "kept": 2,
        "right": 1,
        "labelled": 1,
        "dropped": 3,
        "tool_share": 0.5,
        "by_task": {"math": {"right": 1, "labelled": 1, "dropped": 3}},
        "sources": {"annotation": 1, "self": 1},
    }


def test_baseline_sets() -> None:
    zero, _ = label_rows(ROWS, "sft-0")
    assert [r["output"] for r in zero] == ["72"] * 5 and not any(r["used_tool"] for r in zero)
    full, stats = label_rows(ROWS, "sft-100")
    assert [r["output"] for r in full] == ["calculator(48+24)", "calculator(48+48/2)"]
    assert stats["dropped"] == 3 and stats["tool_share"] == 1.0


def test_label_cli_writes_set_and_stats(tmp_path, capsys) -> None:
    src, dst = tmp_path / "probe.jsonl", tmp_path / "d_tool.jsonl"
    write_jsonl(src, ROWS)
    assert main(["label", "--input", str(src), "--output", str(dst), "--mode", "trice"]) == 0
    assert len(read_jsonl(dst)) == 2
    assert read_json(str(dst) + ".stats.json")["labelled"] == 1
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["kept"] == 2
    assert main(["label", "--input", str(src), "--output", str(dst), "--mode", "bogus"]) == 2
    assert "mode must be one of" in capsys.readouterr().err
