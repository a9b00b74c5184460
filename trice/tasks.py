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

The tool names are the paper's: ``calculator``, ``WikiSearch``, ``QA``, ``translator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trice.metrics import answer_in_prefix, last_number, math_correct, whole_response
from trice.tools import ToolRegistry, build_registry, parse_call

Reader = Callable[[str], Sequence[str | None]]
"""Maps a tool's output to the model's answer(s) after reading it (one per passage for WikiSearch)."""


@dataclass(frozen=True)
class Judgement:
    prediction: str | None
    correct: bool
    used_tool: bool
    tool_error: str | None = None


@dataclass(frozen=True)
class Task:
    name: str
    tool: str
    extract: Callable[[str], str | None]
    is_correct: Callable[[str | None, Sequence[str]], bool]
    tool_answers: bool = True  # False: the tool's output is read by the model again (needs a reader)

    def registry(self, **tool_options: object) -> ToolRegistry:
        return build_registry([self.tool], **tool_options)

    def judge(
        self, response: str, answers: Sequence[str], registry: ToolRegistry, reader: Reader | None = None
    ) -> Judgement:
        """Judge one response. A call is recognised by the task's tool name even when ``registry``
        lacks that tool (it then fails as ``unknown_tool``), so a direct answer is judged the same
        with or without the tool. ``reader`` is required for a successful call of a tool whose
        output is not the answer (``tool_answers=False``)."""
        call = parse_call(response, [self.tool, *registry.names])
        if call is None:
            prediction = self.extract(response)
            return Judgement(prediction, self.is_correct(prediction, answers), used_tool=False)
        result = registry.execute(call)
        if not result.ok:
            return Judgement(None, False, used_tool=True, tool_error=f"{result.error_kind}: {result.error}")
        if self.tool_answers or call.name != self.tool:
            return Judgement(result.output, self.is_correct(result.output, answers), used_tool=True)
        if reader is None:
            raise ValueError(
                f"task {self.name}: the output of {self.tool}(...) is read by the model again before it is "
                f"judged; pass judge(..., reader=...) mapping the tool output to the model's answer(s)"
            )
        readings = [r for r in reader(result.output) if r is not None]
        for reading in readings:
            if self.is_correct(reading, answers):
                return Judgement(reading, True, used_tool=True)
        return Judgement(readings[0] if readings else None, False, used_tool=True)


TASKS: dict[str, Task] = {
    "math": Task("math", "calculator", last_number, math_correct),
    "qa": Task("qa", "WikiSearch", whole_response, answer_in_prefix, tool_answers=False),
    "lama": Task("lama", "QA", whole_response, answer_in_prefix),
    "mlqa": Task("mlqa", "translator", whole_response, answer_in_prefix, tool_answers=False),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]
