"""The QA tool (retrieval + reader); fake readers where a model would be slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from trice.retrieval import BM25Retriever, Passage
from trice.retrieval.bm25 import BM25Settings
from trice.tasks import get_task
from trice.core.tools import ToolError, ToolRegistry, ToolSetupError
from trice.tools.factories import build_registry
from trice.tools.qa import EndpointReader, LMReader, QATool, QAToolConfig, clean_question, reader_input, short_answer

from tests.helpers.fake_servers import refused_url, serve  # noqa: F401 (fixtures)

PASSAGES = [
    Passage("p1", "Allan Peiper", "Allan Peiper (born in Alexandra, Victoria, Australia, on 26 April 1960) is a former cyclist."),
    Passage("p2", "Doncaster", "Doncaster is a market town in South Yorkshire, England."),
    Passage("p3", "Cognos", "Cognos was acquired by IBM in 2008 and is now owned by IBM."),
]


class FakeReader:
    """Answers with the first capitalised word of the top passage's text that is not in the question."""

    def __init__(self, fail: ToolError | None = None):
        self.calls: list[list[str]] = []
        self.fail = fail

    def answer(self, questions, passages):
        self.calls.append(list(questions))
        if self.fail is not None:
            raise self.fail
        out = []
        for q, ps in zip(questions, passages):
            text = ps[0].split(" | ", 1)[1]
            out.append(next((w.strip(",.()") for w in text.split() if w[0].isupper() and w.strip(",.()") not in q), ""))
        return out


@pytest.fixture(scope="module")
def retriever() -> BM25Retriever:
    return BM25Retriever(PASSAGES, BM25Settings(bm25_backend="numpy"))  # no numba compile for three passages


def test_qa_tool_answers_from_retrieved_passages(retriever) -> None:
    reader = FakeReader()
    tool = QATool(reader, retriever)
    assert tool.passages("Who owns Cognos?")[0].startswith("Cognos | ")
    assert tool.run("Who owns Cognos?") == "IBM"
    assert tool.run('  "Who owns  Cognos?" ') == "IBM"  # same question once cleaned: answered from the cache
    assert reader.calls == [["Who owns Cognos?"]]
    registry = ToolRegistry([tool])
    j = get_task("lama").judge("QA(Who owns Cognos?)", ["IBM"], registry)
    assert (j.prediction, j.correct, j.used_tool) == ("IBM", True, True)


def test_qa_tool_prefetch_answers_many_calls_in_one_batch(retriever) -> None:
    reader = FakeReader()
    tool = QATool(reader, retriever, QAToolConfig(batch_size=8))
    tool.prefetch(["Who owns Cognos?", "Where was Allan Peiper born?", "Who owns Cognos?", "zzzz qqqq", "x" * 5000])
    assert reader.calls == [["Who owns Cognos?", "Where was Allan Peiper born?"]]  # one batch, each question once
    assert tool.run("Where was Allan Peiper born?") == "Alexandra" and len(reader.calls) == 1
    with pytest.raises(ToolError) as err:
        tool.run("zzzz qqqq")  # nothing retrieved: remembered as a bad argument
    assert err.value.kind == "bad_argument"


@pytest.mark.parametrize(("argument", "kind"), [("", "bad_argument"), ("  ''  ", "bad_argument"), ("x" * 301, "limit"), ("x" * 100_000, "limit")])
def test_qa_tool_bounds_its_argument(retriever, argument: str, kind: str) -> None:
    reader = FakeReader()
    with pytest.raises(ToolError) as err:
        QATool(reader, retriever).run(argument)
    assert err.value.kind == kind and reader.calls == []


def test_qa_tool_failures_are_typed_and_transient_ones_not_remembered(retriever) -> None:
    reader = FakeReader(fail=ToolError("timeout", "slow server"))
    tool = QATool(reader, retriever)
    registry = ToolRegistry([tool])
    for _ in range(2):
        result = registry.run_text("QA(Who owns Cognos?)")
        assert not result.ok and result.error_kind == "timeout"
    assert len(reader.calls) == 2  # asked again: a timeout is not an answer
    tool.prefetch(["Who owns Cognos?"])  # a failing batch leaves each call to be tried alone
    reader.fail = None
    assert tool.run("Who owns Cognos?") == "IBM"

    class Empty:
        def answer(self, questions, passages):
            return [""] * len(questions)

    result = ToolRegistry([QATool(Empty(), retriever)]).run_text("QA(Who owns Cognos?)")
    assert not result.ok and result.error_kind == "runtime" and "empty answer" in result.error


