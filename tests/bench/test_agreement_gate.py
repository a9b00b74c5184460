"""bench/agreement_gate.py: the gate answers alone exactly where enough samples agree, and its
numbers come out of TRICE-I's two dev branches and the samples."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SPEC = importlib.util.spec_from_file_location("agreement_gate", BENCH / "agreement_gate.py")
bench = importlib.util.module_from_spec(SPEC)
sys.modules["agreement_gate"] = bench
SPEC.loader.exec_module(bench)


def test_agreement_counts_samples_giving_the_greedy_value_as_numbers() -> None:
    assert bench.agreement("12", ["12.0", "12", "13", None]) == 2
    assert bench.agreement(None, ["12", "12"]) == 0


def _answered(run_dir, adapter, work, k, temperature):
    """TRICE-I's answers to four dev questions: call forced, calls forbidden, two own samples and two sampled calls."""
    #            id   dataset    call right  alone right  alone prediction
    questions = [("q1", "asdiv-a", True, True, "3"), ("q2", "asdiv-a", False, True, "5"), ("q3", "svamp", True, False, "7"), ("q4", "svamp", False, False, "9")]
    call = {q[0]: {"id": q[0], "dataset": q[1], "correct": q[2], "prediction": "0"} for q in questions}
    alone = {q[0]: {"id": q[0], "dataset": q[1], "correct": q[3], "prediction": q[4], "answers": [q[4] if q[3] else "1"]} for q in questions}
    samples = {"q1": ["3", "3"], "q2": ["5", "1"], "q3": ["7", "7"], "q4": ["1", "2"]}  # agreement 2, 1, 2, 0
    call_samples = {"q1": ["0", "0"], "q2": ["0", "4"], "q3": ["0", "0.0"], "q4": ["5", None]}  # disagreeing with the greedy call: 0, 1, 0, 2
    return call, alone, samples, call_samples


def test_the_gate_at_each_m_answers_alone_where_at_least_m_samples_agree(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "answered", _answered)
    result = bench.measure(tmp_path, tmp_path / "adapter", tmp_path / "work", 2, 0.7)
    gates = result["gates"]
    assert result["agreement_histogram"] == {"0": 1, "1": 1, "2": 2}
    assert gates[bench.ALWAYS_CALL]["accuracy"] == 0.5 and gates[bench.ALWAYS_CALL]["tool_use"] == 1.0
    # m=2 answers alone on q1 (right) and q3 (wrong, where the call was right)
    assert gates["agree>=2"]["alone"] == 2 and gates["agree>=2"]["alone_precision"] == 0.5
    assert gates["agree>=2"]["accuracy"] == 0.25 and gates["agree>=2"]["tool_use"] == 0.5
    # m=1 adds q2, right alone where the call was wrong
    assert gates["agree>=1"]["accuracy"] == 0.5 and gates["agree>=1"]["alone_precision"] == pytest.approx(2 / 3)
    assert gates["agree>=0"]["tool_use"] == 0.0 and gates["agree>=0"]["accuracy"] == 0.5
    assert result["auc_agreement_alone_right"] == pytest.approx(2.5 / 4)  # right alone: 2, 1; wrong: 2, 0 (one tie)
    assert result["break_even_precision"] == pytest.approx(0.5 / (0.5 + 0.5))
    assert gates["agree>=2"]["vs_always_call"]["difference"] == pytest.approx(-0.25)
    line = bench.summary_line(result)  # the best of each kind, the first of equals
    assert "AUC own 0.62, calls 1.00" in line and "agree>=0: 50% tool 0% vs call +0" in line and "vote>=2&call-split>=1: 75% tool 75%" in line
    # the vote: q4's samples "1", "2" outvote nothing (each once, the greedy "9" first) but q4's gold is "1"
    assert result["vote_right"] == 2 and gates["vote>=3"]["alone"] == 2 and gates["vote>=1"]["tool_use"] == 0.0


def test_the_vote_takes_the_most_frequent_value_and_the_greedy_one_on_ties() -> None:
    assert bench.majority("3", ["4", "4.0", "5"]) == ("4", 2)
    assert bench.majority("3", ["4", "4.0", "3"]) == ("3", 2)
    assert bench.majority("3", ["4", None]) == ("3", 1)
    assert bench.majority(None, [None]) == (None, 0)


def test_the_call_split_gates_answer_by_vote_where_the_sampled_calls_disagree_with_the_greedy_one(tmp_path, monkeypatch) -> None:
    """A vote gate already answers alone where the call's result and a confident own majority
    differ; the sampled calls add the call's own doubt."""
    monkeypatch.setattr(bench, "answered", _answered)
    result = bench.measure(tmp_path, tmp_path / "adapter", tmp_path / "work", 2, 0.7)
    gates = result["gates"]
    assert result["call_agreement_histogram"] == {"0": 1, "1": 1, "2": 2} and result["auc_call_agreement_call_right"] == 1.0
    assert (result["vote_wins"], result["vote_loses"]) == (1, 1)  # q2: the vote right, the call wrong; q3 the reverse
    # call-split>=1 answers alone on q2 (the vote right, the call wrong) and q4 (both wrong)
    assert gates["call-split>=1"]["alone"] == 2 and gates["call-split>=1"]["accuracy"] == 0.75 and gates["call-split>=1"]["alone_precision"] == 0.5
    assert gates["call-split>=2"]["alone"] == 1 and gates["call-split>=2"]["accuracy"] == 0.5
    # with the vote's own confidence too: q4's vote (1 of 3) is not confident, so only q2 (2 of 3) is answered alone
    assert gates["vote>=2&call-split>=1"]["alone"] == 1 and gates["vote>=2&call-split>=1"]["accuracy"] == 0.75
    assert gates["vote>=3&call-split>=1"]["alone"] == 0 and "vote>=4&call-split>=1" not in gates
