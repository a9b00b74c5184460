"""A stage's ``stage.json``: reading it, torn or whole, and the record it keeps of the stage's outputs.

A stage that finishes records the size and sha256 of every file it made (``outputs``, see
:mod:`trice.utils.artefacts`; hidden names such as locks are left out). Before a finished stage is
trusted, its files are checked against that record: an adapter truncated, a checkpoint's
``optimizer.pt`` cut short, a response file edited after the fact each make the stage "to redo", with
one line naming the file, never a traceback in a later stage. A ``stage.json`` written before records
existed has none: its stage stays finished, and the first run to find it records its files as they
are then (``--status`` only reads, so it records nothing).

A ``stage.json`` that is not a JSON object with every key trice writes (torn by a disk fault, edited
by hand) says nothing about the directory it is in: the stage is "to redo" and a run starts it over,
its directory moved aside like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trice.utils.artefacts import check_record, in_words, make_record
from trice.utils.io import DataError, read_json

MARKER = "stage.json"
STAGE_KEYS = frozenset({"stage", "hash", "complete", "config"})  # what every stage.json trice wrote holds
OUTPUTS = "outputs"  # stage.json's record of the files the finished stage made
Problems = list[tuple[str, str]]


def stage_state(stage_dir: Path) -> dict[str, Any] | None:
    """The stage's ``stage.json`` (None: never started); :class:`DataError` when it is torn or not one
    trice wrote (see :func:`read_state`)."""
    marker = stage_dir / MARKER
    if not marker.is_file():
        return None
    state = read_json(marker)
    if not isinstance(state, dict) or not STAGE_KEYS <= set(state):
        raise DataError(marker, None, None, f"not a stage record (a JSON object with {', '.join(sorted(STAGE_KEYS))})")
    return state


def read_state(stage_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(state, None)``, or ``(None, why)`` for a ``stage.json`` that cannot be read as one."""
    try:
        return stage_state(stage_dir), None
    except DataError as err:
        return None, f"{MARKER} is damaged ({err.problem})"


def outputs_problems(stage_dir: Path, state: dict[str, Any]) -> Problems:
    """The finished stage's files that are not as it recorded them, as ``(path, what)`` (none where it
    recorded nothing); reads only."""
    record = state.get(OUTPUTS)
    return check_record(stage_dir, record)[0] if isinstance(record, dict) else []


def verified_state(stage_dir: Path, state: dict[str, Any]) -> tuple[Problems, dict[str, Any]]:
    """:func:`outputs_problems`, and the state to keep when there are none: with the outputs recorded
    now where it had no record, and with modification times refreshed where only they moved (so the
    next check needs no hashing)."""
    record = state.get(OUTPUTS)
    if not isinstance(record, dict):
        return [], state | {OUTPUTS: make_record(stage_dir, skip={MARKER})}
    problems, fresh = check_record(stage_dir, record)
    return problems, state | {OUTPUTS: fresh}


def finished_outputs(stage_dir: Path) -> dict[str, Any]:
    """The ``outputs`` entry of a stage that has just finished: every file it made."""
    return {OUTPUTS: make_record(stage_dir, skip={MARKER})}


def damage(problems: Problems) -> str:
    """One line: what of the stage's outputs is not as it finished."""
    return in_words(problems)


def intact_entries(stage_dir: Path, problems: Problems) -> set[str]:
    """The stage directory's top-level entries none of ``problems`` lies in (``stage.json`` aside):
    what a redo keeps, so it resumes from them as from a kill rather than from nothing."""
    damaged = {rel.split("/", 1)[0] for rel, _ in problems}
    return {p.name for p in stage_dir.iterdir() if p.name not in damaged and p.name != MARKER}
