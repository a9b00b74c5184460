"""The one gate every command passes before it writes an output path: :func:`claim_output`.

A user names outputs by hand, so an output path may hold anything: another command's input, the
very input of this command, a pretty-printed JSON of theirs, a FIFO. trice writes over, trims or
appends to a file only when it recognises the file as its own output of the same input -- every
line a JSON object whose ``id`` is one of the input's and which holds the fields this command
writes -- and refuses anything else with one error naming the file, unless the user passes
``--overwrite``. The output may never be one of the command's inputs (not even with
``--overwrite``), and must be a regular file or not exist (:func:`trice.utils.io.check_writable`).

Recognising by content, not by a marker file, recognises any output in the command's format, one
written without a marker included, so resuming it keeps working.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from trice.utils.io import DataError, OutputError, Partial, check_writable, parse_json, read_json, write_json
from trice.utils.locks import LockBusy, acquire, release

T = TypeVar("T")

OVERWRITE_HELP = "Replace an existing output that is not trice's own output of this input (never the input itself)."


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def check_not_input(path: Path, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse an output that is one of the inputs (by any spelling, link or hard link)."""
    for item in inputs:
        if item and _same_file(path, Path(item)):
            raise OutputError(path, f"is also this command's input ({item}); writing it would destroy the input: name another output")


def _scan_own(path: Path, key: str, ids: Collection[Any] | None, fields: Collection[str]) -> tuple[Partial, str | None]:
    """The rows of ``path`` if every whole line is one of trice's output rows, else why not.

    A last line without a newline is what a kill leaves: it is not read, and ``keep_bytes`` ends
    before it."""
    partial = Partial(keep_bytes=0)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                break
            partial.keep_bytes += len(raw)
            try:
                row = parse_json(raw.decode("utf-8"))
            except ValueError as err:
                return partial, f"line {lineno} is not a JSON line trice wrote ({str(err)[:80]})"
            if not isinstance(row, dict) or key not in row:
                return partial, f"line {lineno} is not a JSON object with '{key}'"
            if ids is not None and row[key] not in ids:
                return partial, f"line {lineno} has {key} {str(row[key])[:40]!r}, which the input does not"
            missing = [f for f in fields if f not in row]
            if missing:
                return partial, f"line {lineno} lacks '{missing[0]}', which this command writes"
            partial.add(row[key], row)
    return partial, None


def _refusal(path: Path, inputs: Iterable[str | os.PathLike], why: str) -> OutputError:
    source = next((str(i) for i in inputs if i), None)
    of = f" of {source}" if source else ""
    return OutputError(
        path,
        f"exists and is not trice's output{of} ({why}); trice only resumes or replaces its own output of the same "
        "input: name another output, or pass --overwrite to replace this file",
    )


def claim_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    ids: Collection[Any] | None = None,
    fields: Collection[str] = (),
    overwrite: bool = False,
    key: str = "id",
) -> Partial:
    """Check that a command may write the JSONL ``path`` and return what of its own it holds.

    ``inputs``: the command's input files (the output may be none of them); ``ids``: the input's
    ``key`` values, and ``fields``: what every output row holds, which together recognise the file
    as trice's. Nothing is changed here: a resumable command cuts a torn last line when it opens
    its :class:`trice.utils.io.JsonlAppender` with the returned ``keep_bytes``, once work resumes. With
    ``overwrite`` an existing file counts as empty (``keep_bytes`` 0: replaced once work starts).
    """
    if not os.fspath(path):
        raise OutputError("--output", "required: name the file to write")
    path = check_writable(path)
    inputs = list(inputs)
    check_not_input(path, inputs)
    if not path.exists() or overwrite:
        return Partial(keep_bytes=0)
    partial, why = _scan_own(path, key, ids, fields)
    if why is not None:
        raise _refusal(path, inputs, why)
    return partial


