"""``trice messages``: a D_tool between trice's label rows and chat ``messages`` with ``tools``, so
a training set labelled here can be trained with TRL or LLaMA-Factory, and one made there trained
by ``trice train-sft``.

The conversion is :mod:`trice.data.messages`; this is the command around it: the input read with
located errors (``skip_bad`` skips and counts bad lines), the output claimed as every command
claims its output (:func:`trice.utils.outputs.claim_output`: a file that is not this command's
output of this input is never overwritten without ``--overwrite``), then written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trice.data.messages import MESSAGES_FIELDS, read_labels_as_messages, read_messages
from trice.tasks import TASKS
from trice.utils.config import ConfigError
from trice.utils.io import ReadReport, write_jsonl
from trice.utils.outputs import OVERWRITE_HELP, claim_output

LABEL_OUTPUT_FIELDS = ("output", "used_tool")  # what every label row this command writes holds


@dataclass
class MessagesConfig:
    """Convert a D_tool between label rows and chat messages (the ``trice messages`` flags)."""

    input: str = field(
        default="",
        metadata={"help": "JSONL to convert: label rows as `trice label` writes them, or with --from_messages rows of messages and tools."},
    )
    output: str = field(
        default="",
        metadata={"help": "JSONL to write: rows of messages and tools (TRL's conversational layout; LLaMA-Factory's openai formatting), or with --from_messages label rows that `trice train-sft --data` reads."},
    )
    from_messages: bool = field(
        default=False,
        metadata={"help": "Convert the other way: rows of messages and tools (made here or elsewhere) into label rows."},
    )
    task: str | None = field(
        default=None,
        metadata={"help": "With --from_messages: the task of rows that name none (unset: the task whose tool a row offers)."},
    )
    skip_bad: bool = field(default=False, metadata={"help": "Skip malformed input lines (counted in the summary) instead of failing on the first."})
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def validate(self) -> None:
        if self.task is not None and not self.from_messages:
            raise ValueError("task: only rows of messages may lack a task; label rows name their own (drop task, or convert from_messages)")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"task: unknown {self.task!r}; known tasks: {', '.join(TASKS)}")


def run_messages(config: MessagesConfig) -> dict[str, Any]:
    """``trice messages``: convert ``config.input`` and write ``config.output``; returns a summary
    (rows written, and with ``skip_bad`` the input lines skipped)."""
    try:
        config.validate()
    except ValueError as err:
        raise ConfigError(f"trice messages: {err}") from None
    if not config.input or not config.output:
        raise ConfigError("trice messages: both --input and --output are required")
    report = ReadReport()
    if config.from_messages:
        rows = read_messages(config.input, task=config.task, skip_bad=config.skip_bad, report=report)
        fields: tuple[str, ...] = LABEL_OUTPUT_FIELDS
    else:
        rows = read_labels_as_messages(config.input, skip_bad=config.skip_bad, report=report)
        fields = tuple(MESSAGES_FIELDS)
    claim_output(config.output, inputs=[config.input], ids={r["id"] for r in rows}, fields=fields, overwrite=config.overwrite)
    write_jsonl(config.output, rows)
    summary: dict[str, Any] = {"output": config.output, "rows": len(rows), "to": "labels" if config.from_messages else "messages"}
    if config.skip_bad:
        summary["skipped_lines"] = len(report.skipped)
    return summary
