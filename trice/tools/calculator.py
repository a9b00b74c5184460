"""The calculator tool: arithmetic over numbers the way models write it, safe on any input.

The argument is model output, so it is treated as hostile. It is never given to ``eval``/``exec``:
after a linear text normalisation it is parsed with ``ast.parse`` (which builds a tree and runs
nothing) and the tree is walked by hand, accepting only numbers, ``+ - * / // % **`` and unary
signs. Structural bounds keep every input far below a millisecond of work:

* the text is at most :data:`MAX_INPUT_CHARS` long and each digit run at most
  :data:`MAX_LITERAL_DIGITS` (checked before any number is converted);
* parentheses nest at most :data:`MAX_DEPTH` deep (a linear scan before ``ast.parse``, so deep
  nesting never reaches the C parser's recursion), and the tree has at most :data:`MAX_NODES`
  nodes (which also bounds the walker's recursion);
* every literal and intermediate result has magnitude at most :data:`MAX_MAGNITUDE`, and a power is
  refused *before* it is computed when ``|exponent| > MAX_EXPONENT`` or ``log10`` says the result
  would pass the bound, so ``9**9**9`` fails at once instead of building a huge integer.

Everything the calculator cannot answer raises :class:`ToolError` with kind ``bad_argument``
(not arithmetic, division by zero) or ``limit`` (a bound was hit).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

from trice.core.tools import ToolError

MAX_INPUT_CHARS = 500  # a calculation a model writes is a line, not a page
MAX_LITERAL_DIGITS = 120  # digits in one number; far below Python's int-parsing limit of 4300
MAX_DEPTH = 32  # nested parentheses
MAX_NODES = 200  # syntax-tree nodes (numbers, operators); also bounds the walker's recursion
MAX_EXPONENT = 100  # |exponent| of a power
MAX_MAGNITUDE = 10**100  # |value| of every literal and intermediate result
_MAX_LOG10 = math.log10(MAX_MAGNITUDE)
DECIMALS = 6  # places a float result is rounded to

Number = int | float

# Only ASCII digits count: ``\d`` would also accept Arabic-Indic or full-width digits.
_THOUSANDS = re.compile(r"(?<![0-9.])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])")
_TIMES = re.compile(r"(?<=[0-9.)])\s*[xX]\s*(?=[0-9.(])")
_LEADING_ZEROS = re.compile(r"(?<![0-9.eE])0+(?=[0-9])")
_DIGIT_RUN = re.compile(rf"[0-9]{{{MAX_LITERAL_DIGITS + 1},}}")
_ALLOWED = frozenset("0123456789.+-*/%()eE ")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


def _bad(message: str) -> ToolError:
    return ToolError("bad_argument", message)


def _limit(message: str) -> ToolError:
    return ToolError("limit", message)


def _drop_thousands_commas(text: str) -> str:
    return _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)


def parse_number(text: str) -> float | None:
    """``text`` as a float when it is one number ("1,000", "72", "$5.50", "-3", "72."), else None.

    The math metric compares a model's final answer with the reference through this, so it accepts
    the decorations answers carry (dollar signs, thousands commas, a sentence's final dot) and
    nothing else: no words, no unicode digits, no infinities.
    """
    if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS:
        return None
    cleaned = _drop_thousands_commas(text.strip().replace("$", ""))
    if not _NUMBER.fullmatch(cleaned):
        return None
    value = float(cleaned)
    return value if math.isfinite(value) else None


def format_number(value: Number) -> str:
    """The text the model reads back: ints exact, floats rounded to :data:`DECIMALS` places.

    Trailing zeros are dropped (``10.0`` -> ``"10"``, ``0.2`` -> ``"0.2"``) so a result reads like the
    numbers in the problem and the model can copy it into its answer.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    if abs(value) >= 1e16:  # beyond float's exact integers: print the significant digits only
        return f"{value:.15g}"
    rounded = round(value, DECIMALS)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.{DECIMALS}f}".rstrip("0").rstrip(".")


