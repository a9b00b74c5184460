"""Hostile-input generators and a fuzz campaign for the tools; shared by the tests and the benchmark.

A tool's argument is whatever a model wrote, so the tools must survive anything: each case must end
in a result or a typed :class:`ToolError`, within :data:`SLOW_SECONDS`, without touching the file
system, starting processes or executing code. Side effects are caught with an audit hook
(:func:`sys.addaudithook`), which sees every ``open`` (``builtins.open``, ``io.open``, ``os.open``, C
code alike), ``os.*``/``subprocess.*``/``socket.*`` call and ``exec``/``eval``; while a case runs it
records such an event and blocks it by raising.

hypothesis is a test extra (``pip install 'trice[test]'``), so it is imported only when a strategy
or a campaign is asked for.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from trice.tools.base import ToolCall, ToolError, ToolRegistry, ToolResult, parse_call
from trice.tools.calculator import Calculator

SLOW_SECONDS = 1.0
TARGETS = ("calculator", "parse_call")
MAX_FAILURE_EXAMPLES = 5

_FORBIDDEN_EVENTS = frozenset({"open", "exec"})
_FORBIDDEN_PREFIXES = ("os.", "shutil.", "subprocess.", "socket.", "ctypes.", "urllib.", "http.")

UNICODE_DIGITS = (
    "٠١٢٣٤٥٦٧٨٩"  # Arabic-Indic
    "۰۱۲۳۴۵۶۷۸۹"  # Extended Arabic-Indic
    "０１２３４５６７８９"  # full-width
    "⁰¹²³⁴⁵⁶⁷⁸⁹₀₁₂"  # super- and subscripts
    "𝟎𝟏𝟐𝟗①②½¼"  # mathematical bold, circled, vulgar fractions
    "٫٬＋－＊／（）"  # Arabic decimal/thousands separators, full-width operators
)
INJECTIONS = (
    "__import__('os').system('true')",
    "().__class__.__bases__[0].__subclasses__()",
    "(1).__class__",
    "lambda: 1",
    "(lambda x: x)(1)",
    "open('x')",
    "open('/etc/passwd').read()",
    "exec('1')",
    "eval('1+1')",
    "compile('1','f','eval')",
    "globals()",
    "[x for x in range(10**9)]",
    "'a'*10**9",
    "b'1'",
    "1 if True else 2",
    "1 < 2",
    "not 1",
    "~1",
    "1 << 1000000",
    "{}",
    "...",
    "1;2",
    "(yield)",
    "f'{1}'",
    "sum(range(10))",
    "abs(-1)",
    "x = 1",
)
DUNDERS = ("__class__", "__dict__", "__globals__", "__builtins__", "__subclasses__()", "__import__", "__code__")


def _hypothesis() -> Any:
    try:
        import hypothesis
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        raise ImportError("trice.tools.fuzz needs hypothesis: pip install 'trice[test]'") from err
    return hypothesis


class _Guard:
    """The audit hook's switch; ``events`` is None while no case runs, so the hook costs ~nothing."""

    events: list[str] | None = None
    installed = False


def _audit(event: str, args: tuple) -> None:
    if _Guard.events is not None and (event in _FORBIDDEN_EVENTS or event.startswith(_FORBIDDEN_PREFIXES)):
        _Guard.events.append(event)
        raise PermissionError(f"fuzzed tool attempted {event!r}")


@contextmanager
def no_side_effects() -> Iterator[list[str]]:
    """Record (and block) file, process, network and exec events inside the block.

    Audit hooks cannot be removed, so one hook is installed per process and switched on and off.
    """
    if not _Guard.installed:
        sys.addaudithook(_audit)
        _Guard.installed = True
    events: list[str] = []
    _Guard.events = events
    try:
        yield events
    finally:
        _Guard.events = None


@dataclass
class Outcome:
    """What one case did. ``status``: ok, error, no_call, unexpected (an exception that is not a
    ToolError, or a broken promise) or wrong (a valid expression with the wrong answer)."""

    status: str
    seconds: float
    error_kind: str | None = None
    detail: str = ""
    side_effects: list[str] = field(default_factory=list)


def _timed(fn: Callable[[], Outcome]) -> Outcome:
    with no_side_effects() as events:
        start = time.perf_counter()
        try:
            outcome = fn()
        except Exception as err:  # the point: anything but the promised outcomes is a finding
            outcome = Outcome("unexpected", 0.0, detail=f"{type(err).__name__}: {err}")
        outcome.seconds = time.perf_counter() - start
    outcome.side_effects = events
    return outcome


