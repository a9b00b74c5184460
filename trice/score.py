"""Scoring candidate responses with execution feedback: the ``trice score`` command (stage II data).

``trice score`` is a stable interface other tools call:

* each input line has at least ``id`` (string), ``answers`` (list of strings) and ``responses``
  (non-empty list of strings, the first being the gold response); optionally ``sources`` (list of
  strings, one per response: which model wrote it), ``question`` and ``task`` (which must then be the
  command's task);
* each output line is its input line plus ``predictions`` (string or null), ``scores`` (number),
  ``used_tool`` (bool) and ``states`` (``gold``, ``True-Yes`` .. ``False-No``, ``no-prediction``;
  see :mod:`trice.reward`), one per response, and ``strategy``;
* the last line on stdout is ``{"n": N, "strategy": s, "states": {state: count},
  "mean_score_by_source": {source: mean}}`` (that key only when the input has ``sources``), plus
  ``"skipped_lines": n`` with ``--skip_bad``;
* a bad input line fails the command with ``file:line: field 'name': problem`` (exit status 2), or
  with ``--skip_bad`` is skipped, counted and reported in one warning.

The run is resumable: each scored line is appended to the output as it is done, a rerun skips the
ids already there (unless their responses or strategy changed), and the output is finally rewritten
atomically with exactly the input's ids in the input's order.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.config import ConfigError
from trice.evaluate import read_input
from trice.io import DataError, JsonlAppender, ReadReport, load_partial, write_jsonl
from trice.reward import STATES, get_reward, response_states, score_responses
from trice.tasks import get_task
from trice.tools import ToolRegistry

log = logging.getLogger(__name__)

CANDIDATE_FIELDS = {"id": str, "answers": (list, str), "responses": (list, str)}


@dataclass
class ScoreConfig:
    """Score each question's candidate responses (the ``trice score`` flags)."""

    task: str = field(default="math", metadata={"help": "Task whose tool and metric judge the responses: math."})
    input: str = field(default="", metadata={"help": "JSONL with id, answers, responses (gold first), optional sources."})
    output: str = field(default="", metadata={"help": "JSONL to write: the input lines plus predictions, scores, used_tool, states."})
    strategy: str = field(default="paper", metadata={"help": "Reward strategy: paper (the paper's states) or original (the released code)."})
    skip_bad: bool = field(
        default=False,
        metadata={"help": "Skip bad input lines (one warning; their count is the summary's skipped_lines) instead of failing."},
    )

    def validate(self) -> None:
        get_task(self.task)
        get_reward(self.strategy)


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
    if "task" in row and row["task"] != task:
        raise DataError(path, line, "task", f"{row['task']!r}, but this run scores task {task!r}")


def read_candidates(path: str | Path, task: str, skip_bad: bool = False, report: ReadReport | None = None) -> list[dict]:
    """The checked input rows; a bad line raises :class:`DataError` naming its file, line and field
    (with ``skip_bad``: is skipped and counted in ``report``)."""
    check = lambda row, where, line: check_candidates(row, task, where, line)  # noqa: E731
    return read_input(path, CANDIDATE_FIELDS, check=check, skip_bad=skip_bad, report=report)


def score_row(row: dict, task_name: str, strategy: str, registry: ToolRegistry | None = None) -> dict:
    """One input row plus its predictions, scores, tool use and states."""
    predictions, scores, judgements = score_responses(task_name, row["responses"], row["answers"], strategy, registry)
    return row | {
        "predictions": predictions,
        "scores": scores,
        "used_tool": [j.used_tool for j in judgements],
        "states": response_states(judgements),
        "strategy": strategy,
    }


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


def _reusable(done: dict | None, row: dict, strategy: str) -> bool:
    return done is not None and done.get("strategy") == strategy and done.get("responses") == row["responses"]


def run_score(config: ScoreConfig) -> dict[str, Any]:
    """``trice score``: judge and score every candidate, resumably; return the summary."""
    config.validate()
    if not config.input or not config.output:
        raise ConfigError("trice score: both --input and --output are required")
    report = ReadReport()
    rows = read_candidates(config.input, config.task, config.skip_bad, report)
    done = load_partial(config.output)
    todo = [r for r in rows if not _reusable(done.get(r["id"]), r, config.strategy)]
    if len(todo) < len(rows):
        log.info("%s: %d of %d already scored, resuming", config.output, len(rows) - len(todo), len(rows))
    if todo:
        registry = get_task(config.task).registry()
        with JsonlAppender(config.output) as sink:
            for row in todo:
                done[row["id"]] = scored = score_row(row, config.task, config.strategy, registry)
                sink.write(scored)
    scored = [done[r["id"]] for r in rows]
    write_jsonl(config.output, scored)
    summary = summarize(scored, config.strategy)
    if config.skip_bad:
        summary["skipped_lines"] = len(report.skipped)
    return summary
