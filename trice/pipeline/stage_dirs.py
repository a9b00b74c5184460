"""Run a pipeline stage once: skip it when its config and inputs are unchanged.

Each stage owns a directory holding ``stage.json`` with a hash of its config and of its input files.
A rerun skips a stage whose hash matches and which completed; a stage whose config or inputs
changed starts over in a fresh directory, its old one moved aside to ``<run>/old/<stage>-<time>``
(never deleted: a changed learning rate must not cost a trained adapter); a stage that was killed
part-way is run again in place, so its own resumable outputs (appended generations, training
checkpoints) carry on where they were. A stage may name entries of its directory to ``keep`` when
it starts over: work that records what made it and checks that record itself (the candidates'
per-source parts), so a changed config redoes only what it changed. A stage whose rows failed
(an endpoint that did not answer) raises :class:`FailedRows`: it stays incomplete, saying how many
failed, and a rerun retries them.

The hash covers what a stage computes from, not how its paths were spelled: path strings under the
run directory enter it relative to that directory (:func:`portable`), so the same run reached as
``runs/x`` or ``/abs/runs/x`` is the same run. Of a stage's config objects it covers only the fields
set to something other than their defaults (:func:`trice.utils.config.fingerprint_fields`).

A finished stage records the size and sha256 of every file it made in its ``stage.json``; one whose
files differ from what it recorded, or whose ``stage.json`` is torn, is "to redo" rather than trusted
(:mod:`trice.pipeline.stage_record`): a run moves the damaged entries aside and runs the stage again
from what is intact, as after a kill.

A run directory is marked by ``.trice-run`` (:func:`claim_run_dir`), holding the format of its
stage records; trice writes into no existing directory without it. A run whose marker names an
earlier format, or a trice run without one (recognised by its ``recipe.json`` and a ``stage.json``
with every key trice writes), was made by an older trice that hashed stages under other rules:
trice refuses it with :class:`OlderRun`, and ``trice migrate-run DIR``
(:mod:`trice.pipeline.migrate_run`) rewrites its records once.

One process at a time runs a stage: ``run_stage`` holds a lock file beside the stage directory
(``.<stage>.lock``, outside it so no fingerprint sees it) and a second process trying the same stage
of the same run gets :class:`StageBusy` at once, rather than both appending to the same outputs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from trice.pipeline.failures import FailedRows, StageBusy, StageIncomplete, ToolOutages
from trice.core.layout import OLD, RECIPE
from trice.pipeline.stage_record import MARKER, STAGE_KEYS, damage, finished_outputs, intact_entries, outputs_problems, read_state, verified_state
from trice.utils.config import ConfigError
from trice.utils.fingerprint import fingerprint
from trice.utils.io import DataError, read_json, write_json
from trice.utils.locks import LockBusy, acquire, holder, release

log = logging.getLogger(__name__)

RUN_MARKER = ".trice-run"
# 2: every stage hash under the one rule (fingerprint_fields, run paths relative); 1 and unmarked
# runs: hashes under earlier rules too, which `trice migrate-run` rewrites.
RUN_FORMAT = 2
RUN_PLACEHOLDER = "{run}"


def lock_path(stage_dir: Path) -> Path:
    """Beside the stage directory, not in it, so no fingerprint of the stage's outputs sees it."""
    return stage_dir.parent / f".{stage_dir.name}.lock"


def stage_running(stage_dir: Path) -> bool:
    """Whether a process holds the stage's lock now; reads only (see :func:`trice.utils.locks.holder`)."""
    return holder(lock_path(stage_dir)) is not None


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for v in items for s in _strings(v)]


def portable(config: Any, run_dir: Path) -> Any:
    """``config`` with every path string under ``run_dir`` (as the pipeline spells them:
    ``str(run_dir / ...)``) written relative to it, as ``{run}/...``."""
    root = str(run_dir)
    if root in (".", ""):
        return config
    return _map_strings(config, lambda s: RUN_PLACEHOLDER + s[len(root) :] if s == root or s.startswith(root + os.sep) else s)


def spellings_now(run_dir: Path) -> list[str]:
    """The ways ``run_dir`` is spelled from here: as given, absolute, relative to the working directory."""
    return list(dict.fromkeys([str(run_dir), str(run_dir.resolve()), os.path.relpath(run_dir.resolve())]))


def respelled(config: Any, spelling: str) -> Any:
    """A :func:`portable` config with its run directory spelled ``spelling`` again."""
    return _map_strings(config, lambda s: spelling + s[len(RUN_PLACEHOLDER) :] if s.startswith(RUN_PLACEHOLDER) else s)


