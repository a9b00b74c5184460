"""Compare two run directories file by file: which are byte-identical, which differ only in what a
stage records about its own execution (wall time, versions, hashes of other files), and which differ
in what the method produced (answers, judgements, weights, metrics).

A refactor that promises "behaviour unchanged" is checked by running the same recipe before and after
it and comparing the run directories: every produced file must be identical, and the bookkeeping
files may differ only in :data:`VOLATILE_KEYS`.

    python scripts/compare_runs.py RUN_BEFORE RUN_AFTER [--ignore-key KEY ...] [--rename runs/a=runs/b ...]

Prints JSON (counts and the paths in each class) and a one-line summary; exits 1 when a produced
file differs or exists on one side only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trice.utils.artefacts import sha256_file

# Keys a stage writes about its own execution, not about what it produced: wall time, library
# versions, the stage record's hashes and sizes of its outputs (which the produced files' own
# comparison already covers), lock owners.
VOLATILE_KEYS = frozenset(
    {
        "seconds",
        "elapsed",
        "started",
        "finished",
        "time",
        "timestamp",
        "versions",
        "environment",
        "outputs",
        "files",
        "sha256",
        "size",
        "mtime_ns",
        "pid",
        "host",
    }
    | {
        "train_runtime",
        "run_runtime_s",
        "run_tokens_per_second",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_tokens_per_second",
    }  # transformers' Trainer timings
)
# Lists serialised from a set, whose order follows the interpreter's string hashing (peft's LoRA
# ``target_modules``): compared as sets.
UNORDERED_KEYS = frozenset({"target_modules"})
SKIPPED_DIRS = frozenset({"old", "checkpoints"})  # stages moved aside, intermediate trainer states


def files_of(run: Path) -> dict[str, Path]:
    """Every file under ``run`` by its relative path, leaving out :data:`SKIPPED_DIRS`."""
    return {str(p.relative_to(run)): p for p in sorted(run.rglob("*")) if p.is_file() and not SKIPPED_DIRS & set(p.relative_to(run).parts[:-1])}


def without(value: Any, keys: frozenset[str]) -> Any:
    """``value`` (parsed JSON) with ``keys`` removed at every depth, :data:`UNORDERED_KEYS` sorted."""
    if isinstance(value, dict):
        return {k: sorted(v, key=str) if k in UNORDERED_KEYS and isinstance(v, list) else without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def parsed(path: Path, renames: Sequence[tuple[str, str]] = ()) -> Any | None:
    """A JSON or JSON-lines file's values, or None for any other file (compared by bytes only);
    ``renames`` (old, new) replaced in its text first."""
    try:
        text = path.read_text(encoding="utf-8")
        for old, new in renames:
            text = text.replace(old, new)
        if path.suffix == ".json":
            return json.loads(text)
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return None


def classify(a: Path, b: Path, keys: frozenset[str], renames: Sequence[tuple[str, str]] = ()) -> str:
    """``identical``, ``bookkeeping`` (equal once ``keys`` are dropped and ``a``'s text renamed) or
    ``different``."""
    if sha256_file(a) == sha256_file(b):
        return "identical"
    left, right = parsed(a, renames), parsed(b)
    if left is not None and right is not None and without(left, keys) == without(right, keys):
        return "bookkeeping"
    return "different"


def compare(before: Path, after: Path, keys: frozenset[str] = VOLATILE_KEYS, renames: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Each relative path of both run directories in one class; ``same`` is True when no produced
    file differs and none exists on one side only. ``renames``: text that names the run itself
    (its directory, when the two runs were made in different ones), replaced in ``before``'s JSON."""
    left, right = files_of(before), files_of(after)
    classes: dict[str, list[str]] = {"identical": [], "bookkeeping": [], "different": [], "only_before": [], "only_after": []}
    for rel in sorted(left.keys() | right.keys()):
        if rel not in right:
            classes["only_before"].append(rel)
        elif rel not in left:
            classes["only_after"].append(rel)
        else:
            classes[classify(left[rel], right[rel], keys, renames)].append(rel)
    same = not (classes["different"] or classes["only_before"] or classes["only_after"])
    return {
        "before": str(before),
        "after": str(after),
        "ignored_keys": sorted(keys),
        "renames": [list(r) for r in renames],
        "same": same,
        "counts": {k: len(v) for k, v in classes.items()},
    } | classes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore-key", action="append", default=[], help="One more JSON key that records execution, not output.")
    parser.add_argument(
        "--rename", action="append", default=[], metavar="OLD=NEW", help="Text in BEFORE's JSON that names its run directory, as AFTER names it."
    )
    args = parser.parse_args(argv)
    for run in (args.before, args.after):
        if not run.is_dir():
            parser.error(f"{run}: not a directory")
    renames = [tuple(r.split("=", 1)) for r in args.rename]
    if any(len(r) != 2 or not r[0] for r in renames):
        parser.error("--rename: expected OLD=NEW")
    result = compare(args.before, args.after, VOLATILE_KEYS | set(args.ignore_key), renames)
    print(json.dumps(result, indent=1))
    c = result["counts"]
    print(
        f"compare_runs: {c['identical']} identical, {c['bookkeeping']} differing only in bookkeeping, {c['different']} different, "
        f"{c['only_before']} only before, {c['only_after']} only after: {'same outputs' if result['same'] else 'OUTPUTS DIFFER'}"
    )
    return 0 if result["same"] else 1


if __name__ == "__main__":
    sys.exit(main())
