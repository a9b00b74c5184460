"""bench/call_decision.py's measures: the AUC of call probabilities and the groups it draws."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from trice.generation import models
from trice.core.prompts import task_prompt

SPEC = importlib.util.spec_from_file_location("call_decision", Path(__file__).resolve().parents[2] / "bench" / "call_decision.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def test_auc_counts_wins_and_half_ties() -> None:
    assert bench.pair_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert bench.pair_auc([0.1], [0.9]) == 0.0
    assert bench.pair_auc([0.5, 0.9], [0.5]) == 0.75


def test_measure_reports_what_greedy_decoding_calls() -> None:
    m = bench.measure({"own": [0.6, 0.7], "call": [0.8, 0.4]})
    assert m["own"]["share_above_half"] == 1.0 and m["call"]["share_above_half"] == 0.5
    assert m["auc_call_over_own"] == 0.5 and abs(m["own"]["mean"] - 0.65) < 1e-9


def test_groups_are_drawn_by_label_and_seed() -> None:
    rows = [{"id": str(i), "used_tool": i % 3 == 0} for i in range(30)]
    groups = bench.sample_groups(rows, 5, seed=0)
    assert all(r["used_tool"] for r in groups["call"]) and not any(r["used_tool"] for r in groups["own"])
    assert len(groups["own"]) == len(groups["call"]) == 5
    assert groups == bench.sample_groups(rows, 5, seed=0) and groups != bench.sample_groups(rows, 5, seed=1)


def test_mixed_point_takes_the_call_answer_only_where_called() -> None:
    own = {"a": True, "b": False, "c": False, "d": True}
    call = {"a": False, "b": True, "c": True, "d": True}
    datasets = dict.fromkeys(own, "x")
    oracle = bench.mixed_point({"b", "c"}, own, call, datasets, seed=0)  # call exactly where the own answer is wrong
    assert oracle["tool_share"] == 0.5 and oracle["accuracy"]["estimate"] == 1.0
    assert abs(oracle["minus_always_call"]["difference"] - 0.25) < 1e-9
    never = bench.mixed_point(set(), own, call, datasets, seed=0)
    assert never["tool_share"] == 0.0 and never["accuracy"]["estimate"] == 0.5


def test_frontier_calls_the_highest_probabilities_first() -> None:
    own = {"a": True, "b": False, "c": False, "d": True}
    call = dict.fromkeys(own, True)
    datasets = {"a": "x", "b": "x", "c": "y", "d": "y"}
    probs = {"a": 0.2, "b": 0.9, "c": 0.6, "d": 0.4}  # ranks the two wrong own answers highest
    f = bench.frontier(probs, own, call, datasets, seed=0)
    assert f["auc_own_wrong_over_right"] == 1.0
    half = f["by_tool_share"][5]
    assert half["tool_share"] == 0.5 and half["accuracy"]["estimate"] == 1.0
    assert f["by_tool_share"][0]["accuracy"]["estimate"] == 0.5 and f["by_tool_share"][-1]["tool_share"] == 1.0
    assert f["greedy"]["tool_share"] == 0.5  # 0.9 and 0.6 are above one half


def test_call_probability_is_the_first_call_tokens_share_of_the_next_token(tiny_model_dir, one_thread) -> None:
    model, tokenizer = models.load_model(str(tiny_model_dir))
    model.eval()
    rows = [{"task": "math", "question": q} for q in ("What is 2 plus 3?", "A farmer had 12 apples and gave 5 away. How many are left?")]
    probs = bench.call_probabilities(model, tokenizer, rows, "alpaca")
    first = tokenizer("calculator(", add_special_tokens=False)["input_ids"][0]
    for row, p in zip(rows, probs, strict=True):
        ids = tokenizer(task_prompt("math", row["question"], "alpaca", tokenizer), return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            full = torch.softmax(model(input_ids=ids).logits[0, -1].float(), -1)
        assert abs(p - full[first].item()) < 1e-5 and 0.0 < p < 1.0
