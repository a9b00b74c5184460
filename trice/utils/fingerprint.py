"""A stage's fingerprint: what a finished stage is recognised by when a run is started again
(:mod:`trice.pipeline.stage_dirs`), and what a resumable part records it was made from."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def fingerprints(configs: Sequence[Any], inputs: Iterable[str | Path]) -> list[str]:
    """:func:`fingerprint` of each config with the same inputs, reading every input file once."""
    hashes = [hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()) for config in configs]
    for item in inputs:
        path = Path(item)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            name = os.fsencode(f.relative_to(path) if path.is_dir() else f.name)  # a name of any bytes
            for h in hashes:
                h.update(name)
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    for h in hashes:
                        h.update(chunk)
    return [h.hexdigest() for h in hashes]


def fingerprint(config: Any, inputs: Iterable[str | Path]) -> str:
    """sha256 over the config (as sorted JSON) and the bytes of every input file (directories walked).

    A stage's config objects enter ``config`` as :func:`trice.utils.config.fingerprint_fields`
    gives them: only the fields whose values differ from their defaults (the rule is documented
    there)."""
    return fingerprints([config], inputs)[0]
