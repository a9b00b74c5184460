"""The remote retrieval backends (ColBERT, Elasticsearch) against fake servers on 127.0.0.1:
healthy, erroring, hanging, malformed, rejecting, refusing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.helpers.fake_servers import GAVE_UP_WITHIN_S, Reply, refused_url, serve  # noqa: F401 (fixtures)
from tests.helpers.retrieval import colbert_ok, es_ok, json_reply
from trice.generation.remote import EndpointError
from trice.retrieval import ColBERTRetriever, ElasticsearchRetriever, HTTPSearchSettings, RetrieverConfig, build_retriever


def search_settings(url: str, **fields: Any) -> HTTPSearchSettings:
    values: dict[str, Any] = dict(url=url, max_retries=2, backoff_initial=0.01, backoff_max=0.05, connect_timeout=1.0, read_timeout=0.5)
    values.update(fields)
    return HTTPSearchSettings(**values)


def test_colbert_protocol(serve) -> None:
    server = serve(colbert_ok)
    retriever = build_retriever(RetrieverConfig(backend="colbert", url=server.root + "/api/search"))
    hits = retriever.search("  Nina Dobrev nationality ", k=2)
    assert server.requests[0][0] == "/api/search" and server.requests[0][2] == {"query": "Nina Dobrev nationality", "k": "2"}
    assert [h.text for h in hits] == ["Passage 0 | about Nina Dobrev nationality", "Passage 1 | about Nina Dobrev nationality"]
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
    assert [(h.passage.id, h.passage.title, h.score) for h in hits] == [("es:d0", "T0", 10.0), ("es:d1", "T1", 9.0), ("es:d2", "T2", 8.0)]
    assert hits[0].text == "T0 | about Nina Dobrev"

    monkeypatch.setenv("OS_AUTH", "admin:pw")
    ElasticsearchRetriever(search_settings(server.root, es_index="wiki", basic_auth_env="OS_AUTH")).search("x", 1)
    assert server.requests[1][1]["authorization"] == "Basic YWRtaW46cHc="
    with pytest.raises(ValueError, match="not a valid index name"):
        ElasticsearchRetriever(search_settings(server.root, es_index="../_all"))


@pytest.mark.parametrize("backend", ["colbert", "elasticsearch"])
def test_server_errors_are_retried_then_typed(serve, backend: str) -> None:
    flaky = serve(lambda hit, path, req: json_reply({"error": "boom"}, 500) if hit < 3 else (colbert_ok if backend == "colbert" else es_ok)(hit, path, req))
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
        retriever = ColBERTRetriever(search_settings(f"http://127.0.0.1:{listener.getsockname()[1]}/s", max_retries=0, read_timeout=0.3))
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
