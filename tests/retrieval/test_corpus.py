"""Corpus loading and passage cutting: near-equal chunks, deduplicated oracle passages, stable ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.retrieval import corpus_dir  # noqa: F401 (fixture)
from trice.retrieval import CorpusConfig, Passage, load_corpus, split_words


def test_split_words_keeps_every_word_in_near_equal_chunks() -> None:
    words = [f"w{i}" for i in range(250)]
    chunks = split_words(" ".join(words), 100)
    assert [len(c.split()) for c in chunks] == [83, 83, 84]
    assert " ".join(chunks).split() == words
    assert split_words("one  two\nthree", 100) == ["one two three"]
    assert split_words("   ", 100) == []
    assert len(split_words(" ".join(words[:149]), 100)) == 1 and len(split_words(" ".join(words[:151]), 100)) == 2


def test_load_corpus_cuts_articles_dedupes_oracle_and_keeps_stable_ids(corpus_dir: Path, tmp_path: Path) -> None:
    passages = load_corpus(CorpusConfig(corpus_dir=str(corpus_dir)))
    ids = [p.id for p in passages]
    assert ids[:3] == ["vital:Marie Curie#0", "vital:Mount Everest#0", "vital:Python (programming language)#0"]
    assert [p.id for p in passages if p.title == "Amazon River"] == [f"vital:Amazon River#{i}" for i in range(3)]
    assert ids[-2:] == ["nq-oracle:1", "nq-oracle:3"]  # line 2 repeats line 1's gold passage; noise is not gold
    assert passages[-1] == Passage("nq-oracle:3", "Deadpool 2", "Deadpool 2 is scheduled to be released on May 18, 2018.")
    assert passages[0].display.startswith("Marie Curie | Marie Curie was")

    extra = tmp_path / "mine.jsonl"
    extra.write_text(json.dumps({"id": "x1", "title": "", "text": "my own passage"}) + "\n", encoding="utf-8")
    only_extra = load_corpus(CorpusConfig(sources=[], extra_passages=[str(extra)]))
    assert only_extra == [Passage("x1", "", "my own passage")] and only_extra[0].display == "my own passage"
    with pytest.raises(ValueError, match="appears twice"):
        load_corpus(CorpusConfig(sources=[], extra_passages=[str(extra), str(extra)]))
    with pytest.raises(ValueError, match="unknown corpus source"):
        CorpusConfig(sources=["wikipedia"]).validate()
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        CorpusConfig(corpus_dir=str(tmp_path / "nowhere")).files()
