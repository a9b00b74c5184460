"""Reading a command's input rows: typed fields, unique ids, checks a field's type cannot express,
and every problem one :class:`~trice.utils.io.DataError` naming the file, the line and the field -- found
before any model loads or any output is written."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from trice.utils.io import DataError, FieldSpec, ReadReport, iter_jsonl
from trice.core.prompts import READ_INSTRUCTIONS
from trice.tasks import PER_ROW, TASKS

SHOW_SKIPPED = 3  # problems quoted in the one warning about skipped lines

input_log = logging.getLogger("trice.input")


def check_row_task(row: dict, task_name: str, path: str | Path, line: int | None) -> None:
    """What judging ``row`` under ``task_name`` needs: with :data:`~trice.tasks.PER_ROW` (or where
    the row names one) a known ``task``; for tasks whose tool output the model reads again with the
    question (qa, mlqa), a ``question``."""
    name = row.get("task") if task_name == PER_ROW else task_name
    if task_name == PER_ROW or "task" in row:
        if task_name == PER_ROW and "task" not in row:
            raise DataError(path, line, "task", "missing (rows judged by their own task name it)")
        if not isinstance(row["task"], str):
            raise DataError(path, line, "task", f"expected string, got {json.dumps(row['task'])[:60]}")
        if row["task"] not in TASKS:
            raise DataError(path, line, "task", f"unknown task {row['task']!r}; known tasks: {', '.join(TASKS)}")
    if name in READ_INSTRUCTIONS and not isinstance(row.get("question"), str):
        problem = "missing" if "question" not in row else "expected string"
        raise DataError(path, line, "question", f"{problem} (task {name} reads tool outputs again with the question)")


def _row_lines(path: Path) -> list[int]:
    """Line numbers of the lines :func:`iter_jsonl` reads as rows (the non-blank ones), in order."""
    with path.open("rb") as fh:
        return [n for n, raw in enumerate(fh, start=1) if raw.decode("utf-8", "replace").strip()]


def read_input(
    path: str | Path, fields: FieldSpec, *, check: Callable[[dict, Path, int], None] | None = None, skip_bad: bool = False, report: ReadReport | None = None
) -> list[dict]:
    """The rows of a command's input JSONL: typed ``fields``, a unique ``id``, and ``check(row, path, line)``.

    A bad line (unreadable, malformed, a field missing or mistyped, a repeated id, or refused by
    ``check``) raises :class:`DataError` naming the file, line and field. With ``skip_bad`` it is
    skipped instead and recorded in ``report``, and one warning gives the count and the first few
    problems. An input with no usable line is an error either way.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file")
    report = report if report is not None else ReadReport()
    lines = _row_lines(path)
    rows: list[dict] = []
    seen: set[str] = set()
    for row in iter_jsonl(path, fields, skip_bad=skip_bad, report=report):
        line = lines[report.kept + len(report.skipped) - 1]  # every read line was either kept or skipped
        try:
            if check is not None:
                check(row, path, line)
            if row["id"] in seen:
                raise DataError(path, line, "id", f"duplicate value {json.dumps(row['id'])}")
        except DataError as err:
            if not skip_bad:
                raise
            report.kept -= 1
            report.skipped.append(str(err))
            continue
        seen.add(row["id"])
        rows.append(row)
    if report.skipped:
        shown = "; ".join(report.skipped[:SHOW_SKIPPED]) + ("; ..." if len(report.skipped) > SHOW_SKIPPED else "")
        input_log.warning("%s: skipped %d bad line(s), kept %d: %s", path, len(report.skipped), len(rows), shown)
    if not rows:
        problem = f"no usable line ({len(report.skipped)} bad line(s) skipped)" if report.skipped else "empty file: no JSON lines"
        raise DataError(path, None, None, problem)
    return rows
