"""Building training sets from probed questions: D_tool and the two SFT baselines.

D_tool (TRICE's stage-I data): where the untuned model answered right, its own response is the
output (no tool); where it was wrong, a tool call is the output, kept only when executing it gives
the gold answer (how each task finds and checks its calls: :mod:`trice.stage1.tool_labels`). The baselines
use the same questions: ``sft-0`` trains on the gold answer alone, ``sft-100`` on the verified tool
call alone. The stats count what happened to the questions in all and per task, and where the kept
outputs came from (``self``, ``annotation``, ``search-term:<kind>``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.utils.config import ConfigError
from trice.responses.config import GenerateConfig
from trice.tasks.inputs import read_input
from trice.tools.factories import check_tool_options
from trice.judge.reading import ReadingModel
from trice.stage1.boundary import boundary_rows, boundary_stats
from trice.stage1.tool_labels import check_teacher, verified_calls
from trice.utils.io import DataError, ReadReport, read_jsonl, write_json, write_jsonl
from trice.generation.models import DEFAULT_MODEL, call_format_of, load_tokenizer
from trice.stage1.native_labels import native_label_rows
from trice.core.call_format import call_format_field, check_call_format, tool_parser_field
from trice.utils.outputs import OVERWRITE_HELP, claim_json_output, claim_output, holding_output
from trice.tasks import TASKS

MODES = ("trice", "sft-0", "sft-100")
# What can happen to a probed question in each mode (every count is reported, zeros included).
_OUTCOMES = {"trice": ("right", "labelled", "dropped"), "sft-0": ("answer",), "sft-100": ("labelled", "dropped")}
PROBED_FIELDS = {"id": str, "dataset": str, "task": str, "question": str, "answers": (list, str), "correct": bool}


@dataclass
class LabelConfig:
    """Turn a judged probe of the training questions into a training set (the ``trice label`` flags)."""

    input: str = field(default="", metadata={"help": "Judged probe JSONL (trice evaluate's output on training questions)."})
    output: str = field(default="", metadata={"help": "Training JSONL to write (id, task, question, output, ...)."})
    mode: str = field(default="trice", metadata={"help": "trice (D_tool), sft-0 (answers only) or sft-100 (tool calls only)."})
    skip_bad: bool = field(default=False, metadata={"help": "Skip bad input lines (one warning; their count is the stats' skipped_lines) instead of failing."})
    search_k: int = field(default=2, metadata={"help": "qa: a search term is kept when one of its top this-many passages holds a gold answer."})
    teacher: dict = field(
        default_factory=dict,
        metadata={
            "help": "qa, YAML only (--config): a teacher LLM proposing search terms: EndpointConfig keys (base_url, model, ...) of a server, "
            "or {kind: model, model: ALIAS_OR_DIR, max_new_tokens, batch_size, dtype} for a local model; empty: deterministic terms only."
        },
    )
    tools: dict = field(
        default_factory=dict, metadata={"help": "YAML only (--config): tool options keyed by tool name, e.g. {WikiSearch: {backend: bm25}, QA: {k: 2}}."}
    )
    model: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "mlqa: the probed model, which reads a call's translation again; native: whose chat template writes the calls."},
    )
    template: str = field(default="alpaca", metadata={"help": "mlqa: prompt template of that reading (native: chat)."})
    read_max_new_tokens: int = field(default=32, metadata={"help": "mlqa: new tokens of that reading (greedy)."})
    call_format: str = call_format_field()
    tool_parser: str = tool_parser_field()
    own_if: int = field(
        default=0,
        metadata={
            "help": "trice mode: keep the model's own answer only where at least this many of its answers (the greedy one and the "
            "probe's samples) are right, else a verified call (trice.stage1.boundary); 0: the paper's rule, the greedy answer alone."
        },
    )
    own_accuracy: str = field(default="", metadata={"help": "With own_if: each question's own accuracy JSONL (the probe-samples stage's own_accuracy.jsonl)."})
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def validate(self) -> None:
        check_call_format(self.call_format, self.tool_parser, self.template)
        if self.own_if < 0:
            raise ValueError(f"own_if must be >= 0, got {self.own_if}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.search_k < 1:
            raise ValueError(f"search_k must be >= 1, got {self.search_k}")
        check_tool_options(self.tools)
        check_teacher(self.teacher)

    def tool_call_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`trice.stage1.tool_labels.verified_calls` besides the reader."""
        return {"tools": self.tools, "search_k": self.search_k, "teacher": self.teacher or None}

    def in_call_format(self, rows: Sequence[dict[str, Any]], tokenizer: Any = None) -> list[dict[str, Any]]:
        """Label rows as this config trains on them: as labelled (text format), or with each tool
        call written by the model's chat template (native: :mod:`trice.stage1.native_labels`;
        ``tokenizer``: the model's, loaded here when not given)."""
        calls = call_format_of(self)
        if not calls.native:
            return list(rows)
        return native_label_rows(rows, tokenizer if tokenizer is not None else load_tokenizer(self.model), calls.parser)


def check_probed(row: dict[str, Any], mode: str, path: str | Path, line: int | None) -> None:
    """What the field types cannot say: the row's task exists and the fields ``mode`` reads are usable."""
    if row["task"] not in TASKS:
        raise DataError(path, line, "task", f"unknown task {row['task']!r}; known tasks: {', '.join(TASKS)}")
    call = row.get("tool_call")
    if call is not None and not isinstance(call, str):
        raise DataError(path, line, "tool_call", f"expected string or null, got {type(call).__name__}")
    if mode == "sft-0" and not row["answers"]:
        raise DataError(path, line, "answers", "empty: sft-0 trains on the first gold answer")
    if mode == "trice" and row["correct"] and not isinstance(row.get("response"), str):
        problem = "missing" if "response" not in row else f"expected string, got {type(row['response']).__name__}"
        raise DataError(path, line, "response", f"{problem} (a correct probe's response is its training output)")