def claim_json_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), fields: Collection[str] = (), overwrite: bool = False) -> Path:
    """:func:`claim_output` for a single JSON object (a stats file): trice's own holds ``fields``."""
    path = check_writable(path)
    inputs = list(inputs)
    check_not_input(path, inputs)
    if path.exists() and not overwrite and path.stat().st_size:
        try:
            value = read_json(path)
        except DataError as err:
            raise _refusal(path, inputs, err.problem) from None
        missing = [f for f in fields if not isinstance(value, dict) or f not in value]
        if missing:
            raise _refusal(path, inputs, f"no '{missing[0]}'")
    return path


OUTPUT_MARKER = ".trice-output"
"""Written into a trainer's output directory before anything else: the directory is that trainer's."""
OVERWRITE_DIR_HELP = (
    "Write into an existing output_dir that is not this trainer's own earlier output (its files may be replaced; "
    "with --no_resume its checkpoints/ are deleted)."
)


def _dir_owner(path: Path) -> str | None:
    """The config file named by ``path``'s :data:`OUTPUT_MARKER` (None: no readable marker)."""
    try:
        marker = read_json(path / OUTPUT_MARKER)
    except DataError:
        return None
    return marker.get("config") if isinstance(marker, dict) else None


def _written_config(path: Path) -> bool:
    """Whether ``path`` is a JSON object with ``output_dir``: a trainer's config as it writes it first
    (an output written before the marker existed is recognised by it)."""
    try:
        config = read_json(path)
    except DataError:
        return False
    return isinstance(config, dict) and "output_dir" in config


def claim_output_dir(path: str | os.PathLike, config_file: str, *, overwrite: bool = False, mark: bool = True) -> Path:
    """Check that a trainer may write into the directory ``path``, and (``mark``) mark it as its own.

    A trainer replaces ``adapter/`` and prunes or (without resume) deletes ``checkpoints/``, so it
    writes only into a directory that is absent, empty (but for hidden names), or its own earlier output: one whose
    :data:`OUTPUT_MARKER` names ``config_file`` (the trainer's config file, e.g. ``sft_config.json``),
    or, written before the marker, which holds that config file. Anything else is refused with one
    :class:`OutputError` naming the directory, unless ``overwrite``. Every process of a distributed
    run checks (``mark`` off); the main one marks."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(path, "output_dir is not a directory")
    # Hidden names do not count: a trainer writes none it would replace, and another rank of the same
    # run may be writing the marker (a hidden temporary file) while this one looks.
    entries = sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) if path.is_dir() else []
    owner = _dir_owner(path) if entries else config_file
    if owner is None and _written_config(path / config_file):
        owner = config_file
    if owner != config_file and not overwrite:
        what = f"another trainer's output ({owner})" if owner else f"files trice did not write there (first: {entries[0]})"
        raise OutputError(
            path,
            f"output_dir exists and holds {what}; a trainer replaces adapter/ and checkpoints/ in it: name a new or "
            "empty output_dir, or pass --overwrite to write into this one",
        )
    if mark and _dir_owner(path) != config_file:
        write_json(path / OUTPUT_MARKER, {"format": 1, "config": config_file})
    return path


def output_lock_path(path: str | os.PathLike) -> Path:
    """The lock file of an output: beside it, hidden (``.<name>.lock``)."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[Path]:
    """One writer per output: hold the output's lock (:func:`output_lock_path`) for the block, or
    refuse with one :class:`OutputError` naming the process that holds it. Two commands appending to
    one file would each write every row (a rerun then finds them all done, twice over); a stage's
    own outputs take the same lock, so a command cannot write into a running stage either."""
    path = check_writable(path)
    lock = output_lock_path(path)
    try:
        acquire(lock)
    except LockBusy as busy:
        raise OutputError(
            path, f"is being written by {busy.holder}; two writers would write every row twice: wait for it to finish, or name another output"
        ) from None
    try:
        yield path
    finally:
        release(lock)


def holding_output(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn(config, ...)`` run while holding ``config.output`` (:func:`writing`), where one is named."""

    @functools.wraps(fn)
    def run(config: Any, *args: Any, **kwargs: Any) -> T:
        if not getattr(config, "output", ""):
            return fn(config, *args, **kwargs)
        with writing(config.output):
            return fn(config, *args, **kwargs)

    return run
