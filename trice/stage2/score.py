"""Scoring candidate responses with execution feedback: the ``trice score`` command (stage II data).

``trice score`` is a stable interface other tools call:

* each input line has at least ``id`` (string), ``answers`` (list of strings) and ``responses``
  (non-empty list of strings, the first being the gold response); optionally ``sources`` (list of
  strings, one per response: which model wrote it), ``question`` (needed where a tool's output is
  read again: qa, mlqa) and ``task`` (which must then be the command's task; with ``--task per-row``
  every line needs one and is judged by it: a TRICE-MIX run's candidates);
* each output line is its input line plus ``predictions`` (string or null), ``scores`` (number),
  ``used_tool`` (bool) and ``states`` (``gold``, ``True-Yes`` .. ``False-No``, ``no-prediction``;
  see :mod:`trice.stage2.reward`), one per response, and ``strategy``;
* the last line on stdout is ``{"n": N, "strategy": s, "states": {state: count},
  "mean_score_by_source": {source: mean}}`` (that key only when the input has ``sources``), plus
  ``"skipped_lines": n`` with ``--skip_bad``;
* a bad input line fails the command with ``file:line: field 'name': problem`` (exit status 2), or
  with ``--skip_bad`` is skipped, counted and reported in one warning.

The run is resumable: scored lines are appended to the output a chunk at a time, a rerun skips the
ids already there (unless their responses or strategy changed), and the output is finally rewritten
atomically with exactly the input's ids in the input's order.

A WikiSearch passage or a translation is judged by what a model answers after reading it
(:mod:`trice.judge.reading`); here that model is ``model`` (with ``adapter``): the pipeline gives the
recipe's base model, the same reader for every candidate, so sources are compared on equal terms.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from trice.responses.config import GenerateConfig
from trice.core.call_format import NATIVE_FORMAT, TEXT, CallFormat, call_format_field, check_call_format, tool_parser_field
from trice.judge.evaluate import judge_many, machine_failure
from trice.tools.factories import check_tool_options
from trice.judge.reading import ReadingModel
from trice.utils.config import ConfigError
from trice.tasks.inputs import check_row_task, read_input
from trice.utils.io import DataError, JsonlAppender, ReadReport, read_json, write_json, write_jsonl
from trice.generation.models import DEFAULT_MODEL, call_format_of
from trice.utils.outputs import OVERWRITE_HELP, claim_json_output, claim_output, holding_output
from trice.stage2.reward import STATES, get_reward, response_states, score_judgements, score_responses
from trice.tasks import PER_ROW, Judgement, check_task_name, get_task, tool_registries
from trice.core.tools import ToolRegistry

log = logging.getLogger(__name__)

CANDIDATE_FIELDS = {"id": str, "answers": (list, str), "responses": (list, str)}


@dataclass
class ScoreConfig:
    """Score each question's candidate responses (the ``trice score`` flags)."""

    task: str = field(
        default="math", metadata={"help": f"Task whose tool and metric judge the responses: math, qa, lama, mlqa, or {PER_ROW} (each line's own task)."}
    )
    input: str = field(default="", metadata={"help": "JSONL with id, answers, responses (gold first), optional sources."})
    output: str = field(default="", metadata={"help": "JSONL to write: the input lines plus predictions, scores, used_tool, states."})
    strategy: str = field(default="paper", metadata={"help": "Reward strategy: paper (the paper's states) or original (the released code)."})
    skip_bad: bool = field(
        default=False, metadata={"help": "Skip bad input lines (one warning; their count is the summary's skipped_lines) instead of failing."}
    )
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "qa, mlqa: the model that reads WikiSearch passages / translations again."})
    adapter: str | None = field(default=None, metadata={"help": "qa, mlqa: LoRA adapter of the reading model."})
    template: str = field(default="alpaca", metadata={"help": "qa, mlqa: prompt template of the reading."})
    read_max_new_tokens: int = field(default=32, metadata={"help": "qa, mlqa: new tokens per reading (greedy)."})
    tools: dict = field(
        default_factory=dict, metadata={"help": "YAML only (--config): tool options keyed by tool name, e.g. {WikiSearch: {backend: bm25}, QA: {k: 2}}."}
    )
    chunk: int = field(default=32, metadata={"help": "Questions judged together (their calls and readings batched) before they are appended."})
    call_format: str = call_format_field()
    tool_parser: str = tool_parser_field()
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def judging(self) -> dict[str, Any]:
        """What decides a scored row besides the row itself: a resume reuses rows scored under these only
        (the call format only where native, so a text run's record reads as it always did)."""
        keys = ("task", "strategy", "model", "adapter", "template", "read_max_new_tokens", "tools")
        native = ("call_format", "tool_parser") if self.call_format == NATIVE_FORMAT else ()
        return {k: getattr(self, k) for k in keys + native}

    def validate(self) -> None:
        check_task_name(self.task)
        check_call_format(self.call_format, self.tool_parser, None)
        get_reward(self.strategy)
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")
        check_tool_options(self.tools)