def _normalise(text: str) -> str:
    """Rewrite the ways models write arithmetic into Python syntax, or refuse the text."""
    text = text.replace("×", "*").replace("÷", "/").replace("$", "")
    text = " ".join(text.split())
    left, equals, right = text.partition("=")
    if equals:
        # "48/2=24" or "48/2 =": the model wrote the result too; evaluate the left side.
        if "=" in right or (right.strip() and parse_number(right) is None):
            raise _bad("'=' is only allowed at the end, as in '48/2=24'")
        text = left
    text = _drop_thousands_commas(text)
    if "," in text:
        raise _bad("commas are only allowed as thousands separators, as in '1,000'")
    text = _TIMES.sub("*", text).replace("^", "**")
    for ch in text:
        if ch not in _ALLOWED:
            if ch.isalpha() or ch == "_":
                raise _bad(f"names and functions are not supported (found {ch!r}); use numbers and + - * / // % ** ( )")
            raise _bad(f"unsupported character {ch!r}")
    if _DIGIT_RUN.search(text):
        raise _limit(f"a number is longer than {MAX_LITERAL_DIGITS} digits")
    return _LEADING_ZEROS.sub("", text).strip()


def _check_depth(text: str) -> None:
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise _limit(f"parentheses nest deeper than {MAX_DEPTH}")
        elif ch == ")":
            depth -= 1


def _parse(text: str) -> ast.expr:
    if not text:
        raise _bad("empty expression")
    _check_depth(text)
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as err:
        raise _bad(f"not an arithmetic expression: {getattr(err, 'msg', err)}") from None
    except (RecursionError, MemoryError):
        raise _limit("expression too complex") from None
    for count, _ in enumerate(ast.walk(tree), start=1):
        if count > MAX_NODES:
            raise _limit(f"expression has more than {MAX_NODES} parts")
    return tree.body


def _checked(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise _limit("result is not a finite number")
    # Floats compare with the float 1e100, which is a little above 10**100, so "1e100" passes too.
    if abs(value) > (MAX_MAGNITUDE if isinstance(value, int) else float(MAX_MAGNITUDE)):
        raise _limit("result is larger than 1e100")
    return value


def _divide(a: Number, b: Number) -> Number:
    if b == 0:
        raise _bad("division by zero")
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b  # 48/2 reads back as "24", and stays exact for later steps
    return a / b


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise _bad("division by zero")
    return a // b


def _mod(a: Number, b: Number) -> Number:
    if b == 0:
        raise _bad("modulo by zero")
    return a % b


def _power(base: Number, exponent: Number) -> Number:
    """``base ** exponent``, refused before computing when the result would break the bounds."""
    if abs(exponent) > MAX_EXPONENT:
        raise _limit(f"exponent larger than {MAX_EXPONENT}")
    if base == 0:
        if exponent < 0:
            raise _bad("division by zero (zero to a negative power)")
        return 1 if exponent == 0 else 0
    if base < 0 and exponent != int(exponent):
        raise _bad("a negative number to a fractional power is not a real number")
    if math.log10(abs(base)) * exponent > _MAX_LOG10 + 1:
        raise _limit("result is larger than 1e100")
    return base**exponent


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _evaluate(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise _bad(f"unsupported constant {node.value!r}")
        return _checked(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _checked(_BINARY[type(node.op)](_evaluate(node.left), _evaluate(node.right)))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    raise _bad(f"unsupported syntax: {type(node).__name__}")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression, or :class:`ToolError` (see the module docstring)."""
    if not isinstance(expression, str):
        raise _bad("the argument must be text")
    if len(expression) > MAX_INPUT_CHARS:
        raise _limit(f"expression longer than {MAX_INPUT_CHARS} characters")
    return _evaluate(_parse(_normalise(expression)))


class Calculator:
    """``calculator(48+48/2)`` -> ``"72"``."""

    name = "calculator"

    def run(self, argument: str) -> str:
        return format_number(evaluate(argument))
