"""Build an index once, reuse it forever: a cache directory keyed by what the index depends on.

The key is a sha256 over the *contents* of the corpus files (not their paths or mtimes, so a moved
or re-copied data directory still hits) and the settings that shape the index (passage length,
tokenizer, BM25 parameters, library version, model name...). A change to any of them is a new key,
hence a new directory: a stale index is never read.

A built index records its files' sizes and hashes; one found otherwise on a later run (a truncated
matrix, a torn vocabulary) is built again, never read. An index built before records is checked
structurally the first time, and recorded then.

A build writes into a hidden temporary directory beside the final one and renames it into place,
so a killed build never leaves a half index that a later run would take for a whole one. Two
processes building the same key at once both finish; the first rename wins and the loser's copy is
deleted. Temporary directories left by killed builds are removed once they are a day old.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from trice.core.paths import cache_dir
from trice.utils.artefacts import check_dir, record_dir

log = logging.getLogger(__name__)

STALE_TEMP_SECONDS = 24 * 3600
_CHUNK = 1 << 20


def index_root(override: str | os.PathLike | None = None) -> Path:
    """Where indexes live: ``override``, else ``$TRICE_CACHE_DIR/indexes`` (default ``~/.cache/trice``)."""
    if override:
        return Path(override).expanduser()
    return cache_dir() / "indexes"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(files: Iterable[Path], settings: Mapping[str, Any]) -> str:
    """sha256 of the files' contents (in order) and the JSON of ``settings``."""
    payload = {"files": [file_digest(Path(p)) for p in files], "settings": dict(settings)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def cached_build(root: Path, name: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The directory ``root/name``, built by ``build(tmp_dir)`` first if it does not exist yet.

    Returns the directory and whether this call built it.
    """
    final = root / name
    if final.is_dir():
        problem = check_dir(final, write=True)
        if problem is None:
            return final, False
        log.warning("index %s is damaged (%s); building it again", final, problem)
        _discard(final)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    try:
        build(tmp)
        record_dir(tmp)  # checked before every reuse
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            log.info("another process built %s first; using its copy", final)
            shutil.rmtree(tmp, ignore_errors=True)
            return final, False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, True


def _discard(index: Path) -> None:
    """Take a damaged index out of the way in one rename (a reader never meets half of it), then delete it."""
    trash = index.with_name(f".{index.name}.{os.getpid()}.damaged.tmp")
    try:
        index.rename(trash)
    except OSError:  # another process took it first
        return
    shutil.rmtree(trash, ignore_errors=True)


def directory_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (the index's size on disk)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _remove_stale_temps(root: Path, name: str) -> None:
    cutoff = time.time() - STALE_TEMP_SECONDS
    for tmp in root.glob(f".{name}.*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass
