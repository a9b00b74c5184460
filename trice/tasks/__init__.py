"""Tasks: which tool a task's model may call, and how a response becomes a judged prediction.

A response either calls the task's tool or answers directly. A direct answer is read by the task's
extractor (the last number for math; the response itself for the other tasks, whose metric reads
its first 20 words). A call to the task's tool is executed through the registry; a failing call
gives no prediction, which is judged wrong.

What a successful call's output means depends on the tool, as in TRICE:

* ``calculator`` and ``QA`` answer the question: their output is the prediction.
* ``WikiSearch`` and ``translator`` do not: their output (passages; the translated question) is
  read by the model again, and that reading is the prediction. :meth:`Task.judge` needs a
  ``reader`` for these, which maps the tool's output to the model's answer(s); the call counts as
  right when any of them is right (the original counts a WikiSearch call right when the reading of
  either of its two passages is).

The tool names are the paper's: ``calculator``, ``WikiSearch``, ``QA``, ``translator``. A call is
read in the run's :class:`~trice.core.call_format.CallFormat`: the paper's plain text, or the
model's native chat-template format, where a call that cannot run is judged as a failed call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trice.tasks.metrics import answer_in_prefix, answer_in_text, last_number, math_correct, whole_response
from trice.core.prompts import INSTRUCTIONS, register_instruction
from trice.core.tools import ToolCall, ToolError, ToolRegistry, ToolResult
from trice.core.call_format import TEXT, CallFormat
from trice.core.native import NativeCallError, tool_schema
from trice.tools.factories import build_registry

ReadOutput = Callable[[str], Sequence[str | None]]
"""Maps a tool's output to the model's answer(s) after reading it (one per passage for WikiSearch);
:class:`trice.judge.reading.ReadingModel` makes such readings for many outputs at once."""


def tool_error_text(kind: str, error: str) -> str:
    """A failed call's ``tool_error`` as judged rows store it, ``kind: message``, readable in a
    row and split again by :func:`tool_error_kind`."""
    return f"{kind}: {error}"


def tool_error_kind(text: str) -> str:
    """The :class:`~trice.core.tools.ToolError` kind of a judged row's ``tool_error``."""
    return text.split(":", 1)[0]


@dataclass(frozen=True)
class Judgement:
    """``evidence``: for a call judged right by a reading of its output, whether some right reading
    read an output that itself holds a gold answer (:func:`~trice.tasks.metrics.answer_in_text`); False
    means the reading model answered from what it already knew. None for every other judgement.
    ``unread``: judged wrong while some reading of the call's output is missing (its endpoint did
    not answer), so the judgement is the machine's as much as the model's."""

    prediction: str | None
    correct: bool
    used_tool: bool
    tool_error: str | None = None
    evidence: bool | None = None
    unread: bool = False


@dataclass(frozen=True)
class Execution:
    """A response's tool call run (or not): what judging needs before any reading.

    ``outputs`` are the texts the model must read again before the call can be judged (empty unless
    the call succeeded and its tool's output is not the answer): the top passages of WikiSearch
    (a tool with ``passages(argument)`` gives its several readings) or the translation. Judging in
    two steps lets a caller execute many responses, read all their outputs in one batched pass,
    and then conclude (:func:`trice.judge.evaluate.judge_rows`).
    """

    call: ToolCall | None
    result: ToolResult | None = None
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    name: str
    tool: str
    extract: Callable[[str], str | None]
    is_correct: Callable[[str | None, Sequence[str]], bool]
    tool_answers: bool = True  # False: the tool's output is read by the model again (needs a reader)
    instruction: str = ""  # the prompt's instruction; :func:`register_task` makes it the task's in trice.core.prompts

    def registry(self, **tool_options: object) -> ToolRegistry:
        return build_registry([self.tool], **tool_options)

    def execute(self, response: str, registry: ToolRegistry, calls: CallFormat = TEXT) -> Execution:
        """Parse ``response`` in the ``calls`` format and run its call, if any. A call is recognised
        by the task's tool name even when ``registry`` lacks that tool (it then fails as
        ``unknown_tool``), so a direct answer is judged the same with or without the tool. A native
        call that cannot run (bad JSON, wrong arguments) is the failed call it reads as."""
        call = calls.parse(response, [self.tool, *registry.names])
        if call is None:
            return Execution(None)
        if isinstance(call, NativeCallError):
            return Execution(call.call, call.result())
        result = registry.execute(call)
        if not result.ok or self.tool_answers or call.name != self.tool:
            return Execution(call, result)
        outputs: list[str] = [result.output or ""]
        several = getattr(registry.get(call.name), "passages", None)
        if callable(several):  # WikiSearch: each of its top passages is read (the run gave the first)
            try:
                outputs = [str(text) for text in several(call.argument)] or outputs
            except ToolError as err:
                return Execution(call, ToolResult(call, False, error_kind=err.kind, error=str(err)))
        return Execution(call, result, tuple(outputs))

    def conclude(self, response: str, execution: Execution, answers: Sequence[str], readings: Sequence[str | None] = ()) -> Judgement:
        """The judgement of an executed response; ``readings`` are the model's answers after reading
        ``execution.outputs`` (right when any of them is right, as the original counts WikiSearch)."""
        call, result = execution.call, execution.result
        if call is None or result is None:
            prediction = self.extract(response)
            return Judgement(prediction, self.is_correct(prediction, answers), used_tool=False)
        if not result.ok:
            return Judgement(None, False, used_tool=True, tool_error=tool_error_text(str(result.error_kind), str(result.error)))
        if not execution.outputs:
            return Judgement(result.output, self.is_correct(result.output, answers), used_tool=True)
        kept = [r for r in readings if r is not None]
        right = [r for r in kept if self.is_correct(r, answers)]
        if right:
            read = zip(execution.outputs, readings) if len(readings) == len(execution.outputs) else ()
            evidence = any(r is not None and r in right and answer_in_text(out, answers) for out, r in read)
            return Judgement(right[0], True, used_tool=True, evidence=evidence)
        return Judgement(kept[0] if kept else None, False, used_tool=True, unread=not readings or len(kept) < len(readings))

    def judge(self, response: str, answers: Sequence[str], registry: ToolRegistry, reader: ReadOutput | None = None, calls: CallFormat = TEXT) -> Judgement:
        """Judge one response (:meth:`execute` then :meth:`conclude`). ``reader`` is required for a
        successful call of a tool whose output is not the answer (``tool_answers=False``): it is
        called on each output to read."""
        execution = self.execute(response, registry, calls)
        readings: list[str | None] = []
        if execution.outputs:
            if reader is None:
                raise ValueError(
                    f"task {self.name}: the output of {self.tool}(...) is read by the model again before it is "
                    f"judged; pass judge(..., reader=...) mapping the tool output to the model's answer(s)"
                )
            readings = [r for output in execution.outputs for r in reader(output)]
        return self.conclude(response, execution, answers, readings)


