"""Judging responses: prediction, correctness and tool use per example; accuracy per dataset.

``trice evaluate`` is a stable interface other tools call: each input line has at least ``id``,
``dataset``, ``answers`` and ``response``; each output line adds ``prediction``, ``correct`` and
``used_tool``; the last line on stdout is ``{"accuracy": {...,"total": y}, "tool_rate": z, "n": N}``
(with ``--skip_bad``, which skips and counts bad input lines instead of failing on the first, it
also has ``"skipped_lines"``).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from trice.config import ConfigError
from trice.io import DataError, FieldSpec, ReadReport, iter_jsonl, write_jsonl
from trice.tasks import get_task

RESPONSE_FIELDS = {"id": str, "dataset": str, "answers": (list, str), "response": str}
SHOW_SKIPPED = 3  # problems quoted in the one warning about skipped lines

input_log = logging.getLogger("trice.input")


def _row_lines(path: Path) -> list[int]:
    """Line numbers of the lines :func:`iter_jsonl` reads as rows (the non-blank ones), in order."""
    with path.open("rb") as fh:
        return [n for n, raw in enumerate(fh, start=1) if raw.decode("utf-8", "replace").strip()]


def read_input(
    path: str | Path,
    fields: FieldSpec,
    *,
    check: Callable[[dict, Path, int], None] | None = None,
    skip_bad: bool = False,
    report: ReadReport | None = None,
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


@dataclass
class EvaluateConfig:
    """Judge a file of model responses (the ``trice evaluate`` flags)."""

    task: str = field(default="math", metadata={"help": "Task whose tool and metric apply: math."})
    input: str = field(default="", metadata={"help": "JSONL with id, dataset, answers, response per line."})
    output: str = field(default="", metadata={"help": "JSONL to write: the input lines plus prediction, correct, used_tool."})
    skip_bad: bool = field(
        default=False,
        metadata={"help": "Skip bad input lines (one warning; their count is the summary's skipped_lines) instead of failing."},
    )


def judge_rows(rows: Iterable[dict], task_name: str) -> list[dict]:
    """Each row plus ``prediction``, ``correct``, ``used_tool`` (and ``tool_error`` for a failed call)."""
    task = get_task(task_name)
    registry = task.registry()
    judged = []
    for row in tqdm(list(rows), desc=f"judge {task_name}", unit="ex", leave=False):
        j = task.judge(row["response"], row["answers"], registry)
        extra = {"prediction": j.prediction, "correct": j.correct, "used_tool": j.used_tool}
        if j.tool_error is not None:
            extra["tool_error"] = j.tool_error
        judged.append(row | extra)
    return judged


def summarize(judged: Sequence[dict]) -> dict[str, Any]:
    """Accuracy per dataset and over all examples ("total"), and the share of responses calling a tool."""
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for row in judged:
        by_dataset[row["dataset"]].append(row)
    accuracy = {ds: sum(r["correct"] for r in rows) / len(rows) for ds, rows in sorted(by_dataset.items())}
    n = len(judged)
    accuracy["total"] = sum(r["correct"] for r in judged) / n if n else 0.0
    tool_rate = sum(r["used_tool"] for r in judged) / n if n else 0.0
    return {"accuracy": accuracy, "tool_rate": tool_rate, "n": n}


def tool_rate_by_dataset(judged: Sequence[dict]) -> dict[str, float]:
    by_dataset: dict[str, list[bool]] = defaultdict(list)
    for row in judged:
        by_dataset[row["dataset"]].append(row["used_tool"])
    return {ds: sum(v) / len(v) for ds, v in sorted(by_dataset.items())}


def run_evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """``trice evaluate``: judge the input file, write the judged lines, return the summary.

    With ``skip_bad`` the summary also has ``skipped_lines``; without it, it is exactly
    ``{"accuracy", "tool_rate", "n"}``.
    """
    get_task(config.task)  # fail on an unknown task before reading anything
    if not config.input or not config.output:
        raise ConfigError("trice evaluate: both --input and --output are required")
    report = ReadReport()
    rows = read_input(config.input, RESPONSE_FIELDS, skip_bad=config.skip_bad, report=report)
    judged = judge_rows(rows, config.task)
    write_jsonl(config.output, judged)
    summary = summarize(judged)
    if config.skip_bad:
        summary["skipped_lines"] = len(report.skipped)
    return summary
