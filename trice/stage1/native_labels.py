"""D_tool and SFT targets in the model's own tool-calling format (``call_format: native``).

Labels are found and verified as TRICE finds them (:mod:`trice.stage1.tool_labels`: the data's
reference calls, search terms, a teacher's proposals), written in the paper's plain
``calculator(48+48/2)``. A native run then trains on each tool-using label's call as the model's
chat template writes it: the prompt's conversation is rendered with and without an assistant turn
holding the call as ``tool_calls``, and the difference, up to the end of the call, is the target
(:func:`trice.core.templates.assistant_turn_text`). So the model learns exactly the text its
template would produce, and the target is checked to parse back, with the run's parser, to the
call it came from. Answers without the tool (the model's own right answers, gold answers) are
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trice.core.templates import assistant_turn_text, chat_messages
from trice.tasks import Task, get_task
from trice.core.prompts import task_instruction
from trice.core.tools import ToolCall, parse_call
from trice.core.native import NativeToolCall, native_call_end, parse_native_call, render_call, tool_schema


def native_call_text(tokenizer: Any, task: Task, question: str, call: ToolCall, parser: str) -> str:
    """``call`` as the tokenizer's chat template has the model write it after ``task``'s native
    prompt of ``question``, up to the end of the call (the end of turn is the training's EOS).

    ValueError when the template's call does not read back as ``call`` with ``parser`` (a template
    whose tool calls are in another format than the parser reads)."""
    schema = tool_schema(task.tool)
    messages = chat_messages(task_instruction(task.name, native=True), question)
    turn = {"role": "assistant", "content": "", "tool_calls": [render_call(call.name, call.argument, schema)]}
    text = assistant_turn_text(tokenizer, messages, turn, [schema])
    end = native_call_end(text, parser)
    target = text if end is None else text[:end]
    read = parse_native_call(target, [task.tool], parser)
    if not isinstance(read, NativeToolCall) or (read.name, read.argument) != (call.name, call.argument):
        raise ValueError(f"the chat template writes the call {call} as {text[:200]!r}, which the {parser} parser does not read back")
    return target


def native_label_rows(rows: Sequence[dict[str, Any]], tokenizer: Any, parser: str) -> list[dict[str, Any]]:
    """Label rows (:func:`trice.stage1.label.label_rows`) with every tool-using output, a plain call,
    made :func:`native_call_text`; the other rows as they are."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if not row["used_tool"]:
            out.append(dict(row))
            continue
        task = get_task(row["task"])
        call = parse_call(row["output"], [task.tool])
        if call is None:
            raise ValueError(f"label {row['id']!r}: used_tool is true but its output holds no {task.tool}(...) call")
        out.append(row | {"output": native_call_text(tokenizer, task, row["question"], call, parser)})
    return out


def native_targets(rows: Sequence[dict[str, Any]], tokenizer: Any, parser: str) -> tuple[list[dict[str, Any]], int]:
    """SFT rows for a native run, and how many were rewritten: a row whose output is exactly a plain
    call of its task's tool (a text-format D_tool, or one read back by ``trice messages
    --from_messages``) gets :func:`native_call_text` as its output; rows already calling natively, or
    answering without the tool, are kept. Trained as they were, plain calls would teach a model that
    is offered its tool natively to write calls its judge never reads."""
    out: list[dict[str, Any]] = []
    for row in rows:
        task = get_task(row["task"])
        output = row["output"].strip()
        call = None if parse_native_call(output, [task.tool], parser) is not None else parse_call(output, [task.tool])
        if call is None or output != str(call):
            out.append(row)
            continue
        out.append(dict(row) | {"output": native_call_text(tokenizer, task, row["question"], call, parser)})
    return out, sum(a is not b for a, b in zip(out, rows))
