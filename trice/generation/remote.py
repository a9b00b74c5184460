"""Clients for remote services: an OpenAI-compatible endpoint (teacher LLM, candidate responses); the
HTTP search servers' client is :mod:`trice.retrieval.http_search`.

A remote server that is slow, flaky or gone must cost a run some failed examples, not the run.

Guarantees
----------
* **Timeouts.** Every request has a connect timeout (``connect_timeout``) and a read timeout
  (``read_timeout``: the longest wait for the next bytes of the answer), and every call a deadline
  (``total_timeout``: wall-clock seconds for the call, retries and backoff included), so neither a
  hung server nor one that drips a byte at a time can hold a call longer than about
  ``total_timeout``.
* **Bounded answers.** At most ``max_response_bytes`` of an answer are read (:func:`read_body`);
  a longer one fails with kind ``too_large`` instead of filling memory. The generated text is cut
  to ``max_tokens * MAX_CHARS_PER_TOKEN`` characters, since no tokenizer makes a token longer, so a
  server ignoring ``max_tokens`` cannot flood the outputs. An answer that is not UTF-8 or not JSON is
  a ``bad_response``.
* **Retries.** Transient failures -- connection refused or reset, timeouts, HTTP 5xx, 408 and 429,
  a malformed or wrongly shaped body -- are retried up to ``max_retries`` times with exponential
  backoff (``backoff_initial`` seconds, doubling, at most ``backoff_max``) while the deadline
  allows. A rejected request (any other 4xx: bad request, bad key, unknown model) and a too large
  answer are not retried: they fail at once.
* **Typed failures.** A call that cannot produce text raises :class:`EndpointError` whose ``kind``
  is ``unavailable``, ``timeout``, ``bad_response``, ``too_large`` or ``rejected``, for reports and
  rewards.
  :meth:`OpenAIEndpoint.complete_many` returns such errors as values, so a dead server turns a batch
  into per-item failures instead of a crash.
* **Circuit breaker.** After ``circuit_threshold`` consecutive calls fail (each after its retries),
  the circuit opens: one warning names the server and the last error, and further calls fail at
  once with kind ``unavailable`` and no network traffic. After ``circuit_cooldown`` seconds one
  trial call is let through; its success closes the circuit, its failure keeps it open (silently).
  A rejected request or a too large answer proves the server is alive, so it counts as a success
  for the circuit.
* **Cache.** With ``cache_dir`` set, each answer is stored as one small JSON file keyed by the
  sha256 of the request (model, mode, prompt, sampling parameters -- not the server address, so the
  same model served elsewhere shares the cache), written atomically. A hit makes no network call, so
  a rerun costs nothing. Failures are never cached. Only deterministic requests (``temperature == 0``)
  are cached unless ``cache_sampled`` is set; then each sample is keyed by its ``sample_index``.
  (The store is :class:`trice.utils.diskcache.DiskCache`, shared with the model-backed tools.)
  A request offering tools is keyed by its tools too.
* **Native tool calls.** A chat prompt may offer tools (:class:`ToolChat`: OpenAI function
  schemas, sent as the request's ``tools``), for a server that parses the model's calls itself
  (``vllm serve --enable-auto-tool-choice --tool-call-parser hermes``, a hosted API). trice judges
  response text, so the ``tool_calls`` of such an answer come back as text: each call written as
  hermes ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` after the message's content
  (:func:`tool_calls_text`), which :func:`trice.core.native.parse_native_call` reads back. A call
  whose arguments are not a JSON object is kept as written, so it is judged as the failed call it
  is; ``tool_calls`` the client cannot read at all (not a list, a call without a function name)
  are a ``bad_response``.

The shared parts (:class:`Patience`, :class:`EndpointError`, :func:`retrying`, :class:`Deadline`,
:func:`read_body`, :class:`Circuit`) live in :mod:`trice.utils.patience`, which the search servers' client
uses too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import requests
from tqdm.auto import tqdm
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.exceptions import ReadTimeoutError

from trice.core.native import hermes_text
from trice.utils.diskcache import DiskCache
from trice.utils.io import parse_json
from trice.utils.patience import Circuit, Deadline, EndpointError, Patience, is_transient, raise_for_status, read_body, retrying

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolChat:
    """A chat prompt that offers tools: ``messages`` as a chat prompt's, and ``tools`` the function
    schemas sent with them (:func:`trice.core.native.tool_schema`). Chat mode only."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]


Prompt = str | list[dict[str, Any]] | ToolChat
"""A completion prompt, or for chat one user message, a full list of chat messages, or messages
offering tools."""

MODES = ("chat", "completions")
_SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "stop")
MAX_CHARS_PER_TOKEN = 32
"""Longest text one generated token can stand for (real vocabularies stay far below): the bound on
an answer's text is ``max_tokens`` times this."""