def _needs_call(row: dict[str, Any], mode: str) -> bool:
    return mode == "sft-100" or (mode == "trice" and not row["correct"])


def label_rows(
    rows: Sequence[dict[str, Any]], mode: str = "trice", calls: Mapping[str, tuple[str, str] | None] | None = None, **call_options: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Training rows for ``mode`` and counts of what happened to each probed question (in all and
    per task).

    ``calls``: the verified ``(call, source)`` per id of the rows that need one (made here with
    :func:`trice.stage1.tool_labels.verified_calls` and ``call_options`` when not given, e.g. to share them
    between modes).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if calls is None and mode != "sft-0":
        calls = verified_calls([r for r in rows if _needs_call(r, mode)], **call_options)
    out: list[dict[str, Any]] = []
    counts: Counter[str] = Counter(dict.fromkeys(_OUTCOMES[mode], 0))
    by_task: dict[str, Counter[str]] = {}
    for row in rows:
        base = {k: row[k] for k in ("id", "dataset", "task", "question", "answers")}
        if mode == "sft-0":
            out.append(base | {"output": row["answers"][0], "used_tool": False, "source": "gold-answer"})
            outcome = "answer"
        elif mode == "trice" and row["correct"]:
            out.append(base | {"output": row["response"], "used_tool": False, "source": "self"})
            outcome = "right"
        elif (found := (calls or {}).get(row["id"])) is None:
            outcome = "dropped"
        else:
            out.append(base | {"output": found[0], "used_tool": True, "source": found[1]})
            outcome = "labelled"
        counts[outcome] += 1
        by_task.setdefault(row["task"], Counter(dict.fromkeys(_OUTCOMES[mode], 0)))[outcome] += 1
    stats = {"mode": mode, "probed": len(rows), "kept": len(out), **dict(counts)}
    stats["tool_share"] = sum(r["used_tool"] for r in out) / len(out) if out else 0.0
    stats["by_task"] = {task: dict(c) for task, c in sorted(by_task.items())}
    sources = Counter(r["source"] for r in out)
    stats["sources"] = dict(sorted(sources.items()))
    return out, stats


def label_modes(
    rows: Sequence[dict[str, Any]], modes: Sequence[str], reader: Any = None, outages: dict[str, str] | None = None, **call_options: Any
) -> dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]:
    """:func:`label_rows` for several modes, verifying each question's tool call once. ``outages``
    collects the questions a tool outage left without a call (:func:`~trice.stage1.tool_labels.verified_calls`)."""
    need = [r for r in rows if any(_needs_call(r, m) for m in modes)]
    calls = verified_calls(need, reader=reader, outages=outages, **call_options) if need and set(modes) - {"sft-0"} else {}
    return {mode: label_rows(rows, mode, calls) for mode in modes}


def knowledge_boundary(rows: list[dict[str, Any]], own_if: int, accuracy: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The probed rows as the label rule reads them, and what to add to the stats: unchanged with
    ``own_if`` 0 (the paper's greedy rule); else relabelled by each question's own accuracy
    (:func:`trice.stage1.boundary.boundary_rows`), with the rule's counts under ``boundary``."""
    if not own_if:
        return rows, {}
    return boundary_rows(rows, accuracy, own_if), {"boundary": boundary_stats(accuracy, own_if)}


@holding_output
def run_label(config: LabelConfig) -> dict[str, Any]:
    """``trice label``: write the training set and ``<output>.stats.json`` beside it.

    With ``skip_bad`` the stats also have ``skipped_lines``.
    """
    config.validate()
    if not config.input or not config.output:
        raise ConfigError("trice label: both --input and --output are required")
    if config.own_if and not config.own_accuracy:
        raise ConfigError("trice label: --own_if needs --own_accuracy (the own accuracy of each probed question)")
    report = ReadReport()
    rows = read_input(
        config.input, PROBED_FIELDS, check=lambda row, path, line: check_probed(row, config.mode, path, line), skip_bad=config.skip_bad, report=report
    )
    ids, inputs = {r["id"] for r in rows}, [config.input]
    claim_output(config.output, inputs=inputs, ids=ids, fields=("output", "source"), overwrite=config.overwrite)
    claim_json_output(str(config.output) + ".stats.json", inputs=inputs, fields=("mode", "probed"), overwrite=config.overwrite)
    readings = str(config.output) + ".readings.jsonl"
    claim_output(readings, inputs=inputs, fields=("reading",), overwrite=config.overwrite)
    generate = GenerateConfig(model=config.model, template=config.template, read_max_new_tokens=config.read_max_new_tokens)
    reader = ReadingModel.for_config(generate, cache=Path(readings))
    rows, boundary = knowledge_boundary(rows, config.own_if, read_jsonl(config.own_accuracy) if config.own_if else [])
    ((out, stats),) = label_modes(rows, [config.mode], reader, **config.tool_call_options()).values()
    stats |= boundary
    out = config.in_call_format(out)
    if config.skip_bad:
        stats["skipped_lines"] = len(report.skipped)
    write_jsonl(config.output, out)
    write_json(Path(str(config.output) + ".stats.json"), stats)
    return stats
