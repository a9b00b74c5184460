"""Run a pipeline stage once: skip it when its config and inputs are unchanged.

Each stage owns a directory holding ``stage.json`` with a hash of its config and of its input files.
A rerun skips a stage whose hash matches and which completed; a stage whose config or inputs
changed starts over in a clean directory; a stage that was killed part-way is run again in place,
so its own resumable outputs (appended generations, training checkpoints) carry on where they were.
A stage may name entries of its directory to ``keep`` when it starts over: work that records what
made it and checks that record itself (the candidates' per-source parts), so a changed config
redoes only what it changed.

One process at a time runs a stage: ``run_stage`` holds a lock file beside the stage directory
(``.<stage>.lock``, outside it so no fingerprint sees it) and a second process trying the same stage
of the same run gets :class:`StageBusy` at once, rather than both appending to the same outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from trice.io import read_json, write_json

log = logging.getLogger(__name__)

MARKER = "stage.json"


class StageBusy(RuntimeError):
    """Another process is running this stage of this run."""


def lock_path(stage_dir: Path) -> Path:
    """Beside the stage directory, not in it, so no fingerprint of the stage's outputs sees it."""
    return stage_dir.parent / f".{stage_dir.name}.lock"


def _try_lock(stage_dir: Path) -> FileLock | None:
    """The stage's lock, acquired; None when another process holds it."""
    lock = FileLock(lock_path(stage_dir))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def stage_running(stage_dir: Path) -> bool:
    """Whether another process holds the stage's lock now (no lock file: never run, so no)."""
    if not lock_path(stage_dir).exists():
        return False
    lock = _try_lock(stage_dir)
    if lock is None:
        return True
    lock.release()
    return False


def fingerprint(config: Any, inputs: Iterable[str | Path]) -> str:
    """sha256 over the config (as sorted JSON) and the bytes of every input file (directories walked)."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for item in inputs:
        path = Path(item)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def stage_state(stage_dir: Path) -> dict[str, Any] | None:
    marker = stage_dir / MARKER
    return read_json(marker) if marker.is_file() else None


def _clear(stage_dir: Path, keep: set[str]) -> None:
    """Empty the stage directory but for ``keep``, its marker last: a kill part-way leaves the old
    marker, so the next run starts over again rather than trusting a half-cleared directory."""
    for entry in stage_dir.iterdir():
        if entry.name in keep or entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (stage_dir / MARKER).unlink()


def run_stage(
    stage_dir: Path,
    name: str,
    config: Any,
    inputs: Iterable[str | Path],
    fn: Callable[[Path], Any],
    force: bool = False,
    keep: Iterable[str] = (),
) -> bool:
    """Run ``fn(stage_dir)`` unless already done with the same fingerprint; True when it ran.

    ``keep``: names of entries in ``stage_dir`` that survive a start-over after a change (see the
    module docstring); ``force`` starts over from an empty directory.
    """
    stage_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = _try_lock(stage_dir)
    if lock is None:
        raise StageBusy(
            f"{stage_dir}: stage {name} is being run by another process (it holds {lock_path(stage_dir)}); "
            "wait for it to finish or stop it: two processes on one stage would overwrite each other's outputs"
        )
    try:
        inputs = list(inputs)
        digest = fingerprint(config, inputs)
        state = stage_state(stage_dir)
        if state is not None and state.get("hash") == digest and state.get("complete") and not force:
            log.info("stage %s: up to date, skipped", name)
            return False
        if state is not None and (state.get("hash") != digest or force):
            log.info("stage %s: %s, starting over", name, "forced" if force else "config or inputs changed")
            _clear(stage_dir, set() if force else set(keep))
        stage_dir.mkdir(parents=True, exist_ok=True)
        write_json(stage_dir / MARKER, {"stage": name, "hash": digest, "complete": False, "config": config})
        start = time.time()
        fn(stage_dir)
        write_json(
            stage_dir / MARKER,
            {"stage": name, "hash": digest, "complete": True, "config": config, "seconds": round(time.time() - start, 1)},
        )
        return True
    finally:
        lock.release()