TASKS: dict[str, Task] = {
    "math": Task("math", "calculator", last_number, math_correct, instruction=INSTRUCTIONS["math"]),
    "qa": Task("qa", "WikiSearch", whole_response, answer_in_prefix, tool_answers=False, instruction=INSTRUCTIONS["qa"]),
    "lama": Task("lama", "QA", whole_response, answer_in_prefix, instruction=INSTRUCTIONS["lama"]),
    "mlqa": Task("mlqa", "translator", whole_response, answer_in_prefix, tool_answers=False, instruction=INSTRUCTIONS["mlqa"]),
}


def register_task(task: Task) -> None:
    """Make a user's task known to every stage (its name in ``data.task``, rows' ``task`` fields and
    ``trice evaluate --task``), with ``task.instruction`` starting its prompts. Registering the same
    task again is a no-op; another task under a taken name fails, so a plug-in never silently
    changes a built-in task. A task whose tool output is read again (``tool_answers=False``) needs a
    second-reading instruction, which only the built-in tasks have."""
    if not isinstance(task, Task):
        raise TypeError(f"expected a trice.tasks.Task, got {type(task).__name__}")
    existing = TASKS.get(task.name)
    if existing is not None and existing != task:
        raise ValueError(f"a task named {task.name!r} is already registered")
    if not task.instruction:
        raise ValueError(f"task {task.name!r}: no instruction (Task(..., instruction=...) starts every prompt of the task)")
    if not task.tool_answers:
        raise ValueError(f"task {task.name!r}: tool_answers=False needs a second reading, which only the built-in tasks have")
    if not callable(task.extract) or not callable(task.is_correct):
        raise TypeError(f"task {task.name!r}: extract and is_correct must be callables")
    register_instruction(task.name, task.instruction)
    TASKS[task.name] = task


PER_ROW = "per-row"
"""The task name that judges each row by its own ``task`` field (a MIX run's mixed files)."""


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def check_task_name(name: str) -> None:
    """A config's task: a known task, or :data:`PER_ROW`."""
    if name != PER_ROW:
        get_task(name)


def row_task(row: dict, task_name: str) -> Task:
    """The task judging ``row``: ``task_name``'s, or with :data:`PER_ROW` the row's own."""
    if task_name != PER_ROW:
        return get_task(task_name)
    if not isinstance(row.get("task"), str):
        raise ValueError(f"row {row.get('id')!r}: no task field (needed to judge rows by their own task)")
    return get_task(row["task"])


def prompt_tools(task: str, native: bool) -> list[dict] | None:
    """The tool schemas ``task``'s prompt offers: its tool's in the native call format, none in the
    text format (whose instruction names the tool and the model writes the paper's call)."""
    return [tool_schema(get_task(task).tool)] if native else None


def tool_registries(tool_options: dict | None = None) -> Callable[[Task], ToolRegistry]:
    """``registry(task)``: one registry per task, built on first use with ``tool_options[task.tool]``
    (options keyed by tool name, e.g. ``{"QA": {"k": 3}, "WikiSearch": {"backend": "bm25"}}``), so a
    mixed file builds each tool once."""
    options = dict(tool_options or {})
    built: dict[str, ToolRegistry] = {}

    def registry(task: Task) -> ToolRegistry:
        if task.name not in built:
            built[task.name] = task.registry(**({task.tool: options[task.tool]} if task.tool in options else {}))
        return built[task.name]

    return registry
