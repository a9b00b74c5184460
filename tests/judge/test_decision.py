"""trice.judge.decision: the precision an answer-alone gate needs before it wins anything."""

from __future__ import annotations

import pytest

from trice.judge.decision import break_even_precision


def _questions(right_call_wrong: int, right_call_right: int, wrong_call_right: int, wrong_call_wrong: int) -> tuple[dict, dict]:
    kinds = [(True, False)] * right_call_wrong + [(True, True)] * right_call_right + [(False, True)] * wrong_call_right + [(False, False)] * wrong_call_wrong
    return {i: a for i, (a, _) in enumerate(kinds)}, {i: c for i, (_, c) in enumerate(kinds)}


def test_the_break_even_weighs_what_a_gate_wins_against_what_it_loses() -> None:
    # own right on 10 (the call wrong on 2 of them), own wrong on 10 (the call right on 6)
    alone, call = _questions(2, 8, 6, 4)
    p = break_even_precision(alone, call)
    assert p == pytest.approx(0.6 / (0.6 + 0.2))
    # a gated set at exactly that own accuracy, drawn in proportion from each kind, gains nothing:
    # its right alone answers win where the call was wrong (2 of 10), its wrong ones lose where it was right (6 of 10)
    assert p * 2 / 10 - (1 - p) * 6 / 10 == pytest.approx(0.0)


def test_a_call_that_is_never_wrong_where_the_model_is_right_leaves_nothing_to_win() -> None:
    alone, call = _questions(0, 5, 3, 2)
    assert break_even_precision(alone, call) == 1.0


@pytest.mark.parametrize(("counts"), [(0, 0, 3, 2), (1, 2, 0, 0), (0, 4, 0, 4)], ids=["never-right-alone", "never-wrong-alone", "calls-equal-own"])
def test_no_break_even_without_both_kinds_or_any_difference(counts: tuple[int, int, int, int]) -> None:
    assert break_even_precision(*_questions(*counts)) is None
