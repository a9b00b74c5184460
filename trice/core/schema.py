"""The one record schema every loader produces and every stage reads."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from trice.utils.io import check_fields, read_jsonl, write_jsonl
from trice.core.tools import parse_call

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
    def from_dict(cls, row: dict[str, Any], path: str | os.PathLike = "<dict>", line: int | None = None) -> Example:
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


def reference_call(tool: str, argument: str) -> str | None:
    """``tool(argument)`` as an example's reference call, or None when the call would not parse back
    to the same argument (an unbalanced parenthesis, as in the band name ``Sunn O)))``, would end it
    early and teach a broken call)."""
    call = f"{tool}({argument})"
    parsed = parse_call(call, [tool])
    return call if parsed is not None and parsed.argument == argument else None


def save_examples(path: str | os.PathLike, examples: list[Example]) -> Path:
    return write_jsonl(path, (e.to_dict() for e in examples))


def load_examples(path: str | os.PathLike) -> list[Example]:
    rows = read_jsonl(path, EXAMPLE_FIELDS, unique="id")
    return [Example.from_dict(r, path) for r in rows]


def stable_fraction(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``key`` and ``seed`` alone: splits that never depend on file order."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def seeded_split(examples: list[Example], test_fraction: float, seed: int, key: Callable[[Example], str] | None = None) -> tuple[list[Example], list[Example]]:
    """Deterministic train/test split for datasets that ship none (SVAMP, ASDiv, T-REx, XQuAD).

    Each example goes to test when its hashed id (or ``key(example)``) falls below ``test_fraction``:
    the assignment of an example never changes when others are added or the file is reordered.
    A ``key`` shared by several examples keeps them on one side (XQuAD's question id across languages).
    """
    train, test = [], []
    for ex in examples:
        (test if stable_fraction(ex.id if key is None else key(ex), seed) < test_fraction else train).append(ex)
    return train, test


def sample(examples: list[Example], n: int | None, seed: int) -> list[Example]:
    """The first ``n`` examples in a seeded, order-independent shuffle (all of them when ``n`` is None)."""
    ordered = sorted(examples, key=lambda e: stable_fraction(e.id, seed + 1))
    return ordered if n is None else ordered[:n]


SPLITS = ("train", "test")


@dataclass(frozen=True)
class LoadedDataset:
    """Both pools of one dataset, plus how it was split and what was skipped: what every loader
    returns, so the data stage and the reports treat all tasks alike."""

    train: list[Example]
    test: list[Example]
    split_method: str
    skipped: int = 0


def split_seeded(examples: list[Example], seed: int, test_fraction: float, skipped: int = 0, key: Callable[[Example], str] | None = None) -> LoadedDataset:
    """A :class:`LoadedDataset` from one pool that ships no split, via :func:`seeded_split`."""
    train, test = seeded_split(examples, test_fraction, seed, key)
    return LoadedDataset(
        train=[replace(e, split="train") for e in train],
        test=[replace(e, split="test") for e in test],
        split_method=f"seeded hash split, test_fraction={test_fraction}, seed={seed}",
        skipped=skipped,
    )


def describe(loaded: Mapping[str, LoadedDataset]) -> dict[str, dict[str, Any]]:
    """Per dataset: how it was split, the split sizes, how many examples carry a reference tool
    call, and how many source records were skipped -- what a report must state about its data."""
    return {
        name: {
            "split": data.split_method,
            "train": len(data.train),
            "test": len(data.test),
            "with_tool_call": {s: sum(e.tool_call is not None for e in getattr(data, s)) for s in SPLITS},
            "skipped": data.skipped,
        }
        for name, data in loaded.items()
    }
