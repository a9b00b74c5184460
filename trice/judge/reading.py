"""Second readings: the model answers again after reading a tool's output (WikiSearch, translator).

TRICE judges a WikiSearch or translator call by what the model makes of the tool's output, not by
the output itself: each of the top two passages is given back to the model as
``passage + ". " + question`` (the question counts right when either reading is), and a translation
replaces the MLQA question in the input (``Context: ...\\nQuestion: <English>``), which the model
answers anew. The instructions of these readings are :data:`trice.core.prompts.READ_INSTRUCTIONS`.

Which model reads is the caller's choice and matters: evaluation reads with the model that wrote
the responses (the same weights, adapter included), the probe and D_tool labelling with the untuned
model, stage II scoring with the recipe's base model. :class:`ReadingModel` reads many outputs in one
batched pass through any generation backend (:mod:`trice.responses.backends`), greedily and with few new
tokens (the metric looks at the first 20 words), so judging a test set costs one batched
generation instead of one generate() call per response. With a ``cache`` file, each reading is
appended as it is made and a rerun after a kill reads only what is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trice.data.mlqa import with_question
from trice.core.templates import tool_reply_messages
from trice.generation.remote import EndpointError
from trice.utils.io import JsonlAppender, load_partial
from trice.core.prompts import READ_INSTRUCTIONS
from trice.core.tools import ToolCall
from trice.core.call_format import NATIVE_FORMAT, TEXT_FORMAT
from trice.core.native import render_call, tool_schema

log = logging.getLogger(__name__)

ReadItem = tuple[str, str, str] | tuple[str, str, str, ToolCall | None]
"""``(task, question, tool output[, the call that made it])``: one reading to make."""


def reading_input(task: str, question: str, output: str) -> str:
    """The input of the second reading of ``output`` for a ``task`` question (see the module docstring)."""
    if task == "qa":
        return f"{' '.join(output.split())}. {question}"
    if task == "mlqa":
        return with_question(question, output)
    raise ValueError(f"task {task!r} has no second reading; tasks with one: {', '.join(READ_INSTRUCTIONS)}")


def reading_prompt(backend: Any, item: ReadItem) -> Any:
    """The prompt of one reading. The paper's: a fresh prompt of the reading instruction and
    :func:`reading_input`. A run whose model calls tools natively (``call_format: native``), given the
    call, reads the way its template expects a tool's output back: the question, the model's call and
    the output as a ``tool`` turn (:func:`trice.core.templates.tool_reply_messages`), under the
    reading instruction and with no tool offered, so the model answers instead of calling again."""
    task, question, output, *made_by = item
    call = made_by[0] if made_by else None
    if call is None or getattr(getattr(backend, "config", None), "call_format", TEXT_FORMAT) != NATIVE_FORMAT:
        return backend.instruction_prompt(READ_INSTRUCTIONS[task], reading_input(task, question, output))
    entry = render_call(call.name, call.argument, tool_schema(call.name))
    return backend.conversation_prompt(tool_reply_messages(READ_INSTRUCTIONS[task], question, entry, output))


def reading_config(config: Any) -> Any:
    """A :class:`~trice.responses.generate.GenerateConfig` for readings: ``config``'s model, adapter, template
    and backend, greedy, at most ``read_max_new_tokens`` new tokens."""
    return replace(config, do_sample=False, max_new_tokens=min(config.max_new_tokens, config.read_max_new_tokens))


def _key(prompt: Any) -> str:
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]


class ReadingModel:
    """Makes second readings with a generation backend, loaded on first need (``load()``).

    ``cache``: a JSONL file of finished readings keyed by a hash of their prompt, appended as they
    are made; a file belongs to one model (keep it in the directory of the stage that reads).
    """

    def __init__(self, load: Callable[[], Any], cache: str | Path | None = None, desc: str = "read again"):
        self._load = load
        self._backend: Any = None
        self.cache = Path(cache) if cache is not None else None
        self.desc = desc

    @classmethod
    def for_config(cls, config: Any, cache: str | Path | None = None, desc: str = "read again") -> ReadingModel:
        """A reader with the model of a :class:`~trice.responses.generate.GenerateConfig` (see :func:`reading_config`)."""

        def load() -> Any:
            from trice.responses.backends import (
                load_backend,
            )  # here, not at the top: it imports torch, and judging text (`trice evaluate`, `trice score`) imports this module

            return load_backend(reading_config(config))

        return cls(load, cache, desc)

    @property
    def backend(self) -> Any:
        if self._backend is None:
            self._backend = self._load()
        return self._backend

    def read_many(self, items: Sequence[ReadItem]) -> list[str | None]:
        """The model's answer after each reading, in order; None where an endpoint could not answer."""
        if not items:
            return []
        backend = self.backend
        prompts = [reading_prompt(backend, item) for item in items]
        keys = [_key(p) for p in prompts]
        done = {k: row["reading"] for k, row in load_partial(self.cache).items()} if self.cache is not None else {}
        todo = list(dict.fromkeys(k for k in keys if k not in done))
        if todo:
            first: dict[str, Any] = {}
            for key, prompt in zip(keys, prompts):
                first.setdefault(key, prompt)
            failed = 0
            with contextlib.ExitStack() as stack:
                sink = stack.enter_context(JsonlAppender(self.cache)) if self.cache is not None else None

                def write(indices: list[int], results: list[Any]) -> None:
                    nonlocal failed
                    for i, result in zip(indices, results):
                        if isinstance(result, EndpointError):
                            failed += 1  # not kept: a rerun asks again
                            continue
                        done[todo[i]] = result
                        if sink is not None:
                            sink.write({"id": todo[i], "reading": result})

                backend.generate([first[k] for k in todo], desc=self.desc, on_batch=write)
            if failed:
                log.warning("%d of %d readings failed (endpoint errors); they count as no prediction", failed, len(todo))
        return [done.get(k) for k in keys]
