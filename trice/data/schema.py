"""The one record schema every loader produces and every stage reads."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trice.io import check_fields, read_jsonl, write_jsonl

EXAMPLE_FIELDS = {"id": str, "dataset": str, "task": str, "question": str, "answers": (list, str)}


@dataclass(frozen=True)
class Example:
    """One question of one dataset.

    ``tool_call`` is the reference call from the data's own annotations (``calculator(48+48/2)``),
    or ``None`` where the data has none; D_tool labelling decides whether it is used.
    """

    id: str
    dataset: str
    task: str
    question: str
    answers: tuple[str, ...]
    tool_call: str | None = None
    split: str = "train"

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["answers"] = list(self.answers)
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any], path: str | os.PathLike = "<dict>", line: int | None = None) -> "Example":
        check_fields(row, EXAMPLE_FIELDS, path, line)
        return cls(
            id=row["id"],
            dataset=row["dataset"],
            task=row["task"],
            question=row["question"],
            answers=tuple(row["answers"]),
            tool_call=row.get("tool_call"),
            split=row.get("split", "train"),
        )


def save_examples(path: str | os.PathLike, examples: list[Example]) -> Path:
    return write_jsonl(path, (e.to_dict() for e in examples))


def load_examples(path: str | os.PathLike) -> list[Example]:
    rows = read_jsonl(path, EXAMPLE_FIELDS, unique="id")
    return [Example.from_dict(r, path) for r in rows]


def stable_fraction(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``key`` and ``seed`` alone: splits that never depend on file order."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def seeded_split(examples: list[Example], test_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Deterministic train/test split for datasets that ship none (SVAMP, ASDiv).

    Each example goes to test when its hashed id falls below ``test_fraction``: the assignment of an
    example never changes when others are added or the file is reordered.
    """
    train, test = [], []
    for ex in examples:
        (test if stable_fraction(ex.id, seed) < test_fraction else train).append(ex)
    return train, test


def sample(examples: list[Example], n: int | None, seed: int) -> list[Example]:
    """The first ``n`` examples in a seeded, order-independent shuffle (all of them when ``n`` is None)."""
    ordered = sorted(examples, key=lambda e: stable_fraction(e.id, seed + 1))
    return ordered if n is None else ordered[:n]
