"""One config for every search backend, and the function that builds the backend it names.

The config is flat (each backend's settings are a mixin dataclass), so a recipe or the WikiSearch
tool's options read ``{backend: bm25, k1: 1.2}`` or ``{backend: colbert, url: http://...}`` without
nesting; fields a backend does not use are ignored by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trice.retrieval.base import Retriever
from trice.retrieval.bm25 import BM25Retriever, BM25Settings
from trice.retrieval.corpus import CorpusConfig
from trice.retrieval.dense import DEFAULT_DENSE_MODEL, DenseRetriever, DenseSettings, HybridRetriever, missing_dense_packages
from trice.retrieval.http_search import ColBERTRetriever, ElasticsearchRetriever, HTTPSearchSettings

BACKENDS = ("bm25", "dense", "hybrid", "colbert", "elasticsearch")
LOCAL_BACKENDS = ("bm25", "dense", "hybrid")


@dataclass
class RetrieverConfig(CorpusConfig, BM25Settings, DenseSettings, HTTPSearchSettings):
    """Which search backend answers, over which corpus or server."""

    backend: str = field(
        default="bm25",
        metadata={"help": f"Search backend: {', '.join(BACKENDS)} (local: bm25, dense, hybrid over the corpus; remote: colbert, elasticsearch at url)."},
    )
    index_dir: str | None = field(
        default=None, metadata={"help": "Directory of cached local indexes (else $TRICE_CACHE_DIR/indexes, default ~/.cache/trice/indexes)."}
    )

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend in LOCAL_BACKENDS:
            super().validate()
            self.validate_bm25()
            self.validate_dense()
        else:
            self.validate_http()


def build_retriever(config: RetrieverConfig) -> Retriever:
    """The backend ``config`` names, ready to search (a local index is loaded, or built once and cached)."""
    config.validate()
    if config.backend == "colbert":
        return ColBERTRetriever(config)
    if config.backend == "elasticsearch":
        return ElasticsearchRetriever(config)
    if config.backend == "bm25":
        return BM25Retriever.open(config, config.index_dir)
    dense = DenseRetriever.open(config, config.index_dir)
    if config.backend == "dense":
        return dense
    return HybridRetriever(BM25Retriever.open(config, config.index_dir), dense, config)


def missing_packages(options: Mapping[str, Any]) -> list[str]:
    """What the backend that retriever ``options`` name needs and this machine lacks (a dense or
    hybrid one's embedding model and sentence-transformers; BM25 and remote servers need nothing
    beyond trice's own dependencies). Cheap: nothing is loaded or built."""
    if options.get("backend", RetrieverConfig.backend) not in ("dense", "hybrid"):
        return []
    return missing_dense_packages(str(options.get("dense_model", DEFAULT_DENSE_MODEL)))
