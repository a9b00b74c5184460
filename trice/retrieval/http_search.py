"""Remote search servers behind the :class:`~trice.retrieval.base.Retriever` interface, for users with a
full Wikipedia index: a ColBERTv2 server (the protocol the original TRICE queried) and
Elasticsearch/OpenSearch.

Both go through :class:`JSONClient`, which gives them the guarantees of :mod:`trice.generation.remote`: a
connect and a read timeout on every request, bounded retries with exponential backoff of transient
failures (connection refused or reset, timeouts, HTTP 5xx/408/429, an unreadable or wrongly shaped
body), no retry of a rejected request (other 4xx), a circuit breaker that makes calls to a dead
server fail at once, and typed :class:`~trice.generation.remote.EndpointError` failures. Answers are bounded
too (``max_response_bytes``, and at most ``k`` passages are kept), since a server is as untrusted
as the model that wrote the query.

Protocols:

* ColBERTv2 (``backend: colbert``): ``GET <url>?query=<q>&k=<k>`` answers
  ``{"topk": [{"text": ..., "pid": ..., "score": ...}, ...]}``, best first. The Wikipedia-abstracts
  server's texts already read ``Title | abstract``, so they are taken as the passage text.
* Elasticsearch/OpenSearch (``backend: elasticsearch``): ``POST <url>/<index>/_search`` with
  ``{"size": k, "query": {"match": {<text field>: <q>}}}``; passages come from ``hits.hits[]``
  (``_id``, ``_score``, ``_source.<text field>``, ``_source.<title field>``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from urllib3.exceptions import ReadTimeoutError

from trice.utils.patience import Circuit, EndpointError, Patience, is_transient, raise_for_status, retrying
from trice.retrieval.base import Hit, check_request
from trice.retrieval.corpus import Passage

MAX_PASSAGE_CHARS = 4_000
"""Longest passage text kept from a server's answer (the rest is cut)."""


@dataclass
class HTTPSearchSettings(Patience):
    """Where a search server is and (from :class:`trice.generation.remote.Patience`) how patiently to talk to it."""

    url: str = field(
        default="",
        metadata={"help": "ColBERTv2: the search endpoint (e.g. http://host:8893/api/search); Elasticsearch/OpenSearch: the base URL (e.g. http://host:9200)."},
    )
    es_index: str = field(default="wikipedia", metadata={"help": "Elasticsearch/OpenSearch index to search."})
    es_text_field: str = field(default="text", metadata={"help": "Document field holding the passage text (searched and returned)."})
    es_title_field: str = field(default="title", metadata={"help": "Document field holding the title ('' for none)."})
    api_key_env: str = field(
        default="", metadata={"help": "Environment variable with an Elasticsearch API key (sent as 'Authorization: ApiKey ...'); '' = none."}
    )
    basic_auth_env: str = field(default="", metadata={"help": "Environment variable with 'user:password' for HTTP basic auth (OpenSearch); '' = none."})
    read_timeout: float = field(default=30.0, metadata={"help": "Seconds to wait for the next bytes of an answer."})
    max_response_bytes: int = field(default=4_000_000, metadata={"help": "Largest answer body read from the server."})

    def validate_http(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._+-]*", self.es_index) or self.es_index in (".", ".."):
            raise ValueError(f"es_index {self.es_index!r} is not a valid index name (lower-case letters, digits, . _ + -)")
        self.validate_patience()
        if not self.es_text_field:
            raise ValueError("es_text_field must name the document field holding the passage text")
        if self.max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be >= 1, got {self.max_response_bytes}")


