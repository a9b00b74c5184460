"""Exclusive locks that name their holder: one writer per output file, per stage and per run directory.

A lock is an ``flock`` on a small file beside what it guards. Its holder writes who it is into the
file (process id, host, command, since when), so a second writer is refused with one line naming
it. The OS drops an ``flock`` when its process ends, however it ends (SIGKILL too), so no lock
outlives a killed run. A lock is reentrant within a process: a command holding its output's lock may
call code that takes it again. :func:`holder` asks whether another process holds a lock by opening
the file read-only, so ``trice run --status`` writes nothing and works on a read-only run directory;
its probe holds a shared lock for an instant, which is why :func:`acquire` retries for a moment
before it calls a lock busy.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RETRY_SECONDS = 1.0  # how long acquire retries: far longer than a holder() probe holds its shared lock
_POLL = 0.05

_held: dict[str, list[int]] = {}  # lock file (real path) -> [fd, depth] of the locks this process holds
_guard = threading.Lock()


class LockBusy(OSError):
    """Another process holds the lock; ``holder`` says who (one line for the user)."""

    def __init__(self, path: Path, holder: str):
        self.path, self.holder = path, holder
        super().__init__(f"{path} is held by {holder}")


def _key(path: Path) -> str:
    return os.path.realpath(path)


def _describe(raw: bytes) -> str:
    """The holder as its lock file records it, in words."""
    try:
        who = json.loads(raw.decode("utf-8"))
        return f"process {who['pid']} on {who['host']} ({who['command'][:120]}, since {who['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


def _flock(fd: int, operation: int) -> bool:
    """Whether ``flock`` took the lock without waiting (False: another open file holds it)."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def acquire(path: str | os.PathLike) -> None:
    """Take the lock file ``path`` (created, with its directory) for this process, or raise
    :class:`LockBusy` naming the holder once :data:`RETRY_SECONDS` have passed."""
    path = Path(path)
    with _guard:
        if _key(path) in _held:
            _held[_key(path)][1] += 1
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + RETRY_SECONDS
    while not _flock(fd, fcntl.LOCK_EX):
        if time.monotonic() > deadline:
            raw = os.pread(fd, 4096, 0)
            os.close(fd)
            raise LockBusy(path, _describe(raw))
        time.sleep(_POLL)
    who = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(who).encode("ascii"), 0)  # ASCII: a command line of any bytes fits
    with _guard:
        _held[_key(path)] = [fd, 1]


def release(path: str | os.PathLike) -> None:
    """Give back one hold of the lock file ``path``; the last one unlocks it (its record cleared first)."""
    with _guard:
        entry = _held.get(_key(Path(path)))
        if entry is None:
            return
        entry[1] -= 1
        if entry[1]:
            return
        del _held[_key(Path(path))]
    os.ftruncate(entry[0], 0)
    os.close(entry[0])  # closing the last descriptor drops the flock


@contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold the lock file ``path`` for the block (see :func:`acquire`)."""
    acquire(path)
    try:
        yield
    finally:
        release(path)


def holder(path: str | os.PathLike) -> str | None:
    """Who holds the lock file ``path`` now (this process included), or None; writes nothing. A lock
    file that does not exist or cannot be read is held by no one this process could see."""
    path = Path(path)
    with _guard:
        if _key(path) in _held:
            return f"this process ({os.getpid()})"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if _flock(fd, fcntl.LOCK_SH):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return _describe(os.pread(fd, 4096, 0))
    finally:
        os.close(fd)
