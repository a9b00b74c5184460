"""GSM8K, SVAMP and ASDiv as :class:`Example` records (task ``"math"``).

Each example carries a reference ``calculator(<expression>)`` call built from the dataset's own
annotations. GSM8K and ASDiv calls are kept only where the annotation's stated result is the gold
answer: a call that computes something else would teach the model a wrong use of the tool. SVAMP's
equations have no stated result and are taken as given (one of 1000 disagrees with its answer).

* GSM8K ships official train/test files; its ``<<48/2=24>>`` step annotations are composed into
  one expression (:func:`compose_gsm8k_steps`).
* SVAMP and ASDiv ship no split: they are split by :func:`trice.core.schema.seeded_split`, which
  hashes each id, so a problem's side never depends on file order.
* ASDiv problems whose answer is not one number (ratios, times, names, several values) are
  skipped and counted, since the math metric compares numbers.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from xml.parsers import expat

from trice.core.paths import require_file
from trice.core.records import check_unique, json_array_records, nonblank_lines
from trice.core.schema import SPLITS, Example, LoadedDataset, describe, split_seeded
from trice.utils.io import DataError, check_fields, read_jsonl

TASK = "math"
MAX_EXPRESSION_CHARS = 500
DEFAULT_SEED = 0
DEFAULT_TEST_FRACTION = 0.3

# A number as written in the data: thousands commas only in groups of three, so "5,7" stays two.
_NUMBER_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+")
_DECIMAL_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_ARITHMETIC_CHARS_RE = re.compile(r"[\d.,+\-*/()\s]*")
_ARITHMETIC_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)


# ---------------------------------------------------------------------------------------------
# Numbers and expressions


def plain_number(text: str) -> str:
    """A decimal number without thousands commas, trailing zeros or exponent: ``"1,200.50"`` -> ``"1200.5"``."""
    return format(Decimal(text.replace(",", "")).normalize(), "f")


def _value(text: str) -> Fraction | None:
    """The exact value of a written number (``"3/4"`` included), or None when it is not one."""
    try:
        return Fraction(text.strip().replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def tidy_expression(expr: str) -> str | None:
    """``expr`` written compactly with only the parentheses its meaning needs, or None if it is not
    plain arithmetic (numbers, ``+ - * /``, parentheses).

    Python's parser does the precedence work, so the evaluation order is preserved (``a-(b-c)``
    keeps its pair, ``(a-b)-c`` loses it). Numbers are swapped for placeholder names first, so that
    :func:`ast.unparse` cannot respell them (it would print a big float as ``1e+16``).
    """
    if not _ARITHMETIC_CHARS_RE.fullmatch(expr):
        return None
    numbers: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        numbers.append(plain_number(match.group()))
        return f" n{len(numbers) - 1} "

    try:
        tree = ast.parse(_NUMBER_RE.sub(placeholder, expr).strip(), mode="eval")
    except (SyntaxError, RecursionError, ValueError):
        return None
    if not all(isinstance(node, _ARITHMETIC_NODES) for node in ast.walk(tree)):
        return None
    compact = ast.unparse(tree.body).replace(" ", "")
    return re.sub(r"n(\d+)", lambda m: numbers[int(m.group(1))], compact)


def compose_steps(steps: Sequence[tuple[str, str]], gold: str) -> str | None:
    """One expression computing ``gold`` from a chain of ``lhs = rhs`` steps, or None.

    A number in a step's lhs that equals an earlier step's rhs (exactly) stands for that step, so
    it is replaced by the step's composed expression (the most recent such step wins). The result
    is the composed expression of the latest step whose rhs equals ``gold`` -- normally the last
    step -- so a chain that ends with a side computation still yields the call that answers.
    """
    target = _value(gold)
    if target is None:
        return None
    composed: list[tuple[Fraction | None, str | None]] = []
    for lhs, rhs in steps:

        def substitute(match: re.Match[str]) -> str:
            number = _value(match.group())
            for value, expr in reversed(composed):
                if expr is not None and value == number:
                    return f"({expr})"
            return match.group()

        composed.append((_value(rhs), tidy_expression(_NUMBER_RE.sub(substitute, lhs))))
    for value, expr in reversed(composed):
        if expr is not None and value == target:
            return expr if len(expr) <= MAX_EXPRESSION_CHARS else None
    return None


def calculator_call(expr: str | None) -> str | None:
    return None if expr is None else f"calculator({expr})"


# ---------------------------------------------------------------------------------------------
# GSM8K

_ANNOTATION_RE = re.compile(r"<<([^<>]*)>>")


def gsm8k_final_answer(answer_text: str) -> str:
    """The gold number after ``####``, without thousands commas; ValueError when there is none."""
    _, sep, tail = answer_text.rpartition("####")
    final = tail.strip().replace(",", "")
    if not sep:
        raise ValueError("no final '#### <number>' line")
    if not _DECIMAL_RE.fullmatch(final):
        raise ValueError(f"final answer {tail.strip()!r} is not a number")
    return final


