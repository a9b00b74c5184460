"""bench/selective_reeval.py (``selective_math_qwen.py --evaluate-on``): every committed adapter of the
results file evaluated on a bring-your-own-data JSONL, with its row's decoding, an interval and P(call)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SPEC = importlib.util.spec_from_file_location("selective_reeval", BENCH / "selective_reeval.py")
reeval = importlib.util.module_from_spec(SPEC)
sys.modules["selective_reeval"] = reeval
SPEC.loader.exec_module(reeval)


def test_each_committed_adapter_is_evaluated_on_a_new_test_file(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from tests.helpers.lora_model import train_mode_model

    train_mode_model(tiny_model_dir, lora=True).save_pretrained(tmp_path / "adapters" / "trice-i")
    rows = {
        "zero-shot": {"decision": {}},
        "trice-i": {"adapter": "adapters/trice-i", "decision": {}},
        "trice-i (threshold)": {"adapter": "adapters/trice-i", "decision": {"threshold": {"tau": 0.5}}},
    }
    (tmp_path / "results.json").write_text(json.dumps({"rows": rows}))
    test = tmp_path / "mine.jsonl"
    questions = [("a", "What is 2 plus 3?", "5"), ("b", "What is 4 times 2?", "8")]
    test.write_text("".join(json.dumps({"id": i, "dataset": "mine", "task": "math", "question": q, "answers": [a]}) + "\n" for i, q, a in questions))
    monkeypatch.setattr(reeval, "MODEL", str(tiny_model_dir))
    monkeypatch.setattr(reeval, "ROOT", tmp_path)
    scores = reeval.evaluate_committed(tmp_path, test, tmp_path / "reeval")
    assert set(scores) == {"trice-i", "trice-i (threshold)"}  # zero-shot trained no adapter
    for name, score in scores.items():
        low, high = score["interval"]
        assert 0.0 <= low <= score["accuracy"]["total"] <= high <= 1.0 and score["mean_p_call"] is not None
        assert len((tmp_path / "reeval" / name.replace(" ", "_") / "judged.jsonl").read_text().splitlines()) == 2
    assert reeval.row_config(rows["trice-i (threshold)"]).decision == "threshold"
    assert set(reeval.evaluate_committed(tmp_path, test, tmp_path / "reeval", only=["trice-i"])) == {"trice-i"}  # done: read back
    with pytest.raises(SystemExit, match="no row trice-ii"):
        reeval.evaluate_committed(tmp_path, test, tmp_path / "reeval", only=["trice-ii"])


def test_answers_are_restored_only_for_rows_that_reproduce_as_recorded(tmp_path: Path, caplog) -> None:
    def summary(asdiv: float, svamp: float, tool: float) -> dict:
        return {"summary": {"accuracy": {"asdiv-a": asdiv, "svamp": svamp}, "tool_rate": tool}, "adapter": "x"}

    rows = {"zero-shot": {"summary": {}}, "sft-100": summary(0.5, 1.0, 1.0), "trice-i": summary(1.0, 1.0, 1.0), "trice-i (dw)": summary(0.5, 0.0, 0.5)}
    (tmp_path / "results.json").write_text(json.dumps({"rows": rows}))
    judged = [("a1", "asdiv-a", True, True), ("a2", "asdiv-a", False, True), ("s1", "svamp", True, True)]
    for name in ("sft-100", "trice-i"):  # the same answers: sft-100's as recorded, trice-i's not; dw never evaluated again
        lines = [json.dumps({"id": i, "dataset": ds, "correct": c, "used_tool": u}) for i, ds, c, u in judged]
        (tmp_path / "reeval" / name).mkdir(parents=True)
        (tmp_path / "reeval" / name / "judged.jsonl").write_text("\n".join(lines) + "\n")
    restored = reeval.restored_answers(tmp_path, tmp_path / "reeval")
    assert restored == {"sft-100": {"asdiv-a": {"a1": (True, True), "a2": (False, True)}, "svamp": {"s1": (True, True)}}}
    assert "trice-i: evaluated again" in caplog.text and "not restored" in caplog.text
