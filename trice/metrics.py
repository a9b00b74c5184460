"""The paper's lenient metrics, as plain functions of (prediction, gold answers)."""

from __future__ import annotations

import re
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


def answer_in_prefix(prediction: str | None, answers: Sequence[str], n_words: int = 20) -> bool:
    """A gold answer appears (case-insensitive) within the first ``n_words`` words of the prediction."""
    if not prediction:
        return False
    head = " ".join(prediction.split()[:n_words]).lower()
    return any(a.strip() and a.strip().lower() in head for a in answers)
