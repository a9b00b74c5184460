"""The paper's lenient metrics, as plain functions of (prediction, gold answers)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from trice.tools.calculator import parse_number

# A number as people write it: optional sign, thousands commas, decimals (``-1,234.5``, ``.5``).
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?![\w])")


def last_number(text: str) -> str | None:
    """The last number in a free-text response, commas dropped (the paper's math prediction)."""
    found = [m.group(0) for m in _NUMBER.finditer(text) if any(c.isdigit() for c in m.group(0))]
    return found[-1].replace(",", "") if found else None


def math_correct(prediction: str | None, answers: Sequence[str]) -> bool:
    """Equal to a gold answer once both are rounded to 2 decimals."""
    value = parse_number(prediction) if prediction is not None else None
    if value is None:
        return False
    for gold in answers:
        g = parse_number(gold)
        if g is not None and round(value, 2) == round(g, 2):
            return True
    return False


# SQuAD-style normalisation, with two choices spelled out: periods and apostrophes are deleted
# ("U.S." -> "us", "Hawai'i" -> "hawaii") while every other punctuation mark separates words
# ("Saint-Denis" -> "saint denis"), and only English articles are dropped (the gold answers are English).
_DELETED = str.maketrans("", "", ".'\u2019")
_ARTICLES = frozenset({"a", "an", "the"})


def normalize_answer(text: str) -> list[str]:
    """The words of ``text`` for answer matching: Unicode-casefolded (NFKC), punctuation handled as
    described above, English articles dropped."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_DELETED)
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return [word for word in spaced.split() if word not in _ARTICLES]


def _contains(words: list[str], part: list[str]) -> bool:
    n = len(part)
    return any(words[i : i + n] == part for i in range(len(words) - n + 1))


def answer_in_prefix(prediction: str | None, answers: Sequence[str], n_words: int = 20) -> bool:
    """A gold answer appears within the first ``n_words`` words of the prediction (the paper's
    lenient metric for QA, LAMA and MLQA).

    Case-insensitive, and on whole words after :func:`normalize_answer` on both sides, so gold
    ``"the Beatles"`` hits ``"Beatles."`` and ``"U.S."`` hits ``"US"``, while ``"1"`` does not hit
    ``"1972"`` nor ``"Paris"`` ``"Parisian"`` -- stricter than the original's raw substring test in
    exactly those word-fragment cases. The first ``n_words`` are counted on whitespace before
    normalising. Gold answers that normalise to nothing (an article alone) never match.
    """
    if not prediction:
        return False
    head = normalize_answer(" ".join(prediction.split()[:n_words]))
    return any(gold and _contains(head, gold) for gold in map(normalize_answer, answers))


def answer_in_text(text: str | None, answers: Sequence[str]) -> bool:
    """A gold answer appears anywhere in ``text``, on whole words after :func:`normalize_answer`
    (whether a retrieved passage holds the answer at all, where :func:`answer_in_prefix` asks
    whether a prediction starts with it)."""
    if not text:
        return False
    words = normalize_answer(text)
    return any(gold and _contains(words, gold) for gold in map(normalize_answer, answers))


def whole_response(text: str) -> str | None:
    """A direct answer to a free-text question is the response itself (the metric reads its first
    words); None for a blank response."""
    return text.strip() or None
