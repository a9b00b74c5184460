"""Comments and docstrings say why, not what the code was: a phrase that narrates history ("used
to", "once let", "from before", "no longer") tells a reader about a version they cannot see, and
goes stale with the next change. This catches the common phrasings in every Python file of the
checkout; ruff has no rule for it."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HISTORY = re.compile(
    r"(?<!\bis )(?<!\bare )(?<!\bbe )(?<!\bwas )(?<!\bwere )(?<!\bbeen )\bused to\b"
    r"|\bonce let\b|\bfrom before\b|\bno longer\b|\bpreviously\b|\bformerly\b|\banymore\b"
    r"|\b(?:is|are) now\b|\bnow (?:uses|reads|writes|takes|returns|holds|lives|keeps)\b"
    r"|\btoday'?s (?:code|rule|trice|version|format|behaviou?r)\b",
    re.IGNORECASE,
)


def narrating(source: str) -> list[tuple[int, str]]:
    """(line, text) of each comment or docstring line of ``source`` holding a history phrase."""
    texts: list[tuple[int, str]] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            texts.append((token.start[0], token.string))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node, clean=False):
            doc = node.body[0]
            texts += [(doc.lineno + i, line) for i, line in enumerate(ast.get_docstring(node, clean=False).splitlines())]
    return sorted((n, text) for n, text in texts if HISTORY.search(text))


def test_the_checker_finds_history_and_lets_why_pass() -> None:
    source = (
        '"""The cache used to be keyed by path."""\n\n'
        "x = 1  # no longer read here\n"
        "# this value is used to sort rows\n"
        "def f():\n"
        '    """A missing package once let a run label every row a failed call."""\n'
        "y = 2  # the stage's hash now, against the one stored\n"
    )
    assert [n for n, _ in narrating(source)] == [1, 3, 6]


def test_no_comment_or_docstring_narrates_history() -> None:
    files = sorted(p for folder in ("trice", "tests", "bench", "scripts") for p in (ROOT / folder).rglob("*.py") if p != Path(__file__).resolve())
    found = [f"{p.relative_to(ROOT)}:{line}: {text.strip()}" for p in files for line, text in narrating(p.read_text(encoding="utf-8"))]
    assert found == [], "say why instead of what the code was:\n" + "\n".join(found)
