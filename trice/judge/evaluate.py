"""Judging responses: prediction, correctness and tool use per example; accuracy per dataset.

``trice evaluate`` is a stable interface other tools call: each input line has at least ``id``,
``dataset``, ``answers`` and ``response``; each output line adds ``prediction``, ``correct`` and
``used_tool``; the last line on stdout is ``{"accuracy": {...,"total": y}, "tool_rate": z, "n": N}``
(with ``--skip_bad``, which skips and counts bad input lines instead of failing on the first, it
also has ``"skipped_lines"``; with ``--qa_require_evidence``, ``"unsupported_readings"``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from trice.responses.config import GenerateConfig
from trice.utils.config import ConfigError
from trice.tasks.inputs import check_row_task, read_input
from trice.utils.io import ReadReport, write_jsonl
from trice.generation.models import DEFAULT_MODEL, call_format_of
from trice.utils.outputs import OVERWRITE_HELP, claim_output, holding_output
from trice.judge.reading import ReadingModel
from trice.tasks import PER_ROW, Judgement, Task, check_task_name, get_task, row_task, tool_error_kind, tool_registries
from trice.core.tools import OUTAGE_KINDS, ToolCall, ToolRegistry
from trice.core.call_format import TEXT, CallFormat, call_format_field, check_call_format, tool_parser_field
from trice.tools.factories import check_tool_options

RESPONSE_FIELDS = {"id": str, "dataset": str, "answers": (list, str), "response": str}
JUDGED_FIELDS = ("prediction", "correct", "used_tool")  # what judging adds to each row


@dataclass
class EvaluateConfig:
    """Judge a file of model responses (the ``trice evaluate`` flags)."""

    task: str = field(default="math", metadata={"help": f"Task whose tool and metric apply: math, qa, lama, mlqa, or {PER_ROW} (each row's own task field)."})
    input: str = field(default="", metadata={"help": "JSONL with id, dataset, answers, response per line (and question, task where needed)."})
    output: str = field(default="", metadata={"help": "JSONL to write: the input lines plus prediction, correct, used_tool."})
    skip_bad: bool = field(
        default=False, metadata={"help": "Skip bad input lines (one warning; their count is the summary's skipped_lines) instead of failing."}
    )
    model: str = field(
        default=DEFAULT_MODEL, metadata={"help": "qa, mlqa: the model that wrote the responses, which reads WikiSearch passages / translations again."}
    )
    adapter: str | None = field(default=None, metadata={"help": "qa, mlqa: LoRA adapter of that model."})
    template: str = field(default="alpaca", metadata={"help": "qa, mlqa: prompt template of the second reading."})
    read_max_new_tokens: int = field(default=32, metadata={"help": "qa, mlqa: new tokens per second reading (greedy)."})
    tools: dict = field(
        default_factory=dict, metadata={"help": "YAML only (--config): tool options keyed by tool name, e.g. {WikiSearch: {backend: bm25}, QA: {k: 2}}."}
    )
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})
    qa_require_evidence: bool = field(
        default=False,
        metadata={
            "help": "qa: count a WikiSearch call right only when a passage whose reading was right holds a gold answer "
            "(default: the paper's judge, which credits the reading alone); the summary then counts the disagreements."
        },
    )
    call_format: str = call_format_field()
    tool_parser: str = tool_parser_field()

    def validate(self) -> None:
        check_task_name(self.task)
        check_tool_options(self.tools)
        check_call_format(self.call_format, self.tool_parser, None)


def _prefetch(rows: Sequence[dict], tasks: Sequence[Task], registry: Callable[[Task], ToolRegistry], calls: CallFormat) -> None:
    """Let tools that can answer many calls at once (``prefetch(arguments)``, e.g. the QA tool's
    batched reader) do so before the calls are executed one by one from their cache."""
    wanted: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row, task in zip(rows, tasks):
        reg = registry(task)
        call = calls.parse(row["response"], [task.tool, *reg.names])
        if isinstance(call, ToolCall):  # not a native call that cannot run
            wanted[(task.name, call.name)].append(call.argument)
    for (task_name, tool_name), arguments in wanted.items():
        tool = registry(get_task(task_name)).get(tool_name)
        prefetch = getattr(tool, "prefetch", None)
        if callable(prefetch):
            prefetch(list(dict.fromkeys(arguments)))


def judge_many(
    rows: Sequence[dict],
    task_name: str = PER_ROW,
    reader: ReadingModel | None = None,
    tools: dict | None = None,
    registry: Callable[[Task], ToolRegistry] | None = None,
    calls: CallFormat = TEXT,
) -> list[Judgement]:
    """The :class:`~trice.tasks.Judgement` of each row's ``response`` (see :func:`judge_rows`).

    ``registry`` (:func:`trice.tasks.tool_registries`) lets calls in a loop share built tools (a
    loaded index and reader); without it one is built from ``tools``. ``calls``: the format the
    responses write their calls in."""
    registry = registry or tool_registries(tools)
    tasks = [row_task(row, task_name) for row in rows]
    _prefetch(rows, tasks, registry, calls)
    with tqdm(rows, desc="execute calls", unit="ex", leave=False) as bar:  # closed on an error, which then starts its own line
        executions = [task.execute(row["response"], registry(task), calls) for row, task in zip(bar, tasks)]
    items, owners = [], []
    for i, (row, task, ex) in enumerate(zip(rows, tasks, executions)):
        for output in ex.outputs:
            if not isinstance(row.get("question"), str):
                raise ValueError(f"row {row['id']!r}: {task.tool}'s output is read again with the question, but the row has no question")
            items.append((task.name, row["question"], output, ex.call))
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


EVIDENCE_TASK = "qa"  # the task whose tool output (passages) can hold the answer the reading gave


def judge_rows(
    rows: Iterable[dict],
    task_name: str = PER_ROW,
    reader: ReadingModel | None = None,
    tools: dict | None = None,
    require_evidence: bool = False,
    calls: CallFormat = TEXT,
    registry: Callable[[Task], ToolRegistry] | None = None,
) -> list[dict]:
    """Each row plus ``prediction``, ``correct``, ``used_tool`` (and ``tool_error`` for a failed call,
    ``unread`` for a wrong one some of whose readings an endpoint did not make), its call read in
    the ``calls`` format.

    ``task_name`` judges every row by that task, or with ``per-row`` each by its own ``task``.
    Calls are executed first (tools with a batched ``prefetch`` answer all theirs at once), then
    every output the model must read again (WikiSearch passages, translations) is read in one
    batched pass by ``reader`` (:class:`trice.judge.reading.ReadingModel`: the model that wrote the
    responses), then each row is concluded. Rows needing a reading need a ``question``.
    With ``require_evidence``, a qa row judged right by a reading whose passage holds no gold answer
    is judged wrong, and says so (``"unsupported_reading": true``). ``registry``: as :func:`judge_many`'s,
    for callers that judge many files with the same tools.
    """
    rows = list(rows)
    judged = []
    for row, j in zip(rows, judge_many(rows, task_name, reader, tools, registry, calls)):
        extra = {"prediction": j.prediction, "correct": j.correct, "used_tool": j.used_tool}
        if j.tool_error is not None:
            extra["tool_error"] = j.tool_error
        if j.unread:
            extra["unread"] = True  # a reading's endpoint did not answer: a rerun reads it again
        if require_evidence and j.evidence is False and row_task(row, task_name).name == EVIDENCE_TASK:
            extra |= {"correct": False, "unsupported_reading": True}
        judged.append(row | extra)
    return judged


def is_outage(tool_error: str | None) -> bool:
    """Whether a judged call's ``tool_error`` says the tool or its server did not answer (timeout,
    unavailable), not that the model wrote a bad call."""
    return bool(tool_error) and tool_error_kind(tool_error) in OUTAGE_KINDS


def met_outage(row: dict) -> bool:
    """Whether a judged row's call met an outage (:func:`is_outage`)."""
    return is_outage(row.get("tool_error"))


