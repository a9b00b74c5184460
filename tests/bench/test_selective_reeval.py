"""bench/selective_reeval.py (``selective_math_qwen.py --evaluate-on``): every committed adapter of the
results file evaluated on a bring-your-own-data JSONL, with its row's decoding, an interval and P(call)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

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
