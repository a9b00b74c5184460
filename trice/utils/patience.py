"""What every remote client of trice shares (:mod:`trice.generation.remote`'s endpoint client, the search
servers of :mod:`trice.retrieval.http_search`): how patiently to talk to a server, the typed error a
call ends with, bounded retries, a per-call deadline, a bounded body reader and a circuit breaker.
The guarantees they add up to are listed in :mod:`trice.generation.remote`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import requests
import tenacity

# One logger for every remote client, so a user filters (or reads) "trice.generation.remote" for all of them.
log = logging.getLogger("trice.generation.remote")

_CHUNK = 65_536


@dataclass
class Patience:
    """How patiently to talk to any remote service: timeouts, retries with backoff, the circuit
    breaker. Every remote client (the OpenAI-compatible endpoint, the search servers) takes these."""

    connect_timeout: float = field(default=5.0, metadata={"help": "Seconds to wait for a connection."})
    read_timeout: float = field(default=60.0, metadata={"help": "Seconds to wait for the next bytes of an answer."})
    max_retries: int = field(default=3, metadata={"help": "Retries of a transiently failed request (0 = none)."})
    backoff_initial: float = field(default=0.5, metadata={"help": "Seconds before the first retry; doubles each retry."})
    backoff_max: float = field(default=8.0, metadata={"help": "Longest wait between retries, in seconds."})
    circuit_threshold: int = field(default=5, metadata={"help": "Consecutive failed calls (after retries) that open the circuit."})
    circuit_cooldown: float = field(default=60.0, metadata={"help": "Seconds an open circuit fails fast before letting one trial call through."})
    total_timeout: float = field(default=300.0, metadata={"help": "Wall-clock seconds one call may take in all, retries and backoff included."})

    def validate_patience(self) -> None:
        for name in ("connect_timeout", "read_timeout", "backoff_max", "total_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("backoff_initial", "circuit_cooldown"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.circuit_threshold < 1:
            raise ValueError(f"circuit_threshold must be >= 1, got {self.circuit_threshold}")


class EndpointError(RuntimeError):
    """A remote call that produced no answer. ``kind`` says why; ``attempts`` counts requests sent."""

    KINDS: ClassVar[tuple[str, ...]] = ("unavailable", "timeout", "bad_response", "too_large", "rejected")

    def __init__(self, kind: str, message: str, *, attempts: int = 0):
        if kind not in self.KINDS:
            raise ValueError(f"unknown EndpointError kind {kind!r}")
        self.kind = kind
        self.attempts = attempts
        super().__init__(message)


# Failures that say the server is up and would answer the same request the same way again.
_FINAL_KINDS = ("rejected", "too_large")


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again may help: not for a rejection or a too large answer."""
    return isinstance(exc, EndpointError) and exc.kind not in _FINAL_KINDS


class Deadline:
    """The wall-clock end of one call, retries included."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds, self._clock = seconds, clock
        self.end = clock() + seconds

    def left(self) -> float:
        return max(0.0, self.end - self._clock())

    def passed(self) -> bool:
        return self.left() <= 0

    def error(self, where: str) -> EndpointError:
        return EndpointError("timeout", f"{where}: no whole answer within the call's {self.seconds:g} s (total_timeout)")


def raise_for_status(status: int, raw: bytes, where: str) -> None:
    """The typed error an HTTP error status stands for (408 a timeout; 429 and 5xx unavailable, which
    retries try again; any other 4xx rejected, which they do not); nothing for a success."""
    detail = raw[:200].decode("utf-8", "replace")
    if status == 408:
        raise EndpointError("timeout", f"{where}: HTTP 408: {detail}")
    if status == 429 or status >= 500:
        raise EndpointError("unavailable", f"{where}: HTTP {status}: {detail}")
    if status >= 400:
        raise EndpointError("rejected", f"{where}: request rejected with HTTP {status}: {detail}")


def read_body(response: requests.Response, limit: int, deadline: Deadline | None, where: str) -> bytes:
    """The body of a streamed response, refusing to read past ``limit`` bytes or ``deadline``.

    Reads whatever each network read brings (``read1``), so a server sending a byte at a time is
    checked against the deadline at every byte, not only after a full buffer."""
    chunks, size = [], 0
    while True:
        if deadline is not None and deadline.passed():
            raise deadline.error(where)
        chunk = response.raw.read1(_CHUNK, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise EndpointError("too_large", f"{where}: answer larger than {limit} bytes (max_response_bytes)")
        chunks.append(chunk)


class RetrySettings(Protocol):
    """The config fields :func:`retrying` reads (any HTTP client config with these names will do)."""

    max_retries: int
    backoff_initial: float
    backoff_max: float


def retrying(config: RetrySettings, transient: Callable[[BaseException], bool] = is_transient, deadline: Deadline | None = None) -> tenacity.Retrying:
    """A fresh retry controller: ``max_retries`` retries of ``transient`` errors with exponential
    backoff, none once ``deadline`` has passed and no wait beyond it.

    The last error is re-raised as itself (not wrapped in ``tenacity.RetryError``), so callers see
    the :class:`EndpointError` kind of the final attempt.
    """
    stop = tenacity.stop_after_attempt(config.max_retries + 1)
    backoff = tenacity.wait_exponential(multiplier=config.backoff_initial, max=config.backoff_max)
    if deadline is not None:
        stop = stop | (lambda state: deadline.passed())
        wait = lambda state: min(backoff(state), deadline.left())  # noqa: E731
    return tenacity.Retrying(
        stop=stop,
        wait=backoff if deadline is None else wait,
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
                    "%s failed %d calls in a row (last error: %s); circuit open: calls fail at once for %.0f s", self.name, self.failures, error, self.cooldown
                )

    def error(self) -> EndpointError:
        """The error a call refused by the open circuit raises."""
        return EndpointError("unavailable", f"{self.name}: circuit open after {self.failures} failed calls (last error: {self.last_error})")
