"""The paper's lenient math metric (the last number, rounded to two decimals) and the answer-in-prefix
metric of the other tasks."""

from __future__ import annotations

import pytest

from trice.tasks.metrics import answer_in_prefix, last_number, math_correct


@pytest.mark.parametrize(
    "text,expected",
    [
        ("She sold 48 + 24 = 72 clips.", "72"),
        ("The answer is 1,000.", "1000"),
        ("It costs $5.50 each", "5.50"),
        ("Temperature dropped to -3 degrees", "-3"),
        ("5-3 is 2", "2"),
        ("no numbers here", None),
        ("version v2 of 3", "3"),
    ],
)
def test_last_number(text: str, expected: str | None) -> None:
    assert last_number(text) == expected


def test_math_correct_rounds_to_two_decimals() -> None:
    assert math_correct("72", ["72"])
    assert math_correct("72.0", ["72"])
    assert math_correct("0.333333", ["0.33"])
    assert not math_correct("0.34", ["0.33"])
    assert not math_correct(None, ["1"])
    assert not math_correct("abc", ["1"])
    assert math_correct("1000", ["1,000"])


def test_answer_in_prefix_first_20_words() -> None:
    assert answer_in_prefix("The capital is Paris, of course", ["paris"])
    assert not answer_in_prefix(" ".join(["word"] * 20) + " Paris", ["Paris"])
    assert not answer_in_prefix(None, ["Paris"])
