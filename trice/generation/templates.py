"""Prompt templates: how an instruction and its input become the text a model reads.

Two templates: ``alpaca`` (the TRICE paper's) and ``chat`` (the tokenizer's own chat template, for
instruction-tuned models that expect it). They know no task: a task's instruction comes from
:mod:`trice.tasks.prompts`, and a tool's reader (:mod:`trice.tools.qa`) brings its own, so tools
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


def format_prompt(instruction: str, input_text: str, template: str = "alpaca", tokenizer: Any = None) -> str:
    """The text the model reads before its response."""
    if template == "alpaca":
        return ALPACA.format(instruction=instruction, input=input_text)
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("template 'chat' needs a tokenizer that has a chat template")
        messages = chat_messages(instruction, input_text)
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"unknown prompt template {template!r}; choose one of {', '.join(TEMPLATES)}")
