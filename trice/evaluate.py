"""Judging responses: prediction, correctness and tool use per example; accuracy per dataset.

``trice evaluate`` is a stable interface other tools call: each input line has at least ``id``,
``dataset``, ``answers`` and ``response``; each output line adds ``prediction``, ``correct`` and
``used_tool``; the last line on stdout is ``{"accuracy": {...,"total": y}, "tool_rate": z, "n": N}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from trice.io import read_jsonl, write_jsonl
from trice.tasks import get_task

RESPONSE_FIELDS = {"id": str, "dataset": str, "answers": (list, str), "response": str}


@dataclass
class EvaluateConfig:
    """Judge a file of model responses (the ``trice evaluate`` flags)."""

    task: str = field(default="math", metadata={"help": "Task whose tool and metric apply: math."})
    input: str = field(default="", metadata={"help": "JSONL with id, dataset, answers, response per line."})
    output: str = field(default="", metadata={"help": "JSONL to write: the input lines plus prediction, correct, used_tool."})


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
    """``trice evaluate``: judge the input file, write the judged lines, return the summary."""
    get_task(config.task)  # fail on an unknown task before reading anything
    rows = read_jsonl(config.input, RESPONSE_FIELDS, unique="id")
    judged = judge_rows(rows, config.task)
    write_jsonl(config.output, judged)
    return summarize(judged)
