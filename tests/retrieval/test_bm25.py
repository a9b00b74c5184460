"""The cached bm25s index: stemming and batches, built once and rebuilt when the corpus or the settings
change, and NQ questions finding their gold passage in a slice of the real corpus."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers.retrieval import ARTICLES, corpus_dir, write_corpus  # noqa: F401 (corpus_dir: fixture)
from trice.retrieval import BM25Config, BM25Retriever, CorpusConfig, load_corpus


@pytest.fixture
def bm25(corpus_dir: Path, tmp_path: Path) -> BM25Retriever:
    return BM25Retriever.open(BM25Config(corpus_dir=str(corpus_dir)), str(tmp_path / "indexes"))


def test_bm25_finds_the_passage_with_stemming_and_batches(bm25: BM25Retriever) -> None:
    assert bm25.built and bm25.index_dir is not None
    top = bm25.search("radioactivity research", k=2)
    assert top[0].passage.id == "vital:Marie Curie#0" and len(top) == 1  # no other passage shares a term
    assert bm25.search("runs", k=1)[0].passage.title == "Marathon"  # stemmed: runs ~ running
    assert bm25.search("Mona Lisa painting", k=1)[0].passage.id == "nq-oracle:1"
    assert bm25.search("the of and", k=2) == []  # stopwords only: nothing matches
    assert bm25.search("zzzqqq", k=2) == []
    queries = ["Everest summit", "coffee beans", "Deadpool release"]
    assert bm25.search_many(queries, k=2) == [bm25.search(q, k=2) for q in queries]
    scores = [h.score for h in bm25.search("river water world Amazon", k=5)]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert len(bm25.search("river", k=100)) == 3  # k above the corpus size is clamped, not an error
    for bad in ("", "   ", "x" * 1001):
        with pytest.raises(ValueError):
            bm25.search(bad)
    for k in (0, 101, True):
        with pytest.raises(ValueError):
            bm25.search("river", k=k)


def test_bm25_index_is_built_once_and_rebuilt_when_corpus_or_settings_change(corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trice.retrieval.bm25 as bm25_module

    loads: list[CorpusConfig] = []
    monkeypatch.setattr(bm25_module, "load_corpus", lambda config: loads.append(config) or load_corpus(config))
    index_dir = str(tmp_path / "indexes")
    first = BM25Retriever.open(BM25Config(corpus_dir=str(corpus_dir)), index_dir)
    stamps = {p.name: p.stat().st_mtime_ns for p in first.index_dir.iterdir()}
    again = BM25Retriever.open(BM25Config(corpus_dir=str(corpus_dir)), index_dir)
    assert first.built and not again.built and again.index_dir == first.index_dir
    assert len(loads) == 1  # the second open read the cache; it did not even parse the corpus
    assert {p.name: p.stat().st_mtime_ns for p in again.index_dir.iterdir()} == stamps
    assert again.search("Everest", 1) == first.search("Everest", 1)
    numpy_backend = BM25Retriever.open(BM25Config(corpus_dir=str(corpus_dir), bm25_backend="numpy"), index_dir)
    assert not numpy_backend.built  # the backend is how the index is searched, not what it holds
    queries = ["Amazon river water", "Curie Nobel", "coffee", "nothing-at-all"]
    assert numpy_backend.search_many(queries, 3) == first.search_many(queries, 3)
    meta = json.loads((first.index_dir / "meta.json").read_text())
    assert meta["passages"] == len(first.passages) == 10 and meta["settings"]["stemmer"] == "english"

    other_k1 = BM25Retriever.open(BM25Config(corpus_dir=str(corpus_dir), k1=1.2), index_dir)
    assert other_k1.built and other_k1.index_dir != first.index_dir

    moved = Path(shutil.copytree(corpus_dir, tmp_path / "copy"))  # same contents elsewhere: same key, no rebuild
    assert not BM25Retriever.open(BM25Config(corpus_dir=str(moved)), index_dir).built
    changed = write_corpus(tmp_path / "changed", {**ARTICLES, "Tea": "Tea is an aromatic beverage."})
    grown = BM25Retriever.open(BM25Config(corpus_dir=str(changed)), index_dir)
    assert grown.built and grown.search("aromatic", 1)[0].passage.title == "Tea"
    assert not list(Path(index_dir).glob(".*"))  # no temporary directory left behind


def test_bm25_over_a_slice_of_the_real_corpus(data_dir: Path, tmp_path: Path) -> None:
    """300 real vital articles and the first 200 NQ oracle passages: NQ questions find their gold passage."""
    real = data_dir / "wiki_corpus"
    summaries = json.loads((real / "ovos_vital_articles" / "summaries_en-us.json").read_text(encoding="utf-8"))
    articles = {key: value["extract"] for key, value in list(summaries.items())[:300]}
    with gzip.open(real / "nq_open_oracle" / "nq-open-oracle.jsonl.gz", "rt", encoding="utf-8") as fh:
        oracle = [json.loads(line) for _, line in zip(range(200), fh)]
    retriever = BM25Retriever.open(BM25Config(corpus_dir=str(write_corpus(tmp_path / "slice", articles, oracle))), str(tmp_path / "idx"))
    assert len(retriever.passages) > 400
    questions = [row["question"] for row in oracle[:100]]
    gold = [next(c["text"] for c in row["ctxs"] if c.get("isgold")) for row in oracle[:100]]
    found = sum(any(" ".join(text.split()) == hit.passage.text for hit in hits) for text, hits in zip(gold, retriever.search_many(questions, k=2)))
    assert found >= 70, f"only {found}/100 NQ questions retrieved their gold passage in the top 2"
