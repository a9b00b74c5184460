"""The on-disk output cache of the translator and QA tools, with fake backends that count their calls
(built through ``from_options``, so the real cache keys are exercised)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.core.tools import ToolError, ToolRegistry
from trice.tools.factories import build_registry
from trice.tools import qa, translator
from trice.tools.cache import NO_CACHE
from trice.tools.qa import QATool
from trice.tools.translator import Translator


class CountingTranslator:
    """Tags each text with its language; fails on demand; counts what it was asked."""

    def __init__(self, config):
        self.config = config
        self.asked: list[list[str]] = []
        self.fail: ToolError | None = None

    def translate(self, texts):
        self.asked.append(list(texts))
        if self.fail is not None:
            raise self.fail
        return ["" if t == "empty" else f"{self.config.source_language}->en: {t}" for t in texts]


@pytest.fixture
def backends(monkeypatch) -> list[CountingTranslator]:
    """Every backend the translator's ``gemma`` factory builds, in order."""
    built: list[CountingTranslator] = []

    def factory(config):
        built.append(CountingTranslator(config))
        return built[-1]

    monkeypatch.setitem(translator._BACKENDS, "gemma", factory)
    return built


def calls(backends: list[CountingTranslator]) -> int:
    return sum(len(b.asked) for b in backends)


