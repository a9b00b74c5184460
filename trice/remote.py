"""Clients for remote services: an OpenAI-compatible endpoint (teacher LLM, candidate responses) now,
HTTP search servers later.

A remote server that is slow, flaky or gone must cost a run some failed examples, not the run.

Guarantees
----------
* **Timeouts.** Every request has a connect timeout (``connect_timeout``) and a read timeout
  (``read_timeout``: the longest wait for the next bytes of the answer), so a hung server costs at
  most about ``(max_retries + 1) * read_timeout`` plus the backoff per call, never a hung job.
* **Retries.** Transient failures -- connection refused or reset, timeouts, HTTP 5xx, 408 and 429,
  a malformed or wrongly shaped body -- are retried up to ``max_retries`` times with exponential
  backoff (``backoff_initial`` seconds, doubling, at most ``backoff_max``). A rejected request (any
  other 4xx: bad request, bad key, unknown model) is not retried: it fails at once.
* **Typed failures.** A call that cannot produce text raises :class:`EndpointError` whose ``kind``
  is ``unavailable``, ``timeout``, ``bad_response`` or ``rejected``, for reports and rewards.
  :meth:`OpenAIEndpoint.complete_many` returns such errors as values, so a dead server turns a batch
  into per-item failures instead of a crash.
* **Circuit breaker.** After ``circuit_threshold`` consecutive calls fail (each after its retries),
  the circuit opens: one warning names the server and the last error, and further calls fail at
  once with kind ``unavailable`` and no network traffic. After ``circuit_cooldown`` seconds one
  trial call is let through; its success closes the circuit, its failure keeps it open (silently).
  A rejected request proves the server is alive, so it counts as a success for the circuit.
* **Cache.** With ``cache_dir`` set, each answer is stored as one small JSON file keyed by the
  sha256 of the request (model, mode, prompt, sampling parameters -- not the server address, so the
  same model served elsewhere shares the cache), written atomically. A hit makes no network call, so
  a rerun costs nothing. Failures are never cached. Only deterministic requests (``temperature == 0``)
  are cached unless ``cache_sampled`` is set; then each sample is keyed by its ``sample_index``.
  (The store is :class:`trice.diskcache.DiskCache`, shared with the model-backed tools.)
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Union

import openai
import tenacity
from tqdm.auto import tqdm

from trice.diskcache import DiskCache

log = logging.getLogger(__name__)

Prompt = Union[str, list[dict[str, Any]]]
"""A completion prompt, or for chat either one user message or a full list of chat messages."""

MODES = ("chat", "completions")
_SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "stop")


@dataclass
class Patience:
    """How patiently to talk to any remote service: timeouts, retries with backoff, the circuit
    breaker. Every remote client (the OpenAI-compatible endpoint, the search servers) takes these."""

    connect_timeout: float = field(default=5.0, metadata={"help": "Seconds to wait for a connection."})
    read_timeout: float = field(default=60.0, metadata={"help": "Seconds to wait for the next bytes of an answer."})
    max_retries: int = field(default=3, metadata={"help": "Retries of a transiently failed request (0 = none)."})
    backoff_initial: float = field(
        default=0.5, metadata={"help": "Seconds before the first retry; doubles each retry."}
    )
    backoff_max: float = field(default=8.0, metadata={"help": "Longest wait between retries, in seconds."})
    circuit_threshold: int = field(
        default=5, metadata={"help": "Consecutive failed calls (after retries) that open the circuit."}
    )
    circuit_cooldown: float = field(
        default=60.0, metadata={"help": "Seconds an open circuit fails fast before letting one trial call through."}
    )

    def validate_patience(self) -> None:
        for name in ("connect_timeout", "read_timeout", "backoff_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("backoff_initial", "circuit_cooldown"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.circuit_threshold < 1:
            raise ValueError(f"circuit_threshold must be >= 1, got {self.circuit_threshold}")


@dataclass
class EndpointConfig(Patience):
    """Where an OpenAI-compatible server is, what to ask it, and (from :class:`Patience`) how patiently."""

    base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "Server URL up to and including /v1."})
    model: str = field(default="", metadata={"help": "Model name the server expects in requests."})
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "Environment variable holding the API key; 'EMPTY' is sent when it is unset."},
    )
    mode: str = field(default="chat", metadata={"help": "API to call: 'chat' (chat/completions) or 'completions'."})
    max_tokens: int = field(default=128, metadata={"help": "Most tokens to generate per request."})
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature; 0 is greedy (and cached)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling probability mass."})
    stop: list[str] = field(default_factory=list, metadata={"help": "Strings that end generation."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Directory of the on-disk answer cache; unset = no cache."}
    )
    cache_sampled: bool = field(
        default=False, metadata={"help": "Also cache sampled (temperature > 0) answers, keyed by sample index."}
    )

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
        self.validate_patience()


class EndpointError(RuntimeError):
    """A remote call that produced no answer. ``kind`` says why; ``attempts`` counts requests sent."""

    KINDS: ClassVar[tuple[str, ...]] = ("unavailable", "timeout", "bad_response", "rejected")

    def __init__(self, kind: str, message: str, *, attempts: int = 0):
        if kind not in self.KINDS:
            raise ValueError(f"unknown EndpointError kind {kind!r}")
        self.kind = kind
        self.attempts = attempts
        super().__init__(message)


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again may help: everything but a rejection is the server's fault."""
    return isinstance(exc, EndpointError) and exc.kind != "rejected"


