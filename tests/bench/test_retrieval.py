"""bench/retrieval.py: its topic readers, its recall, and a whole run on a small corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.retrieval import corpus_dir  # noqa: F401 (fixture)
from trice.retrieval import Hit, Passage


def _bench_module() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "retrieval.py"
    spec = importlib.util.spec_from_file_location("bench_retrieval", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_readers_and_recall(tmp_path: Path) -> None:
    bench = _bench_module()
    topics = tmp_path / "topics.txt"
    topics.write_text(
        "who wrote hamlet\t['William Shakespeare', 'Shakespeare']\n"
        '"""Bomb Plot"" of 1944?"""\t"[\'Hitler\', ""Hitler\'s health""]"\n'
        '{"question": "what is jamaica?", "answer": ["Island"]}\n',
        encoding="utf-8",
    )
    assert bench.read_dpr_topics(topics) == [
        ("who wrote hamlet", ["William Shakespeare", "Shakespeare"]),
        ('"Bomb Plot" of 1944?"', ["Hitler", "Hitler's health"]),
        ("what is jamaica?", ["Island"]),
    ]
    topics.write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected question<TAB>answers"):
        bench.read_dpr_topics(topics)

    hamlet, other = Passage("h", "Hamlet", "A tragedy by William Shakespeare."), Passage("o", "Other", "Nothing.")
    hits = [[Hit(other, 2.0), Hit(hamlet, 1.0)], [Hit(hamlet, 1.0)], []]
    answers = [["shakespeare"], ["Marlowe"], ["x"]]
    assert bench.recall(hits, answers, 1) == 0.0 and bench.recall(hits, answers, 2) == pytest.approx(1 / 3)


def test_bench_runs_end_to_end_on_a_small_corpus(data_dir: Path, corpus_dir: Path) -> None:
    import argparse

    args = argparse.Namespace(n=5, seed=0, rounds=1, dense=False, data_dir=str(data_dir), corpus_dir=str(corpus_dir), index_dir=None, output=None)
    result = _bench_module().run(args)
    assert result["corpus"]["passages"] == 10 and result["index"]["size_bytes"] > 0
    assert result["speed"]["queries"] == 15 and result["speed"]["bm25s_queries_per_s"] > 0
    assert set(result["recall"]["bm25"]) == {"nq", "triviaqa", "webq"}
    assert all(0 <= row["recall@1"] <= row["recall@2"] <= 1 for row in result["recall"]["bm25"].values())
    assert any("NQ" in note and "gold passages" in note for note in result["notes"])
