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
from trice.models import DEFAULT_MODEL
from trice.reading import Reader
from trice.tasks import PER_ROW, Judgement, Task, check_task_name, get_task, row_task, tool_registries
from trice.tools import ToolRegistry, parse_call

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

    task: str = field(default="math", metadata={"help": f"Task whose tool and metric apply: math, qa, lama, mlqa, or {PER_ROW} (each row's own task field)."})
    input: str = field(default="", metadata={"help": "JSONL with id, dataset, answers, response per line (and question, task where needed)."})
    output: str = field(default="", metadata={"help": "JSONL to write: the input lines plus prediction, correct, used_tool."})
    skip_bad: bool = field(
        default=False,
        metadata={"help": "Skip bad input lines (one warning; their count is the summary's skipped_lines) instead of failing."},
    )
    model: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "qa, mlqa: the model that wrote the responses, which reads WikiSearch passages / translations again."},
    )
    adapter: str | None = field(default=None, metadata={"help": "qa, mlqa: LoRA adapter of that model."})
    template: str = field(default="alpaca", metadata={"help": "qa, mlqa: prompt template of the second reading."})
    read_max_new_tokens: int = field(default=32, metadata={"help": "qa, mlqa: new tokens per second reading (greedy)."})
    tools: dict = field(
        default_factory=dict,
        metadata={"help": "YAML only (--config): tool options keyed by tool name, e.g. {WikiSearch: {backend: bm25}, QA: {k: 2}}."},
    )

    def validate(self) -> None:
        check_task_name(self.task)
        check_tool_options(self.tools)


def check_tool_options(tools: dict) -> None:
    """Tool options are keyed by known tool names, each a mapping (its keys are checked when built)."""
    from trice.tools import TOOL_FACTORIES

    for name, options in tools.items():
        if name not in TOOL_FACTORIES:
            raise ValueError(f"tools: unknown tool {name!r}; known: {', '.join(sorted(TOOL_FACTORIES))}")
        if not isinstance(options, dict):
            raise ValueError(f"tools: options of {name!r} must be a mapping, got {options!r}")


def _prefetch(rows: Sequence[dict], tasks: Sequence[Task], registry: Callable[[Task], ToolRegistry]) -> None:
    """Let tools that can answer many calls at once (``prefetch(arguments)``, e.g. the QA tool's
    batched reader) do so before the calls are executed one by one from their cache."""
    wanted: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row, task in zip(rows, tasks):
        reg = registry(task)
        call = parse_call(row["response"], [task.tool, *reg.names])
        if call is not None:
            wanted[(task.name, call.name)].append(call.argument)
    for (task_name, tool_name), arguments in wanted.items():
        tool = registry(get_task(task_name)).get(tool_name)
        prefetch = getattr(tool, "prefetch", None)
        if callable(prefetch):
            prefetch(list(dict.fromkeys(arguments)))


def judge_many(
    rows: Sequence[dict],
    task_name: str = PER_ROW,
    reader: Reader | None = None,
    tools: dict | None = None,
    registry: Callable[[Task], ToolRegistry] | None = None,
) -> list[Judgement]:
    """The :class:`~trice.tasks.Judgement` of each row's ``response`` (see :func:`judge_rows`).

    ``registry`` (:func:`trice.tasks.tool_registries`) lets calls in a loop share built tools (a
    loaded index and reader); without it one is built from ``tools``."""
    registry = registry or tool_registries(tools)
    tasks = [row_task(row, task_name) for row in rows]
    _prefetch(rows, tasks, registry)
    executions = [
        task.execute(row["response"], registry(task))
        for row, task in zip(tqdm(rows, desc="execute calls", unit="ex", leave=False), tasks)
    ]
    items, owners = [], []
    for i, (row, task, ex) in enumerate(zip(rows, tasks, executions)):
        for output in ex.outputs:
            if not isinstance(row.get("question"), str):
                raise ValueError(f"row {row['id']!r}: {task.tool}'s output is read again with the question, but the row has no question")
            items.append((task.name, row["question"], output))
            owners.append(i)
    readings: list[list[str | None]] = [[] for _ in rows]
    if items:
        if reader is None:
            task = tasks[owners[0]]
            raise ValueError(
                f"task {task.name}: the output of {task.tool}(...) is read by the model again before it is judged; "
                "give a reader (the model that wrote the responses: trice evaluate --model/--adapter)"
            )
        for i, reading in zip(owners, reader.read_many(items)):
            readings[i].append(reading)
    return [task.conclude(row["response"], ex, row["answers"], read) for row, task, ex, read in zip(rows, tasks, executions, readings)]


def judge_rows(
    rows: Iterable[dict], task_name: str = PER_ROW, reader: Reader | None = None, tools: dict | None = None
) -> list[dict]:
    """Each row plus ``prediction``, ``correct``, ``used_tool`` (and ``tool_error`` for a failed call).

    ``task_name`` judges every row by that task, or with ``per-row`` each by its own ``task``.
    Calls are executed first (tools with a batched ``prefetch`` answer all theirs at once), then
    every output the model must read again (WikiSearch passages, translations) is read in one
    batched pass by ``reader`` (:class:`trice.reading.Reader`: the model that wrote the
    responses), then each row is concluded. Rows needing a reading need a ``question``.
    """
    rows = list(rows)
    judged = []
    for row, j in zip(rows, judge_many(rows, task_name, reader, tools)):
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
    ``{"accuracy", "tool_rate", "n"}``. The model that reads tool outputs again (qa, mlqa) is loaded
    only when some response needs a reading.
    """
    config.validate()  # fail on an unknown task before reading anything
    if not config.input or not config.output:
        raise ConfigError("trice evaluate: both --input and --output are required")
    from trice.generate_config import GenerateConfig

    report = ReadReport()
    rows = read_input(config.input, RESPONSE_FIELDS, skip_bad=config.skip_bad, report=report)
    generate = GenerateConfig(
        model=config.model, adapter=config.adapter, template=config.template, read_max_new_tokens=config.read_max_new_tokens
    )
    judged = judge_rows(rows, config.task, Reader.for_config(generate), config.tools)
    write_jsonl(config.output, judged)
    summary = summarize(judged)
    if config.skip_bad:
        summary["skipped_lines"] = len(report.skipped)
    return summary
