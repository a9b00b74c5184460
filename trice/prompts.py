"""Task instructions and prompt templates.

The instructions are the original TRICE strings. Two templates: ``alpaca`` (the paper's) and
``chat`` (the tokenizer's own chat template, for instruction-tuned models that expect it).
"""

from __future__ import annotations

from typing import Any

INSTRUCTIONS: dict[str, str] = {
    "math": "Given a math problem, please answer it and you can use a calculator for help.",
    "qa": "Given a question, please answer it and you can use a WikiSearch for help.",
    "lama": "Given a question, please answer it and you can use a QA model for help.",
    "mlqa": "Given a context, please answer the question in English and you can use a translator for help.",
}

# The instruction of the model's second reading, after a tool whose output is not the answer
# (TRICE.md): MLQA's input with the question replaced by its English translation is answered anew;
# a WikiSearch passage is read as ``passage + ". " + question`` under the task's instruction without
# the tool (the model answers from the passage, it does not search again).
READ_INSTRUCTIONS: dict[str, str] = {
    "qa": "Given a question, please answer it.",
    "mlqa": "Given a context, please answer the question.",
}

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


def task_prompt(task: str, question: str, template: str = "alpaca", tokenizer: Any = None) -> str:
    if task not in INSTRUCTIONS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(INSTRUCTIONS)}")
    return format_prompt(INSTRUCTIONS[task], question, template, tokenizer)


def read_prompt(task: str, input_text: str, template: str = "alpaca", tokenizer: Any = None) -> str:
    """The prompt of the second reading for ``task`` (see :data:`READ_INSTRUCTIONS`)."""
    if task not in READ_INSTRUCTIONS:
        raise ValueError(f"task {task!r} has no second reading; tasks with one: {', '.join(READ_INSTRUCTIONS)}")
    return format_prompt(READ_INSTRUCTIONS[task], input_text, template, tokenizer)
