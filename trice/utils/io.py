"""Reading and writing the JSONL/JSON files every stage exchanges.

Three promises hold for every file trice touches:

* a bad input line fails with one :class:`DataError` naming the file, the line and the field
  (or, when the caller asks, is skipped and counted), never a traceback from deep inside;
* a finished output is written atomically (temp file + ``os.replace``), so a kill never leaves
  half a result that a rerun would mistake for a whole one;
* long loops append one JSON line per finished example and flush it, so a rerun can skip the
  ids already done (:func:`load_partial`) and a torn last line from a kill is ignored;
* a command writes an output path only after :func:`trice.utils.outputs.claim_output` allowed it: trice
  never replaces, trims or appends to a file it did not write itself, nor writes through a link or
  into a device or FIFO (:func:`check_writable`).
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (write it as null or a string)")


# A \\u escape of a UTF-16 surrogate: the only way JSON text can hold a lone surrogate, which no
# UTF-8 output can encode (checked only where the text holds one, so the common case costs a scan).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_json(text: str) -> Any:
    """``json.loads`` that fails only with ``ValueError``, and on what trice could not write back.

    Refused: NaN and Infinity (not JSON; written back they make invalid JSON), lone surrogates (no
    UTF-8 output can hold them), nesting deeper than the parser's recursion limit and integers over
    Python's digit limit (both would otherwise surface as other exception types).
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON ({exc.msg}, column {exc.colno})") from None
    except ValueError as exc:  # an integer over sys.get_int_max_str_digits() digits, or NaN above
        raise ValueError(f"malformed JSON ({str(exc)[:120]})") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text") from None
    return value


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
    path: str | os.PathLike, required: FieldSpec | None = None, *, unique: str | None = None, skip_bad: bool = False, report: ReadReport | None = None
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
                    row = parse_json(text)
                except ValueError as exc:
                    raise DataError(path, lineno, None, str(exc)) from None
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
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, None, None, f"not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, None, f"malformed JSON ({exc.msg}, column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise DataError(path, None, None, f"malformed JSON ({str(exc)[:120] or 'nested too deeply'})") from None


class OutputError(DataError):
    """A path trice will not write, or could not: ``path: what is wrong (and what to do)``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(path, None, None, problem)


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip


def check_writable(path: str | os.PathLike) -> Path:
    """Refuse a path no trice output may take: a symbolic link (trice does not follow links to write
    somewhere else; name the target itself), anything but a regular file, or a path under a file."""
    path = Path(path)
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as err:
        raise OutputError(path, f"cannot be written ({err.strerror})") from None
    if mode is not None and stat.S_ISLNK(mode):
        raise OutputError(path, "is a symbolic link; trice writes outputs only as regular files (name the link's target itself)")
    for test, kind in _FILE_KINDS:
        if mode is not None and test(mode):
            raise OutputError(path, f"is {kind}, not a regular file; name a file for the output")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(path, f"cannot be created: {parent} is not a directory")
    return path


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (setting it, even briefly,
    would race with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _atomic_write(path: str | os.PathLike, write: Callable[[TextIO], Any]) -> Path:
    """Write a temp file beside ``path``, fsync it, rename it over ``path``. The file keeps the mode
    the old one had (a new one gets what ``open()`` would give it), and a failure names ``path``,
    never the temp file."""
    path = check_writable(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OutputError(path, f"cannot be written ({err.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:  # a path's undecodable bytes as they were
            write(fh)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(path, f"cannot be written ({err.strerror or err})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_text(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``obj`` as UTF-8 can hold it: non-ASCII text as it is, unless a string holds a
    lone surrogate (a path of bytes that are not UTF-8, as Python decodes it from the command line or
    the file system); then every such character is written as a ``\\u`` escape, which ``json.loads``
    reads back to the same string, so the path names the same file again."""
    text = json.dumps(obj, ensure_ascii=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, **kwargs)
    return text


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping]) -> Path:
    """Write rows as JSONL atomically: readers see the old file or the whole new one."""

    def write(fh: TextIO) -> None:
        for row in rows:
            fh.write(json_text(row) + "\n")

    return _atomic_write(path, write)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return _atomic_write(path, lambda fh: fh.write(json_text(obj, indent=2) + "\n"))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return _atomic_write(path, lambda fh: fh.write(text))


@dataclass
class Partial:
    """What a resumable output already holds: its rows by key, and ``keep_bytes``, the length of its
    whole lines (beyond it lies a line torn by a kill, cut off when work resumes and not before)."""

    rows: dict[Any, dict] = field(default_factory=dict)
    keep_bytes: int | None = None
    duplicates: int = 0  # whole lines whose key an earlier line already had (the last one is in ``rows``)

    def add(self, key: Any, row: dict) -> None:
        self.duplicates += key in self.rows
        self.rows[key] = row


def read_partial(path: str | os.PathLike, key: str = "id") -> Partial:
    """Rows already appended to one of trice's own resumable files, by ``key``; the file is not changed.

    A kill can tear the last line: such a line is left out (and cut off by the next
    :class:`JsonlAppender`). A whole line that does not parse, or lacks ``key``, is left out too.
    """
    path = Path(path)
    partial = Partial(keep_bytes=0)
    if not path.exists():
        return partial
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            partial.keep_bytes += len(raw)
            try:
                row = parse_json(raw.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError is one
                continue
            if isinstance(row, dict) and key in row:
                partial.add(row[key], row)
    return partial


def load_partial(path: str | os.PathLike, key: str = "id") -> dict[Any, dict]:
    """The rows of :func:`read_partial`."""
    return read_partial(path, key).rows


def _whole_lines_end(path: Path) -> int:
    """The length of ``path`` up to and including its last newline (0 when it has none)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        end = size
        while end > 0:
            start = max(0, end - (1 << 16))
            fh.seek(start)
            chunk = fh.read(end - start)
            at = chunk.rfind(b"\n")
            if at >= 0:
                return start + at + 1
            end = start
    return 0


class JsonlAppender:
    """Append-only JSONL writer for resumable loops: one flushed line per finished example.

    Opening it is the moment work resumes, so that is when a torn last line is cut off: back to
    ``keep_bytes`` when given (what :func:`trice.utils.outputs.claim_output` found; 0 starts the file over), else
    back to the file's last newline.
    """

    def __init__(self, path: str | os.PathLike, keep_bytes: int | None = None):
        self.path = check_writable(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            keep = _whole_lines_end(self.path) if keep_bytes is None else keep_bytes
            if keep != self.path.stat().st_size:
                with self.path.open("r+b") as fh:
                    fh.truncate(keep)
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, row: Mapping) -> None:
        self._fh.write(json_text(row) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
