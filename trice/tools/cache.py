"""The on-disk cache of a model-backed tool's outputs (translator, QA).

Those tools are greedy, so an argument's output depends only on the tool's options, and it is
expensive (seconds of generation). The same arguments recur across pipeline stages, reruns and
models (every evaluated model calls ``translator(<the same question>)``), and each stage is its own
process, so outputs are kept on disk: one :class:`trice.utils.diskcache.DiskCache` entry per argument,
keyed by the tool's name, a prompt-format version, every option that changes the output, and the
normalised argument. Options that only bound time or set batching (``max_time``, ``batch_size``)
are left out of the key, so changing them keeps the cache. Only successful outputs are stored; an
error is asked again next time.

The key names a model or corpus by the option that names it, not by its contents: after rewriting
a model directory or corpus file in place, delete the cache (or point ``cache_dir`` elsewhere).

A tool's ``cache_dir`` option says where: unset means ``$TRICE_CACHE_DIR/tool-outputs`` (default
``~/.cache/trice/tool-outputs``), ``""`` means no cache.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trice.core.paths import cache_dir
from trice.utils.diskcache import DiskCache

CACHE_DIR_HELP = "Directory of the on-disk output cache; unset = $TRICE_CACHE_DIR/tool-outputs, '' = no cache."
UNKEYED = frozenset({"cache_dir", "max_time", "batch_size"})
"""Config fields that never change an output: where it is cached, how long it may take, how it is batched."""


def default_dir() -> Path:
    """Where tool outputs are cached unless a tool's ``cache_dir`` says otherwise (read at build time,
    so ``$TRICE_CACHE_DIR`` set after import counts)."""
    return cache_dir() / "tool-outputs"


class ToolOutputCache:
    """Outputs of one tool with one set of options, by argument; with no ``root``, a cache that
    always misses and keeps nothing (so a tool needs no branch for "no cache")."""

    def __init__(self, root: str | os.PathLike | None, key: Mapping[str, Any]):
        self._store = DiskCache(root) if root else None
        self._key = dict(key)

    @classmethod
    def for_config(cls, tool: str, version: str, config: Any, extra: Mapping[str, Any] | None = None) -> ToolOutputCache:
        """The cache a tool's config dataclass asks for (its ``cache_dir`` field), keyed by ``tool``,
        ``version`` (bump it when the prompt's assembly or the output's parsing changes), the
        config's output-changing fields and ``extra`` (e.g. the prompt text the tool sends)."""
        root = default_dir() if config.cache_dir is None else config.cache_dir
        options = {k: v for k, v in dataclasses.asdict(config).items() if k not in UNKEYED}
        return cls(root, {"tool": tool, "version": version, "options": options, **(extra or {})})

    def get(self, argument: str) -> str | None:
        """The cached output for ``argument``, or None on a miss."""
        return None if self._store is None else self._store.get(self._key | {"argument": argument})

    def put(self, argument: str, output: str) -> None:
        """Keep a successful output (callers never pass errors)."""
        if self._store is not None:
            self._store.put(self._key | {"argument": argument}, output)

    def split(self, arguments: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """The cached outputs by argument, and the distinct arguments that missed, in first-seen order."""
        hits: dict[str, str] = {}
        misses: dict[str, None] = {}
        for argument in arguments:
            if argument in hits or argument in misses:
                continue
            output = self.get(argument)
            if output is None:
                misses[argument] = None
            else:
                hits[argument] = output
        return hits, list(misses)


NO_CACHE = ToolOutputCache(None, {})
"""The cache of a tool built around a hand-made backend: its config does not describe that backend,
so its outputs must not land under the config's key."""
