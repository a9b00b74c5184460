"""Execution-feedback rewards: every state, ties with the gold, no-prediction, the released rule, plug-ins."""

from __future__ import annotations

import itertools

import pytest

from trice.stage2.reward import PAPER_SCORES, REWARD_STRATEGIES, original_scores, paper_scores, register_reward, response_states, score_responses
from trice.tasks import Judgement

GOLD_TOOL = Judgement("72", True, used_tool=True)
GOLD_DIRECT = Judgement("72", True, used_tool=False)


def J(prediction: str | None, correct: bool, used_tool: bool) -> Judgement:
    return Judgement(prediction, correct, used_tool)


# ---- paper strategy ------------------------------------------------------------------------------


@pytest.mark.parametrize("gold", [GOLD_TOOL, GOLD_DIRECT], ids=["gold-tool", "gold-direct"])
@pytest.mark.parametrize("correct, same_tool", list(itertools.product([True, False], [True, False])))
def test_paper_every_state(gold, correct, same_tool):
    used = gold.used_tool if same_tool else not gold.used_tool
    cand = J("72" if correct else "70", correct, used)
    state = f"{correct}-{'Yes' if same_tool else 'No'}"
    assert response_states([gold, cand]) == ["gold", state]
    assert paper_scores([gold, cand]) == [20.0, {"True-Yes": 20, "True-No": 15, "False-Yes": 10, "False-No": 5}[state]]


def test_paper_order_and_ties():
    cands = [GOLD_TOOL, J("1", False, False), J("72", True, True), J("2", False, True), J("72", True, False), J("72", True, True), J(None, False, True)]
    scores = paper_scores(cands)
    assert scores == [20, 5, 20, 10, 15, 20, 0]
    assert scores[2] == scores[0]  # a True-Yes candidate ties with the gold
    assert scores[2] == scores[5]  # equal states, equal scores


@pytest.mark.parametrize("used_tool", [True, False])
def test_no_prediction_scores_zero_in_both_strategies(used_tool):
    cands = [GOLD_TOOL, J(None, False, used_tool)]
    assert response_states(cands)[1] == "no-prediction"
    assert paper_scores(cands)[1] == 0 == original_scores(cands, task_name="math", answers=["72"])[1]


def test_gold_index_other_than_zero():
    cands = [J("70", False, False), GOLD_DIRECT]
    assert paper_scores(cands, 1) == [PAPER_SCORES["False-Yes"], 20]


def test_gold_scores_top_even_when_wrong():
    gold = J("70", False, True)
    assert paper_scores([gold, J("72", True, True)]) == [20, 20]
    assert paper_scores([gold, J("1", False, False)])[0] == 20


# ---- original strategy ---------------------------------------------------------------------------


def test_original_all_correct_and_tool_mismatch():
    cands = [GOLD_TOOL, J("72", True, True), J("72", True, False)]
    assert original_scores(cands, task_name="math", answers=["72"]) == [20, 20, 15]


def test_original_math_wrong_by_distance_starts_at_15():
    # no correct candidate misused the tool: the wrong ones start at 15, nearest first
    cands = [GOLD_TOOL, J("73", False, True), J("60", False, False), J("71", False, False), J("100", False, True)]
    assert original_scores(cands, task_name="math", answers=["72"]) == [20, 15, 10, 15, 5]


def test_original_math_wrong_start_lower_after_a_tool_mismatch_and_floor_at_5():
    cands = [GOLD_TOOL, J("72", True, False), J("73", False, True), J("80", False, True), J("1000", False, False)]
    assert original_scores(cands, task_name="math", answers=["72"]) == [20, 15, 10, 5, 5]


def test_original_math_rounds_to_2_decimals_and_uses_nearest_gold_answer():
    cands = [GOLD_TOOL, J("70.001", False, True), J("69.999", False, True), J("50", False, True)]
    assert original_scores(cands, task_name="math", answers=["72"]) == [20, 15, 15, 10]
    assert original_scores([GOLD_TOOL, J("9", False, True), J("20", False, True)], task_name="math", answers=["72", "10"]) == [20, 15, 10]


def test_original_unreadable_numbers_are_farthest():
    cands = [GOLD_TOOL, J("abc", False, False), J("70", False, True)]
    assert original_scores(cands, task_name="math", answers=["72"]) == [20, 10, 15]
    assert original_scores(cands, task_name="math", answers=["n/a"]) == [20, 15, 15]


def test_original_other_tasks_share_one_wrong_level():
    cands = [J("Paris", True, True), J("Lyon", False, True), J("Nice", False, False), J("Paris", True, False)]
    assert original_scores(cands, task_name="qa", answers=["Paris"]) == [20, 10, 10, 15]
    assert original_scores(cands[:3], task_name="qa", answers=["Paris"]) == [20, 15, 15]


# ---- score_responses with the real calculator ----------------------------------------------------


def test_score_responses_math_end_to_end():
    responses = ["calculator(48+48/2)", "The answer is 72.", "calculator(48+25)", "It is 70.", "calculator(1/0)", "no idea"]
    predictions, scores, judgements = score_responses("math", responses, ["72"])
    assert predictions == ["72", "72", "73", "70", None, None]
    assert scores == [20, 15, 10, 5, 0, 0]
    assert [j.used_tool for j in judgements] == [True, False, True, False, True, False]
    assert judgements[4].tool_error is not None
    _, original, _ = score_responses("math", responses, ["72"], strategy="original")
    assert original == [20, 15, 10, 5, 0, 0]


def test_score_responses_refuses_unknown_strategy_and_no_responses():
    with pytest.raises(ValueError, match="unknown reward strategy 'nope'.*paper"):
        score_responses("math", ["1"], ["1"], strategy="nope")
    with pytest.raises(ValueError, match="gold"):
        score_responses("math", [], ["1"])


# ---- plug-ins ------------------------------------------------------------------------------------


@pytest.fixture
def clean_registry():
    before = dict(REWARD_STRATEGIES)
    yield
    REWARD_STRATEGIES.clear()
    REWARD_STRATEGIES.update(before)


def test_register_custom_strategy(clean_registry):
    seen = {}

    def binary(judgements, gold_index=0, *, task_name, answers):
        seen.update(task_name=task_name, answers=list(answers), gold_index=gold_index)
        return [1.0 if j.correct else 0.0 for j in judgements]

    assert register_reward("binary", binary) is binary
    _, scores, _ = score_responses("math", ["calculator(2+3)", "6", "5"], ["5"], strategy="binary")
    assert scores == [1.0, 0.0, 1.0]
    assert seen == {"task_name": "math", "answers": ["5"], "gold_index": 0}


def test_register_refuses_duplicates_non_callables_and_bad_outputs(clean_registry):
    with pytest.raises(ValueError, match="already registered"):
        register_reward("paper", paper_scores)
    with pytest.raises(TypeError):
        register_reward("x", 3)  # type: ignore[arg-type]
    register_reward("short", lambda judgements, gold_index=0, **_: [1.0])
    with pytest.raises(ValueError, match="returned"):
        score_responses("math", ["1", "2"], ["1"], strategy="short")
    register_reward("nan", lambda judgements, gold_index=0, **_: [float("nan")] * len(judgements))
    with pytest.raises(ValueError, match="returned"):
        score_responses("math", ["1"], ["1"], strategy="nan")
