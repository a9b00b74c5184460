"""A training row's token ids, the same for every trainer: the prompt exactly as generation
tokenizes it, and the response with EOS, tokenized apart so the boundary between them is exact."""

from __future__ import annotations

from typing import Any

from trice.core.call_format import NATIVE_FORMAT, TEXT_FORMAT
from trice.core.prompts import task_prompt
from trice.tasks import prompt_tools


def prompt_token_ids(task: str, question: str, tokenizer: Any, template: str = "alpaca", call_format: str = TEXT_FORMAT) -> list[int]:
    """The prompt's ids exactly as generation tokenizes it: the template's text (in the native call
    format, offering the task's tool), no special tokens."""
    prompt = task_prompt(task, question, template, tokenizer, prompt_tools(task, call_format == NATIVE_FORMAT))
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def target_token_ids(text: str, tokenizer: Any) -> list[int]:
    """A response's ids plus EOS, so the model learns to stop; tokenized apart from the prompt, so
    the prompt/response boundary is exact."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token: the model could not learn to stop")
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]
