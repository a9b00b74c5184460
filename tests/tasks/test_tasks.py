"""The qa, lama and mlqa tasks: the lenient answer metric, prompts, and judging with and without
their tools (a tool whose output the model reads again needs a reader)."""

from __future__ import annotations

import pytest

from trice.tasks.metrics import answer_in_prefix, normalize_answer, whole_response
from trice.core.prompts import INSTRUCTIONS, read_prompt, task_instruction, task_prompt
from trice.tasks import TASKS, Execution, get_task, prompt_tools
from trice.core.call_format import CallFormat
from trice.core.tools import ToolCall, ToolError, ToolRegistry, ToolResult


@pytest.mark.parametrize(
    ("prediction", "answers", "hit"),
    [
        ("The capital is Paris, of course", ["paris"], True),
        ("PARIS!", ["Paris"], True),
        ("It was the Beatles.", ["The Beatles"], True),  # article and full stop dropped on both sides
        ("the U.S. team", ["US"], True),  # periods deleted: U.S. == US
        ("born in Saint-Denis", ["Saint Denis"], True),  # other punctuation separates words
        ("He was born in Hawai'i", ["Hawaii"], True),
        ("in “Padmé Amidala”", ["Padmé Amidala"], True),
        ("ＰＡＲＩＳ", ["Paris"], True),  # NFKC: full-width letters
        (" ".join(["word"] * 19) + " Paris", ["Paris"], True),  # the 20th word
        (" ".join(["word"] * 20) + " Paris", ["Paris"], False),  # the 21st word
        ("in 1972", ["1"], False),  # whole words only
        ("a Parisian cafe", ["Paris"], False),
        ("Lyon", ["Paris", "Lyon"], True),
        ("the", ["The"], False),  # a gold answer that is only an article never matches
        ("", ["Paris"], False),
        (None, ["Paris"], False),
        ("Paris", [], False),
    ],
)
def test_answer_in_prefix(prediction: str | None, answers: list[str], hit: bool) -> None:
    assert answer_in_prefix(prediction, answers) is hit


def test_normalize_answer() -> None:
    assert normalize_answer("The U.S.  of A, (Saint-Denis)") == ["us", "of", "saint", "denis"]
    assert normalize_answer("...") == []
    assert whole_response("  Paris \n") == "Paris" and whole_response(" \n") is None


def test_tasks_use_the_papers_tools_and_instructions() -> None:
    assert {name: task.tool for name, task in TASKS.items()} == {"math": "calculator", "qa": "WikiSearch", "lama": "QA", "mlqa": "translator"}
    for name in ("qa", "lama", "mlqa"):
        assert get_task(name).is_correct is answer_in_prefix
        assert INSTRUCTIONS[name] in task_prompt(name, "Q?")
    assert "use a WikiSearch for help" in INSTRUCTIONS["qa"]
    assert "### Instruction:\nGiven a context, please answer the question.\n\n### Input:\nContext: c" in read_prompt("mlqa", "Context: c\nQuestion: Who?")
    with pytest.raises(ValueError, match="no second reading"):
        read_prompt("math", "x")


def test_direct_answers_are_judged_without_the_tool() -> None:
    empty = ToolRegistry()
    for name in ("qa", "lama", "mlqa"):
        j = get_task(name).judge("It is Paris, I think.", ["Paris"], empty)
        assert (j.prediction, j.correct, j.used_tool) == ("It is Paris, I think.", True, False)
    j = get_task("qa").judge("Lyon", ["Paris"], empty)
    assert not j.correct and not j.used_tool


def test_a_call_to_a_missing_tool_is_a_failed_call_not_an_answer() -> None:
    j = get_task("qa").judge("WikiSearch(Paris capital)", ["Paris"], ToolRegistry())
    assert j.used_tool and not j.correct and j.prediction is None and j.tool_error.startswith("unknown_tool")


class Tool:
    def __init__(self, name: str, output: str | Exception):
        self.name, self.output = name, output

    def run(self, argument: str) -> str:
        if isinstance(self.output, Exception):
            raise self.output
        return self.output


def test_qa_tool_output_is_the_prediction() -> None:
    registry = ToolRegistry([Tool("QA", "Alexandra, Victoria")])
    j = get_task("lama").judge("QA(Where was Allan Peiper born?)", ["Alexandra"], registry)
    assert (j.prediction, j.correct, j.used_tool) == ("Alexandra, Victoria", True, True)


