"""Where the data directory is found: --data-dir, then TRICE_DATA_DIR, then ../shared/data; and
what a user is told when it is nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from trice.core.paths import resolve_data_dir


def test_resolve_data_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRICE_DATA_DIR", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    (tmp_path / "env").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert resolve_data_dir(None) == tmp_path / "shared" / "data"
    monkeypatch.setenv("TRICE_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(str(tmp_path / "project")) == tmp_path / "project"
    with pytest.raises(FileNotFoundError, match="nowhere.*--data-dir"):
        resolve_data_dir(str(tmp_path / "nowhere"))


def test_resolve_data_dir_explains_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRICE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="pass --data-dir or set TRICE_DATA_DIR"):
        resolve_data_dir(None)
