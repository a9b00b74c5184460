"""Property tests on hostile input: the tools answer or fail with a typed error, fast, with no side
effects. The side-effect guard lives in trice.tools.fuzz and the hypothesis strategies in
bench/fuzz_cases.py, shared with bench/fuzz_tools.py, which runs the same properties over a longer
campaign."""

from __future__ import annotations

import builtins
import importlib.util
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trice.tools.calculator import Calculator
from trice.core.tools import ToolCall, ToolRegistry
from trice.tools.calculator import parse_number
from trice.tools.fuzz import SLOW_SECONDS, Outcome, campaign_failed, no_side_effects, observe_calculator, observe_parse_call

SPEC = importlib.util.spec_from_file_location("fuzz_cases", Path(__file__).resolve().parents[2] / "bench" / "fuzz_cases.py")
fuzz_cases = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(fuzz_cases)
arithmetic_expressions, hostile_expressions = fuzz_cases.arithmetic_expressions, fuzz_cases.hostile_expressions
texts_with_calls, run_campaign = fuzz_cases.texts_with_calls, fuzz_cases.run_campaign

FUZZ = settings(max_examples=1500, deadline=1000, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
REGISTRY = ToolRegistry([Calculator()])


def _assert_survived(outcome: Outcome) -> None:
    assert outcome.status in ("ok", "error", "no_call"), outcome.detail
    assert outcome.seconds < SLOW_SECONDS
    assert outcome.side_effects == []


@FUZZ
@given(hostile_expressions())
def test_calculator_survives_hostile_expressions(text: str) -> None:
    _assert_survived(observe_calculator(text))


@FUZZ
@given(st.text(max_size=300))
def test_calculator_survives_random_text(text: str) -> None:
    _assert_survived(observe_calculator(text))


@settings(FUZZ, max_examples=500)
@given(arithmetic_expressions())
def test_calculator_is_exact_on_integer_arithmetic(case: tuple[str, int]) -> None:
    text, value = case
    outcome = observe_calculator(text, value)
    assert outcome.status == "ok", outcome.detail
    assert parse_number(Calculator().run(text)) == float(value)


@FUZZ
@given(st.one_of(hostile_expressions(), st.text(max_size=300)))
def test_registry_execute_never_raises(argument: str) -> None:
    result = REGISTRY.execute(ToolCall("calculator", argument))
    assert result.ok == isinstance(result.output, str)
    assert result.ok or result.error_kind in ("bad_argument", "limit")


@FUZZ
@given(texts_with_calls())
def test_parse_call_and_execute_survive_model_text(text: str) -> None:
    _assert_survived(observe_parse_call(text, REGISTRY))


def test_guard_catches_and_blocks_file_access() -> None:
    with no_side_effects() as events:
        try:
            builtins.open(__file__).close()
        except PermissionError:
            pass
    assert events == ["open"]

    class Sneaky:
        name = "calculator"

        def run(self, argument: str) -> str:
            with open(__file__) as handle:
                return handle.read(1)

    outcome = observe_parse_call("calculator(1)", ToolRegistry([Sneaky()]))
    assert outcome.side_effects == ["open"] and outcome.status == "error"


def test_small_campaign_counts_every_case() -> None:
    for target in ("calculator", "parse_call"):
        stats = run_campaign(target, 200, seed=1)
        assert stats["cases"] >= 200
        counted = stats["ok"] + stats["no_call"] + sum(stats["errors"].values()) + stats["unexpected"] + stats["wrong"]
        assert stats["cases"] == counted
        assert not campaign_failed(stats), stats["failures"]