def gsm8k_steps(answer_text: str) -> list[tuple[str, str]]:
    """The ``(lhs, rhs)`` of each ``<<lhs=rhs>>`` calculator annotation, in order."""
    steps = []
    for body in _ANNOTATION_RE.findall(answer_text):
        if "=" in body:
            steps.append((body.partition("=")[0], body.rpartition("=")[2]))
    return steps


def compose_gsm8k_steps(answer_text: str) -> str | None:
    """One arithmetic expression for a GSM8K solution, e.g. ``48+48/2`` for
    ``48/2 = <<48/2=24>>24 ... 48+24 = <<48+24=72>>72 ... #### 72``; None when the annotations do
    not reach the final answer (or there is none)."""
    try:
        gold = gsm8k_final_answer(answer_text)
    except ValueError:
        return None
    return compose_steps(gsm8k_steps(answer_text), gold)


def _gsm8k_file(path: Path, split: str) -> list[Example]:
    rows = read_jsonl(path, {"question": str, "answer": str})
    examples = []
    for index, (line, row) in enumerate(zip(nonblank_lines(path), rows)):
        try:
            gold = gsm8k_final_answer(row["answer"])
        except ValueError as err:
            raise DataError(path, line, "answer", str(err)) from None
        examples.append(Example(
            id=f"gsm8k-{split}-{index}", dataset="gsm8k", task=TASK, question=row["question"].strip(),
            answers=(gold,), tool_call=calculator_call(compose_gsm8k_steps(row["answer"])), split=split,
        ))  # fmt: skip
    return examples


# ---------------------------------------------------------------------------------------------
# Shared by SVAMP and ASDiv


MathData = LoadedDataset
"""Both splits of one math dataset (the math loaders' name for :class:`LoadedDataset`)."""


def join_question(body: str, question: str) -> str:
    """``body`` then ``question``, whitespace collapsed; a body cut off before its full stop gets one,
    and one ending in a comma (``If each box holds 5 bars,``) runs on into the question."""
    body, question = " ".join(body.split()), " ".join(question.split())
    if body.endswith(",") and question:
        question = question[0].lower() + question[1:]
    elif body and body[-1] not in ".?!":
        body += "."
    return f"{body} {question}".strip()


def _seeded(examples: list[Example], seed: int, test_fraction: float, skipped: int = 0) -> MathData:
    return split_seeded(examples, seed, test_fraction, skipped)


# ---------------------------------------------------------------------------------------------
# SVAMP

SVAMP_FIELDS = {"ID": str, "Body": str, "Question": str, "Equation": str, "Answer": float}


def format_number(value: float) -> str:
    """A float as the answer string a reader expects: ``51.0`` -> ``"51"``, ``0.5`` -> ``"0.5"``."""
    return plain_number(repr(float(value)))


def svamp_tool_call(equation: str) -> str | None:
    """``"( 76.0 - 25.0 )"`` -> ``"calculator(76-25)"``."""
    return calculator_call(tidy_expression(equation))


def load_svamp(data_dir: str | Path, *, seed: int = DEFAULT_SEED, test_fraction: float = DEFAULT_TEST_FRACTION) -> MathData:
    """SVAMP's 1000 problems, split by hashed id."""
    path = require_file(Path(data_dir) / "svamp" / "SVAMP.json", "SVAMP")
    examples, seen = [], set()
    for number, line, record in json_array_records(path):
        try:
            check_fields(record, SVAMP_FIELDS, path, line)
        except DataError as err:
            raise DataError(path, line, err.field, f"{err.problem} (record {number})") from None
        check_unique(seen, record["ID"], path, line, "ID")
        examples.append(Example(
            id=f"svamp-{record['ID']}", dataset="svamp", task=TASK,
            question=join_question(record["Body"], record["Question"]),
            answers=(format_number(record["Answer"]),), tool_call=svamp_tool_call(record["Equation"]),
        ))  # fmt: skip
    return _seeded(examples, seed, test_fraction)


