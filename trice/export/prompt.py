"""The prompt an adapter was trained on, as the chat template its export carries.

trice trains on its own prompts: the paper's alpaca prompt (instruction, input, response), or the
base model's chat template with the task's instruction before the question in the user turn (and,
in the native call format, the tool's schema as the template's ``tools``). An export that kept the
base model's chat template would make ``tokenizer.apply_chat_template`` (and ``pipeline()``) prompt
the model in a way it was never trained on, and it would not call its tool; so the export's chat
template writes exactly the trained prompt (as LLaMA-Factory's export writes its template):

* the question is the user turn, as a plain chat model is asked;
* the instruction is the task's the model was trained with (a model trained on several tasks has
  none by default: a ``system`` message gives it, and the template refuses to render without one);
  a ``system`` message replaces it;
* ``alpaca``: the paper's prompt around them, each answer followed by the EOS token it learned to
  end with; ``chat``: the base template, given the conversation trice rendered.

What the adapter was trained with is read from the training's own record beside it
(``sft_config.json``, ``rlef_config.json`` or ``dpo_config.json``: template, call format, its rows'
file, whose rows name their tasks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.core.templates import ALPACA, TEMPLATES
from trice.core.prompts import INSTRUCTIONS, task_instruction
from trice.core.call_format import NATIVE_FORMAT, TEXT_FORMAT
from trice.utils.io import DataError, iter_jsonl, read_json

TRAINING_RECORDS = ("sft_config.json", "rlef_config.json", "dpo_config.json")
_INSTRUCTION, _QUESTION = "\x00instruction\x00", "\x00question\x00"


@dataclass(frozen=True)
class TrainedPrompt:
    """How an adapter's training prompted the model: what its export's chat template reproduces."""

    template: str = "alpaca"
    call_format: str = TEXT_FORMAT
    tasks: tuple[str, ...] = ()
    record: dict[str, Any] = field(default_factory=dict)  # the training's config, as saved beside it
    record_name: str = ""  # which trainer saved it (sft_config.json, ...)

    @property
    def native(self) -> bool:
        return self.call_format == NATIVE_FORMAT

    @property
    def instruction(self) -> str | None:
        """The default instruction: the one task's (None for several tasks, none known, or a plug-in
        task this process has not registered)."""
        return task_instruction(self.tasks[0], self.native) if len(self.tasks) == 1 and self.tasks[0] in INSTRUCTIONS else None


def training_record(adapter: Path) -> tuple[str, dict[str, Any]] | None:
    """(file name, config) the trainer saved beside ``adapter`` (``<out>/adapter``, ``<out>/adapter_best``
    or a checkpoint ``<out>/checkpoints/checkpoint-N``), or None for an adapter made elsewhere."""
    for directory in (adapter.parent, adapter.parent.parent):
        for name in TRAINING_RECORDS:
            if (directory / name).is_file():
                return name, read_json(directory / name)
    return None


def _tasks_of(data: str | None) -> tuple[str, ...]:
    """The tasks of a training file's rows, in first-seen order; () when it is gone or unreadable."""
    if not data or not Path(data).is_file():
        return ()
    try:
        return tuple(dict.fromkeys(str(row["task"]) for row in iter_jsonl(data) if "task" in row))
    except DataError:
        return ()


def trained_prompt(adapter: Path | None, template: str = "", task: str = "") -> TrainedPrompt:
    """The adapter's training prompt, from its record; ``template``/``task`` given win (an adapter
    made elsewhere has no record)."""
    found = training_record(adapter) if adapter is not None else None
    name, record = found if found is not None else ("", {})
    template = template or record.get("template", "alpaca")
    if template not in TEMPLATES:
        raise ValueError(f"template: unknown {template!r}; choose one of {', '.join(TEMPLATES)}")
    if task and task not in INSTRUCTIONS:
        raise ValueError(f"task: unknown {task!r}; known tasks: {', '.join(INSTRUCTIONS)}")
    tasks = (task,) if task else _tasks_of(record.get("data"))
    return TrainedPrompt(template, record.get("call_format", TEXT_FORMAT), tasks, record, name)


def _literal(text: str) -> str:
    """``text`` as a Jinja string literal (Jinja reads Python's escapes, which JSON's are)."""
    return json.dumps(text)


def _instruction_setup(prompt: TrainedPrompt) -> str:
    default = "none" if prompt.instruction is None else _literal(prompt.instruction)
    missing = _literal(
        "this model was trained on several tasks (" + ", ".join(prompt.tasks) + "): give the task's instruction as a system message"
        if prompt.tasks
        else "give the instruction the model was trained with as a system message"
    )
    return (
        f"{{%- set ns = namespace(instruction={default}) -%}}"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set ns.instruction = messages[0]['content'] -%}{%- set messages = messages[1:] -%}{%- endif -%}"
        f"{{%- if ns.instruction is none -%}}{{{{ raise_exception({missing}) }}}}{{%- endif -%}}"
    )


def chat_template(prompt: TrainedPrompt, base_template: str | None) -> str:
    """The export's chat template: rendering ``[system?, user: question]`` with
    ``add_generation_prompt`` gives exactly the prompt trice trained on (``tools=[schema]`` too, in
    the native call format); ``base_template``: the base tokenizer's, which a ``chat`` prompt wraps."""
    setup = _instruction_setup(prompt)
    if prompt.template == "chat":
        if not base_template:
            raise ValueError("template chat: the base tokenizer has no chat template to wrap")
        into_user = (
            "{%- if messages and messages[0]['role'] == 'user' -%}"
            "{%- set messages = [{'role': 'user', 'content': ns.instruction ~ '\\n\\n' ~ messages[0]['content']}] + messages[1:] -%}"
            "{%- endif -%}"
        )
        return setup + into_user + base_template
    head, rest = ALPACA.format(instruction=_INSTRUCTION, input=_QUESTION).split(_INSTRUCTION)
    middle, tail = rest.split(_QUESTION)
    return setup + (
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'user' -%}"
        f"{{{{- {_literal(head)} ~ ns.instruction ~ {_literal(middle)} ~ message['content'] ~ {_literal(tail)} -}}}}"
        "{%- elif message['role'] == 'assistant' -%}{{- message['content'] ~ eos_token -}}"
        "{%- else -%}{{ raise_exception('the alpaca prompt has a user turn (the question) and an assistant turn (the answer), no ' ~ message['role'] ~ ' turn') }}"
        "{%- endif -%}{%- endfor -%}"
    )
