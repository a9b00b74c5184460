"""The WikiSearch tool: built through the tool registry, run on hostile arguments, the top-k readings
for the QA task layer, and remote failures turned into typed failed calls."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fake_servers import GAVE_UP_WITHIN_S, serve  # noqa: F401 (fixture)
from tests.helpers.retrieval import colbert_ok, json_reply, write_corpus
from trice.utils.config import ConfigError
from trice.retrieval import BM25Config, BM25Retriever
from trice.core.tools import ToolCall, ToolError
from trice.tools.factories import build_registry
from trice.tools.wikisearch import MAX_QUERY_CHARS, WikiSearch, clean_query


@pytest.fixture
def options(tmp_path: Path) -> dict[str, Any]:
    return {"corpus_dir": str(write_corpus(tmp_path / "wiki_corpus")), "index_dir": str(tmp_path / "indexes")}


def test_wikisearch_through_the_registry(options: dict[str, Any]) -> None:
    registry = build_registry(["calculator", "WikiSearch"], WikiSearch=options)
    assert registry.names == ["calculator", "WikiSearch"]
    result = registry.run_text("I should look it up. WikiSearch(Marie Curie radioactivity) then answer.")
    assert result.ok and result.call == ToolCall("WikiSearch", "Marie Curie radioactivity")
    assert result.output.startswith("Marie Curie | Marie Curie was a Polish")

    quoted = registry.run_text('WikiSearch("who painted the Mona Lisa")')
    assert quoted.ok and quoted.output.startswith("Mona Lisa | The Mona Lisa is a half-length portrait")

    nothing = registry.run_text("WikiSearch(zzzqqq xxyyzz)")
    assert not nothing.ok and nothing.error_kind == "bad_argument" and "no passage matches" in nothing.error
    for bad, kind in [("WikiSearch()", "bad_argument"), ("WikiSearch('  ')", "bad_argument"), (f"WikiSearch({'a ' * 400})", "limit")]:
        failed = registry.run_text(bad)
        assert not failed.ok and failed.error_kind == kind, bad


def test_passages_gives_the_top_k_readings_best_first(options: dict[str, Any]) -> None:
    tool = WikiSearch(**options)
    readings = tool.passages("Amazon River largest river world")
    assert len(readings) == 2 and len(set(readings)) == 2 and all(r.startswith("Amazon River | ") for r in readings)
    hits = tool.hits("Amazon River largest river world", k=3)
    assert [h.text for h in hits[:2]] == readings and hits[0].score >= hits[1].score >= hits[2].score
    assert tool.run("Amazon River largest river world") == readings[0]
    assert len(WikiSearch(**options, readings=1).passages("Everest")) == 1
    with pytest.raises(ToolError) as err:
        tool.hits("Everest", k=0)
    assert err.value.kind == "bad_argument"


def test_clean_query_bounds_hostile_arguments() -> None:
    assert clean_query('  "Nina   Dobrev\nnationality" ') == "Nina Dobrev nationality"
    assert clean_query("“Nina Dobrev”") == "Nina Dobrev"
    assert clean_query("x" * MAX_QUERY_CHARS) == "x" * MAX_QUERY_CHARS
    for argument, kind in [("", "bad_argument"), ('""', "bad_argument"), ("x" * (MAX_QUERY_CHARS + 1), "limit"), ("y" * 10**7, "limit")]:
        with pytest.raises(ToolError) as err:
            clean_query(argument)
        assert err.value.kind == kind
    with pytest.raises(ToolError) as err:
        clean_query(" " * 10**7)
    assert err.value.kind == "limit"  # refused by length before any splitting (which would leave it empty)
    with pytest.raises(ToolError, match="search query must be text") as err:
        clean_query(b"Nina Dobrev")  # type: ignore[arg-type]
    assert err.value.kind == "bad_argument"


def test_bad_options_fail_when_the_registry_is_built(options: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'index'"):
        build_registry(["WikiSearch"], WikiSearch={"index": "x"})
    with pytest.raises(ConfigError, match="key 'k1': expected float"):
        build_registry(["WikiSearch"], WikiSearch={**options, "k1": "high"})
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        build_registry(["WikiSearch"], WikiSearch={"corpus_dir": str(tmp_path / "none")})
    retriever = BM25Retriever.open(BM25Config(corpus_dir=options["corpus_dir"]), options["index_dir"])
    with pytest.raises(ValueError, match="either a retriever or retriever options"):
        WikiSearch(retriever, backend="bm25")
    assert WikiSearch(retriever).run("coffee").startswith("Coffee | ")


def test_remote_backend_answers_and_repeats_cost_one_request(serve) -> None:
    server = serve(colbert_ok)
    registry = build_registry("WikiSearch", WikiSearch={"backend": "colbert", "url": server.root + "/search"})
    tool = registry._tools["WikiSearch"]
    assert registry.run_text("WikiSearch(Nina Dobrev nationality)").output == "Passage 0 | about Nina Dobrev nationality"
    assert tool.passages("Nina Dobrev nationality") == ["Passage 0 | about Nina Dobrev nationality", "Passage 1 | about Nina Dobrev nationality"]
    assert registry.run_text("WikiSearch( Nina Dobrev  nationality )").ok
    assert [params for _, _, params in server.requests] == [{"query": "Nina Dobrev nationality", "k": "1"}, {"query": "Nina Dobrev nationality", "k": "2"}]


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        (lambda hit, path, req: None, "timeout"),  # hangs
        (lambda hit, path, req: json_reply({"error": "down"}, 500), "unavailable"),
        (lambda hit, path, req: json_reply({"nothing": 1}), "unavailable"),  # garbage answers
        (lambda hit, path, req: json_reply({"error": "bad query"}, 400), "bad_argument"),
    ],
)
def test_remote_failures_are_typed_failed_calls_within_the_timeout(serve, behaviour, kind: str) -> None:
    server = serve(behaviour)
    settings = {"backend": "colbert", "url": server.root + "/search", "read_timeout": 0.3, "max_retries": 1, "backoff_initial": 0.01}
    registry = build_registry("WikiSearch", WikiSearch=settings)
    start = time.monotonic()
    result = registry.run_text("WikiSearch(Nina Dobrev)")
    assert not result.ok and result.error_kind == kind and result.error.startswith("WikiSearch: ")
    assert time.monotonic() - start < GAVE_UP_WITHIN_S
    assert server.hits == (1 if kind == "bad_argument" else 2)
    assert json.dumps(result.error)  # a plain string, fit for a report
