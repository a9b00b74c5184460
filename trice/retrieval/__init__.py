"""Passage retrieval for the WikiSearch and QA tools: a Wikipedia passage corpus, local indexes
(BM25 via bm25s; dense and hybrid with an offline sentence-embedding model), and remote servers
(ColBERTv2, Elasticsearch/OpenSearch), all behind one :class:`Retriever` interface.

Top passages for a query from Python::

    from trice.retrieval import RetrieverConfig, build_retriever
    retriever = build_retriever(RetrieverConfig(backend="bm25"))   # builds the index once, then loads it
    hits = retriever.search("first nobel prize in physics", k=2)    # best first
    hits[0].text        # "Title | passage text", what the LM reads
    hits[0].passage     # Passage(id, title, text)
    retriever.search_many(questions, k=2)                          # batched
"""

from trice.retrieval.base import MAX_K, MAX_QUERY_CHARS, Hit, Retriever, check_request
from trice.retrieval.bm25 import BM25Config, BM25Retriever
from trice.retrieval.corpus import CorpusConfig, Passage, load_corpus, split_words
from trice.retrieval.dense import DenseConfig, DenseRetriever, HybridRetriever, fuse
from trice.retrieval.factory import BACKENDS, RetrieverConfig, build_retriever
from trice.retrieval.http_search import ColBERTRetriever, ElasticsearchRetriever, HTTPSearchSettings, JSONClient

__all__ = [
    "BACKENDS",
    "BM25Config",
    "BM25Retriever",
    "ColBERTRetriever",
    "CorpusConfig",
    "DenseConfig",
    "DenseRetriever",
    "ElasticsearchRetriever",
    "HTTPSearchSettings",
    "Hit",
    "HybridRetriever",
    "JSONClient",
    "MAX_K",
    "MAX_QUERY_CHARS",
    "Passage",
    "Retriever",
    "RetrieverConfig",
    "build_retriever",
    "check_request",
    "fuse",
    "load_corpus",
    "split_words",
]