UNREAD = "a reading of its tool output got no answer from the endpoint"


def machine_failure(tool_error: str | None, unread: bool) -> str | None:
    """Why a judgement is the machine's rather than the model's (a call that met an outage, or an
    output whose reading the endpoint did not make), or None: the one rule labelling, scoring and
    evaluation judge their rows by."""
    if is_outage(tool_error):
        return tool_error
    return UNREAD if unread else None


def tool_outages(judged: Sequence[dict]) -> dict[str, int]:
    """Calls per error kind that met an outage (:func:`met_outage`): judged wrong all the same, so
    a summary names them."""
    kinds = Counter(tool_error_kind(row["tool_error"]) for row in judged if met_outage(row))
    return {kind: kinds[kind] for kind in OUTAGE_KINDS if kinds[kind]}


def summarize(judged: Sequence[dict]) -> dict[str, Any]:
    """Accuracy per dataset and over all examples ("total"), and the share of responses calling a
    tool; ``tool_outages`` (:func:`tool_outages`) only where some call met one."""
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for row in judged:
        by_dataset[row["dataset"]].append(row)
    accuracy = {ds: sum(r["correct"] for r in rows) / len(rows) for ds, rows in sorted(by_dataset.items())}
    n = len(judged)
    accuracy["total"] = sum(r["correct"] for r in judged) / n if n else 0.0
    tool_rate = sum(r["used_tool"] for r in judged) / n if n else 0.0
    outages = tool_outages(judged)
    return {"accuracy": accuracy, "tool_rate": tool_rate, "n": n} | ({"tool_outages": outages} if outages else {})