class RetrySettings(Protocol):
    """The config fields :func:`retrying` reads (any HTTP client config with these names will do)."""

    max_retries: int
    backoff_initial: float
    backoff_max: float


def retrying(config: RetrySettings, transient: Callable[[BaseException], bool] = is_transient) -> tenacity.Retrying:
    """A fresh retry controller: ``max_retries`` retries of ``transient`` errors with exponential backoff.

    The last error is re-raised as itself (not wrapped in ``tenacity.RetryError``), so callers see
    the :class:`EndpointError` kind of the final attempt.
    """
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(config.max_retries + 1),
        wait=tenacity.wait_exponential(multiplier=config.backoff_initial, max=config.backoff_max),
        retry=tenacity.retry_if_exception(transient),
        before_sleep=tenacity.before_sleep_log(log, logging.DEBUG),
        reraise=True,
    )


class Circuit:
    """A circuit breaker for one server, shared by the threads that call it.

    ``threshold`` consecutive failures open it; while open, :meth:`allow` says no, so callers fail
    fast without touching the network. Opening logs one warning; after ``cooldown`` seconds one trial
    call is allowed, and :meth:`success` closes the circuit again.
    """

    def __init__(self, name: str, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic):
        self.name, self.threshold, self.cooldown, self._clock = name, threshold, cooldown, clock
        self._lock = threading.Lock()
        self.failures = 0
        self.last_error: BaseException | None = None
        self._opened_at: float | None = None

    @property
    def open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether a call may go to the server now (while open: one trial call per cooldown)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at >= self.cooldown:
                self._opened_at = self._clock()  # re-armed: the next trial waits a cooldown, whatever this one does
                return True
            return False

    def success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                log.info("%s answers again; circuit closed", self.name)
            self.failures, self._opened_at = 0, None

    def failure(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = error
            if self._opened_at is not None:  # a trial (or a call already in flight) failed: stay open
                self._opened_at = self._clock()
            elif self.failures >= self.threshold:
                self._opened_at = self._clock()
                log.warning(
                    "%s failed %d calls in a row (last error: %s); circuit open: calls fail at once for %.0f s",
                    self.name, self.failures, error, self.cooldown,
                )

    def error(self) -> EndpointError:
        """The error a call refused by the open circuit raises."""
        return EndpointError(
            "unavailable",
            f"{self.name}: circuit open after {self.failures} failed calls (last error: {self.last_error})",
        )


class OpenAIEndpoint:
    """Text from an OpenAI-compatible server (vLLM, llama.cpp, OpenAI), with the guarantees above.

    Thread-safe: :meth:`complete_many` calls :meth:`complete` from a small thread pool.
    """

    def __init__(self, config: EndpointConfig):
        config.validate()
        self.config = config
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=os.environ.get(config.api_key_env) or "EMPTY",
            timeout=openai.Timeout(config.read_timeout, connect=config.connect_timeout),
            max_retries=0,  # retries are ours: bounded, logged, and fed to the circuit
        )
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
        attempts = 0
        try:
            for attempt in retrying(self.config):
                with attempt:
                    attempts += 1
                    text = self._request(prompt, params)
        except EndpointError as err:
            err.attempts = attempts
            if is_transient(err):
                self.circuit.failure(err)
            else:  # a rejection is about the request; the server answered, so it is alive
                self.circuit.success()
            raise
        self.circuit.success()
        if cache_payload is not None:
            self._cache.put(cache_payload, text)
        return text

    def complete_many(
        self, prompts: Sequence[Prompt], *, n_workers: int = 4, desc: str = "remote", **kwargs: Any
    ) -> list[str | EndpointError]:
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
            raise TypeError(f"completions mode takes a str prompt, got {type(prompt).__name__}")
        if not (isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt)):
            raise TypeError(f"chat prompt must be a str or a list of message dicts, got {type(prompt).__name__}")

    def _request(self, prompt: Prompt, params: dict[str, Any]) -> str:
        """One HTTP request, every failure translated into an :class:`EndpointError`."""
        kwargs = {key: value for key, value in params.items() if key != "stop" or value}  # some servers reject stop=[]
        try:
            if self.config.mode == "chat":
                messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
                response = self._client.chat.completions.create(model=self.config.model, messages=messages, **kwargs)
            else:
                response = self._client.completions.create(model=self.config.model, prompt=prompt, **kwargs)
        except (openai.APIError, json.JSONDecodeError) as err:
            raise self._translate(err) from err
        return self._text_of(response)

    def _translate(self, err: Exception) -> EndpointError:
        where = self.config.base_url
        if isinstance(err, openai.APITimeoutError):  # before APIConnectionError: it is a subclass
            return EndpointError("timeout", f"{where}: no answer within {self.config.read_timeout} s")
        if isinstance(err, openai.APIConnectionError):
            cause = err.__cause__ or err
            return EndpointError("unavailable", f"{where}: cannot connect ({type(cause).__name__}: {cause})")
        if isinstance(err, openai.APIStatusError):
            status, detail = err.status_code, err.response.text[:200]
            if status == 408:
                return EndpointError("timeout", f"{where}: HTTP 408: {detail}")
            if status == 429 or status >= 500:
                return EndpointError("unavailable", f"{where}: HTTP {status}: {detail}")
            return EndpointError("rejected", f"{where}: request rejected with HTTP {status}: {detail}")
        return EndpointError("bad_response", f"{where}: unreadable answer ({type(err).__name__}: {str(err)[:200]})")

    def _text_of(self, response: Any) -> str:
        try:
            choice = response.choices[0]
            text = choice.message.content if self.config.mode == "chat" else choice.text
        except (AttributeError, IndexError, KeyError, TypeError):
            text = None
        if not isinstance(text, str):
            raise EndpointError(
                "bad_response", f"{self.config.base_url}: no text in choices[0] of the answer: {str(response)[:200]!r}"
            )
        return text

    def _cache_payload(self, prompt: Prompt, params: dict[str, Any], sample_index: int | None) -> dict[str, Any] | None:
        """What this request's answer is cached under, or None when it is not to be cached."""
        if self._cache is None:
            return None
        payload = {"model": self.config.model, "mode": self.config.mode, "prompt": prompt, **params}
        if params["temperature"] > 0:
            if not self.config.cache_sampled:
                return None
            if sample_index is None:
                raise ValueError("cache_sampled needs complete(..., sample_index=i) to tell samples apart")
            payload["sample_index"] = sample_index
        return payload
