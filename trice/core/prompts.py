"""Task instructions, and the prompts they make in a template (:mod:`trice.core.templates`).

The instructions are the original TRICE strings. A run whose model calls tools in its own chat
template's format (``call_format: native``) gets :data:`NATIVE_INSTRUCTIONS` instead: the tool's
schema reaches the model through the template, so the instruction says only when to call it.
"""

from __future__ import annotations

from typing import Any

from trice.core.templates import format_prompt

INSTRUCTIONS: dict[str, str] = {
    "math": "Given a math problem, please answer it and you can use a calculator for help.",
    "qa": "Given a question, please answer it and you can use a WikiSearch for help.",
    "lama": "Given a question, please answer it and you can use a QA model for help.",
    "mlqa": "Given a context, please answer the question in English and you can use a translator for help.",
}

NATIVE_INSTRUCTIONS: dict[str, str] = {
    "math": "Given a math problem, please answer it. Call the calculator tool when the problem needs arithmetic; otherwise answer directly.",
    "qa": "Given a question, please answer it. Call the WikiSearch tool when you do not know the answer; otherwise answer directly.",
    "lama": "Given a question, please answer it. Call the QA tool when you do not know the answer; otherwise answer directly.",
    "mlqa": "Given a context, please answer the question in English. Call the translator tool when the question is not in English; otherwise answer directly.",
}
"""The instructions of native prompts (a user's task keeps its own instruction there)."""


def register_instruction(task: str, instruction: str) -> None:
    """The instruction of a user's task (:func:`trice.tasks.register_task`); a taken name keeps its own."""
    if INSTRUCTIONS.get(task, instruction) != instruction:
        raise ValueError(f"task {task!r} already has another instruction")
    INSTRUCTIONS[task] = instruction


# The instruction of the model's second reading, after a tool whose output is not the answer
# (the TRICE paper): MLQA's input with the question replaced by its English translation is answered anew;
# a WikiSearch passage is read as ``passage + ". " + question`` under the task's instruction without
# the tool (the model answers from the passage, it does not search again).
READ_INSTRUCTIONS: dict[str, str] = {"qa": "Given a question, please answer it.", "mlqa": "Given a context, please answer the question."}


def task_instruction(task: str, native: bool = False) -> str:
    """The instruction starting ``task``'s prompts; ``native``: the one for a native-format run."""
    if task not in INSTRUCTIONS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(INSTRUCTIONS)}")
    return NATIVE_INSTRUCTIONS.get(task, INSTRUCTIONS[task]) if native else INSTRUCTIONS[task]


def task_prompt(task: str, question: str, template: str = "alpaca", tokenizer: Any = None, tools: list[dict[str, Any]] | None = None) -> str:
    """``task``'s prompt of ``question``; ``tools``: the schemas a native-format prompt offers (with
    the native instruction; :func:`trice.tasks.prompt_tools` gives a task's)."""
    return format_prompt(task_instruction(task, bool(tools)), question, template, tokenizer, tools)


def read_prompt(task: str, input_text: str, template: str = "alpaca", tokenizer: Any = None) -> str:
    """The prompt of the second reading for ``task`` (see :data:`READ_INSTRUCTIONS`)."""
    if task not in READ_INSTRUCTIONS:
        raise ValueError(f"task {task!r} has no second reading; tasks with one: {', '.join(READ_INSTRUCTIONS)}")
    return format_prompt(READ_INSTRUCTIONS[task], input_text, template, tokenizer)


# Few-shot prefixes of worked examples that always call the tool (the paper's ChatGPT/InstructGPT
# candidate sources were prompted so); candidate sources name them by ``few_shot`` (trice.stage2.candidates).
MATH_FEW_SHOT_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "calculator(48+48/2)",
    ),
    ("Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?", "calculator(12/60*50)"),
    (
        "Betty has 5 boxes of pencils with 12 pencils in each box. She gives 17 pencils to her friend. How many pencils does Betty have left?",
        "calculator(5*12-17)",
    ),
)
"""(question, response) pairs whose response always calls the calculator."""

MATH_FEW_SHOT = "".join(task_prompt("math", question) + call + "\n\n" for question, call in MATH_FEW_SHOT_EXAMPLES)
"""The examples as alpaca-formatted worked prompts, to put before a prompt."""

TOOL_FEW_SHOT_EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "qa": (
        ("what is nina dobrev nationality?", "WikiSearch(Nina Dobrev nationality)"),
        ("who played the voice of darth vader in star wars?", "WikiSearch(voice of Darth Vader)"),
        ("Which river flows through Vienna?", "WikiSearch(Vienna river)"),
    ),
    "lama": (
        ("The Eiffel Tower is a wrought-iron lattice tower in ?", "QA(Where is the Eiffel Tower located?)"),
        ("Ludwig van Beethoven, the composer, was born in ?", "QA(Where was Ludwig van Beethoven born?)"),
        ("Toyota Corolla is a compact car produced by ?", "QA(Which company produces Toyota Corolla?)"),
    ),
    "mlqa": (
        ("Context: The museum opened in 1902 and holds 3,000 paintings.\nQuestion: 博物馆有多少幅画？", "translator(博物馆有多少幅画？)"),
        ("Context: The bridge was finished in 1932 after eight years of work.\nQuestion: 这座桥是哪一年建成的？", "translator(这座桥是哪一年建成的？)"),
    ),
}
"""Invented (question, response) pairs for the other tasks, the response always calling the task's
tool (the paper's few-shot "tool-always" sources); none is from a dataset, so none leaks a test answer."""

FEW_SHOT_PRESETS: dict[str, str] = {
    "math": MATH_FEW_SHOT,
    **{task: "".join(task_prompt(task, q) + call + "\n\n" for q, call in examples) for task, examples in TOOL_FEW_SHOT_EXAMPLES.items()},
}
PER_TASK = "task"
"""The ``few_shot`` value that prefixes each question with its own task's preset (a TRICE-MIX run's mixed questions)."""


def few_shot_prefix(few_shot: str | None, task: str | None = None) -> str:
    """The text put before a source's prompts: a preset's examples (``task``: the preset of the
    question's ``task``), the literal prefix, or nothing."""
    if few_shot is None:
        return ""
    if few_shot == PER_TASK:
        if task not in FEW_SHOT_PRESETS:
            raise ValueError(f"few_shot {PER_TASK!r}: no preset for task {task!r}; presets: {', '.join(FEW_SHOT_PRESETS)}")
        return FEW_SHOT_PRESETS[task]
    return FEW_SHOT_PRESETS.get(few_shot, few_shot)