def tool_rate_by_dataset(judged: Sequence[dict]) -> dict[str, float]:
    by_dataset: dict[str, list[bool]] = defaultdict(list)
    for row in judged:
        by_dataset[row["dataset"]].append(row["used_tool"])
    return {ds: sum(v) / len(v) for ds, v in sorted(by_dataset.items())}


@holding_output
def run_evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """``trice evaluate``: judge the input file, write the judged lines, return the summary.

    With ``skip_bad`` the summary also has ``skipped_lines``; without it, and with every tool
    answering, it is exactly ``{"accuracy", "tool_rate", "n"}`` (a tool or server that did not
    answer adds ``tool_outages``). The model that reads tool outputs again (qa, mlqa) is loaded
    only when some response needs a reading.
    """
    config.validate()  # fail on an unknown task before reading anything
    if not config.input or not config.output:
        raise ConfigError("trice evaluate: both --input and --output are required")
    report = ReadReport()
    check = lambda row, path, line: check_row_task(row, config.task, path, line)  # noqa: E731
    rows = read_input(config.input, RESPONSE_FIELDS, check=check, skip_bad=config.skip_bad, report=report)
    claim_output(config.output, inputs=[config.input], ids={r["id"] for r in rows}, fields=JUDGED_FIELDS, overwrite=config.overwrite)
    generate = GenerateConfig(model=config.model, adapter=config.adapter, template=config.template, read_max_new_tokens=config.read_max_new_tokens)
    calls = call_format_of(config)
    judged = judge_rows(rows, config.task, ReadingModel.for_config(generate), config.tools, config.qa_require_evidence, calls)
    write_jsonl(config.output, judged)
    summary = summarize(judged)
    if config.qa_require_evidence:  # how often the paper's judge and the evidence judge disagree
        summary["unsupported_readings"] = sum(bool(r.get("unsupported_reading")) for r in judged)
    if config.skip_bad:
        summary["skipped_lines"] = len(report.skipped)
    return summary
