"""D_tool's tool calls per task (qa search terms, lama QA calls, mlqa translator calls), each kept
only when executing it gives gold; fakes for the tools and the teacher."""

from __future__ import annotations

import logging
import re

import pytest

import trice.generation.decode
from trice.stage1.label import LabelConfig, label_modes, label_rows
from trice.judge.evaluate import UNREAD
from trice.judge.reading import ReadingModel
from trice.generation.remote import EndpointError
from trice.stage1.tool_labels import LocalTeacher, label_teacher, qa_calls, search_terms, teacher_terms, verified_calls
from trice.tools.factories import TOOL_FACTORIES
from trice.core.tools import ToolError


def _probed(i: int, task: str, question: str, answers: list[str], call: str | None = None, correct: bool = False) -> dict:
    return {
        "id": f"{task}{i}",
        "dataset": task,
        "task": task,
        "question": question,
        "answers": answers,
        "tool_call": call,
        "response": "I do not know",
        "correct": correct,
    }


def test_search_terms_are_key_words_question_and_names() -> None:
    assert search_terms("what is nina dobrev nationality?") == [("keywords", "nina dobrev nationality"), ("question", "what is nina dobrev nationality")]
    assert search_terms("Who played the voice of Darth Vader in Star Wars?") == [
        ("keywords", "played voice Darth Vader Star Wars"),
        ("question", "Who played the voice of Darth Vader in Star Wars"),
        ("entities", "Darth Vader Star Wars"),
    ]
    assert search_terms("who?") == [("question", "who")]
    assert len(search_terms("a " + "word " * 40)[0][1].split()) == 12


class Wiki:
    """Passages that hold the answer only for the terms in ``good``."""

    def __init__(self, good: dict[str, str]):
        self.good, self.asked = good, []

    def passages(self, term: str, k: int | None = None) -> list[str]:
        self.asked.append((term, k))
        if term == "broken":
            raise ToolError("timeout", "slow")
        return [f"T | something about {term}", self.good.get(term, "T | nothing here")]


def test_qa_keeps_the_first_term_whose_top_passages_hold_the_answer() -> None:
    rows = [
        _probed(0, "qa", "what is nina dobrev nationality?", ["Bulgaria"]),
        _probed(1, "qa", "who is it?", ["Nobody"]),
        _probed(2, "qa", "what is the capital of France?", ["Paris"]),
    ]
    wiki = Wiki({"what is nina dobrev nationality": "T | She is from Bulgaria.", "Dobrev": "T | Bulgaria", "capital France": "T | Paris"})
    outages: dict[str, str] = {}
    found = qa_calls(rows, wiki, search_k=2, teacher={"qa0": ["broken", "Dobrev (actress"], "qa2": []}, outages=outages)
    assert outages == {}  # qa0's first search met an outage, but a later term found the answer
    assert found == {
        "qa0": ("WikiSearch(what is nina dobrev nationality)", "question"),  # teacher's: one fails, one would not parse back
        "qa1": None,
        "qa2": ("WikiSearch(capital France)", "keywords"),
    }
    assert ("broken", 2) in wiki.asked and not any(term == "Dobrev (actress" for term, _ in wiki.asked)
    assert qa_calls(rows[:1], wiki, teacher={"qa0": ["Dobrev"]})["qa0"] == ("WikiSearch(Dobrev)", "teacher")