class JSONClient:
    """JSON over HTTP with timeouts, retries, a circuit breaker and a bounded body. Thread-safe enough
    for the small pools trice uses (one ``requests.Session``, which pools connections)."""

    def __init__(self, settings: HTTPSearchSettings):
        settings.validate_http()
        self.settings = settings
        self.session = requests.Session()
        _authenticate(self.session, settings)
        self.circuit = Circuit(settings.url, settings.circuit_threshold, settings.circuit_cooldown)

    def call(self, method: str, url: str, parse: Callable[[Any], Any], *, params: dict | None = None, body: dict | None = None) -> Any:
        """``parse(decoded JSON answer)``; raises :class:`EndpointError` (after retries) when there is none.

        ``parse`` checks the answer's shape and raises ``EndpointError("bad_response", ...)`` when it
        is wrong; it runs inside the retry loop, so a garbled answer is retried like a dropped one.
        """
        if not self.circuit.allow():
            raise self.circuit.error()
        attempts = 0
        try:
            for attempt in retrying(self.settings):
                with attempt:
                    attempts += 1
                    answer = parse(self._once(method, url, params, body))
        except EndpointError as err:
            err.attempts = attempts
            if is_transient(err):
                self.circuit.failure(err)
            else:  # a rejection proves the server is alive
                self.circuit.success()
            raise
        self.circuit.success()
        return answer

    def _once(self, method: str, url: str, params: dict | None, body: dict | None) -> Any:
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            with self.session.request(method, url, params=params, json=body, timeout=timeout, stream=True) as response:
                raw = self._read(response, url)
                status = response.status_code
        except requests.Timeout:
            raise EndpointError("timeout", f"{url}: no answer within {self.settings.read_timeout} s") from None
        except requests.ConnectionError as err:
            if err.args and isinstance(err.args[0], ReadTimeoutError):  # timed out in the middle of the body
                raise EndpointError("timeout", f"{url}: answer stalled for {self.settings.read_timeout} s") from None
            raise EndpointError("unavailable", f"{url}: cannot connect ({type(err).__name__}: {err})") from None
        except requests.RequestException as err:
            raise EndpointError("bad_response", f"{url}: broken answer ({type(err).__name__}: {err})") from None
        raise_for_status(status, raw, url)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise EndpointError("bad_response", f"{url}: answer is not JSON: {raw[:200].decode('utf-8', 'replace')!r}") from None

    def _read(self, response: requests.Response, url: str) -> bytes:
        limit = self.settings.max_response_bytes
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65_536):
            size += len(chunk)
            if size > limit:
                raise EndpointError("bad_response", f"{url}: answer larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _authenticate(session: requests.Session, settings: HTTPSearchSettings) -> None:
    """API key or basic auth from the environment (never from the config file, which gets committed)."""
    if settings.api_key_env and os.environ.get(settings.api_key_env):
        session.headers["Authorization"] = f"ApiKey {os.environ[settings.api_key_env]}"
    elif settings.basic_auth_env and os.environ.get(settings.basic_auth_env):
        user, _, password = os.environ[settings.basic_auth_env].partition(":")
        session.auth = (user, password)


def _bad(url: str, what: str, answer: Any) -> EndpointError:
    return EndpointError("bad_response", f"{url}: {what}: {str(answer)[:200]!r}")


def _score(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


class ColBERTRetriever:
    """A ColBERTv2 search server (``GET ?query=&k=`` -> ``{"topk": [{"text": ...}]}``)."""

    name = "colbert"

    def __init__(self, settings: HTTPSearchSettings):
        self.client = JSONClient(settings)
        self.url = settings.url

    def search(self, query: str, k: int = 2) -> list[Hit]:
        query = check_request(query, k)
        return self.client.call("GET", self.url, lambda answer: self._hits(answer, k), params={"query": query, "k": k})

    def _hits(self, answer: Any, k: int) -> list[Hit]:
        topk = answer.get("topk") if isinstance(answer, dict) else None
        if not isinstance(topk, list):
            raise _bad(self.url, "no 'topk' list in the answer", answer)
        hits = []
        for rank, item in enumerate(topk[:k]):
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise _bad(self.url, f"topk[{rank}] has no 'text'", item)
            pid = str(item.get("pid", rank))[:100]
            passage = Passage(f"colbert:{pid}", "", item["text"][:MAX_PASSAGE_CHARS])
            hits.append(Hit(passage, _score(item.get("score", item.get("prob")))))
        return hits

    def search_many(self, queries: Sequence[str], k: int = 2) -> list[list[Hit]]:
        return [self.search(q, k) for q in queries]


class ElasticsearchRetriever:
    """An Elasticsearch or OpenSearch index searched with a ``match`` query on the text field."""

    name = "elasticsearch"

    def __init__(self, settings: HTTPSearchSettings):
        self.client = JSONClient(settings)
        self.settings = settings
        self.url = f"{settings.url.rstrip('/')}/{quote(settings.es_index, safe='')}/_search"

    def search(self, query: str, k: int = 2) -> list[Hit]:
        query = check_request(query, k)
        body = {"size": k, "query": {"match": {self.settings.es_text_field: {"query": query}}}}
        return self.client.call("POST", self.url, lambda answer: self._hits(answer, k), body=body)

    def _hits(self, answer: Any, k: int) -> list[Hit]:
        text_field, title_field = self.settings.es_text_field, self.settings.es_title_field
        try:
            found = answer["hits"]["hits"]
        except (KeyError, TypeError):
            raise _bad(self.url, "no hits.hits in the answer", answer) from None
        if not isinstance(found, list):
            raise _bad(self.url, "hits.hits is not a list", found)
        hits = []
        for rank, item in enumerate(found[:k]):
            source = item.get("_source") if isinstance(item, dict) else None
            if not isinstance(source, dict) or not isinstance(source.get(text_field), str):
                raise _bad(self.url, f"hit {rank} has no _source.{text_field}", item)
            title = source.get(title_field) if title_field else ""
            passage = Passage(
                f"es:{str(item.get('_id', rank))[:100]}", title[:MAX_PASSAGE_CHARS] if isinstance(title, str) else "", source[text_field][:MAX_PASSAGE_CHARS]
            )
            hits.append(Hit(passage, _score(item.get("_score"))))
        return hits

    def search_many(self, queries: Sequence[str], k: int = 2) -> list[list[Hit]]:
        return [self.search(q, k) for q in queries]