def test_qa_tool_options_are_checked_and_registered() -> None:
    registry = build_registry(["QA"], QA={"k": 3, "reader": "lm", "trex_evidence": False})  # nothing loads yet
    assert registry.get("QA").config.k == 3
    with pytest.raises(Exception, match="unknown key 'kk'"):
        build_registry(["QA"], QA={"kk": 3})
    with pytest.raises(Exception, match="reader must be one of"):
        build_registry(["QA"], QA={"reader": "oracle"})
    with pytest.raises(Exception, match="needs endpoint"):
        build_registry(["QA"], QA={"reader": "endpoint"})


def test_unusable_corpus_stops_the_run(tmp_path: Path) -> None:
    options = {"sources": [], "extra_passages": [str(tmp_path / "missing.jsonl")], "bm25_backend": "numpy"}
    tool = QATool.from_options(retriever=options, trex_evidence=False)
    with pytest.raises(ToolSetupError, match="missing.jsonl"):  # every call would fail: not the model's answers
        ToolRegistry([tool]).run_text("QA(Who owns Cognos?)")
    with pytest.raises(ToolSetupError):
        tool.prefetch(["Who owns Cognos?"])


def test_reader_text_helpers() -> None:
    text = reader_input("Who owns Cognos?", ["Cognos | " + "word " * 200, "short one"], max_words=5)
    assert text == "Passages:\n1. Cognos | word word word\n2. short one\n\nQuestion: Who owns Cognos?"
    assert short_answer("The answer is:\n\n IBM.\n") == "The answer is: IBM."
    assert short_answer("Answer: IBM") == "IBM" and short_answer("  \n") == ""
    assert clean_question(" 'Who  owns Cognos?' ", 300) == "Who owns Cognos?"


def test_lm_reader_answers_each_question_with_a_real_model(tiny_model_dir, retriever, one_thread) -> None:
    config = QAToolConfig(model=str(tiny_model_dir), max_new_tokens=3, batch_size=2)
    reader = LMReader(config)  # the tiny tokenizer has no chat template: "auto" reads with alpaca
    questions = ["Who owns Cognos?", "Where was Allan Peiper born?", "Where is Doncaster?"]
    answers = reader.answer(questions, [[h.text for h in retriever.search(q, 2)] for q in questions])
    assert len(answers) == 3 and all(isinstance(a, str) and len(a.split()) <= 3 for a in answers)
    missing = LMReader(QAToolConfig(model=str(tiny_model_dir / "nowhere")))
    with pytest.raises(ToolSetupError, match="cannot load QA reader model"):
        missing.answer(["q"], [["p"]])


def test_endpoint_reader_asks_a_server_and_types_its_failures(retriever, serve, refused_url) -> None:  # noqa: F811
    from tests.helpers.fake_servers import openai_reply

    server = serve(lambda hit, path, request: openai_reply(path, request, "Answer: IBM\n"))
    config = QAToolConfig(reader="endpoint", endpoint={"base_url": server.url, "model": "reader"})
    tool = QATool(EndpointReader(config), retriever, config)
    assert tool.run("Who owns Cognos?") == "IBM"
    prompt = server.requests[0][2]["messages"][-1]["content"]
    assert "Passages:\n1. Cognos | Cognos was acquired by IBM" in prompt and prompt.endswith("Question: Who owns Cognos?\nAnswer:")
    config = QAToolConfig(reader="endpoint", endpoint={"base_url": refused_url, "model": "reader", "max_retries": 0})
    down = QATool(EndpointReader(config), retriever, config)
    result = ToolRegistry([down]).run_text("QA(Who owns Cognos?)")
    assert not result.ok and result.error_kind == "unavailable"