def rebased(config: Any, stage_dir: Path) -> Any:
    """A stage's stored config with the paths under its run directory, as spelled when it ran,
    spelled as the run directory is reached now: a run directory moved, or reached from another
    working directory, still names its own files. The spelling it ran under is one of
    :func:`spellings_now` or shows in a path of the stage's own output (``<spelling>/<stage>``)."""
    suffix = os.sep + stage_dir.name
    found = [s[: -len(suffix)] for s in _strings(config) if s.endswith(suffix)]
    for spelling in [*spellings_now(stage_dir.parent), *found]:
        moved = portable(config, Path(spelling))
        if moved != config:
            return respelled(moved, str(stage_dir.parent))
    return config


def stage_hash(stage_dir: Path, config: Any, inputs: Iterable[str | Path]) -> str:
    """The stage's fingerprint: its config made :func:`portable` and the bytes of its inputs."""
    return fingerprint(portable(config, stage_dir.parent), inputs)


def is_current(stage_dir: Path, state: dict, config: Any, inputs: list[Path]) -> bool:
    """Whether ``state``'s hash is the stage's hash now (its config and inputs unchanged)."""
    return state.get("hash") == stage_hash(stage_dir, config, inputs)


def finished_state(stage_dir: Path) -> dict[str, Any] | None:
    """The state of a stage that finished and whose outputs are as it recorded them; None for one
    never run, unfinished, with a damaged ``stage.json`` or outputs (a sibling to copy or point to)."""
    state, _ = read_state(stage_dir)
    if not (state and state.get("complete")) or outputs_problems(stage_dir, state):
        return None
    return state


def _move_aside(stage_dir: Path, keep: set[str]) -> Path:
    """Move the stage directory to ``<run>/old/<stage>-<UTC time>`` and start a fresh one holding
    the ``keep`` entries. One rename: a kill leaves either the old directory or the new one."""
    old_root = stage_dir.parent / OLD
    old_root.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target, n = old_root / f"{stage_dir.name}-{stamp}", 1
    while target.exists():
        n += 1
        target = old_root / f"{stage_dir.name}-{stamp}-{n}"
    stage_dir.rename(target)
    stage_dir.mkdir()
    for name in keep:
        if (target / name).exists():
            (target / name).rename(stage_dir / name)
    return target


def moved_aside(run_dir: Path) -> list[str]:
    """The stage directories moved aside in this run so far (oldest first), for ``--status``."""
    old_root = run_dir / OLD
    return sorted(str(p) for p in old_root.iterdir()) if old_root.is_dir() else []


def stage_verdict(stage_dir: Path, config: Any, inputs: Sequence[str | Path]) -> str:
    """What a run would do with the stage, loading nothing and writing nothing (see
    ``trice.pipeline.runner.stage_status``)."""
    inputs = [Path(p) for p in inputs]
    state, torn = read_state(stage_dir)
    if stage_running(stage_dir):
        return "running"
    if torn:
        return f"to redo: {torn}"
    if not all(p.exists() for p in inputs):
        return "waiting" if state is None else "changed"
    if state is None:
        return "to do"
    if not is_current(stage_dir, state, config, inputs):
        return "changed"
    if state.get("complete"):
        problems = outputs_problems(stage_dir, state)
        return f"to redo: {damage(problems)}" if problems else "up to date"
    failed = state.get("failed_rows")
    return f"incomplete: {failed} failed rows" if failed else "partial"


def _marker(name: str, digest: str, config: Any, **extra: Any) -> dict[str, Any]:
    return {"stage": name, "hash": digest, "complete": False, "config": config} | extra


def run_stage(
    stage_dir: Path,
    name: str,
    config: Any,
    inputs: Iterable[str | Path],
    fn: Callable[[Path], Any],
    force: bool = False,
    keep: Iterable[str] = (),
    accept_outages: bool = False,
) -> bool:
    """Run ``fn(stage_dir)`` unless already done with the same fingerprint; True when it ran.

    ``keep``: names of entries in ``stage_dir`` that survive a start-over after a change (see the
    module docstring); ``force`` starts over from an empty directory. Either way the old directory
    is moved aside, not deleted. ``fn`` raising :class:`FailedRows` leaves the stage incomplete
    with the count in ``stage.json`` and raises :class:`StageIncomplete`; with ``accept_outages``,
    :class:`ToolOutages` instead completes it, the count in ``stage.json`` as ``tool_outages``.
    """
    try:
        acquire(lock_path(stage_dir))
    except LockBusy as busy:
        raise StageBusy(
            f"{stage_dir}: stage {name} is being run by {busy.holder} (it holds {lock_path(stage_dir)}); "
            "wait for it to finish or stop it: two processes on one stage would overwrite each other's outputs"
        ) from None
    try:
        inputs = [Path(p) for p in inputs]
        digest = stage_hash(stage_dir, config, inputs)
        if not _must_run(stage_dir, name, config, inputs, digest, force, set(keep)):
            return False
        stage_dir.mkdir(parents=True, exist_ok=True)
        write_json(stage_dir / MARKER, _marker(name, digest, config))
        start = time.time()
        try:
            fn(stage_dir)
        except FailedRows as failed:
            if not (accept_outages and isinstance(failed, ToolOutages)):
                write_json(stage_dir / MARKER, _marker(name, digest, config, failed_rows=failed.count))
                raise StageIncomplete(f"{stage_dir}: stage {name} is incomplete: {failed}; {failed.then}") from None
            log.warning("stage %s: %s; accepted (--accept-outages): they stay judged wrong and the report names them", name, failed)
            outages = {"tool_outages": failed.count}
        else:
            outages = {}
        done = _marker(name, digest, config, complete=True, seconds=round(time.time() - start, 1)) | outages
        write_json(stage_dir / MARKER, done | finished_outputs(stage_dir))
        return True
    finally:
        release(lock_path(stage_dir))


