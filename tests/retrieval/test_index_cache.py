"""The index cache builds atomically: a killed build leaves nothing, a racing build wins, stale
temporary directories are cleared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trice.retrieval.index_cache import cached_build


def test_cached_build_is_atomic(tmp_path: Path) -> None:
    builds: list[Path] = []
    assert cached_build(tmp_path, "once", lambda tmp: builds.append(tmp))[1]
    assert not cached_build(tmp_path, "once", lambda tmp: builds.append(tmp))[1] and len(builds) == 1
    (tmp_path / "once").rmdir()

    def failing(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        cached_build(tmp_path, "idx", failing)
    assert list(tmp_path.iterdir()) == []  # neither the final directory nor the temporary one

    def racing(tmp: Path) -> None:  # another process renames its copy into place first
        (tmp_path / "idx").mkdir()
        (tmp_path / "idx" / "theirs").write_text("x")

    directory, built = cached_build(tmp_path, "idx", racing)
    assert not built and [p.name for p in directory.iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]

    stale = tmp_path / ".new.abc.tmp"
    stale.mkdir()
    os.utime(stale, (0, 0))
    cached_build(tmp_path, "new", lambda tmp: (tmp / "ok").write_text("x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "new"]