def test_calls_a_tool_did_not_answer_are_named_in_one_warning(monkeypatch, caplog) -> None:
    rows = [_probed(0, "qa", "what is nina dobrev nationality?", ["Bulgaria"])]
    outages: dict[str, str] = {}
    with caplog.at_level(logging.WARNING, logger="trice.stage1.tool_labels"):
        qa_calls(rows, Wiki({}), teacher={"qa0": ["broken"]}, outages=outages)
    assert outages == {"qa0": "timeout: slow"}  # left without a call, and a search got no answer: the stage must know
    assert [r.getMessage() for r in caplog.records] == [
        "label: tools did not answer 1 timeout call(s) made for 1 questions; a question left without a verified call is dropped "
        "(label again once the tool answers)"
    ]
    caplog.clear()

    class Down:
        name = "translator"

        def run(self, argument: str) -> str:
            raise ToolError("unavailable", "server down")

    monkeypatch.setitem(TOOL_FACTORIES, "translator", lambda **_: Down())
    down = [_probed(i, "mlqa", "Context: c\nQuestion: 谁？", ["Bob"], "translator(谁？)") for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="trice.stage1.tool_labels"):
        assert verified_calls(down, reader=EchoReadingModel(), outages=outages) == {"mlqa0": None, "mlqa1": None, "mlqa2": None}
    assert set(outages) == {"qa0", "mlqa0", "mlqa1", "mlqa2"} and outages["mlqa2"] == "unavailable: server down"
    assert "tools did not answer 3 unavailable call(s) made for 3 questions" in caplog.text


class Teacher:
    def __init__(self):
        self.prompts = []

    def complete_many(self, prompts, desc=""):
        self.prompts += prompts
        return ["WikiSearch(Nina Dobrev)\nsome chatter\nWikiSearch(Dobrev nationality) WikiSearch(x)", EndpointError("timeout", "slow")]


def test_teacher_terms_parse_calls_and_survive_failures() -> None:
    teacher = Teacher()
    rows = [_probed(0, "qa", "what is nina dobrev nationality?", ["Bulgaria", "Bulgarian"]), _probed(1, "qa", "q?", ["a"])]
    assert teacher_terms(teacher, rows, n=2) == {"qa0": ["Nina Dobrev", "Dobrev nationality"], "qa1": []}
    assert "Question: what is nina dobrev nationality?\nGolden answers: Bulgaria; Bulgarian\n" in teacher.prompts[0]
    assert 'write "WikiSearch(term)"' in teacher.prompts[0]


class FakeQA:
    name = "QA"

    def run(self, argument: str) -> str:
        return {"Where was Allan Peiper born?": "in Alexandra, Victoria"}.get(argument, "London")


class FakeTranslator:
    name = "translator"

    def run(self, argument: str) -> str:
        return {"多少分？": "How many points?"}.get(argument, "What?")


class EchoReadingModel(ReadingModel):
    """Reads a translated MLQA input by answering '308' to the points question only."""

    def __init__(self):
        super().__init__(lambda: None)
        self.items = []

    def read_many(self, items):
        self.items += items
        return ["308" if "How many points?" in out else "no idea" for _, _, out, *_ in items]


@pytest.fixture
def fake_tools(monkeypatch):
    monkeypatch.setitem(TOOL_FACTORIES, "QA", lambda **_: FakeQA())
    monkeypatch.setitem(TOOL_FACTORIES, "translator", lambda **_: FakeTranslator())


def test_lama_and_mlqa_calls_are_kept_when_execution_gives_gold(fake_tools) -> None:
    rows = [
        _probed(0, "lama", "Allan Peiper (born 26 April 1960 in ?", ["Alexandra"], "QA(Where was Allan Peiper born?)"),
        _probed(1, "lama", "Paul Mounsey is a ?", ["Scottish"], "QA(Where was Paul Mounsey born?)"),
        _probed(2, "mlqa", "Context: They gave up 308 points.\nQuestion: 多少分？", ["308"], "translator(多少分？)"),
        _probed(3, "mlqa", "Context: c\nQuestion: 谁？", ["Bob"], "translator(谁？)"),
        _probed(4, "mlqa", "Context: c\nQuestion: x", ["Bob"], None),
        _probed(5, "math", "2+3?", ["5"], "calculator(2+3)"),
    ]
    reader = EchoReadingModel()
    found = verified_calls(rows, reader=reader)
    assert found == {
        "lama0": ("QA(Where was Allan Peiper born?)", "annotation"),
        "lama1": None,
        "mlqa2": ("translator(多少分？)", "annotation"),
        "mlqa3": None,
        "mlqa4": None,
        "math5": ("calculator(2+3)", "annotation"),
    }
    assert [out for _, _, out, *_ in reader.items] == ["How many points?", "What?"]  # the translations were read
    out, stats = label_rows(rows, "trice", found)
    assert [r["id"] for r in out] == ["lama0", "mlqa2", "math5"]
    assert stats["by_task"] == {
        "lama": {"right": 0, "labelled": 1, "dropped": 1},
        "math": {"right": 0, "labelled": 1, "dropped": 0},
        "mlqa": {"right": 0, "labelled": 1, "dropped": 2},
    }
    assert stats["sources"] == {"annotation": 3}

    class Unread(EchoReadingModel):
        def read_many(self, items):
            return [None for _ in items]  # the reading endpoint did not answer

    outages: dict[str, str] = {}
    assert verified_calls(rows[2:4], reader=Unread(), outages=outages) == {"mlqa2": None, "mlqa3": None}
    assert outages == {"mlqa2": UNREAD, "mlqa3": UNREAD}


