"""What every search backend promises: ``search(query, k)`` -> the k best passages, best first.

Local indexes (BM25, dense, hybrid) and remote servers (ColBERTv2, Elasticsearch/OpenSearch) sit
behind this one interface, so the WikiSearch tool, the QA tool and the benchmarks never care which
one answers. Queries are model output: :func:`check_request` bounds them before any backend sees
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from trice.retrieval.corpus import Passage

MAX_QUERY_CHARS = 1_000
"""Longest query a retriever accepts (the WikiSearch tool allows less); longer is a caller error."""
MAX_K = 100
"""Most passages one search returns."""


@dataclass(frozen=True)
class Hit:
    """One retrieved passage and the backend's score for it (comparable only within one backend)."""

    passage: Passage
    score: float

    @property
    def text(self) -> str:
        """The passage as the LM reads it (``Title | text``)."""
        return self.passage.display


@runtime_checkable
class Retriever(Protocol):
    """A search backend. Both methods return hits best first, at most ``k`` per query (fewer when
    fewer passages match at all), and raise ``ValueError`` for a query or ``k`` outside the bounds
    and :class:`trice.generation.remote.EndpointError` when a remote backend cannot answer."""

    name: str

    def search(self, query: str, k: int = 2) -> list[Hit]: ...

    def search_many(self, queries: Sequence[str], k: int = 2) -> list[list[Hit]]: ...


def check_request(query: str, k: int) -> str:
    """The stripped query, after checking it is non-empty text of at most MAX_QUERY_CHARS and 1 <= k <= MAX_K."""
    if not isinstance(query, str):
        raise ValueError(f"query must be text, got {type(query).__name__}")
    query = query.strip()
    if not query:
        raise ValueError("empty query")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"query longer than {MAX_QUERY_CHARS} characters")
    check_k(k)
    return query


def check_k(k: int) -> int:
    """``k`` after checking it is an integer in [1, MAX_K]."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer in [1, {MAX_K}], got {k!r}")
    return k
