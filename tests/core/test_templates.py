"""Prompt templates: alpaca and chat, a chat prompt offering tools, and an assistant turn rendered by
the template itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.chat_template import with_chat_template
from trice.generation.models import load_tokenizer
from trice.core.templates import ALPACA, assistant_turn_text, chat_messages, format_prompt
from trice.core.native import render_call, tool_schema

SCHEMA = tool_schema("calculator")


@pytest.fixture(scope="module")
def chat_tokenizer(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    return load_tokenizer(str(with_chat_template(tiny_model_dir, tmp_path_factory.mktemp("tiny-chat"))))


def test_alpaca_is_the_papers_prompt_and_has_no_place_for_tools() -> None:
    assert format_prompt("Do it.", "2+3?") == ALPACA.format(instruction="Do it.", input="2+3?")
    with pytest.raises(ValueError, match="no place for tool schemas"):
        format_prompt("Do it.", "2+3?", "alpaca", tools=[SCHEMA])


def test_a_chat_prompt_offers_tools_only_when_given(chat_tokenizer) -> None:
    plain = format_prompt("Do it.", "2+3?", "chat", chat_tokenizer)
    offered = format_prompt("Do it.", "2+3?", "chat", chat_tokenizer, [SCHEMA])
    assert "<tools>" not in plain and offered.endswith(plain) and '"name": "calculator"' in offered
    assert offered.endswith("<|im_start|>user\nDo it.\n\n2+3?<|im_end|>\n<|im_start|>assistant\n")


def test_an_assistant_turn_is_what_the_template_writes_after_the_prompt(chat_tokenizer) -> None:
    messages = chat_messages("Do it.", "2+3?")
    turn = {"role": "assistant", "content": "", "tool_calls": [render_call("calculator", "2+3", SCHEMA)]}
    text = assistant_turn_text(chat_tokenizer, messages, turn, [SCHEMA])
    assert text == '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call><|im_end|>\n'
    prompt = format_prompt("Do it.", "2+3?", "chat", chat_tokenizer, [SCHEMA])
    assert prompt + text == chat_tokenizer.apply_chat_template([*messages, turn], tools=[SCHEMA], tokenize=False)


def test_a_template_that_rewrites_the_prompt_once_a_turn_follows_is_refused(chat_tokenizer) -> None:
    class Rewrites:  # a template that drops the generation prompt's header when the turn is written
        def apply_chat_template(self, messages, tokenize, add_generation_prompt, **kwargs):
            return "PROMPT>" if add_generation_prompt else "OTHER>" + messages[-1]["content"]

    with pytest.raises(ValueError, match="otherwise than its generation prompt"):
        assistant_turn_text(Rewrites(), [], {"role": "assistant", "content": "x"})
