"""Building training sets from probed questions: D_tool and the two SFT baselines.

D_tool (TRICE's stage-I data): where the untuned model answered right, its own response is the
output (no tool); where it was wrong, a tool call from the data's annotations is the output, kept
only when executing it gives the gold answer. The baselines use the same questions: ``sft-0``
trains on the gold answer alone, ``sft-100`` on the verified tool call alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.config import ConfigError
from trice.evaluate import read_input
from trice.io import DataError, ReadReport, write_json, write_jsonl
from trice.tasks import TASKS, get_task

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
    skip_bad: bool = field(
        default=False,
        metadata={"help": "Skip bad input lines (one warning; their count is the stats' skipped_lines) instead of failing."},
    )

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")


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


def verified_call(row: dict[str, Any]) -> str | None:
    """The row's reference tool call if executing it yields a gold answer, else None."""
    call = row.get("tool_call")
    if not call:
        return None
    task = get_task(row["task"])
    judgement = task.judge(call, row["answers"], task.registry())
    return call if judgement.used_tool and judgement.correct else None


def label_rows(rows: Sequence[dict[str, Any]], mode: str = "trice") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Training rows for ``mode`` and counts of what happened to each probed question."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    out: list[dict[str, Any]] = []
    counts: Counter[str] = Counter(dict.fromkeys(_OUTCOMES[mode], 0))
    for row in rows:
        base = {k: row[k] for k in ("id", "dataset", "task", "question", "answers")}
        if mode == "sft-0":
            out.append(base | {"output": row["answers"][0], "used_tool": False, "source": "gold-answer"})
            counts["answer"] += 1
            continue
        if mode == "trice" and row["correct"]:
            out.append(base | {"output": row["response"], "used_tool": False, "source": "self"})
            counts["right"] += 1
            continue
        call = verified_call(row)
        if call is None:
            counts["dropped"] += 1
            continue
        out.append(base | {"output": call, "used_tool": True, "source": "annotation"})
        counts["labelled"] += 1
    stats = {"mode": mode, "probed": len(rows), "kept": len(out), **dict(counts)}
    stats["tool_share"] = sum(r["used_tool"] for r in out) / len(out) if out else 0.0
    return out, stats


def run_label(config: LabelConfig) -> dict[str, Any]:
    """``trice label``: write the training set and ``<output>.stats.json`` beside it.

    With ``skip_bad`` the stats also have ``skipped_lines``.
    """
    config.validate()
    if not config.input or not config.output:
        raise ConfigError("trice label: both --input and --output are required")
    report = ReadReport()
    rows = read_input(
        config.input,
        PROBED_FIELDS,
        check=lambda row, path, line: check_probed(row, config.mode, path, line),
        skip_bad=config.skip_bad,
        report=report,
    )
    out, stats = label_rows(rows, config.mode)
    if config.skip_bad:
        stats["skipped_lines"] = len(report.skipped)
    write_jsonl(config.output, out)
    write_json(Path(str(config.output) + ".stats.json"), stats)
    return stats
