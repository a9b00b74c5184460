"""Sizes and hashes of finished artefacts, so that what trice trusts later is checked, not assumed.

A record maps each file under a directory (its POSIX path relative to it; hidden names, which are
locks, temporary files and markers, left out) to its size, sha256 and modification time when
recorded. A stage records its outputs in its ``stage.json`` (:mod:`trice.pipeline.stage_dirs`); a
training checkpoint, a converted model and a retrieval index carry theirs inside, as
:data:`RECORD_FILE`. Checking a record costs one ``stat`` per file: a file whose size and
modification time are as recorded is taken as recorded (truncating, appending or rewriting a file
moves its time), and only a file whose time moved is hashed again.

A directory written before records existed has none; its files get a structural check instead
(:func:`damaged`): a safetensors file whose tensors run past its end, a zip archive (what
``torch.save`` writes) without its central directory, JSON that does not parse, a JSONL file whose
last line is torn, a ``.npy`` array shorter than its header says. Whole files are recorded then, at
their first check, where the caller may write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from trice.utils.io import DataError, read_json, write_json

log = logging.getLogger(__name__)

RECORD_FILE = ".trice-record.json"
Record = dict[str, dict[str, Any]]
_JSON_CHECK_BYTES = 64 << 20  # larger JSON files are not parsed by the structural check


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root: Path, skip: Collection[str]) -> list[Path]:
    """Every regular file under ``root`` but hidden names (at any depth) and the top-level ``skip``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        for name in sorted(filenames):
            if name.startswith(".") or (here == root and name in skip):
                continue
            if (here / name).is_file():
                found.append(here / name)
    return found


def _entry(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"size": st.st_size, "sha256": sha256_file(path), "mtime_ns": st.st_mtime_ns}


def make_record(root: Path, skip: Collection[str] = ()) -> Record:
    """The record of every file under ``root`` (see the module docstring)."""
    return {p.relative_to(root).as_posix(): _entry(p) for p in _files(root, skip)}


def check_record(root: Path, record: Record) -> tuple[list[tuple[str, str]], Record]:
    """``(problems, record)``: each recorded file that is missing or differs, as ``(path, what)``,
    and the record with the modification times of files found unchanged under a moved time."""
    problems: list[tuple[str, str]] = []
    fresh: Record = {}
    for rel, want in record.items():
        path = root / rel
        try:
            st = path.stat()
        except OSError:
            problems.append((rel, "missing"))
            continue
        if st.st_size != want.get("size"):
            problems.append((rel, f"{st.st_size} bytes, recorded {want.get('size')}"))
        elif st.st_mtime_ns == want.get("mtime_ns"):
            fresh[rel] = want
        elif sha256_file(path) != want.get("sha256"):
            problems.append((rel, "its bytes differ from the recorded sha256"))
        else:
            fresh[rel] = want | {"mtime_ns": st.st_mtime_ns}
    return problems, fresh


def _safetensors_problem(path: Path, size: int) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return "no safetensors header"
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            return f"safetensors header of {length} bytes in a file of {size}"
        try:
            header = json.loads(fh.read(length))
        except ValueError:
            return "safetensors header is not JSON"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict) and "data_offsets" in t]
    if 8 + length + max(ends, default=0) != size:
        return f"{size} bytes, its safetensors header says {8 + length + max(ends, default=0)}"
    return None


def _npy_problem(path: Path, size: int) -> str | None:
    import numpy as np

    fmt = np.lib.format
    with path.open("rb") as fh:
        try:
            read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(fmt.read_magic(fh))
            if read_header is None:
                return None  # a format version this check does not know: loading will tell
            shape, _, dtype = read_header(fh)
        except ValueError as err:
            return f"not a .npy array ({err})"
        expected = fh.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return None if dtype.hasobject or expected == size else f"{size} bytes, its .npy header says {expected}"


def damaged(path: Path) -> str | None:
    """Why ``path`` is not a whole file of its kind (by its name), or None where nothing shows it:
    the structural check of a file without a record (module docstring)."""
    size = path.stat().st_size
    suffix = path.suffix
    if suffix == ".safetensors":
        return _safetensors_problem(path, size)
    if suffix == ".npy":
        return _npy_problem(path, size)
    if suffix == ".jsonl":
        with path.open("rb") as fh:
            fh.seek(max(0, size - 1))
            return None if size == 0 or fh.read(1) == b"\n" else "its last line is torn"
    if suffix == ".json" and size <= _JSON_CHECK_BYTES:
        try:
            read_json(path)
        except DataError as err:
            return err.problem
        return None
    with path.open("rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    if is_zip:  # torch.save's format: a truncation loses the central directory at the end
        try:
            with zipfile.ZipFile(path):
                pass
        except (zipfile.BadZipFile, OSError) as err:
            return f"a torn zip archive ({err})"
    return None


def structural_problems(root: Path, skip: Collection[str] = ()) -> list[tuple[str, str]]:
    """:func:`damaged` over every file under ``root`` (hidden names and top-level ``skip`` left out)."""
    problems = []
    for path in _files(root, skip):
        why = damaged(path)
        if why is not None:
            problems.append((path.relative_to(root).as_posix(), why))
    return problems


def in_words(problems: list[tuple[str, str]]) -> str:
    """``path: what`` of the first problem, and how many more."""
    rel, what = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{rel}: {what}{more}"


def record_dir(root: Path) -> None:
    """Write ``root``'s record into it (:data:`RECORD_FILE`): the directory is whole now."""
    write_json(root / RECORD_FILE, make_record(root))


def check_dir(root: Path, write: bool = False) -> str | None:
    """Why the directory ``root`` is not as its own record says, in words (None: it is). Without a
    record its files get the structural check, and with ``write`` a whole directory is recorded now;
    with ``write`` a record is also refreshed where only modification times moved."""
    try:
        record = read_json(root / RECORD_FILE) if (root / RECORD_FILE).is_file() else None
    except DataError:
        record = None  # a torn record: judged by the structural check, then recorded again
    if not isinstance(record, dict):
        problems = structural_problems(root)
        if not problems and write:
            _try_write(root, make_record(root))
        return in_words(problems) if problems else None
    problems, fresh = check_record(root, record)
    if problems:
        return in_words(problems)
    if write and fresh != record:
        _try_write(root, fresh)
    return None


def _try_write(root: Path, record: Record) -> None:
    """Keep a record where the directory can be written; a read-only one is checked again next time."""
    try:
        write_json(root / RECORD_FILE, record)
    except (OSError, DataError) as err:  # write_json reports an unwritable path as OutputError
        log.debug("not recording %s: %s", root, err)
