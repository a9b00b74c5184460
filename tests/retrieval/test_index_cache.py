"""The index cache builds atomically: a killed build leaves nothing, a racing build wins, stale
temporary directories are cleared."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from trice.retrieval.index_cache import cached_build


def test_cached_build_is_atomic(tmp_path: Path) -> None:
    builds: list[Path] = []
    assert cached_build(tmp_path, "once", lambda tmp: builds.append(tmp))[1]
    assert not cached_build(tmp_path, "once", lambda tmp: builds.append(tmp))[1] and len(builds) == 1
    shutil.rmtree(tmp_path / "once")  # it holds nothing but its record

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


def test_a_damaged_index_is_built_again_and_a_whole_one_reused(tmp_path: Path, caplog) -> None:
    builds: list[Path] = []

    def build(tmp: Path) -> None:
        builds.append(tmp)
        (tmp / "vocab.index.json").write_text('{"a": 0, "b": 1}')
        (tmp / "data.bin").write_bytes(bytes(range(256)) * 4)

    index, _ = cached_build(tmp_path, "bm25-x", build)
    whole = {p.name: p.read_bytes() for p in index.iterdir() if not p.name.startswith(".")}  # not its record
    assert not cached_build(tmp_path, "bm25-x", build)[1] and len(builds) == 1

    with open(index / "data.bin", "r+b") as fh:
        fh.truncate(10)
    again, built = cached_build(tmp_path, "bm25-x", build)
    assert built and again == index and len(builds) == 2 and "data.bin: 10 bytes, recorded 1024" in caplog.text
    assert {p.name: p.read_bytes() for p in index.iterdir() if not p.name.startswith(".")} == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25-x"]  # the damaged copy is gone

    (index / "data.bin").write_bytes(bytes(1024))  # same size, other bytes
    assert cached_build(tmp_path, "bm25-x", build)[1] and len(builds) == 3
