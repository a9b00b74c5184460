"""The paper's few-shot baseline (its Table 3 row "Few-shot"): the base model, untuned, evaluated
with worked examples before each test prompt.

The examples are the candidates' presets (:data:`trice.core.prompts.FEW_SHOT_PRESETS`, three worked
examples per task whose response calls the task's tool, as the paper prompted its few-shot
sources), each question getting its own task's preset, so a mixed (MIX) test file is prompted task
by task. Only the prompt changes: generation, reading again and judging are the eval stage's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from trice.responses.backends import load_backend
from trice.core.prompts import PER_TASK, few_shot_prefix
from trice.responses.generate import GenerateConfig
from trice.generation.remote import Prompt, ToolChat


class FewShotBackend:
    """A generation backend (:func:`trice.responses.backends.load_backend`) whose task prompts start with the
    question's task's worked examples; everything else is the wrapped backend's.

    The backend is loaded on the first prompt asked for, so an eval stage resumed with nothing left
    to generate loads no model (as :func:`trice.responses.generate.generate_for_examples` does itself)."""

    def __init__(self, config: GenerateConfig, few_shot: str = PER_TASK):
        self.config = config
        self.few_shot = few_shot
        self._inner: Any = None

    @property
    def inner(self) -> Any:
        if self._inner is None:
            self._inner = load_backend(self.config)
        return self._inner

    def prompt(self, task: str, question: str) -> Prompt:
        prefix = few_shot_prefix(self.few_shot, task)
        prompt = self.inner.prompt(task, question)
        if isinstance(prompt, str):
            return prefix + prompt
        if isinstance(prompt, ToolChat):  # the same conversation, offering the same tools
            return replace(prompt, messages=lead_user_turn(prefix, prompt.messages))
        return lead_user_turn(prefix, prompt)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set here: generate() and whatever else the backend offers.
        return getattr(self.inner, name)


def lead_user_turn(prefix: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A chat conversation (an endpoint's chat mode) whose first user turn starts with ``prefix``, as
    a candidates source's prefix does when that source is sent as chat."""
    first = next(i for i, m in enumerate(messages) if m["role"] == "user")
    return [*messages[:first], messages[first] | {"content": prefix + messages[first]["content"]}, *messages[first + 1 :]]


def few_shot_fingerprint(few_shot: str, tasks: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The prefix text each task's questions get: part of a few-shot eval's fingerprint, so editing
    a preset redoes the evals that used it and no eval without one is mistaken for it."""
    return {task: few_shot_prefix(few_shot, task) for task in sorted(tasks)}