def entries(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.json"))


def test_a_translation_is_computed_once_across_tool_objects(backends, tmp_path: Path) -> None:
    tool = Translator.from_options(cache_dir=str(tmp_path))
    assert tool.run("你好  世界") == "Chinese->en: 你好 世界"
    assert tool.run("你好 世界") == "Chinese->en: 你好 世界" and calls(backends) == 1  # normalised argument, one key
    again = Translator.from_options(cache_dir=str(tmp_path))  # what the next stage's process builds
    assert again.run("你好 世界") == "Chinese->en: 你好 世界" and calls(backends) == 1
    (entry,) = entries(tmp_path)
    stored = json.loads(entry.read_text(encoding="utf-8"))
    assert stored["text"] == "Chinese->en: 你好 世界" and stored["request"]["argument"] == "你好 世界"
    assert entry.parent.name == entry.stem[:2]


def test_translate_many_sends_only_the_misses_in_order(backends, tmp_path: Path) -> None:
    tool = Translator.from_options(cache_dir=str(tmp_path))
    tool.run("a")
    assert tool.translate_many(["b", "a", "b", "c"]) == [f"Chinese->en: {t}" for t in "babc"]
    assert backends[0].asked == [["a"], ["b", "c"]]  # each miss once, in first-seen order


@pytest.mark.parametrize(
    ("changed", "hits"),
    [
        ({"source_language": "German"}, False),
        ({"model": "/another/model"}, False),
        ({"max_new_tokens": 12}, False),
        ({"max_time": 5.0, "batch_size": 2}, True),  # timing and batching never change a translation
    ],
)
def test_options_that_change_the_output_change_the_key(backends, tmp_path: Path, changed: dict, hits: bool) -> None:
    Translator.from_options(cache_dir=str(tmp_path)).run("hallo")
    Translator.from_options(cache_dir=str(tmp_path), **changed).run("hallo")
    assert calls(backends) == (1 if hits else 2)


def test_errors_are_not_cached(backends, tmp_path: Path) -> None:
    tool = Translator.from_options(cache_dir=str(tmp_path))
    backends[0].fail = ToolError("timeout", "slow")
    assert ToolRegistry([tool]).run_text("translator(hallo)").error_kind == "timeout"
    backends[0].fail = None
    with pytest.raises(ToolError, match="empty translation"):
        tool.run("empty")
    assert entries(tmp_path) == []
    assert tool.run("hallo") == "Chinese->en: hallo" and calls(backends) == 3  # asked again after the error
    assert len(entries(tmp_path)) == 1


def test_a_damaged_entry_is_a_miss_and_is_repaired(backends, tmp_path: Path) -> None:
    Translator.from_options(cache_dir=str(tmp_path)).run("hallo")
    (entry,) = entries(tmp_path)
    for damage in ("{torn", '{"text": 3}', "[]"):
        entry.write_text(damage, encoding="utf-8")
        assert Translator.from_options(cache_dir=str(tmp_path)).run("hallo") == "Chinese->en: hallo"
        assert json.loads(entry.read_text(encoding="utf-8"))["text"] == "Chinese->en: hallo"  # rewritten whole
    assert calls(backends) == 4


def test_empty_cache_dir_disables_and_unset_uses_the_default(backends, tmp_path: Path, tool_outputs_dir: Path) -> None:
    tool = Translator.from_options(cache_dir="")
    tool.run("hallo")
    tool.run("hallo")
    assert calls(backends) == 2 and entries(tool_outputs_dir) == []
    Translator.from_options().run("hallo")
    Translator.from_options().run("hallo")
    assert calls(backends) == 3 and len(entries(tool_outputs_dir)) == 1  # $TRICE_CACHE_DIR/tool-outputs in use


def test_what_the_config_does_not_describe_is_not_cached() -> None:
    """The endpoint backend caches in its own client; a hand-made backend has no key of its own."""
    endpoint = Translator.from_options(backend="endpoint", endpoint={"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert endpoint.cache is NO_CACHE
    assert Translator(CountingTranslator(None)).cache is NO_CACHE


# --- the QA tool --------------------------------------------------------------------------------


class CountingReader:
    """Answers with the title of the top passage; counts the questions it read."""

    def __init__(self, config):
        self.config = config
        self.asked: list[list[str]] = []
        self.fail: ToolError | None = None

    def answer(self, questions, passages):
        self.asked.append(list(questions))
        if self.fail is not None:
            raise self.fail
        return [p[0].split(" | ")[0] for p in passages]


@pytest.fixture
def qa_options(monkeypatch, tmp_path: Path) -> tuple[dict, list[CountingReader]]:
    """Options for a QA tool over a three-passage corpus (its index under tmp), and its readers."""
    corpus = tmp_path / "corpus.jsonl"
    rows = [
        {"id": "p1", "title": "Alexandra", "text": "Allan Peiper was born in Alexandra, Australia."},
        {"id": "p2", "title": "IBM", "text": "Cognos was acquired by IBM and is owned by IBM."},
        {"id": "p3", "title": "Yorkshire", "text": "Doncaster is a market town in South Yorkshire."},
    ]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    readers: list[CountingReader] = []

    def factory(config):
        readers.append(CountingReader(config))
        return readers[-1]

    monkeypatch.setitem(qa._READERS, "lm", factory)
    retriever = {"sources": [], "extra_passages": [str(corpus)], "bm25_backend": "numpy", "index_dir": str(tmp_path / "idx")}
    return {"retriever": retriever, "trex_evidence": False, "cache_dir": str(tmp_path / "answers")}, readers


def asked(readers: list[CountingReader]) -> list[str]:
    return [q for r in readers for batch in r.asked for q in batch]


def test_qa_answers_are_cached_across_tool_objects_and_options(qa_options) -> None:
    options, readers = qa_options
    assert QATool.from_options(**options).run("Who owns Cognos?") == "IBM"
    fresh = build_registry(["QA"], QA=options)  # the next stage's process
    assert fresh.run_text("QA('Who owns  Cognos?')").output == "IBM" and asked(readers) == ["Who owns Cognos?"]
    QATool.from_options(**options, k=1).run("Who owns Cognos?")
    QATool.from_options(**options, model="another-reader").run("Who owns Cognos?")
    QATool.from_options(**options, max_time=5.0, batch_size=2).run("Who owns Cognos?")  # same key
    assert len(asked(readers)) == 3


def test_qa_prefetch_reads_only_the_uncached_questions(qa_options) -> None:
    options, readers = qa_options
    QATool.from_options(**options).run("Who owns Cognos?")
    tool = QATool.from_options(**options)
    tool.prefetch(["Who owns Cognos?", "Where is Doncaster?", "Where is Doncaster?"])
    assert asked(readers) == ["Who owns Cognos?", "Where is Doncaster?"]
    assert tool.run("Who owns Cognos?") == "IBM" and tool.run("Where is Doncaster?") == "Yorkshire"
    assert QATool.from_options(**options).run("Where is Doncaster?") == "Yorkshire"  # prefetched answers are kept
    assert len(asked(readers)) == 2


def test_qa_errors_are_not_cached_and_empty_dir_disables(qa_options) -> None:
    options, readers = qa_options
    tool = QATool.from_options(**options)
    readers[0].fail = ToolError("timeout", "slow")
    tool.prefetch(["Who owns Cognos?"])
    assert ToolRegistry([tool]).run_text("QA(Who owns Cognos?)").error_kind == "timeout"
    assert not Path(options["cache_dir"]).exists()
    readers[0].fail = None
    assert QATool.from_options(**options).run("Who owns Cognos?") == "IBM" and len(asked(readers)) == 3
    off = QATool.from_options(**(options | {"cache_dir": ""}))
    off.run("Where is Doncaster?")
    QATool.from_options(**(options | {"cache_dir": ""})).run("Where is Doncaster?")
    assert asked(readers)[-2:] == ["Where is Doncaster?"] * 2 and len(entries(Path(options["cache_dir"]))) == 1


def test_qa_endpoint_reader_is_cached_by_its_client_only() -> None:
    tool = QATool.from_options(reader="endpoint", endpoint={"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert tool.cache is NO_CACHE
