"""Where the benchmark data and trice's caches live: one rule for every command, so a run never
silently reads the wrong copy and a missing directory fails with what to do about it."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "TRICE_DATA_DIR"
_DEFAULT_RELATIVE = Path("..") / "shared" / "data"


def cache_dir() -> Path:
    """Where converted models, indexes, corpora and tool outputs live: ``$TRICE_CACHE_DIR`` or
    ``~/.cache/trice`` (read at each call, so a variable set after import counts)."""
    return Path(os.environ.get("TRICE_CACHE_DIR", Path.home() / ".cache" / "trice"))


def resolve_data_dir(arg: str | os.PathLike | None = None) -> Path:
    """The data directory: ``arg``, else ``$TRICE_DATA_DIR``, else ``../shared/data`` (from the cwd).

    An explicitly named directory must exist; the default is only used when it does.
    """
    for source, value in (("--data-dir", arg), (f"${DATA_DIR_ENV}", os.environ.get(DATA_DIR_ENV))):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(f"data directory {path} (from {source}) does not exist")
            return path
    default = Path.cwd() / _DEFAULT_RELATIVE
    if default.is_dir():
        return default.resolve()
    raise FileNotFoundError(f"no data directory: {default} does not exist; pass --data-dir or set {DATA_DIR_ENV}")


def data_dir_target(arg: str | os.PathLike | None = None) -> Path:
    """Where the data directory is, or is to be made: ``arg``, else ``$TRICE_DATA_DIR``, else
    ``../shared/data`` (from the cwd) -- the rule :func:`resolve_data_dir` reads by, so that
    ``trice download-data`` fills the directory every other command will look in."""
    value = arg or os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else Path.cwd() / _DEFAULT_RELATIVE


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a :class:`FileNotFoundError` naming it and the usual fix."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path} (check --data-dir or ${DATA_DIR_ENV})")
    return path