def _must_run(stage_dir: Path, name: str, config: Any, inputs: list[Path], digest: str, force: bool, keep: set[str]) -> bool:
    """Whether ``run_stage`` runs the stage, after moving aside what it must not run in: a changed or
    forced stage's directory (``keep`` entries kept unless forced), a damaged ``stage.json``'s, or
    the damaged entries of a finished stage whose outputs are not as it recorded them. A finished
    stage whose outputs were never recorded gets its ``stage.json`` rewritten with them here."""
    state, torn = read_state(stage_dir)
    same = state is not None and state.get("hash") == digest
    if state is not None and same and state.get("complete") and not force:
        problems, kept = verified_state(stage_dir, state)
        if not problems:
            if kept != state:
                write_json(stage_dir / MARKER, kept)
            log.info("stage %s: up to date, skipped", name)
            return False
        old = _move_aside(stage_dir, intact_entries(stage_dir, problems))
        log.warning("stage %s: %s: redoing it from what is intact; the rest was moved to %s", name, damage(problems), old)
    elif torn or (state is not None and (not same or force)):
        old = _move_aside(stage_dir, set() if force else keep)
        why = "forced" if force else torn or "config or inputs changed"
        log.warning("stage %s: %s, starting over; its old directory was moved to %s (delete it when not needed)", name, why, old)
    return True


class OlderRun(ConfigError):
    """A run directory whose stage records an older trice wrote, under fingerprint rules this one does
    not recompute: ``trice migrate-run`` rewrites them once."""


def _unmarked_run(run_dir: Path) -> bool:
    """A trice run without the marker: its recipe.json and a stage directory whose stage.json holds
    every key trice writes (any JSON file named stage.json is not enough)."""
    try:
        if not isinstance(read_json(run_dir / RECIPE), dict):
            return False
    except DataError:
        return False
    for marker in run_dir.glob(f"*/{MARKER}"):
        try:
            state = read_json(marker)
        except DataError:
            continue
        if isinstance(state, dict) and STAGE_KEYS <= set(state) and state["stage"] == marker.parent.name:
            return True
    return False


def run_format(run_dir: Path) -> int | None:
    """The format of ``run_dir``'s stage records: its marker's, 0 for a trice run without one, None
    when it does not exist or is empty; raises :class:`ConfigError` naming it when it holds anything
    else, which trice must not write into."""
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: the run directory is not a directory")
    marker = run_dir / RUN_MARKER
    if marker.is_file():
        try:
            version = read_json(marker).get("format")
        except (DataError, AttributeError):
            version = None
        if not isinstance(version, int) or isinstance(version, bool) or not 0 < version <= RUN_FORMAT:
            raise ConfigError(f"{marker}: unknown run directory format {version!r} (this trice reads format {RUN_FORMAT})")
        return version
    if not any(run_dir.iterdir()):
        return None
    if _unmarked_run(run_dir):
        return 0
    raise ConfigError(
        f"{run_dir}: exists and is not a trice run directory (no {RUN_MARKER}); trice would write recipe.json and "
        "stage directories into it: name a new or empty run_dir (--run-dir)"
    )


def check_run_dir(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a trice run of this format (False: it does not exist or is empty); raises
    :class:`OlderRun` for one an older trice made, and :class:`ConfigError` for anything else."""
    version = run_format(run_dir)
    if version is not None and version < RUN_FORMAT:
        raise OlderRun(
            f"{run_dir}: made by an older trice, run `trice migrate-run {run_dir}` (once: it rewrites the stage records "
            "to this trice's fingerprints, redoing and deleting nothing)"
        )
    return version is not None


def claim_run_dir(run_dir: Path) -> None:
    """Make ``run_dir`` a trice run (or check it is one) before anything is written into it."""
    if check_run_dir(run_dir):
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / RUN_MARKER, {"format": RUN_FORMAT})
