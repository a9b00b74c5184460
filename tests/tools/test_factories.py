"""trice.tools.factories: what each built-in tool needs installed, read from its options."""

from __future__ import annotations

from trice.tools import factories


def test_tool_missing_packages_reads_wikisearch_and_qa_retriever_options(monkeypatch) -> None:
    monkeypatch.setattr(factories, "missing_packages", lambda options: [options.get("backend", "bm25")])
    assert factories.tool_missing_packages("WikiSearch", {"backend": "hybrid"}) == ["hybrid"]
    assert factories.tool_missing_packages("QA", {"retriever": {"backend": "dense"}}) == ["dense"]
    assert factories.tool_missing_packages("QA", {}) == ["bm25"] and factories.tool_missing_packages("calculator", {}) == []


def test_tool_models_are_the_translator_and_qa_readers_models() -> None:
    assert factories.tool_models("translator", {"model": "gemma3-270m"}) == ["gemma3-270m"]
    assert factories.tool_models("QA", {"model": "smollm2-135m-instruct"}) == ["smollm2-135m-instruct"]
    endpoint = {"base_url": "http://localhost:8000/v1", "model": "m"}
    assert factories.tool_models("QA", {"reader": "endpoint", "endpoint": endpoint}) == []
    assert factories.tool_models("translator", {"backend": "endpoint", "endpoint": endpoint}) == []
    assert factories.tool_models("calculator", {}) == factories.tool_models("WikiSearch", {"backend": "dense"}) == []
