"""A keyed on-disk text cache shared by every client of a slow, deterministic producer of text (a
remote endpoint, the translator and QA tools).

Each entry is one small JSON file ``{"request": payload, "text": text}`` named by the sha256 of
the payload's canonical JSON (sorted keys, UTF-8), under a 2-character subdirectory so no
directory grows huge. One file per entry means concurrent processes (pipeline stages, workers)
never contend for a shared index; entries are written atomically (:func:`trice.utils.io.write_json`), so
a reader sees a whole entry or none. An entry that cannot be read (torn, hand-edited, not JSON), or
whose stored request is not the one asked (a file copied or edited under another key), is a miss,
and the next :meth:`DiskCache.put` of that payload overwrites it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from trice.utils.io import DataError, read_json, write_json

log = logging.getLogger(__name__)


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def cache_key(payload: Any) -> str:
    """The sha256 hex digest of ``payload``'s canonical JSON: equal payloads, equal keys, whatever
    the order their dicts were built in."""
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


class DiskCache:
    """Text by JSON-able payload, one file per entry under ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, payload: Any) -> Path:
        """The file that holds (or would hold) ``payload``'s entry."""
        key = cache_key(payload)
        return self.root / key[:2] / f"{key}.json"

    def get(self, payload: Any) -> str | None:
        """The cached text, or None on a miss; a damaged entry is a miss."""
        path = self.path(payload)
        if not path.is_file():
            return None
        try:
            entry = read_json(path)
        except DataError as err:
            log.debug("ignoring damaged cache entry: %s", err)
            return None
        if not isinstance(entry, dict) or _canonical(entry.get("request")) != _canonical(payload):
            log.debug("ignoring cache entry %s: it answers another request", path)
            return None
        text = entry.get("text")
        return text if isinstance(text, str) else None

    def put(self, payload: Any, text: str) -> None:
        """Store ``text`` for ``payload`` (the payload is kept beside it, so an entry says what it answers)."""
        write_json(self.path(payload), {"request": payload, "text": text})
