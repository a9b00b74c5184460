"""trice.tools.registry: what each built-in tool needs installed, read from its options."""

from __future__ import annotations

from trice.tools import registry


def test_tool_missing_packages_reads_wikisearch_and_qa_retriever_options(monkeypatch) -> None:
    monkeypatch.setattr(registry, "missing_packages", lambda options: [options.get("backend", "bm25")])
    assert registry.tool_missing_packages("WikiSearch", {"backend": "hybrid"}) == ["hybrid"]
    assert registry.tool_missing_packages("QA", {"retriever": {"backend": "dense"}}) == ["dense"]
    assert registry.tool_missing_packages("QA", {}) == ["bm25"] and registry.tool_missing_packages("calculator", {}) == []


def test_tool_models_are_the_translator_and_qa_readers_models() -> None:
    assert registry.tool_models("translator", {"model": "gemma3-270m"}) == ["gemma3-270m"]
    assert registry.tool_models("QA", {"model": "smollm2-135m-instruct"}) == ["smollm2-135m-instruct"]
    endpoint = {"base_url": "http://localhost:8000/v1", "model": "m"}
    assert registry.tool_models("QA", {"reader": "endpoint", "endpoint": endpoint}) == []
    assert registry.tool_models("translator", {"backend": "endpoint", "endpoint": endpoint}) == []
    assert registry.tool_models("calculator", {}) == registry.tool_models("WikiSearch", {"backend": "dense"}) == []
