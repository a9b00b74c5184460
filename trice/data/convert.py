"""``trice messages``: a D_tool between trice's label rows and chat ``messages`` with ``tools``, so
a training set labelled here can be trained with TRL or LLaMA-Factory, and one made there trained
by ``trice train-sft``.

The conversion is :mod:`trice.data.messages`; this is the command around it: the input read with
located errors (``skip_bad`` skips and counts bad lines), the output claimed as every command
claims its output (:func:`trice.utils.outputs.claim_output`: a file that is not this command's
output of this input is never overwritten without ``--overwrite``), then written atomically.

The rows carry a call as the assistant's ``tool_calls`` and the tool as a schema in ``tools``; the
chat template that renders them for training (TRL applies the tokenizer's) must write both. One
without tool support (SmolLM2's) renders a call as an empty assistant turn, so a model trained on it
learns to say nothing: with ``--model`` the template is tried on the rows first and one that drops
the calls is refused (one that drops only the schemas is warned about); without it, rows that call
tools get a warning saying how to check.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from trice.data.messages import MESSAGES_FIELDS, read_labels_as_messages, read_messages
from trice.generation.models import load_tokenizer
from trice.core.templates import assistant_turn_text, render_chat
from trice.tasks import TASKS
from trice.utils.config import ConfigError
from trice.utils.io import ReadReport, write_jsonl
from trice.utils.outputs import OVERWRITE_HELP, claim_output, holding_output

log = logging.getLogger(__name__)

LABEL_OUTPUT_FIELDS = ("output", "used_tool")  # what every label row this command writes holds


@dataclass
class MessagesConfig:
    """Convert a D_tool between label rows and chat messages (the ``trice messages`` flags)."""

    input: str = field(
        default="", metadata={"help": "JSONL to convert: label rows as `trice label` writes them, or with --from_messages rows of messages and tools."}
    )
    output: str = field(
        default="",
        metadata={
            "help": "JSONL to write: rows of messages and tools (TRL's conversational layout; LLaMA-Factory's openai formatting), or with --from_messages label rows that `trice train-sft --data` reads."
        },
    )
    from_messages: bool = field(default=False, metadata={"help": "Convert the other way: rows of messages and tools (made here or elsewhere) into label rows."})
    task: str | None = field(
        default=None, metadata={"help": "With --from_messages: the task of rows that name none (unset: the task whose tool a row offers)."}
    )
    model: str = field(
        default="",
        metadata={
            "help": "The model whose chat template will render the rows (hub name, directory or embedded alias): tried on them "
            "before anything is written; a template that drops the tool calls (no tool support: an empty assistant turn) is refused."
        },
    )
    skip_bad: bool = field(default=False, metadata={"help": "Skip malformed input lines (counted in the summary) instead of failing on the first."})
    overwrite: bool = field(default=False, metadata={"help": OVERWRITE_HELP})

    def validate(self) -> None:
        if self.task is not None and not self.from_messages:
            raise ValueError("task: only rows of messages may lack a task; label rows name their own (drop task, or convert from_messages)")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"task: unknown {self.task!r}; known tasks: {', '.join(TASKS)}")
        if self.model and self.from_messages:
            raise ValueError("model: checks the template that renders messages rows; label rows made --from_messages render none")


def template_drops(tokenizer: Any, row: dict[str, Any]) -> list[str]:
    """What of ``row`` (a messages row) the tokenizer's chat template leaves out of its text: the
    tools' schemas (the prompt reads the same without them) and a ``tool_calls`` turn's call (its
    name or an argument missing from what the template writes for the turn)."""
    messages, tools = row["messages"], row["tools"]
    prompt = messages[:1]
    dropped = []
    if render_chat(tokenizer, prompt, tools, add_generation_prompt=True) == render_chat(tokenizer, prompt, None, add_generation_prompt=True):
        dropped.append("the tools' schemas (the prompt reads the same without them)")
    at = next((i for i, turn in enumerate(messages) if turn.get("tool_calls")), None)
    if at is not None:
        call = messages[at]["tool_calls"][0]["function"]
        try:
            text = assistant_turn_text(tokenizer, messages[:at], messages[at], tools)
        except ValueError as err:
            return [*dropped, f"the tool calls ({err})"]
        values = [str(v) for v in call["arguments"].values()] if isinstance(call["arguments"], dict) else [str(call["arguments"])]
        if call["name"] not in text or not all(v in text or json.dumps(v)[1:-1] in text for v in values):
            dropped.append(f"the tool calls (the turn calling {call['name']} renders as {text!r})")
    return dropped


def _calls(row: dict[str, Any]) -> bool:
    return any(turn.get("tool_calls") for turn in row["messages"])


def check_template(model: str, rows: list[dict[str, Any]]) -> None:
    """Refuse (ConfigError) when ``model``'s chat template drops the rows' tool calls; warn when it
    drops only the tools' schemas. One row per tool is tried, with a call where there is one."""
    tokenizer = load_tokenizer(model)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"trice messages: model: {model} has no chat template to render messages rows with")
    tried: dict[str, dict[str, Any]] = {}  # tool name -> its first row with a call, else its first row
    for row in rows:
        name = row["tools"][0]["function"]["name"] if row["tools"] else ""
        if name not in tried or (_calls(row) and not _calls(tried[name])):
            tried[name] = row
    for row in tried.values():
        dropped = template_drops(tokenizer, row)
        calls = [d for d in dropped if d.startswith("the tool calls")]
        if calls:
            raise ConfigError(
                f"trice messages: model {model}'s chat template drops {calls[0]}: a model trained on these rows would learn "
                "to answer with nothing; train it with a template that supports tools, or train this D_tool with trice train-sft"
            )
        for what in dropped:
            log.warning("model %s's chat template drops %s: the model will not see the tool it is taught to call", model, what)


@holding_output
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
        if config.model:
            check_template(config.model, rows)
        elif any(_calls(row) for row in rows):
            log.warning(
                "the rows carry their calls as tool_calls: a chat template without tool support (SmolLM2's) renders them as "
                "empty assistant turns; --model NAME tries the template that will render them"
            )
    claim_output(config.output, inputs=[config.input], ids={r["id"] for r in rows}, fields=fields, overwrite=config.overwrite)
    write_jsonl(config.output, rows)
    summary: dict[str, Any] = {"output": config.output, "rows": len(rows), "to": "labels" if config.from_messages else "messages"}
    if config.model:
        summary["template_checked"] = config.model
    if config.skip_bad:
        summary["skipped_lines"] = len(report.skipped)
    return summary
