"""Knowledge-boundary labels: each training question's own accuracy over the greedy answer and the
sampled ones, and the label rule that keeps an own answer only where enough of them are right."""

from __future__ import annotations

import pytest

from trice.core.schema import Example
from trice.stage1.boundary import ProbeSamplesConfig, boundary_rows, boundary_stats, own_accuracy, question_id, sample_examples
from trice.stage1.label import knowledge_boundary, label_rows


def _probe(qid: str, correct: bool, response: str = "") -> dict:
    return {"id": qid, "dataset": "svamp", "task": "math", "question": f"q{qid}", "answers": ["7"], "correct": correct,
            "response": response or f"greedy {qid}", "tool_call": "calculator(3+4)"}  # fmt: skip


def _sample(qid: str, j: int, correct: bool) -> dict:
    return {"id": f"{qid}#s{j}", "correct": correct, "response": f"sample {j} of {qid}"}


PROBE = [_probe("a", True), _probe("b", True), _probe("c", False), _probe("d", False)]
SAMPLES = (
    [_sample("a", j, True) for j in (1, 2, 3)]  # knows it: 4 of 4
    + [_sample("b", j, j == 3) for j in (3, 1, 2)]  # a lucky greedy answer: 2 of 4 (order in the file does not matter)
    + [_sample("c", 1, False), _sample("c", 2, True), _sample("c", 3, True)]  # an unlucky one: 3 of 4
    + [_sample("d", j, False) for j in (1, 2, 3)]
)


def test_samples_are_copies_whose_ids_name_their_question() -> None:
    copies = sample_examples([Example("q1", "svamp", "math", "How many?", ("3",), "calculator(1+2)")], 3)
    assert [e.id for e in copies] == ["q1#s1", "q1#s2", "q1#s3"] and {question_id(e.id) for e in copies} == {"q1"}
    assert {(e.question, e.answers, e.tool_call) for e in copies} == {("How many?", ("3",), "calculator(1+2)")}


def test_own_accuracy_counts_the_greedy_and_sampled_answers_and_keeps_one_right_answer() -> None:
    own = {row["id"]: row for row in own_accuracy(PROBE, SAMPLES)}
    assert [(own[q]["right"], own[q]["answers"]) for q in "abcd"] == [(4, 4), (2, 4), (2, 4), (0, 4)]
    assert own["b"]["samples_correct"] == [False, False, True]  # in sample order, not file order
    assert own["a"]["own_response"] == "greedy a"  # the greedy answer where it is right
    assert own["c"]["own_response"] == "sample 2 of c"  # else the first right sample
    assert own["d"]["own_response"] is None and own["d"]["own_accuracy"] == 0.0


def test_the_rule_turns_a_lucky_greedy_answer_into_a_call_and_a_known_question_into_an_own_answer() -> None:
    rows = boundary_rows(PROBE, own_accuracy(PROBE, SAMPLES), own_if=2)
    assert [r["correct"] for r in rows] == [True, True, True, False]
    assert rows[2]["response"] == "sample 2 of c"
    strict = boundary_rows(PROBE, own_accuracy(PROBE, SAMPLES), own_if=3)
    assert [r["correct"] for r in strict] == [True, False, False, False]
    stats = boundary_stats(own_accuracy(PROBE, SAMPLES), 3)
    assert stats | {"mean_own_accuracy": 0} == {
        "own_if": 3, "answers_per_question": 4, "questions_by_right_answers": {"0": 1, "2": 2, "4": 1},
        "greedy_right_now_call": 1, "greedy_wrong_now_own": 0, "mean_own_accuracy": 0,
    }  # fmt: skip


def test_d_tool_under_the_rule_and_unchanged_without_it() -> None:
    calls = {q: ("calculator(3+4)", "annotation") for q in "abcd"}
    paper, none = knowledge_boundary(PROBE, 0, [])
    assert paper == PROBE and none == {}
    rows, extra = knowledge_boundary(PROBE, 3, own_accuracy(PROBE, SAMPLES))
    out, stats = label_rows(rows, "trice", calls)
    assert [(r["id"], r["used_tool"]) for r in out] == [("a", False), ("b", True), ("c", True), ("d", True)]
    assert stats["right"] == 1 and extra["boundary"]["greedy_right_now_call"] == 1


def test_samples_missing_for_a_probed_question_fail_naming_it() -> None:
    with pytest.raises(ValueError, match="first: d"):
        boundary_rows(PROBE, own_accuracy(PROBE[:3], SAMPLES), own_if=2)


@pytest.mark.parametrize(
    ("values", "message"),
    [({"samples": -1}, "samples: must be >= 0"), ({"sample_temperature": 0}, "sample_temperature: must be > 0"), ({"sample_top_p": 1.5}, "sample_top_p")],
)
def test_bad_sample_settings_are_refused(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProbeSamplesConfig(**values).validate()
