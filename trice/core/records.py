"""Reading records out of source files with the line each came from, so every loader's errors
can point into the file (``file:line: field: problem``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trice.utils.io import DataError, read_json


def nonblank_lines(path: Path) -> list[int]:
    """Line numbers of the non-blank lines: where :func:`read_jsonl`'s n-th row came from."""
    with path.open("rb") as fh:
        return [n for n, raw in enumerate(fh, start=1) if raw.strip()]


def json_array_records(path: Path) -> Iterator[tuple[int, int, Any]]:
    """``(record number, line, record)`` for each element of a JSON array file.

    The line (where the record's ``{`` stands) lets errors point into the file like JSONL errors do;
    the 1-based record number is given too because it is what ``jq`` and Python indexing show.
    """
    records = read_json(path)  # located errors for bad UTF-8 and bad JSON
    if not isinstance(records, list):
        raise DataError(path, None, None, f"expected a JSON array of records, got {type(records).__name__}")
    text = path.read_text(encoding="utf-8")
    decoder, separator = json.JSONDecoder(), re.compile(r"[\s,]*")
    pos, line = text.index("[") + 1, 1
    for number, record in enumerate(records, start=1):
        start = separator.match(text, pos).end()
        line += text.count("\n", pos, start)
        yield number, line, record
        pos = decoder.raw_decode(text, start)[1]
        line += text.count("\n", start, pos)


def check_unique(seen: set[str], key: str, path: Path, line: int | None, field: str) -> None:
    """Record ``key``; a repeat is bad data, located at the record that repeats it."""
    if key in seen:
        raise DataError(path, line, field, f"duplicate value {json.dumps(key)}")
    seen.add(key)
