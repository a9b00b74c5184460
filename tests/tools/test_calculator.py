"""The calculator: right answers for the arithmetic models write, typed errors for everything else."""

from __future__ import annotations

import time

import pytest

from trice.tools.calculator import Calculator
from trice.core.tools import ToolError
from trice.tools.calculator import MAX_DEPTH, format_number, parse_number
from trice.tools.fuzz import SLOW_SECONDS


@pytest.fixture
def calc() -> Calculator:
    return Calculator()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("48+48/2", "72"),
        ("2^3", "8"),
        ("1,000*2", "2000"),
        ("12,345,678 + 2", "12345680"),
        ("7/2", "3.5"),
        ("-3+5", "2"),
        ("+4", "4"),
        ("(2+3)*4", "20"),
        ("10//3", "3"),
        ("10%3", "1"),
        ("-7%3", "2"),
        ("2**-1", "0.5"),
        ("48/2", "24"),
        ("48/2=24", "24"),
        ("48/2 = 24.0", "24"),
        ("48/2=", "24"),
        ("12 x 5", "60"),
        ("12x5", "60"),
        ("3 × 4", "12"),
        ("10 ÷ 4", "2.5"),
        ("$5.50 * 2", "11"),
        (".5 + 3.", "3.5"),
        ("0.1+0.2", "0.3"),
        ("1/3", "0.333333"),
        ("2/3", "0.666667"),
        ("2**0.5", "1.414214"),
        ("08 + 1", "9"),
        ("  (1 +\n 2)  ", "3"),
        ("10**100", str(10**100)),
        ("1e3", "1000"),
        ("(-2)**3", "-8"),
        ("2**-100", "0"),
    ],
)
def test_arithmetic(calc: Calculator, expression: str, expected: str) -> None:
    assert calc.run(expression) == expected


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("9**9**9", "limit"),
        ("10**10**10", "limit"),
        ("2^2^2^2^2^2", "limit"),
        ("(((2**50)**50)**50)", "limit"),
        ("1e308*10", "limit"),
        ("1e400", "limit"),
        ("10**100*10", "limit"),
        ("9" * 10_000, "limit"),
        ("9" * 200, "limit"),
        ("(" * 10_000 + "1" + ")" * 10_000, "limit"),
        ("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), "limit"),
        ("-" * 400 + "1", "limit"),
        ("1+" * 240 + "1", "limit"),
        ("__import__('os')", "bad_argument"),
        ("().__class__", "bad_argument"),
        ("(1).__class__", "bad_argument"),
        ("lambda: 1", "bad_argument"),
        ("open('x')", "bad_argument"),
        ("eval('1')", "bad_argument"),
        ("1 .e", "bad_argument"),
        ("(1)(2)", "bad_argument"),
        ("...", "bad_argument"),
        ("1 < 2", "bad_argument"),
        ("~1", "bad_argument"),
        ("1\x00+1", "bad_argument"),
        ("\x00", "bad_argument"),
        ("١٢+١", "bad_argument"),
        ("１２+３", "bad_argument"),
        ("²", "bad_argument"),
        ("1/0", "bad_argument"),
        ("1//0", "bad_argument"),
        ("1%0", "bad_argument"),
        ("0**-1", "bad_argument"),
        ("(-8)**(1/3)", "bad_argument"),
        ("1,0000", "bad_argument"),
        ("(1,2)", "bad_argument"),
        ("2=3=4", "bad_argument"),
        ("2=x", "bad_argument"),
        ("", "bad_argument"),
        ("   ", "bad_argument"),
        ("2 +", "bad_argument"),
        ("(1+2", "bad_argument"),
    ],
)
def test_hostile_inputs_fail_fast_with_a_typed_error(calc: Calculator, expression: str, kind: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ToolError) as err:
        calc.run(expression)
    assert time.perf_counter() - start < SLOW_SECONDS
    assert err.value.kind == kind
    assert len(str(err.value)) < 200  # the model reads it back: short and to the point


def test_non_text_argument_is_a_bad_argument(calc: Calculator) -> None:
    with pytest.raises(ToolError) as err:
        calc.run(12)  # type: ignore[arg-type]
    assert err.value.kind == "bad_argument"


@pytest.mark.parametrize(
    ("value", "text"), [(0.2, "0.2"), (10.0, "10"), (1 / 3, "0.333333"), (-0.0, "0"), (-1e-9, "0"), (72, "72"), (-5, "-5"), (2.5e20, "2.5e+20")]
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def test_format_number_refuses_non_numbers() -> None:
    with pytest.raises(ValueError):
        format_number(float("nan"))
    with pytest.raises(TypeError):
        format_number(True)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,000", 1000.0),
        ("72", 72.0),
        ("$5.50", 5.5),
        ("-3", -3.0),
        (" 72. ", 72.0),
        ("1,234,567.5", 1234567.5),
        ("abc", None),
        ("", None),
        ("1,00", None),
        ("١٢", None),
        ("inf", None),
        ("nan", None),
        ("9" * 400, None),
        ("1e999", None),
        ("5 apples", None),
    ],
)
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value
