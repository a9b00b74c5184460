"""Reading and writing the JSONL/JSON files every stage exchanges.

Three promises hold for every file trice touches:

* a bad input line fails with one :class:`DataError` naming the file, the line and the field
  (or, when the caller asks, is skipped and counted), never a traceback from deep inside;
* a finished output is written atomically (temp file + ``os.replace``), so a kill never leaves
  half a result that a rerun would mistake for a whole one;
* long loops append one JSON line per finished example and flush it, so a rerun can skip the
  ids already done (:func:`done_ids`) and a torn last line from a kill is ignored.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


class DataError(ValueError):
    """Bad input data, located as ``file:line: field 'name': what is wrong``."""

    def __init__(self, path: str | os.PathLike, line: int | None, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field, problem
        where = self.path if line is None else f"{self.path}:{line}"
        what = problem if field is None else f"field '{field}': {problem}"
        super().__init__(f"{where}: {what}")


# Field schema: name -> accepted type(s). ``list[str]`` is spelled ``(list, str)``.
FieldSpec = Mapping[str, Any]

_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "object"}


def _type_name(spec: Any) -> str:
    if isinstance(spec, tuple) and spec and spec[0] is list:
        return f"list of {_type_name(spec[1])}"
    if isinstance(spec, tuple):
        return " or ".join(_type_name(s) for s in spec)
    return _TYPE_NAMES.get(spec, getattr(spec, "__name__", str(spec)))


def _matches(value: Any, spec: Any) -> bool:
    if isinstance(spec, tuple) and spec and spec[0] is list:
        return isinstance(value, list) and all(_matches(v, spec[1]) for v in value)
    if isinstance(spec, tuple):
        return any(_matches(value, s) for s in spec)
    if spec is float:  # JSON has one number type; ints are fine where floats are expected
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if spec is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, spec)


def check_fields(row: Any, required: FieldSpec, path: str | os.PathLike, line: int | None) -> None:
    """Raise :class:`DataError` unless ``row`` is an object holding each required field with its type."""
    if not isinstance(row, dict):
        raise DataError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    for name, spec in required.items():
        if name not in row:
            raise DataError(path, line, name, "missing")
        if not _matches(row[name], spec):
            raise DataError(path, line, name, f"expected {_type_name(spec)}, got {json.dumps(row[name])[:60]}")


@dataclass
class ReadReport:
    """What :func:`read_jsonl` kept and skipped (when skipping was asked for)."""

    kept: int = 0
    skipped: list[str] = field(default_factory=list)


def iter_jsonl(
    path: str | os.PathLike,
    required: FieldSpec | None = None,
    *,
    unique: str | None = None,
    skip_bad: bool = False,
    report: ReadReport | None = None,
) -> Iterator[dict]:
    """Yield the JSON objects of a JSONL file, checked against ``required``.

    ``unique`` names a field (usually ``id``) whose values must not repeat. With ``skip_bad`` a bad
    line is recorded in ``report`` and skipped instead of raising.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file")
    seen: set[Any] = set()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(path, lineno, None, f"not UTF-8 (byte {exc.start})") from None
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(path, lineno, None, f"malformed JSON ({exc.msg}, column {exc.colno})") from None
                check_fields(row, required or {}, path, lineno)
                if unique is not None:
                    key = row.get(unique)
                    if key in seen:
                        raise DataError(path, lineno, unique, f"duplicate value {json.dumps(key)}")
                    seen.add(key)
            except DataError as err:
                if not skip_bad:
                    raise
                if report is not None:
                    report.skipped.append(str(err))
                continue
            if report is not None:
                report.kept += 1
            yield row


def read_jsonl(path: str | os.PathLike, required: FieldSpec | None = None, **kwargs: Any) -> list[dict]:
    """All rows of a JSONL file (see :func:`iter_jsonl`); an empty file is an error."""
    rows = list(iter_jsonl(path, required, **kwargs))
    if not rows and not kwargs.get("skip_bad"):
        raise DataError(path, None, None, "empty file: no JSON lines")
    return rows


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(path, None, None, f"not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, None, f"malformed JSON ({exc.msg}, column {exc.colno})") from None


def _atomic_write(path: str | os.PathLike, write: callable) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping]) -> Path:
    """Write rows as JSONL atomically: readers see the old file or the whole new one."""

    def write(fh: TextIO) -> None:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    return _atomic_write(path, write)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return _atomic_write(path, lambda fh: fh.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n"))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return _atomic_write(path, lambda fh: fh.write(text))


def load_partial(path: str | os.PathLike, key: str = "id") -> dict[Any, dict]:
    """Rows already appended to a resumable output, by ``key``.

    A kill can tear the last line; such a line (and anything unparsable) is dropped and the file is
    truncated back to its last whole line, so the next append starts clean.
    """
    path = Path(path)
    if not path.exists():
        return {}
    done: dict[Any, dict] = {}
    good_bytes = 0
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if isinstance(row, dict) and key in row:
                done[row[key]] = row
            good_bytes += len(raw)
    if good_bytes != path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
    return done


class JsonlAppender:
    """Append-only JSONL writer for resumable loops: one flushed line per finished example."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, row: Mapping) -> None:
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
