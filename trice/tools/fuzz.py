"""Side-effect guard and case observers for fuzzing the tools; shared by the tests and the benchmark.

A tool's argument is whatever a model wrote, so the tools must survive anything: each case must end
in a result or a typed :class:`ToolError`, within :data:`SLOW_SECONDS`, without touching the file
system, starting processes or executing code. Side effects are caught with an audit hook
(:func:`sys.addaudithook`), which sees every ``open`` (``builtins.open``, ``io.open``, ``os.open``, C
code alike), ``os.*``/``subprocess.*``/``socket.*`` call and ``exec``/``eval``; while a case runs it
records such an event and blocks it by raising.

This module needs no package beyond trice itself. The hypothesis strategies that generate the
hostile cases, and the seeded campaign, live with their users in ``bench/fuzz_cases.py``
(hypothesis is a test and bench extra, never a dependency of trice).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from trice.core.tools import ToolCall, ToolError, ToolRegistry, ToolResult, parse_call
from trice.tools.calculator import Calculator

SLOW_SECONDS = 1.0
MAX_FAILURE_EXAMPLES = 5

_FORBIDDEN_EVENTS = frozenset({"open", "exec"})
_FORBIDDEN_PREFIXES = ("os.", "shutil.", "subprocess.", "socket.", "ctypes.", "urllib.", "http.")


class _Guard:
    """The audit hook's switch; ``events`` is None while no case runs, so the hook costs ~nothing."""

    events: list[str] | None = None
    installed = False


def _audit(event: str, args: tuple) -> None:
    if _Guard.events is not None and (event in _FORBIDDEN_EVENTS or event.startswith(_FORBIDDEN_PREFIXES)):
        _Guard.events.append(event)
        raise PermissionError(f"fuzzed tool attempted {event!r}")


@contextmanager
def no_side_effects() -> Iterator[list[str]]:
    """Record (and block) file, process, network and exec events inside the block.

    Audit hooks cannot be removed, so one hook is installed per process and switched on and off.
    """
    if not _Guard.installed:
        sys.addaudithook(_audit)
        _Guard.installed = True
    events: list[str] = []
    _Guard.events = events
    try:
        yield events
    finally:
        _Guard.events = None


@dataclass
class Outcome:
    """What one case did. ``status``: ok, error, no_call, unexpected (an exception that is not a
    ToolError, or a broken promise) or wrong (a valid expression with the wrong answer)."""

    status: str
    seconds: float
    error_kind: str | None = None
    detail: str = ""
    side_effects: list[str] = field(default_factory=list)


def _timed(fn: Callable[[], Outcome]) -> Outcome:
    with no_side_effects() as events:
        start = time.perf_counter()
        try:
            outcome = fn()
        except Exception as err:  # the point: anything but the promised outcomes is a finding
            outcome = Outcome("unexpected", 0.0, detail=f"{type(err).__name__}: {err}")
        outcome.seconds = time.perf_counter() - start
    outcome.side_effects = events
    return outcome


def observe_calculator(text: str, expected: int | None = None) -> Outcome:
    """Run the calculator directly (no registry to hide its exceptions); ``expected`` is the exact
    value of a generated valid expression, or None for hostile input."""

    def case() -> Outcome:
        try:
            output = Calculator().run(text)
        except ToolError as err:
            if expected is not None:
                return Outcome("wrong", 0.0, err.kind, f"{text!r}: {err}")
            return Outcome("error", 0.0, err.kind)
        if not isinstance(output, str):
            return Outcome("unexpected", 0.0, detail=f"returned {type(output).__name__}")
        if expected is not None and output != str(expected):
            return Outcome("wrong", 0.0, detail=f"{text!r} gave {output}, expected {expected}")
        return Outcome("ok", 0.0)

    return _timed(case)


def observe_parse_call(text: str, registry: ToolRegistry) -> Outcome:
    """Parse the first call in ``text`` and execute it through the registry, checking that the
    parsed call is one of the registry's tools with an argument taken from the text."""

    def case() -> Outcome:
        call = parse_call(text, registry.names)
        if call is None:
            return Outcome("no_call", 0.0)
        if not isinstance(call, ToolCall) or call.name not in registry or call.argument not in text:
            return Outcome("unexpected", 0.0, detail=f"bad parse {call!r} of {text!r}")
        result = registry.execute(call)
        if not isinstance(result, ToolResult) or result.ok != isinstance(result.output, str):
            return Outcome("unexpected", 0.0, detail=f"bad result {result!r}")
        return Outcome("ok", 0.0) if result.ok else Outcome("error", 0.0, result.error_kind)

    return _timed(case)


# ---------------------------------------------------------------------------------------- campaign


def new_stats() -> dict[str, Any]:
    return {"cases": 0, "ok": 0, "no_call": 0, "errors": {}, "unexpected": 0, "wrong": 0, "slow": 0, "max_seconds": 0.0, "fs_touches": 0, "failures": []}


def record(stats: dict[str, Any], outcome: Outcome) -> None:
    """Add one outcome to campaign counts; failures keep a few details for the report."""
    stats["cases"] += 1
    if outcome.status in ("ok", "no_call", "unexpected", "wrong"):
        stats[outcome.status] += 1
    else:
        stats["errors"][outcome.error_kind] = stats["errors"].get(outcome.error_kind, 0) + 1
    stats["max_seconds"] = max(stats["max_seconds"], outcome.seconds)
    slow = outcome.seconds >= SLOW_SECONDS
    stats["slow"] += slow
    stats["fs_touches"] += len(outcome.side_effects)
    failed = outcome.status in ("unexpected", "wrong") or slow or outcome.side_effects
    if failed and len(stats["failures"]) < MAX_FAILURE_EXAMPLES:
        note = f"{outcome.status} {outcome.seconds:.3f}s {outcome.side_effects} {outcome.detail}"
        stats["failures"].append(note[:500])


def campaign_failed(stats: dict[str, Any]) -> bool:
    return bool(stats["unexpected"] or stats["wrong"] or stats["slow"] or stats["fs_touches"])
