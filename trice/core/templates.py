"""Prompt templates: how an instruction and its input become the text a model reads.

Two templates: ``alpaca`` (the TRICE paper's) and ``chat`` (the tokenizer's own chat template, for
instruction-tuned models that expect it; given ``tools``, their schemas go in as the template's
``tools``, so the model sees them the way it was taught to call tools). They know no task: a task's instruction comes from
:mod:`trice.core.prompts`, and a tool's reader (:mod:`trice.tools.qa`) brings its own, so tools
can prompt a model without importing the task registry that is built from them.
"""

from __future__ import annotations

from typing import Any

ALPACA = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)

TEMPLATES = ("alpaca", "chat")


def chat_messages(instruction: str, input_text: str) -> list[dict[str, str]]:
    """The ``chat`` template's conversation: one user turn; a chat server applies its own template to it."""
    return [{"role": "user", "content": f"{instruction}\n\n{input_text}"}]


def format_prompt(instruction: str, input_text: str, template: str = "alpaca", tokenizer: Any = None, tools: list[dict[str, Any]] | None = None) -> str:
    """The text the model reads before its response; ``tools``: function schemas offered through
    the chat template (only ``chat`` has a place for them)."""
    if template == "alpaca":
        if tools:
            raise ValueError("template 'alpaca' has no place for tool schemas; offer tools with template 'chat'")
        return ALPACA.format(instruction=instruction, input=input_text)
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("template 'chat' needs a tokenizer that has a chat template")
        return render_chat(tokenizer, chat_messages(instruction, input_text), tools, add_generation_prompt=True)
    raise ValueError(f"unknown prompt template {template!r}; choose one of {', '.join(TEMPLATES)}")


def tool_reply_messages(instruction: str, input_text: str, call: dict[str, Any], output: str) -> list[dict[str, Any]]:
    """The conversation of a native second reading: the user's turn, the assistant's ``call`` (a
    ``tool_calls`` entry) and the tool's ``output`` as a ``tool`` turn, which the model answers next."""
    turns = [{"role": "assistant", "content": "", "tool_calls": [call]}, {"role": "tool", "content": output}]
    return [*chat_messages(instruction, input_text), *turns]


def render_chat(tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, add_generation_prompt: bool = False) -> str:
    """``messages`` as the tokenizer's chat template writes them (with ``tools`` where given)."""
    extra = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt, **extra)


def assistant_turn_text(tokenizer: Any, messages: list[dict[str, Any]], turn: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> str:
    """What the chat template writes for the assistant ``turn`` after the prompt of ``messages``: the
    conversation rendered with the turn, less the prompt rendered without it. Exactly the text the
    template would have the model produce (end-of-turn tokens included), so a model trained on it
    learns what its template expects; ValueError when the template writes the prompt otherwise once
    a turn follows (then no text after the prompt is the turn)."""
    prompt = render_chat(tokenizer, messages, tools, add_generation_prompt=True)
    full = render_chat(tokenizer, [*messages, turn], tools)
    if not full.startswith(prompt):
        raise ValueError("the chat template writes the conversation before an assistant turn otherwise than its generation prompt")
    return full[len(prompt) :]
