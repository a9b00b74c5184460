"""Hypothesis strategies for hostile tool input, and the seeded fuzz campaign.

Used by bench/fuzz_tools.py (the long campaign) and tests/tools/test_fuzz.py (the same properties,
fewer cases); the side-effect guard and the per-case observers they drive are in trice.tools.fuzz.
hypothesis is imported here, outside the trice package, because it is a test/bench extra
(``pip install -e '.[bench]'``), not a dependency of trice.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import hypothesis
from hypothesis import strategies as st

from trice.core.tools import ToolRegistry
from trice.tools.calculator import Calculator
from trice.tools.fuzz import new_stats, observe_calculator, observe_parse_call, record

TARGETS = ("calculator", "parse_call")

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


# --------------------------------------------------------------------------------------- strategies


def arithmetic_expressions() -> Any:
    """``(text, exact value)`` for valid integer arithmetic (+ - *, parentheses, thousands commas,
    spaces, ``x`` for times), small enough to stay inside every calculator bound."""
    leaves = st.integers(0, 99_999).flatmap(lambda n: st.sampled_from([str(n), f"{n:,}", f" {n} "]).map(lambda text: (text, n)))
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, " x ": lambda a, b: a * b}

    def combine(left: tuple[str, int], op: str, right: tuple[str, int]) -> tuple[str, int]:
        return f"({left[0]}){op}({right[0]})", ops[op](left[1], right[1])

    def extend(kids: Any) -> Any:
        return st.builds(combine, kids, st.sampled_from(sorted(ops)), kids)

    return st.recursive(leaves, extend, max_leaves=10)


def hostile_expressions() -> Any:
    """Text built to break an expression evaluator: depth, size, growth, look-alike digits, code."""
    digits = st.integers(-(10**6), 10**6).map(str)
    big = st.one_of(digits, st.integers(0, 10**400).map(str), st.floats().map(repr), st.sampled_from(["9", "10", ".5", "3.", "1e308"]))
    arithmetic = st.text(alphabet="0123456789.+-*/%^()eE,=x $×÷ ", max_size=80)
    nesting = st.builds(lambda opened, inner, closed: "(" * opened + inner + ")" * closed, st.integers(0, 3000), digits, st.integers(0, 3000))
    unary = st.builds(lambda op, n, x: op * n + x, st.sampled_from(["-", "+", "+-", "~", "not ", "("]), st.integers(1, 2000), digits)
    towers = st.builds(lambda parts, op: op.join(parts), st.lists(big, min_size=2, max_size=8), st.sampled_from(["**", "^", "*", "//", "%"]))
    growth = st.builds(  # (((2**50)**50)**50)
        lambda base, exps: reduce(lambda acc, e: f"({acc})**{e}", exps, base), big, st.lists(st.integers(-300, 300).map(str), min_size=1, max_size=6)
    )
    look_alikes = st.text(alphabet=UNICODE_DIGITS + "0123456789+-*/^().,= ", max_size=40)
    names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
    code = st.one_of(
        st.sampled_from(INJECTIONS),
        st.builds(lambda n, d: f"{n}.{d}", big, st.sampled_from(DUNDERS)),
        st.builds(lambda f, a: f"{f}({a})", names, arithmetic),
        st.builds(lambda a, n, b: f"{a}{n}{b}", arithmetic, names, arithmetic),
    )
    long = st.builds(lambda chunk, k: chunk * k, st.sampled_from(["9", "1+", "(", "-", "1,000", "**2", " ", "\x00", "٣"]), st.integers(100, 20_000))
    nul = st.builds(lambda a, b: a + "\x00" + b, arithmetic, arithmetic)
    return st.one_of(arithmetic, nesting, unary, towers, growth, look_alikes, code, long, nul, st.text(max_size=200))


def texts_with_calls() -> Any:
    """Model-like responses with ``calculator(`` embedded: prefixes that make it part of another
    identifier, odd spacing, unbalanced parentheses, several calls, hostile arguments."""
    prefix = st.sampled_from(["", " ", "my", "_", "x.", "1", "é", "Calculator", "\n"])
    opener = st.sampled_from(["(", " (", "\t(", "\n(", "((", "", ")("])
    closer = st.sampled_from([")", "", "))", ") )"])
    argument = st.one_of(hostile_expressions(), st.text(alphabet="()0123456789+*/ ", max_size=60))
    call = st.builds(lambda p, o, a, c: f"{p}calculator{o}{a}{c}", prefix, opener, argument, closer)
    return st.builds(
        lambda before, calls, after: before + "".join(calls) + after, st.text(max_size=80), st.lists(call, min_size=1, max_size=3), st.text(max_size=80)
    )


# ---------------------------------------------------------------------------------------- campaign


def run_campaign(target: str, n: int, seed: int = 0) -> dict[str, Any]:
    """Run ``n`` generated cases against ``target`` and count what happened.

    Cases come from hypothesis' generator (no shrinking, no example database) seeded with ``seed``,
    so a campaign is reproducible; the case function never fails, it only counts, so hypothesis runs
    exactly the generation phase.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown fuzz target {target!r}; known: {', '.join(TARGETS)}")
    stats = new_stats()
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
