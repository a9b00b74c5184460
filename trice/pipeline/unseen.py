"""Unseen test sets (the paper's Table 4): extra test files no stage trains on, every setting evaluated on each.

A recipe names them ``unseen: {name: path.jsonl, ...}``; each file holds examples in the
bring-your-own-data schema (:data:`trice.core.schema.EXAMPLE_FIELDS`: ``id``, ``dataset``,
``task``, ``question``, ``answers``), any task, judged row by row by its own task. Each (setting,
set) pair is its own stage, ``eval-<setting>-unseen-<name>``, so adding a set runs only its stages
and leaves every finished eval stage, seen or unseen, as it was. The files are checked when the
recipe is planned, before any model loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trice.core.schema import EXAMPLE_FIELDS
from trice.tasks.inputs import read_input
from trice.core.layout import unseen_stage
from trice.tasks import TASKS
from trice.utils.config import ConfigError
from trice.utils.io import DataError

# A set's name is part of a stage directory's name and a report column.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class UnseenSet:
    """One checked unseen test file: its report name, path, the tasks its rows hold and its size."""

    name: str
    path: Path
    tasks: tuple[str, ...]
    n: int


def _check_row(row: dict[str, Any], path: Path, line: int) -> None:
    """What the field types cannot say: the row's task exists and it has a gold answer to judge by."""
    if row["task"] not in TASKS:
        raise DataError(path, line, "task", f"unknown task {row['task']!r}; known tasks: {', '.join(TASKS)}")
    if not row["answers"]:
        raise DataError(path, line, "answers", "empty: an unseen test question needs a gold answer")


def load_unseen(spec: dict[str, Any], where: str) -> list[UnseenSet]:
    """The recipe's ``unseen`` mapping checked: every name usable, every file readable and every
    line a valid example (a :class:`DataError` names the file, line and field)."""
    sets = []
    for name, path in spec.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: unseen: name {name!r}: use letters, digits, '.', '_' and '-' (it names a stage directory)")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{where}: unseen: {name}: expected the path of a JSONL file, got {path!r}")
        rows = read_input(path, EXAMPLE_FIELDS, check=_check_row)
        sets.append(UnseenSet(name, Path(path), tuple(sorted({r["task"] for r in rows})), len(rows)))
    return sets


def unseen_stages(settings: list[str], sets: list[UnseenSet]) -> dict[str, tuple[str, UnseenSet]]:
    """Stage name -> (setting, set) for every pair, settings in the report's order."""
    return {unseen_stage(s, u.name): (s, u) for s in settings for u in sets}