# ---------------------------------------------------------------------------------------------
# ASDiv

ASDIV_SUBSETS = ("all", "a")
_ASDIV_REQUIRED = ("ID", "Body", "Question", "Answer")
_ASDIV_ANSWER_RE = re.compile(r"\s*(-?(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d+)?)\s*(?:\([^()]*\))?\s*")
_UNIT_RE = re.compile(r"\s*\([^()]*[A-Za-z][^()]*\)")  # "(cent/dime)": innermost parens holding words
_RESULT_RE = re.compile(r"\s*(-?[\d.,]+)\s*[A-Za-z ]*")  # "9600 m" but not "1 r7" (a remainder)


def parse_asdiv_answer(text: str) -> str | None:
    """The number of an answer such as ``"9 (apples)"`` or ``"1,200"``; None when the answer is not
    one number (``"2:3"``, ``"5 (cm); 3 (cm)"``, ``"5/2"``, ``"Yes"``)."""
    match = _ASDIV_ANSWER_RE.fullmatch(text)
    if match is None or not re.search(r"\d", match.group(1)):
        return None
    return match.group(1).replace(",", "")


def asdiv_tool_call(formula: str, gold: str) -> str | None:
    """A calculator call for an ASDiv formula whose arithmetic reaches ``gold``, else None.

    Unit notes are dropped (``1.3 (dollar)*100 (cent/dollar)`` -> ``1.3*100``) and ``;``-separated
    steps are composed like GSM8K's. Every step must be plain arithmetic with a numeric result:
    formulas with remainders (``47/6=7 r5``), ratios, ``GCD``/``LCM``, powers or unknowns need
    more than the calculator, so they get no call.
    """
    steps = []
    for part in _UNIT_RE.sub("", formula).split(";"):
        lhs, eq, rhs = part.partition("=")
        result = _RESULT_RE.fullmatch(rhs)
        if not eq or result is None or tidy_expression(lhs) is None:
            return None
        steps.append((lhs, result.group(1)))
    return calculator_call(compose_steps(steps, gold))


