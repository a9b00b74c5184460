"""How a run's model writes its tool calls: the TRICE paper's plain ``calculator(48+48/2)`` (``text``)
or its own chat template's format (``native``: :mod:`trice.core.native`).

One :class:`CallFormat` per run answers the two questions every stage asks of a response: which
call it makes (:meth:`CallFormat.parse`, what the judge executes) and where that call ends
(:meth:`CallFormat.end`, where generation may stop). A native format needs its parser; ``auto``
reads it from the model tokenizer's chat template (:func:`trice.generation.models.resolve_parser`), which ``trice run`` does
once when it plans a recipe, so stages that load no tokenizer (judging, scoring) know it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trice.core.tools import ToolCall, call_end, call_start, parse_call
from trice.core.native import PARSERS, NativeCallError, check_parser, native_call_end, native_call_start, parse_native_call, parser_for_template

TEXT_FORMAT, NATIVE_FORMAT = "text", "native"
CALL_FORMATS = (TEXT_FORMAT, NATIVE_FORMAT)
AUTO = "auto"
TOOL_PARSERS = (AUTO, *PARSERS)
NATIVE_TEMPLATE = "chat"  # the only template that can hand a tool's schema to the model
# How a response's first token decides between calling and answering (trice.generation.decision).
THRESHOLD = "threshold"
DECISIONS = ("greedy", THRESHOLD, "call", "answer")


@dataclass(frozen=True)
class CallFormat:
    """``parser`` None: the paper's plain ``name(argument)``; else the native format it reads."""

    parser: str | None = None

    def __post_init__(self) -> None:
        if self.parser is not None:
            check_parser(self.parser)

    @property
    def native(self) -> bool:
        return self.parser is not None

    def parse(self, text: str, names: Iterable[str]) -> ToolCall | NativeCallError | None:
        """The first call in ``text`` to one of ``names``; a native call that cannot run is a
        :class:`NativeCallError` (judged as a failed call), never an exception."""
        if self.parser is None:
            return parse_call(text, names)
        return parse_native_call(text, list(names), self.parser)

    def end(self, text: str, names: Iterable[str]) -> int | None:
        """The index just past the first complete call in ``text`` (None: none yet)."""
        return call_end(text, names) if self.parser is None else native_call_end(text, self.parser)

    def start(self, text: str, names: Iterable[str]) -> int | None:
        """The index where the first call in ``text`` opens (None: it makes none): where a response
        that calls decided to."""
        return call_start(text, names) if self.parser is None else native_call_start(text, self.parser)

    @property
    def opening_ends_with(self) -> str:
        """The character a call's opening ends with (``calculator(``, ``<tool_call>``, llama3's ``{``):
        text that newly opens a call has it in its last token."""
        return {None: "(", "hermes": ">", "llama3": "{"}[self.parser]


TEXT = CallFormat()


def call_format_field() -> Any:
    """The ``call_format`` field of every config that prompts, parses or trains on tool calls."""
    return field(
        default=TEXT_FORMAT,
        metadata={"help": "How the model writes a tool call: text (the paper's calculator(48+48/2)) or native "
                  "(its chat template's own tool calling; needs template chat)."},
    )  # fmt: skip


def tool_parser_field() -> Any:
    """The ``tool_parser`` field beside :func:`call_format_field`."""
    return field(
        default=AUTO,
        metadata={"help": f"With call_format native: the format of the model's calls, {', '.join(TOOL_PARSERS)} "
                  "(auto: read from the model tokenizer's chat template)."},
    )  # fmt: skip


def check_call_format(call_format: str, tool_parser: str, template: str | None) -> None:
    """Refuse an unknown format or parser, and ``native`` with a template that cannot offer a tool
    (``template`` None: a config that only judges, whose template prompts no tool)."""
    if call_format not in CALL_FORMATS:
        raise ValueError(f"call_format: unknown {call_format!r}; choose one of {', '.join(CALL_FORMATS)}")
    if tool_parser not in TOOL_PARSERS:
        raise ValueError(f"tool_parser: unknown {tool_parser!r}; choose one of {', '.join(TOOL_PARSERS)}")
    if call_format == NATIVE_FORMAT and template is not None and template != NATIVE_TEMPLATE:
        raise ValueError(
            f"call_format native offers the tool through the model's chat template, so template must be "
            f"{NATIVE_TEMPLATE!r} (got {template!r}: that prompt has no place for a tool's schema)"
        )


def detect_parser(tokenizer: Any) -> str:
    """The parser of the calls a model with this tokenizer writes (ValueError: none trice reads)."""
    return parser_for_template(getattr(tokenizer, "chat_template", None) or "")


def parser_with(tool_parser: str, tokenizer: Any) -> str:
    """``tool_parser`` with ``auto`` made the parser of this (already loaded) tokenizer's template."""
    return detect_parser(tokenizer) if tool_parser == AUTO else check_parser(tool_parser)
