"""The WikiSearch tool: ``WikiSearch(Nina Dobrev nationality)`` -> the best Wikipedia passage.

In the original TRICE the retriever's top two passages are each given back to the LM with the
question (``passage + ". " + question``), and the question counts as right if either reading is
right. A tool answers with one text, so :meth:`WikiSearch.run` (what the registry executes, and
what a response's tool result shows) returns the top-1 passage; the QA task layer calls
:meth:`WikiSearch.passages` for the top ``k`` (default 2) and does the two readings itself.

The argument is model output: surrounding quotes and extra whitespace are dropped, and a query
longer than :data:`MAX_QUERY_CHARS` is refused (a search term is a few words; a long one would only
cost time and, for a remote backend, a long URL). Backend failures become :class:`ToolError`s:
a server that is down or answers garbage -> ``unavailable``, one that hangs -> ``timeout``, one
that rejects the query -> ``bad_argument``; a query that matches no passage -> ``bad_argument``.
Answers are memoised per (query, k) in a bounded LRU, so the repeated calls of candidate scoring
and evaluation cost one search.
"""

from __future__ import annotations

import functools
from typing import Any

from trice.utils.config import build_config
from trice.generation.remote import EndpointError
from trice.retrieval import Hit, Retriever, RetrieverConfig, build_retriever
from trice.retrieval.base import check_k
from trice.core.tools import ToolError, clean_text_argument

MAX_QUERY_CHARS = 300
DEFAULT_READINGS = 2
CACHE_SIZE = 4096
_ERROR_KINDS = {"timeout": "timeout", "unavailable": "unavailable", "bad_response": "unavailable", "rejected": "bad_argument"}


def clean_query(argument: str) -> str:
    """The search term in a call's argument (see :func:`trice.core.tools.clean_text_argument`)."""
    return clean_text_argument(argument, MAX_QUERY_CHARS, "search query")


class WikiSearch:
    """Search a Wikipedia passage index; built by ``build_registry(["WikiSearch"], WikiSearch={...})``.

    ``options`` are :class:`~trice.retrieval.RetrieverConfig` fields (``backend``, ``url``,
    ``corpus_dir``...), type-checked; or pass a ready ``retriever``. ``readings`` is how many
    passages :meth:`passages` returns by default (2, as in the original).
    """

    name = "WikiSearch"

    def __init__(self, retriever: Retriever | None = None, *, readings: int = DEFAULT_READINGS, **options: Any):
        if retriever is not None and options:
            raise ValueError("pass either a retriever or retriever options, not both")
        if retriever is None:
            retriever = build_retriever(build_config(RetrieverConfig, options, "WikiSearch options"))
        self.retriever = retriever
        self.readings = check_k(readings)
        self._search = functools.lru_cache(maxsize=CACHE_SIZE)(self._search_uncached)

    def hits(self, argument: str, k: int | None = None) -> list[Hit]:
        """The top ``k`` (default ``readings``) hits for a call's argument, best first; raises ToolError."""
        return list(self._search(clean_query(argument), self.readings if k is None else k))

    def passages(self, argument: str, k: int | None = None) -> list[str]:
        """The texts (``Title | passage``) the LM reads back, one reading each, best first."""
        return [hit.text for hit in self.hits(argument, k)]

    def run(self, argument: str) -> str:
        """The best passage's text (the top-1 of :meth:`passages`)."""
        return self.passages(argument, 1)[0]

    def _search_uncached(self, query: str, k: int) -> tuple[Hit, ...]:
        try:
            hits = self.retriever.search(query, k)
        except EndpointError as err:
            raise ToolError(_ERROR_KINDS[err.kind], f"WikiSearch: {err}") from None
        except ValueError as err:
            raise ToolError("bad_argument", f"WikiSearch: {err}") from None
        if not hits:
            raise ToolError("bad_argument", f"WikiSearch: no passage matches {query!r}")
        return tuple(hits)
