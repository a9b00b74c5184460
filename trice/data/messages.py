"""Training rows as chat ``messages`` with ``tools``, so a D_tool labelled by trice can be trained
elsewhere, and one made elsewhere trained by trice.

This is the conversational layout that TRL's SFT trainer passes to the tokenizer's chat template
(``messages`` and ``tools`` columns), and that LLaMA-Factory reads with ``"formatting": "openai"``
and the tags ``role``/``content``, ``user``/``assistant``, ``"observation_tag": "tool"`` in its
dataset_info.json (its older ``sharegpt`` formatting wants a ``function_call`` turn instead).

One row per training example::

    {"id": ..., "dataset": ..., "task": ..., "answers": [...], "source": ...,
     "messages": [{"role": "user", "content": "<instruction>\\n\\n<question>"},
                  {"role": "assistant", "content": "<the model's answer>"}
                  or {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                                                                        "function": {"name": ..., "arguments": {...}}}]},
                  optionally {"role": "tool", "content": "<the tool's output>"}],
     "tools": [<the task's tool schema>]}

The user turn is trice's own native-format conversation (:func:`trice.core.templates.chat_messages`
with the task's native instruction, :data:`trice.core.prompts.NATIVE_INSTRUCTIONS`): rows that
offer their tool as a schema are what a ``call_format: native`` run prompts, so a model trained on
them elsewhere is prompted here the way it learned. Every row offers the task's tool, also where the
answer does not call it: TRICE teaches *when* to call. A tool-using label's call, plain
(``calculator(48+48/2)``) or already native (a native run's D_tool), becomes a ``tool_calls`` entry
(:func:`trice.core.native.render_call`); read back it is the plain call, which ``trice train-sft
--call_format native`` renders in the model's own format again
(:func:`trice.stage1.native_labels.native_targets`). trice's other label fields ride beside
``messages`` (readers of this layout ignore columns they do not map), so a round trip of a plain
D_tool keeps every field of a label row.

Rows made elsewhere may lack trice's fields: a missing ``id`` is named by the row's line, a missing
``task`` is the task whose tool the row offers, a leading system turn is ignored (trice's prompt
carries the task's instruction itself).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from trice.core.schema import reference_call
from trice.tasks import TASKS, Task, get_task
from trice.tasks.inputs import read_input
from trice.core.templates import chat_messages
from trice.core.prompts import task_instruction
from trice.core.tools import ToolCall, parse_call
from trice.core.native import HERMES_OPEN, PARSERS, NativeCallError, check_schema, native_call_end, parse_native_call, read_call, render_call, tool_schema
from trice.utils.io import DataError, FieldSpec, ReadReport, check_fields, write_jsonl

LABEL_FIELDS: FieldSpec = {"id": str, "task": str, "question": str, "output": str, "used_tool": bool}
MESSAGES_FIELDS: FieldSpec = {"messages": list, "tools": list}
# trice's label fields kept beside ``messages``, each optional in a messages row.
CARRIED_FIELDS: FieldSpec = {"id": str, "dataset": str, "task": str, "answers": (list, str), "source": str}
TOOL_OUTPUT = "tool_output"  # a label row's optional tool output: the ``tool`` turn's content


def _schema_for(task: Task, schemas: Mapping[str, Any] | None, path: Any, line: int | None) -> dict[str, Any]:
    """The checked schema of ``task``'s tool: the caller's (a user tool's own), else :func:`tool_schema`."""
    try:
        given = (schemas or {}).get(task.tool)
        return tool_schema(task.tool) if given is None else check_schema(given, task.tool)
    except ValueError as err:
        raise DataError(path, line, "tools", str(err)) from None


def _native_call(output: str, tool: str, schema: Mapping[str, Any], path: Any, line: int | None) -> tuple[str, ToolCall] | None:
    """(text before it, call) of a native call of ``tool`` ending ``output`` (a native run's D_tool:
    hermes ``<tool_call>`` JSON or Llama 3's JSON), or None when the output holds no native call."""
    for parser in PARSERS:
        call = parse_native_call(output, {tool: schema}, parser)
        if call is None:
            continue
        if isinstance(call, NativeCallError):
            raise DataError(path, line, "output", f"its {parser} tool call cannot run: {call.kind}: {call.error}")
        end = native_call_end(output, parser)
        if end is not None and output[end:].strip():
            raise DataError(path, line, "output", "a tool call's output must end with its one call")
        start = output.find(HERMES_OPEN) if parser == "hermes" else 0
        return output[:start].strip(), call
    return None


def _call_turn(row: Mapping[str, Any], tool: str, schema: Mapping[str, Any], path: Any, line: int | None) -> dict[str, Any]:
    """The assistant turn of a tool-using label: its call, plain or native, as ``tool_calls``, any
    text before the call as ``content``. A plain output must end with the call exactly as trice
    writes it, so that reading the turn back gives the same output."""
    output = row["output"]
    call = parse_call(output, [tool])
    native = _native_call(output, tool, schema, path, line) if call is None else None
    if native is not None:
        prefix, call = native
    elif call is None:
        raise DataError(path, line, "output", f"used_tool is true but the output holds no {tool}(...) call, plain or native")
    else:
        prefix = output[: len(output) - len(str(call))]
        if not output.endswith(str(call)) or parse_call(prefix, [tool]) is not None:
            raise DataError(path, line, "output", f"a tool call's output must end with its one call written as {str(call)!r}")
    # "content" is written even when empty: LLaMA-Factory's openai converter reads it from every turn
    return {"role": "assistant", "content": prefix, "tool_calls": [render_call(call.name, call.argument, schema)]}


def label_to_messages(row: Mapping[str, Any], schemas: Mapping[str, Any] | None = None, path: Any = "<label rows>", line: int | None = None) -> dict[str, Any]:
    """A label row (trice label's output: id, dataset, task, question, answers, output, used_tool,
    source) as a messages row. ``schemas``: tool name -> schema for tools that describe themselves;
    ``path``/``line`` locate a :class:`DataError`."""
    check_fields(row, LABEL_FIELDS, path, line)
    check_fields(row, {k: spec for k, spec in CARRIED_FIELDS.items() if k in row}, path, line)
    if row["task"] not in TASKS:
        raise DataError(path, line, "task", f"unknown task {row['task']!r}; known tasks: {', '.join(TASKS)}")
    task = get_task(row["task"])
    schema = _schema_for(task, schemas, path, line)
    messages = chat_messages(task_instruction(task.name, native=True), row["question"])
    if row["used_tool"]:
        messages.append(_call_turn(row, task.tool, schema, path, line))
        if row.get(TOOL_OUTPUT) is not None:
            check_fields(row, {TOOL_OUTPUT: str}, path, line)
            messages.append({"role": "tool", "content": row[TOOL_OUTPUT]})
    elif row.get(TOOL_OUTPUT) is not None:
        raise DataError(path, line, TOOL_OUTPUT, "only a row whose output calls the tool has a tool output")
    else:
        messages.append({"role": "assistant", "content": row["output"]})
    carried = {k: row[k] for k in CARRIED_FIELDS if k in row}
    return carried | {"messages": messages, "tools": [schema]}


def _row_tools(tools: list[Any], path: Any, line: int | None) -> dict[str, dict[str, Any]]:
    """Tool name -> checked schema of a messages row's ``tools``."""
    out: dict[str, dict[str, Any]] = {}
    for i, schema in enumerate(tools):
        try:
            checked = check_schema(schema)
        except ValueError as err:
            raise DataError(path, line, f"tools[{i}]", str(err)) from None
        out[checked["function"]["name"]] = checked
    return out


def _turns(messages: list[Any], path: Any, line: int | None) -> tuple[dict, dict, dict | None]:
    """The user, assistant and (optional) tool turns, after an optional system turn."""
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    first = 1 if roles[:1] == ["system"] else 0
    if roles[first:] not in (["user", "assistant"], ["user", "assistant", "tool"]):
        raise DataError(path, line, "messages", f"expected roles [system,] user, assistant[, tool]; got {json.dumps(roles)[:120]}")
    for i in range(first, len(messages)):
        content = messages[i].get("content")
        if content is not None and not isinstance(content, str):
            raise DataError(path, line, f"messages[{i}].content", f"expected string, got {type(content).__name__}")
    user, assistant, *tool = messages[first:]
    if not isinstance(user.get("content"), str):
        raise DataError(path, line, f"messages[{first}].content", "missing (the user turn holds the question)")
    return user, assistant, (tool[0] if tool else None)


def _row_task(row: Mapping[str, Any], offered: Iterable[str], default: str | None, path: Any, line: int | None) -> Task:
    """The row's task: its own ``task``, else ``default``, else the one task whose tool the row offers."""
    name = row.get("task", default)
    if name is None:
        found = [task for task in TASKS.values() if task.tool in offered]
        if len(found) != 1:
            why = "several tasks use its tools" if found else "no task uses its tools"
            raise DataError(path, line, "task", f"missing, and {why} (give rows a task, or name one for the file)")
        return found[0]
    if name not in TASKS:
        raise DataError(path, line, "task", f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return get_task(name)


def _call_output(turn: dict, index: int, task: Task, schemas: Mapping[str, Any], path: Any, line: int | None) -> str:
    """A ``tool_calls`` assistant turn as trice's plain output: its text, then ``tool(argument)``."""
    where = f"messages[{index}].tool_calls"
    calls = turn["tool_calls"]
    if not isinstance(calls, list) or len(calls) != 1:
        raise DataError(path, line, where, "expected a list of one call (a label calls its tool once)")
    call = read_call(calls[0], schemas)
    if isinstance(call, NativeCallError):
        raise DataError(path, line, f"{where}[0]", f"{call.kind}: {call.error}")
    if call.name != task.tool:
        raise DataError(path, line, f"{where}[0]", f"calls {call.name!r}, but task {task.name}'s tool is {task.tool!r}")
    plain = reference_call(call.name, call.argument)
    if plain is None:
        raise DataError(path, line, f"{where}[0]", f"argument {call.argument[:60]!r} would not parse back from {call.name}(...): unbalanced parentheses")
    return (turn.get("content") or "") + plain


def messages_to_label(row: Mapping[str, Any], path: Any = "<messages rows>", line: int | None = None, task: str | None = None) -> dict[str, Any]:
    """A messages row as a label row (what ``trice label`` writes and ``trice train`` reads): the
    question from the user turn (trice's instruction before it dropped), the output from the
    assistant turn, ``used_tool`` from whether it calls the tool. ``task`` names the task of rows
    that have none; ``path``/``line`` locate a :class:`DataError`."""
    check_fields(row, MESSAGES_FIELDS, path, line)
    check_fields(row, {k: spec for k, spec in CARRIED_FIELDS.items() if k in row}, path, line)
    if "id" not in row:
        raise DataError(path, line, "id", "missing")
    schemas = _row_tools(row["tools"], path, line)
    user, assistant, tool = _turns(row["messages"], path, line)
    found = _row_task(row, schemas, task, path, line)
    index = len(row["messages"]) - (2 if tool is not None else 1)  # the assistant turn is last but for a tool turn
    question = user["content"]
    for prefix in {found.instruction + "\n\n", task_instruction(found.name, native=True) + "\n\n"}:
        question = question[len(prefix) :] if question.startswith(prefix) else question
    out: dict[str, Any] = {"id": row["id"], **({"dataset": row["dataset"]} if "dataset" in row else {})}
    out |= {"task": found.name, "question": question, **({"answers": row["answers"]} if "answers" in row else {})}
    if assistant.get("tool_calls"):
        out |= {"output": _call_output(assistant, index, found, schemas, path, line), "used_tool": True}
    elif tool is not None:
        raise DataError(path, line, f"messages[{index}].tool_calls", "missing, yet a tool turn follows")
    elif not isinstance(assistant.get("content"), str):
        raise DataError(path, line, f"messages[{index}].content", "missing (an assistant turn without tool_calls is the answer)")
    else:
        out |= {"output": assistant["content"], "used_tool": False}
    if "source" in row:
        out["source"] = row["source"]
    if tool is not None and tool.get("content") is not None:
        out[TOOL_OUTPUT] = tool["content"]
    return out


def _read_converted(
    path: str | os.PathLike[str], fields: FieldSpec, convert: Callable[[dict, Path, int], dict[str, Any]], skip_bad: bool, report: ReadReport | None
) -> list[dict[str, Any]]:
    """Each row of a JSONL file converted, with :func:`read_input`'s promises (typed fields, unique
    ids, every problem a :class:`DataError` naming file, line and field; ``skip_bad`` skips)."""
    converted: dict[int, dict[str, Any]] = {}

    def check(row: dict, where: Path, line: int) -> None:
        converted[id(row)] = convert(row, where, line)

    rows = read_input(path, fields, check=check, skip_bad=skip_bad, report=report)
    return [converted[id(row)] for row in rows]


def read_messages(path: str | os.PathLike[str], *, task: str | None = None, skip_bad: bool = False, report: ReadReport | None = None) -> list[dict[str, Any]]:
    """A messages JSONL (made by :func:`write_messages` or elsewhere) as trice label rows; a row
    without an ``id`` is named ``<file stem>-<line>``."""

    def convert(row: dict, where: Path, line: int) -> dict[str, Any]:
        if "id" not in row:  # read_input checks ids are unique after this, so the name must be in the row
            row["id"] = f"{where.stem}-{line}"
        return messages_to_label(row, where, line, task)

    return _read_converted(path, MESSAGES_FIELDS, convert, skip_bad, report)


def read_labels_as_messages(
    path: str | os.PathLike[str], schemas: Mapping[str, Any] | None = None, *, skip_bad: bool = False, report: ReadReport | None = None
) -> list[dict[str, Any]]:
    """A label JSONL (``trice label``'s output) as messages rows (see :func:`label_to_messages`)."""
    return _read_converted(path, LABEL_FIELDS, lambda row, where, line: label_to_messages(row, schemas, where, line), skip_bad, report)


def write_messages(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], schemas: Mapping[str, Any] | None = None) -> Path:
    """Label rows written as a messages JSONL, atomically; a bad row is a :class:`DataError` naming
    its position (1-based) among ``rows``, before anything is written."""
    out = [label_to_messages(row, schemas, "<label rows>", n) for n, row in enumerate(rows, start=1)]
    return write_jsonl(path, out)