def check_candidates(row: dict, task: str, path: str | Path, line: int | None) -> None:
    """What the field types cannot say: a gold response exists, sources match responses, the task fits."""
    if not row["responses"]:
        raise DataError(path, line, "responses", "empty: the first response must be the gold one")
    sources = row.get("sources")
    if sources is not None:
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise DataError(path, line, "sources", "expected a list of strings")
        if len(sources) != len(row["responses"]):
            raise DataError(path, line, "sources", f"{len(sources)} sources for {len(row['responses'])} responses")
    if task == PER_ROW:
        if not isinstance(row.get("task"), str):
            raise DataError(path, line, "task", "missing: with --task per-row every line names its task")
        try:
            get_task(row["task"])
        except ValueError as err:
            raise DataError(path, line, "task", str(err)) from None
    elif "task" in row and row["task"] != task:
        raise DataError(path, line, "task", f"{row['task']!r}, but this run scores task {task!r}")
    check_row_task(row, task, path, line)  # and a question where the task reads tool outputs again


def read_candidates(path: str | Path, task: str, skip_bad: bool = False, report: ReadReport | None = None) -> list[dict]:
    """The checked input rows; a bad line raises :class:`DataError` naming its file, line and field
    (with ``skip_bad``: is skipped and counted in ``report``)."""
    check = lambda row, where, line: check_candidates(row, task, where, line)  # noqa: E731
    return read_input(path, CANDIDATE_FIELDS, check=check, skip_bad=skip_bad, report=report)


def score_row(row: dict, task_name: str, strategy: str, registry: ToolRegistry | None = None, calls: CallFormat = TEXT) -> dict:
    """One input row plus its predictions, scores, tool use and states (one question, no reading:
    :func:`score_rows` scores many, reading tool outputs in batches)."""
    predictions, scores, judgements = score_responses(task_name, row["responses"], row["answers"], strategy, registry, calls)
    return _scored(row, predictions, scores, judgements, strategy)


def machine_failures(judgements: Sequence[Judgement]) -> list[str]:
    """Why responses were judged on the machine's failure rather than on what they say
    (:func:`trice.judge.evaluate.machine_failure`)."""
    return [failure for j in judgements if (failure := machine_failure(j.tool_error, j.unread))]


def _scored(row: dict, predictions: list, scores: list[float], judgements: list[Judgement], strategy: str) -> dict:
    failures = machine_failures(judgements)
    return (
        row
        | {
            "predictions": predictions,
            "scores": scores,
            "used_tool": [j.used_tool for j in judgements],
            "states": response_states(judgements),
            "strategy": strategy,
        }
        | ({"machine_failures": failures} if failures else {})
    )


def score_rows(rows: list[dict], task_name: str, strategy: str, reader: Any = None, registry: Any = None, calls: CallFormat = TEXT) -> list[dict]:
    """Score many rows: every response of every row judged in one batch (:func:`trice.judge.evaluate.judge_many`;
    ``registry``: :func:`trice.tasks.tool_registries`, shared across calls; ``calls``: the format
    the responses write their calls in)."""
    flat = [
        {"id": f"{row['id']}#{i}", "question": row.get("question"), "answers": row["answers"], "response": response,
         "task": row["task"] if task_name == PER_ROW else task_name}
        for row in rows for i, response in enumerate(row["responses"])
    ]  # fmt: skip
    judgements = iter(judge_many(flat, task_name, reader, registry=registry, calls=calls))
    scored = []
    for row in rows:
        task = row["task"] if task_name == PER_ROW else task_name
        js = [next(judgements) for _ in row["responses"]]
        scored.append(_scored(row, [j.prediction for j in js], score_judgements(js, task, row["answers"], strategy), js, strategy))
    return scored