def test_translator_output_is_read_again_by_the_model() -> None:
    task = get_task("mlqa")
    registry = ToolRegistry([Tool("translator", "How many points?")])
    with pytest.raises(ValueError, match="read by the model again"):
        task.judge("translator(多少分？)", ["308"], registry)
    read: list[str] = []

    def reader(output: str) -> list[str]:
        read.append(output)
        return ["They gave up 308 points."]

    j = task.judge("translator(多少分？)", ["308"], registry, reader=reader)
    assert read == ["How many points?"] and (j.prediction, j.correct, j.used_tool) == ("They gave up 308 points.", True, True)
    wrong = task.judge("translator(多少分？)", ["308"], registry, reader=lambda out: ["Ten.", None])
    assert (wrong.prediction, wrong.correct) == ("Ten.", False)
    failing = ToolRegistry([Tool("translator", ToolError("timeout", "slow"))])
    j = task.judge("translator(多少分？)", ["308"], failing)  # a failed call needs no reader
    assert not j.correct and j.tool_error == "timeout: slow"


def test_wikisearch_counts_right_when_either_passage_reading_is() -> None:
    registry = ToolRegistry([Tool("WikiSearch", "passage one\n\npassage two")])
    readings = lambda output: [f"reading of {p}" for p in output.split("\n\n")] + ["Paris"]  # noqa: E731
    j = get_task("qa").judge("WikiSearch(capital of France)", ["Paris"], registry, reader=readings)
    assert j.correct and j.prediction == "Paris"
    j = get_task("qa").judge("WikiSearch(capital of France)", ["Paris"], registry, reader=lambda o: [])
    assert not j.correct and j.prediction is None


NATIVE = CallFormat("hermes")


def _native(arguments: str, name: str = "calculator") -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call>'


def test_a_native_call_is_executed_and_judged_as_the_text_call() -> None:
    math = get_task("math")
    registry = math.registry()
    right = math.judge(_native('{"expression": "48+48/2"}'), ["72"], registry, calls=NATIVE)
    assert right == math.judge("calculator(48+48/2)", ["72"], registry)
    assert right.correct and right.used_tool and right.prediction == "72"
    direct = math.judge("48 + 24 = 72", ["72"], registry, calls=NATIVE)
    assert direct.correct and not direct.used_tool
    assert not math.judge("calculator(48+48/2)", ["72"], registry, calls=NATIVE).used_tool  # not a call in this format


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        ('<tool_call>\n{"name": "calculator", "arguments": {"expression": "48+</tool_call>', "bad_argument"),  # broken JSON
        (_native('{"expr": "1+1"}'), "bad_argument"),  # the schema's parameter misnamed
        (_native('{"code": "1+1"}', name="python"), "unknown_tool"),
        (_native('{"expression": "' + "1+" * 5000 + '1"}'), "limit"),
    ],
)
def test_a_malformed_native_call_is_a_failed_call_never_a_crash(response: str, kind: str) -> None:
    math = get_task("math")
    judgement = math.judge(response, ["2"], math.registry(), calls=NATIVE)
    assert judgement.used_tool and not judgement.correct and judgement.prediction is None
    assert judgement.tool_error is not None and judgement.tool_error.startswith(kind + ":")


def test_a_native_prompt_offers_the_tool_and_says_when_not_how() -> None:
    assert prompt_tools("math", False) is None
    (schema,) = prompt_tools("lama", True)
    assert schema["function"]["name"] == "QA"
    for task in TASKS:
        native = task_instruction(task, native=True)
        assert TASKS[task].tool in native and "(" not in native and native != INSTRUCTIONS[task]


@pytest.mark.parametrize(
    ("readings", "correct", "unread"),
    [
        (["Paris", None], True, False),  # one right reading decides, whatever the other
        (["Lyon", None], False, True),  # wrong, but the missing reading might have been right
        ([None, None], False, True),
        (["Lyon", "Rome"], False, False),  # every reading made: wrong on the model's merits
    ],
)
def test_a_wrong_call_with_a_missing_reading_says_so(readings, correct, unread) -> None:
    call = ToolCall("WikiSearch", "capital of France")
    execution = Execution(call, ToolResult(call, True, output="p1"), ("p1", "p2"))
    judgement = get_task("qa").conclude("WikiSearch(capital of France)", execution, ["Paris"], readings)
    assert (judgement.correct, judgement.unread) == (correct, unread)