def observe_calculator(text: str, expected: int | None = None) -> Outcome:
    """Run the calculator directly (no registry to hide its exceptions); ``expected`` is the exact
    value of a generated valid expression, or None for hostile input."""

    def case() -> Outcome:
        try:
            output = Calculator().run(text)
        except ToolError as err:
            if expected is not None:
                return Outcome("wrong", 0.0, err.kind, f"{text!r}: {err}")
            return Outcome("error", 0.0, err.kind)
        if not isinstance(output, str):
            return Outcome("unexpected", 0.0, detail=f"returned {type(output).__name__}")
        if expected is not None and output != str(expected):
            return Outcome("wrong", 0.0, detail=f"{text!r} gave {output}, expected {expected}")
        return Outcome("ok", 0.0)

    return _timed(case)


def observe_parse_call(text: str, registry: ToolRegistry) -> Outcome:
    """Parse the first call in ``text`` and execute it through the registry, checking that the
    parsed call is one of the registry's tools with an argument taken from the text."""

    def case() -> Outcome:
        call = parse_call(text, registry.names)
        if call is None:
            return Outcome("no_call", 0.0)
        if not isinstance(call, ToolCall) or call.name not in registry or call.argument not in text:
            return Outcome("unexpected", 0.0, detail=f"bad parse {call!r} of {text!r}")
        result = registry.execute(call)
        if not isinstance(result, ToolResult) or result.ok != isinstance(result.output, str):
            return Outcome("unexpected", 0.0, detail=f"bad result {result!r}")
        return Outcome("ok", 0.0) if result.ok else Outcome("error", 0.0, result.error_kind)

    return _timed(case)


# --------------------------------------------------------------------------------------- strategies


def arithmetic_expressions() -> Any:
    """``(text, exact value)`` for valid integer arithmetic (+ - *, parentheses, thousands commas,
    spaces, ``x`` for times), small enough to stay inside every calculator bound."""
    st = _hypothesis().strategies
    leaves = st.integers(0, 99_999).flatmap(
        lambda n: st.sampled_from([str(n), f"{n:,}", f" {n} "]).map(lambda text: (text, n))
    )
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, " x ": lambda a, b: a * b}

    def combine(left: tuple[str, int], op: str, right: tuple[str, int]) -> tuple[str, int]:
        return f"({left[0]}){op}({right[0]})", ops[op](left[1], right[1])

    def extend(kids: Any) -> Any:
        return st.builds(combine, kids, st.sampled_from(sorted(ops)), kids)

    return st.recursive(leaves, extend, max_leaves=10)


def hostile_expressions() -> Any:
    """Text built to break an expression evaluator: depth, size, growth, look-alike digits, code."""
    st = _hypothesis().strategies
    digits = st.integers(-(10**6), 10**6).map(str)
    big = st.one_of(
        digits,
        st.integers(0, 10**400).map(str),
        st.floats().map(repr),
        st.sampled_from(["9", "10", ".5", "3.", "1e308"]),
    )
    arithmetic = st.text(alphabet="0123456789.+-*/%^()eE,=x $×÷ ", max_size=80)
    nesting = st.builds(
        lambda opened, inner, closed: "(" * opened + inner + ")" * closed,
        st.integers(0, 3000),
        digits,
        st.integers(0, 3000),
    )
    unary = st.builds(
        lambda op, n, x: op * n + x, st.sampled_from(["-", "+", "+-", "~", "not ", "("]), st.integers(1, 2000), digits
    )
    towers = st.builds(
        lambda parts, op: op.join(parts),
        st.lists(big, min_size=2, max_size=8),
        st.sampled_from(["**", "^", "*", "//", "%"]),
    )
    growth = st.builds(  # (((2**50)**50)**50)
        lambda base, exps: reduce(lambda acc, e: f"({acc})**{e}", exps, base),
        big,
        st.lists(st.integers(-300, 300).map(str), min_size=1, max_size=6),
    )
    look_alikes = st.text(alphabet=UNICODE_DIGITS + "0123456789+-*/^().,= ", max_size=40)
    names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
    code = st.one_of(
        st.sampled_from(INJECTIONS),
        st.builds(lambda n, d: f"{n}.{d}", big, st.sampled_from(DUNDERS)),
        st.builds(lambda f, a: f"{f}({a})", names, arithmetic),
        st.builds(lambda a, n, b: f"{a}{n}{b}", arithmetic, names, arithmetic),
    )
    long = st.builds(
        lambda chunk, k: chunk * k,
        st.sampled_from(["9", "1+", "(", "-", "1,000", "**2", " ", "\x00", "٣"]),
        st.integers(100, 20_000),
    )
    nul = st.builds(lambda a, b: a + "\x00" + b, arithmetic, arithmetic)
    return st.one_of(arithmetic, nesting, unary, towers, growth, look_alikes, code, long, nul, st.text(max_size=200))