def summarize(scored: list[dict], strategy: str) -> dict[str, Any]:
    """Counts per state over all responses, and the mean score of each source (when given)."""
    states = Counter(s for row in scored for s in row["states"])
    summary: dict[str, Any] = {"n": len(scored), "strategy": strategy, "states": {s: states[s] for s in STATES}}
    by_source: dict[str, list[float]] = defaultdict(list)
    for row in scored:
        for source, score in zip(row.get("sources") or (), row["scores"]):
            by_source[source].append(score)
    if by_source:
        summary["mean_score_by_source"] = {s: sum(v) / len(v) for s, v in sorted(by_source.items())}
    return summary


SCORED_FIELDS = ("predictions", "scores", "used_tool", "states", "strategy")


def _reusable(done: dict | None, row: dict, strategy: str) -> bool:
    """Whether an already scored row answers this input row: scored with ``strategy``, every input
    field (responses, gold answers, question, task, sources) the same, and no response judged on a
    machine failure (:func:`machine_failures`: a rerun scores that row again)."""
    return (done is not None and done.get("strategy") == strategy and not done.get("machine_failures")
            and all(done.get(key) == value for key, value in row.items()))  # fmt: skip


def _claim(config: ScoreConfig, rows: list[dict]) -> tuple[dict[str, dict], int]:
    """The rows already scored in ``config.output`` that a resume may keep (with the length of their
    lines), after checking every path this command writes. Rows scored under other judging settings
    (task, strategy, reading model, tools: recorded in ``<output>.judging.json`` once scoring
    starts, :func:`_record_judging`) are all scored again; an output without that record is
    checked row by row only (:func:`_reusable`)."""
    inputs = [config.input]
    claimed = claim_output(config.output, inputs=inputs, ids={r["id"] for r in rows}, fields=SCORED_FIELDS, overwrite=config.overwrite)
    claim_output(config.output + ".readings.jsonl", inputs=inputs, fields=("reading",), overwrite=config.overwrite)
    judging = Path(config.output + ".judging.json")
    claim_json_output(judging, inputs=inputs, fields=("task", "strategy"), overwrite=config.overwrite)
    recorded = read_json(judging) if judging.is_file() and judging.stat().st_size else None
    if claimed.rows and recorded is not None and recorded != config.judging():
        log.warning("%s: scored under other settings (%s): scoring every row again", config.output, judging)
        claimed.rows.clear()
        claimed.keep_bytes = 0  # their lines go too, once scoring starts
    return claimed.rows, claimed.keep_bytes


def _record_judging(config: ScoreConfig) -> None:
    """Record the judging settings once the output holds only rows scored under them: after the
    appender cut away rows of other settings, not before (a command failing in between must not
    vouch for the old rows)."""
    write_json(Path(config.output + ".judging.json"), config.judging())


@holding_output
def run_score(config: ScoreConfig) -> dict[str, Any]:
    """``trice score``: judge and score every candidate, resumably; return the summary."""
    config.validate()
    if not config.input or not config.output:
        raise ConfigError("trice score: both --input and --output are required")
    report = ReadReport()
    rows = read_candidates(config.input, config.task, config.skip_bad, report)
    done, keep_bytes = _claim(config, rows)
    todo = [r for r in rows if not _reusable(done.get(r["id"]), r, config.strategy)]
    if len(todo) < len(rows):
        log.info("%s: %d of %d already scored, resuming", config.output, len(rows) - len(todo), len(rows))
    if todo:
        reading = GenerateConfig(model=config.model, adapter=config.adapter, template=config.template, read_max_new_tokens=config.read_max_new_tokens)
        reader = ReadingModel.for_config(reading, cache=Path(config.output + ".readings.jsonl"), desc="score: read again")
        registry, calls = tool_registries(config.tools), call_format_of(config)
        with JsonlAppender(config.output, keep_bytes) as sink:
            _record_judging(config)
            with tqdm(range(0, len(todo), config.chunk), desc="score", unit="chunk") as bar:  # closed on an error
                for start in bar:
                    for scored in score_rows(todo[start : start + config.chunk], config.task, config.strategy, reader, registry, calls):
                        done[scored["id"]] = scored
                        sink.write(scored)
    scored = [done[r["id"]] for r in rows]
    write_jsonl(config.output, scored)
    _record_judging(config)
    summary = summarize(scored, config.strategy)
    failed = [row for row in scored if row.get("machine_failures")]
    if failed:  # scores made on the machine's failures: the pipeline's score stage stays incomplete on them
        summary["machine_failures"] = {"rows": len(failed), "first": f"{failed[0]['id']}: {failed[0]['machine_failures'][0]}"[:200]}
    if config.skip_bad:
        summary["skipped_lines"] = len(report.skipped)
    return summary
