"""Local BM25 search with bm25s: a sparse-matrix index built once per corpus and settings, cached on disk.

Why bm25s: it precomputes every document's BM25 weight per term into a sparse matrix, so a query
is a few sparse column sums instead of a Python loop over documents (``rank_bm25``); many queries
go in one :meth:`BM25Retriever.search_many` call, as the library is meant to be used. Retrieval runs
on bm25s's numba backend by default (``bm25s[core]`` installs numba): numpy's ``argpartition``,
which the numpy backend uses to pick the top k, is ~1 ms on a score vector that is mostly zeros,
some 100x slower than numba's selection. The first search in a process compiles it (a few
seconds); ``bm25_backend: numpy`` skips that for one-off scripts. Either backend returns the same
scores. Queries run on one thread (thread-safe in bm25s, and polite on a shared machine). The tokenizer
is bm25s's own (lower-cased ``\\w\\w+`` words, a stopword list, an optional Snowball stemmer from
PyStemmer), and passages are indexed as ``title + text`` so a title word ("Nina Dobrev") counts.

The index directory holds bm25s's saved matrices and vocabulary, the passages (bm25s's
``corpus.jsonl``) and ``meta.json`` (settings, passage count, build seconds). Its name is a hash of
the corpus files' contents and every setting below, so a change rebuilds and nothing stale is read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bm25s

from trice.utils.io import write_json
from trice.retrieval.base import Hit, check_request
from trice.retrieval.corpus import CorpusConfig, Passage, load_corpus
from trice.retrieval.index_cache import cache_key, cached_build, index_root

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
"""Bump when the way passages are cut or indexed changes, so old caches are not reused."""

METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")
BACKENDS = ("numba", "numpy")


@dataclass
class BM25Settings:
    """How the BM25 index tokenizes and scores."""

    k1: float = field(default=1.5, metadata={"help": "BM25 term-frequency saturation."})
    b: float = field(default=0.75, metadata={"help": "BM25 length normalisation (0 = none, 1 = full)."})
    bm25_method: str = field(default="lucene", metadata={"help": f"bm25s scoring variant, one of: {', '.join(METHODS)}."})
    stopwords: str = field(
        default="en", metadata={"help": "bm25s stopword list: 'en' (Lucene's 33 words), 'en_plus' (longer), other bm25s language codes, or '' for none."}
    )
    stemmer: str = field(default="english", metadata={"help": "Snowball stemmer language (PyStemmer), or '' for no stemming."})
    bm25_backend: str = field(
        default="numba", metadata={"help": "bm25s retrieval backend: 'numba' (compiled, fast after a few seconds' first-use compile) or 'numpy'."}
    )

    def validate_bm25(self) -> None:
        if self.bm25_method not in METHODS:
            raise ValueError(f"bm25_method must be one of {', '.join(METHODS)}, got {self.bm25_method!r}")
        if self.bm25_backend not in BACKENDS:
            raise ValueError(f"bm25_backend must be one of {', '.join(BACKENDS)}, got {self.bm25_backend!r}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")


@dataclass
class BM25Config(CorpusConfig, BM25Settings):
    """A BM25 index over a corpus."""


def _stemmer(language: str) -> Any:
    if not language:
        return None
    try:
        import Stemmer  # PyStemmer
    except ImportError as err:  # pragma: no cover - a dependency of trice
        raise ImportError("stemming needs PyStemmer: pip install PyStemmer (or set stemmer='')") from err
    return Stemmer.Stemmer(language)


class BM25Retriever:
    """BM25 over passages; build or load with :meth:`open`, or index passages in memory with the constructor."""

    name = "bm25"

    def __init__(self, passages: Sequence[Passage], settings: BM25Settings | None = None, *, model: bm25s.BM25 | None = None):
        """Index ``passages`` now (or wrap an already built ``model`` over exactly these passages)."""
        self.settings = settings or BM25Settings()
        self.settings.validate_bm25()
        if not passages:
            raise ValueError("cannot index an empty corpus")
        self.passages = list(passages)
        self._stem = _stemmer(self.settings.stemmer)
        if model is None:
            model = bm25s.BM25(k1=self.settings.k1, b=self.settings.b, method=self.settings.bm25_method, backend=self.settings.bm25_backend)
            model.index(self.tokenize([f"{p.title} {p.text}" for p in self.passages]), show_progress=False)
        self.model = model
        self.index_dir: Path | None = None
        self.built = False

    @classmethod
    def open(cls, config: BM25Config, index_dir: str | None = None) -> BM25Retriever:
        """The cached index for ``config`` (under ``index_dir`` or :func:`index_root`), built first if missing."""
        config.validate()
        config.validate_bm25()
        files = config.files()
        settings = {
            "kind": "bm25",
            "format": INDEX_FORMAT,
            "bm25s": bm25s.__version__,
            "sources": config.sources,
            "passage_words": config.passage_words,
            "k1": config.k1,
            "b": config.b,
            "method": config.bm25_method,
            "stopwords": config.stopwords,
            "stemmer": config.stemmer,
        }
        key = cache_key(files, settings)

        def build(tmp: Path) -> None:
            start = time.perf_counter()
            passages = load_corpus(config)
            retriever = cls(passages, config)
            retriever.model.save(str(tmp), corpus=[p.to_dict() for p in passages], show_progress=False)
            seconds = time.perf_counter() - start
            write_json(tmp / "meta.json", {"settings": settings, "passages": len(passages), "build_seconds": seconds})
            log.info("built BM25 index of %d passages in %.1f s", len(passages), seconds)

        directory, built = cached_build(index_root(index_dir), f"bm25-{key[:20]}", build)
        model = bm25s.BM25.load(str(directory), load_corpus=True, show_progress=False, verbosity=0, backend=config.bm25_backend)
        passages = [Passage(d["id"], d["title"], d["text"]) for d in model.corpus]
        model.corpus = None  # the passages live in self.passages; retrieve returns indices
        retriever = cls(passages, config, model=model)
        retriever.index_dir, retriever.built = directory, built
        return retriever

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """The index's tokens of each text (what a query is matched on; the benchmark feeds them to rank_bm25)."""
        return bm25s.tokenize(texts, stopwords=self.settings.stopwords or None, stemmer=self._stem, return_ids=False, show_progress=False)

    def search(self, query: str, k: int = 2) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 2) -> list[list[Hit]]:
        """Top-``k`` hits per query in one batched bm25s call; passages with score 0 (no query term) are left out."""
        cleaned = [check_request(q, k) for q in queries]
        vocab = self.model.vocab_dict
        tokens = [[t for t in query if t in vocab] for query in self.tokenize(cleaned)]
        results: list[list[Hit]] = [[] for _ in cleaned]  # a query without an indexed term matches nothing
        asked = [i for i, query in enumerate(tokens) if query]
        if not asked:
            return results
        k = min(k, len(self.passages))
        indices, scores = self.model.retrieve([tokens[i] for i in asked], k=k, show_progress=False, n_threads=0)
        for i, row_i, row_s in zip(asked, indices, scores):
            results[i] = [Hit(self.passages[int(j)], float(s)) for j, s in zip(row_i, row_s) if s > 0]
        return results