@dataclass
class EndpointConfig(Patience):
    """Where an OpenAI-compatible server is, what to ask it, and (from :class:`Patience`) how patiently."""

    base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "Server URL up to and including /v1."})
    model: str = field(default="", metadata={"help": "Model name the server expects in requests."})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "Environment variable holding the API key; 'EMPTY' is sent when it is unset."})
    mode: str = field(default="chat", metadata={"help": "API to call: 'chat' (chat/completions) or 'completions'."})
    max_tokens: int = field(default=128, metadata={"help": "Most tokens to generate per request."})
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature; 0 is greedy (and cached)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling probability mass."})
    stop: list[str] = field(default_factory=list, metadata={"help": "Strings that end generation."})
    cache_dir: str | None = field(default=None, metadata={"help": "Directory of the on-disk answer cache; unset = no cache."})
    cache_sampled: bool = field(default=False, metadata={"help": "Also cache sampled (temperature > 0) answers, keyed by sample index."})
    max_response_bytes: int = field(default=8_000_000, metadata={"help": "Largest answer body read; a longer answer fails as too_large."})

    def validate(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ValueError("model must be set")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be >= 1, got {self.max_response_bytes}")
        self.validate_patience()


class OpenAIEndpoint:
    """Text from an OpenAI-compatible server (vLLM, llama.cpp, OpenAI), with the guarantees above.

    Thread-safe: :meth:`complete_many` calls :meth:`complete` from a small thread pool.
    """

    def __init__(self, config: EndpointConfig):
        config.validate()
        self.config = config
        self._session = requests.Session()  # pools connections; retries are ours (bounded, fed to the circuit)
        self._session.headers["Authorization"] = f"Bearer {os.environ.get(config.api_key_env) or 'EMPTY'}"
        self.circuit = Circuit(config.base_url, config.circuit_threshold, config.circuit_cooldown)
        self._cache = DiskCache(config.cache_dir) if config.cache_dir else None

    def complete(self, prompt: Prompt, *, sample_index: int | None = None, **overrides: Any) -> str:
        """The generated text for ``prompt``; raises :class:`EndpointError` when there is none.

        ``overrides`` replace the config's ``max_tokens``, ``temperature``, ``top_p`` or ``stop`` for
        this call. ``sample_index`` tells cached samples of one prompt apart (needed when
        ``cache_sampled`` is on and the request samples).
        """
        unknown = set(overrides) - set(_SAMPLING_KEYS)
        if unknown:
            raise TypeError(f"unknown overrides {sorted(unknown)}; allowed: {', '.join(_SAMPLING_KEYS)}")
        self._check_prompt(prompt)
        params = {key: overrides.get(key, getattr(self.config, key)) for key in _SAMPLING_KEYS}
        cache_payload = self._cache_payload(prompt, params, sample_index)
        if cache_payload is not None:
            cached = self._cache.get(cache_payload)
            if cached is not None:
                return cached
        if not self.circuit.allow():
            raise self.circuit.error()
        attempts, deadline = 0, Deadline(self.config.total_timeout)
        try:
            for attempt in retrying(self.config, deadline=deadline):
                with attempt:
                    attempts += 1
                    text = self._request(prompt, params, deadline)
        except EndpointError as err:
            err.attempts = attempts
            if is_transient(err):
                self.circuit.failure(err)
            else:  # a rejection or a flood is about the request; the server answered, so it is alive
                self.circuit.success()
            raise
        self.circuit.success()
        if cache_payload is not None:
            self._cache.put(cache_payload, text)
        return text

    def complete_many(self, prompts: Sequence[Prompt], *, n_workers: int = 4, desc: str = "remote", **kwargs: Any) -> list[str | EndpointError]:
        """:meth:`complete` (with ``kwargs``) for each prompt, in order, with failures as values, not raised."""
        results: list[str | EndpointError] = [""] * len(prompts)

        def one(prompt: Prompt) -> str | EndpointError:
            try:
                return self.complete(prompt, **kwargs)
            except EndpointError as err:
                return err

        pool = ThreadPoolExecutor(max_workers=max(1, n_workers))
        try:
            futures = {pool.submit(one, prompt): i for i, prompt in enumerate(prompts)}
            with tqdm(total=len(prompts), desc=desc, unit="req") as bar:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
        finally:
            pool.shutdown(cancel_futures=True)  # a bug in one item must not wait out the whole batch
        return results

    def _check_prompt(self, prompt: Prompt) -> None:
        if isinstance(prompt, str):
            return
        if self.config.mode == "completions":
            why = " (tools are offered in chat mode only)" if isinstance(prompt, ToolChat) else ""
            raise TypeError(f"completions mode takes a str prompt, got {type(prompt).__name__}{why}")
        if isinstance(prompt, ToolChat):
            if not (prompt.tools and all(isinstance(t, dict) for t in prompt.tools)):
                raise TypeError("a ToolChat offers a non-empty list of tool schemas (dicts)")
            prompt = prompt.messages
        if not (isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt)):
            raise TypeError(f"chat prompt must be a str or a list of message dicts, got {type(prompt).__name__}")

    def _body(self, prompt: Prompt, params: dict[str, Any]) -> dict[str, Any]:
        """The request's JSON body."""
        body = {key: value for key, value in params.items() if key != "stop" or value}  # some servers reject stop=[]
        if isinstance(prompt, ToolChat):
            body["messages"], body["tools"] = prompt.messages, prompt.tools
        elif self.config.mode == "chat":
            body["messages"] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        else:
            body["prompt"] = prompt
        body["model"] = self.config.model
        return body

    def _request(self, prompt: Prompt, params: dict[str, Any], deadline: Deadline) -> str:
        """One HTTP request within ``deadline``, every failure translated into an :class:`EndpointError`."""
        where = self.config.base_url
        if deadline.passed():
            raise deadline.error(where)
        body = self._body(prompt, params)
        url = where.rstrip("/") + ("/chat/completions" if self.config.mode == "chat" else "/completions")
        timeout = (min(self.config.connect_timeout, deadline.left()), min(self.config.read_timeout, deadline.left()))
        try:
            with self._session.post(url, json=body, timeout=timeout, stream=True) as response:
                raw = read_body(response, self.config.max_response_bytes, deadline, where)
                status = response.status_code
        except requests.Timeout:
            raise EndpointError("timeout", f"{where}: no answer within {timeout[1]:g} s") from None
        except (requests.ConnectionError, URLLib3Error) as err:
            if isinstance(err, ReadTimeoutError) or (err.args and isinstance(err.args[0], ReadTimeoutError)):
                raise EndpointError("timeout", f"{where}: answer stalled for {timeout[1]:g} s") from None
            raise EndpointError("unavailable", f"{where}: connection failed ({type(err).__name__}: {err})") from None
        except requests.RequestException as err:
            raise EndpointError("bad_response", f"{where}: broken answer ({type(err).__name__}: {str(err)[:200]})") from None
        return self._text_of(self._decoded(status, raw), params["max_tokens"], isinstance(prompt, ToolChat))

    def _decoded(self, status: int, raw: bytes) -> Any:
        """The JSON of a successful answer; an error status or an unreadable body as its error."""
        where = self.config.base_url
        raise_for_status(status, raw, where)
        try:
            return parse_json(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise EndpointError("bad_response", f"{where}: answer is not UTF-8 (byte {err.start})") from None
        except ValueError as err:
            raise EndpointError("bad_response", f"{where}: unreadable answer ({err}): {raw[:200].decode('utf-8', 'replace')!r}") from None

    def _text_of(self, answer: Any, max_tokens: int, offered_tools: bool = False) -> str:
        """choices[0]'s text (with its tool calls as text, when the request offered tools), cut to
        what ``max_tokens`` tokens can spell."""
        try:
            choice = answer["choices"][0]
            text = choice["message"].get("content") if self.config.mode == "chat" else choice["text"]
            calls = choice["message"].get("tool_calls") if offered_tools else None
        except (IndexError, KeyError, TypeError, AttributeError):
            text = calls = None
        if calls:  # the content of a message with tool calls is often null
            text = tool_calls_text(text if isinstance(text, str) else "", calls, self.config.base_url)
        if not isinstance(text, str):
            raise EndpointError("bad_response", f"{self.config.base_url}: no text in choices[0] of the answer: {str(answer)[:200]!r}")
        bound = max_tokens * MAX_CHARS_PER_TOKEN
        if len(text) > bound:
            log.debug("%s: answer of %d characters cut to %d (max_tokens %d)", self.config.base_url, len(text), bound, max_tokens)
            text = text[:bound]
        return text

    def _cache_payload(self, prompt: Prompt, params: dict[str, Any], sample_index: int | None) -> dict[str, Any] | None:
        """What this request's answer is cached under, or None when it is not to be cached."""
        if self._cache is None:
            return None
        if isinstance(prompt, ToolChat):  # keyed by the tools offered; a prompt without keeps its old key
            payload = {"model": self.config.model, "mode": self.config.mode, "prompt": prompt.messages, "tools": prompt.tools, **params}
        else:
            payload = {"model": self.config.model, "mode": self.config.mode, "prompt": prompt, **params}
        if params["temperature"] > 0:
            if not self.config.cache_sampled:
                return None
            if sample_index is None:
                raise ValueError("cache_sampled needs complete(..., sample_index=i) to tell samples apart")
            payload["sample_index"] = sample_index
        return payload


def call_arguments(raw: Any) -> Any:
    """A returned call's ``arguments`` as the hermes text holds them: the object that OpenAI's JSON
    text spells, else the value as it came (the judge then reads the call as failed)."""
    if not isinstance(raw, str):
        return raw
    try:
        parsed = parse_json(raw)
    except ValueError:
        return raw
    return parsed if isinstance(parsed, dict) else raw


def tool_calls_text(content: str, calls: Any, where: str) -> str:
    """``content`` followed by each of an answer's ``tool_calls`` as hermes text, a newline before
    each call that does not start a line; :class:`EndpointError` ``bad_response`` for tool calls
    that name no function."""
    if not isinstance(calls, list):
        raise EndpointError("bad_response", f"{where}: tool_calls is not a list: {str(calls)[:200]!r}")
    text = content
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise EndpointError("bad_response", f"{where}: tool_calls[{i}] names no function: {str(call)[:200]!r}")
        text += ("\n" if text and not text.endswith("\n") else "") + hermes_text(name, call_arguments(function.get("arguments")))
    return text