def test_label_modes_verify_each_call_once(fake_tools, monkeypatch) -> None:
    import trice.stage1.label

    rows = [
        _probed(0, "lama", "Allan Peiper (born in ?", ["Alexandra"], "QA(Where was Allan Peiper born?)"),
        _probed(1, "lama", "X ?", ["y"], "QA(X?)", correct=True) | {"response": "y"},
    ]
    calls = []
    real = trice.stage1.label.verified_calls
    monkeypatch.setattr(trice.stage1.label, "verified_calls", lambda rows, **kw: calls.append([r["id"] for r in rows]) or real(rows, **kw))
    sets = label_modes(rows, ["sft-0", "sft-100", "trice"])
    assert calls == [["lama0", "lama1"]]
    assert [r["output"] for r in sets["trice"][0]] == ["QA(Where was Allan Peiper born?)", "y"]
    assert sets["sft-100"][1]["dropped"] == 1 and sets["sft-0"][1]["answer"] == 2


TEACHER_ANSWER = "WikiSearch(Nina Dobrev)\nWikiSearch(Dobrev nationality)\n\nQuestion: who else?\nGolden answers: x\nWikiSearch(who else)"


def test_a_local_teacher_answers_through_the_endpoint_path_and_stops_at_its_examples(monkeypatch, tiny_model_dir, one_thread) -> None:
    """kind: model makes a local model the teacher; its answers end where the prompt's examples end
    (a blank line), so the next example it would invent proposes no term."""
    teacher = label_teacher({"kind": "model", "model": str(tiny_model_dir), "max_new_tokens": 6, "batch_size": 2})
    assert isinstance(teacher, LocalTeacher)
    real = teacher.complete_many(["Question: a?\n", "Question: bb?\n", "Question: ccc?\n"])  # the tiny model, really generating
    assert len(real) == 3 and all(isinstance(a, str) and "\n\n" not in a for a in real)

    made = []

    def scripted(model, tokenizer, prompts, batch_size, desc="", stops=None, **kwargs):
        made.append((len(prompts), kwargs))
        return [rule.finish(TEACHER_ANSWER) for rule in stops]

    monkeypatch.setattr(trice.generation.decode, "generate_responses", scripted)
    rows = [_probed(0, "qa", "what is nina dobrev nationality?", ["Bulgaria"])]
    wiki = Wiki({"Dobrev nationality": "T | Bulgaria"})
    found = verified_calls(rows, teacher={"kind": "model", "model": str(tiny_model_dir)}, wiki=lambda: wiki)
    assert found == {"qa0": ("WikiSearch(Dobrev nationality)", "search-term:teacher")}
    assert made == [(1, {"max_new_tokens": 96, "do_sample": False})]
    assert teacher_terms(teacher, rows) == {"qa0": ["Nina Dobrev", "Dobrev nationality"]}  # not "who else"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "model"}, "teacher: model: required"),
        ({"kind": "model", "model": "m", "temperature": 0.5}, "teacher: unknown key 'temperature'"),
        ({"kind": "model", "model": "m", "batch_size": 0}, "batch_size must be >= 1"),
        ({"base_url": "http://x/v1", "modle": "m"}, "teacher: unknown key(s) ['modle']"),
    ],
)
def test_bad_teacher_options_fail_naming_the_key_before_labelling(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LabelConfig(teacher=options).validate()