def _asdiv_problems(path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line, fields)`` per ``<Problem>``: its attributes and the text of its child elements.

    expat rather than ElementTree because expat knows the line each problem starts on.
    """
    parser = expat.ParserCreate()
    parser.buffer_text = True
    problems: list[tuple[int, dict[str, str]]] = []
    current: dict[str, str] | None = None
    child: str | None = None

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal current, child
        if name == "Problem":
            current = dict(attrs)
            problems.append((parser.CurrentLineNumber, current))
        elif current is not None:
            child = name
            current[name] = ""

    def end(name: str) -> None:
        nonlocal current, child
        current = None if name == "Problem" else current
        child = None

    def text(data: str) -> None:
        if current is not None and child is not None:
            current[child] += data

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    with path.open("rb") as fh:
        try:
            parser.ParseFile(fh)
        except expat.ExpatError as err:
            problem = f"malformed XML ({expat.ErrorString(err.code)}, column {err.offset + 1})"
            raise DataError(path, err.lineno, None, problem) from None
    if not problems:
        raise DataError(path, None, None, "no <Problem> elements")
    return problems


def asdiv_a_ids(data_dir: str | Path) -> set[str]:
    """The ids of ASDiv-A, the arithmetic-only subset, from its 5-fold files."""
    folds = sorted((Path(data_dir) / "asdiv" / "nfolds" / "asdiv-a").glob("fold*.txt"))
    if not folds:
        raise FileNotFoundError(f"ASDiv-A fold files not found: {Path(data_dir) / 'asdiv/nfolds/asdiv-a/fold*.txt'}")
    return {line.strip() for fold in folds for line in fold.read_text(encoding="utf-8").splitlines() if line.strip()}


def load_asdiv(data_dir: str | Path, *, seed: int = DEFAULT_SEED, test_fraction: float = DEFAULT_TEST_FRACTION, subset: str = "all") -> MathData:
    """ASDiv's problems with a numeric answer (``subset="a"``: only ASDiv-A, the arithmetic problems
    the TRICE paper trains and tests on, as dataset ``asdiv-a``), split by hashed id; ``skipped``
    counts the problems of the subset whose answer is not one number.

    Both subsets hash the same ASDiv id, so an ASDiv-A test question is an ASDiv test question too."""
    if subset not in ASDIV_SUBSETS:
        raise ValueError(f"unknown ASDiv subset {subset!r}; choose from {ASDIV_SUBSETS}")
    path = require_file(Path(data_dir) / "asdiv" / "ASDiv.xml", "ASDiv")
    wanted = asdiv_a_ids(data_dir) if subset == "a" else None
    dataset = "asdiv-a" if subset == "a" else "asdiv"
    examples, seen, skipped = [], set(), 0
    for line, fields in _asdiv_problems(path):
        for name in _ASDIV_REQUIRED:
            if name not in fields:
                raise DataError(path, line, name, "missing")
        check_unique(seen, fields["ID"], path, line, "ID")
        if wanted is not None and fields["ID"] not in wanted:
            continue
        gold = parse_asdiv_answer(fields["Answer"])
        if gold is None:
            skipped += 1
            continue
        examples.append(Example(
            id=f"{dataset}-{fields['ID']}", dataset=dataset, task=TASK,
            question=join_question(fields["Body"], fields["Question"]), answers=(gold,),
            tool_call=asdiv_tool_call(fields.get("Formula", ""), gold),
        ))  # fmt: skip
    return split_seeded(examples, seed, test_fraction, skipped, key=lambda e: "asdiv-" + e.id.removeprefix(dataset + "-"))


def load_asdiv_a(data_dir: str | Path, *, seed: int = DEFAULT_SEED, test_fraction: float = DEFAULT_TEST_FRACTION) -> MathData:
    """ASDiv-A (1,218 arithmetic problems), the ASDiv subset of the TRICE paper."""
    return load_asdiv(data_dir, seed=seed, test_fraction=test_fraction, subset="a")


# ---------------------------------------------------------------------------------------------
# GSM8K loader and the registry


def load_gsm8k(data_dir: str | Path, *, seed: int = DEFAULT_SEED, test_fraction: float = DEFAULT_TEST_FRACTION) -> MathData:
    """GSM8K's official train and test files (``seed`` and ``test_fraction`` do not apply)."""
    files = {split: require_file(Path(data_dir) / "gsm8k" / f"{split}.jsonl", "GSM8K") for split in ("train", "test")}
    return MathData(train=_gsm8k_file(files["train"], "train"), test=_gsm8k_file(files["test"], "test"), split_method="official")


MathLoader = Callable[..., MathData]
MATH_LOADERS: dict[str, MathLoader] = {"asdiv": load_asdiv, "asdiv-a": load_asdiv_a, "svamp": load_svamp, "gsm8k": load_gsm8k}


def _load_each(data_dir: str | Path, datasets: Sequence[str], seed: int, test_fraction: float) -> dict[str, MathData]:
    unknown = [name for name in datasets if name not in MATH_LOADERS]
    if unknown:
        raise ValueError(f"unknown math dataset(s) {unknown}; choose from {sorted(MATH_LOADERS)}")
    return {name: MATH_LOADERS[name](data_dir, seed=seed, test_fraction=test_fraction) for name in datasets}


def load_math(
    data_dir: str | Path,
    datasets: Sequence[str] = ("asdiv", "svamp", "gsm8k"),
    split: str = "train",
    seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> list[Example]:
    """One split of the named math datasets, concatenated in the order given."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    loaded = _load_each(data_dir, datasets, seed, test_fraction)
    return [example for data in loaded.values() for example in getattr(data, split)]


def describe_splits(
    data_dir: str | Path, datasets: Sequence[str] = ("asdiv", "svamp", "gsm8k"), seed: int = DEFAULT_SEED, test_fraction: float = DEFAULT_TEST_FRACTION
) -> dict[str, dict[str, Any]]:
    """:func:`describe` of the named datasets, loaded as :func:`load_math` would load them."""
    return describe(_load_each(data_dir, datasets, seed, test_fraction))