def texts_with_calls() -> Any:
    """Model-like responses with ``calculator(`` embedded: prefixes that make it part of another
    identifier, odd spacing, unbalanced parentheses, several calls, hostile arguments."""
    st = _hypothesis().strategies
    prefix = st.sampled_from(["", " ", "my", "_", "x.", "1", "é", "Calculator", "\n"])
    opener = st.sampled_from(["(", " (", "\t(", "\n(", "((", "", ")("])
    closer = st.sampled_from([")", "", "))", ") )"])
    argument = st.one_of(hostile_expressions(), st.text(alphabet="()0123456789+*/ ", max_size=60))
    call = st.builds(lambda p, o, a, c: f"{p}calculator{o}{a}{c}", prefix, opener, argument, closer)
    return st.builds(
        lambda before, calls, after: before + "".join(calls) + after,
        st.text(max_size=80),
        st.lists(call, min_size=1, max_size=3),
        st.text(max_size=80),
    )


# ---------------------------------------------------------------------------------------- campaign


def _new_stats() -> dict[str, Any]:
    return {
        "cases": 0,
        "ok": 0,
        "no_call": 0,
        "errors": {},
        "unexpected": 0,
        "wrong": 0,
        "slow": 0,
        "max_seconds": 0.0,
        "fs_touches": 0,
        "failures": [],
    }


def record(stats: dict[str, Any], outcome: Outcome) -> None:
    """Add one outcome to campaign counts; failures keep a few details for the report."""
    stats["cases"] += 1
    if outcome.status in ("ok", "no_call", "unexpected", "wrong"):
        stats[outcome.status] += 1
    else:
        stats["errors"][outcome.error_kind] = stats["errors"].get(outcome.error_kind, 0) + 1
    stats["max_seconds"] = max(stats["max_seconds"], outcome.seconds)
    slow = outcome.seconds >= SLOW_SECONDS
    stats["slow"] += slow
    stats["fs_touches"] += len(outcome.side_effects)
    failed = outcome.status in ("unexpected", "wrong") or slow or outcome.side_effects
    if failed and len(stats["failures"]) < MAX_FAILURE_EXAMPLES:
        note = f"{outcome.status} {outcome.seconds:.3f}s {outcome.side_effects} {outcome.detail}"
        stats["failures"].append(note[:500])


def campaign_failed(stats: dict[str, Any]) -> bool:
    return bool(stats["unexpected"] or stats["wrong"] or stats["slow"] or stats["fs_touches"])


def run_campaign(target: str, n: int, seed: int = 0) -> dict[str, Any]:
    """Run ``n`` generated cases against ``target`` and count what happened.

    Cases come from hypothesis' generator (no shrinking, no example database) seeded with ``seed``,
    so a campaign is reproducible; the case function never fails, it only counts, so hypothesis runs
    exactly the generation phase.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown fuzz target {target!r}; known: {', '.join(TARGETS)}")
    hypothesis = _hypothesis()
    st = hypothesis.strategies
    stats = _new_stats()
    if target == "calculator":
        strategy = st.one_of(hostile_expressions().map(lambda text: (text, None)), arithmetic_expressions())

        def case(example: tuple[str, int | None]) -> None:
            record(stats, observe_calculator(*example))

    else:
        registry = ToolRegistry([Calculator()])
        strategy = texts_with_calls()

        def case(example: str) -> None:
            record(stats, observe_parse_call(example, registry))

    settings = hypothesis.settings(
        max_examples=n,
        database=None,
        deadline=None,
        derandomize=False,  # the explicit seed below decides the cases
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    hypothesis.seed(seed)(settings(hypothesis.given(strategy)(case)))()
    return stats
