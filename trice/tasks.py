"""Tasks: which tool a task's model may call, and how a response becomes a judged prediction.

A response either calls the task's tool or answers directly. A tool call's result is the
prediction (a failing call gives no prediction, which is judged wrong); a direct answer is read by
the task's extractor (the last number, for math).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trice.metrics import last_number, math_correct
from trice.tools import ToolRegistry, build_registry


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

    def registry(self, **tool_options: object) -> ToolRegistry:
        return build_registry([self.tool], **tool_options)

    def judge(self, response: str, answers: Sequence[str], registry: ToolRegistry) -> Judgement:
        call = registry.parse(response)
        if call is None:
            prediction = self.extract(response)
            return Judgement(prediction, self.is_correct(prediction, answers), used_tool=False)
        result = registry.execute(call)
        if not result.ok:
            return Judgement(None, False, used_tool=True, tool_error=f"{result.error_kind}: {result.error}")
        return Judgement(result.output, self.is_correct(result.output, answers), used_tool=True)


TASKS: dict[str, Task] = {
    "math": Task("math", "calculator", last_number, math_correct),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]
