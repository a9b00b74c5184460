"""Records and structural checks of finished files (:mod:`trice.utils.artefacts`): a truncation or a
rewrite is found by the record, and without one the structural check finds a torn file of each kind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from trice.utils.artefacts import RECORD_FILE, check_dir, check_record, damaged, make_record, record_dir


def _whole_files(root: Path) -> dict[str, bytes]:
    save_file({"w": torch.arange(32, dtype=torch.float32)}, str(root / "model.safetensors"))
    torch.save({"step": torch.arange(100)}, root / "optimizer.pt")
    np.save(root / "embeddings.npy", np.ones((4, 8), dtype=np.float32))
    (root / "config.json").write_text('{"a": 1}')
    (root / "rows.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    return {p.name: p.read_bytes() for p in root.iterdir()}


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "embeddings.npy", "config.json", "rows.jsonl"])
def test_a_truncated_file_of_each_kind_is_damaged(tmp_path: Path, name: str) -> None:
    files = _whole_files(tmp_path)
    assert all(damaged(tmp_path / n) is None for n in files)
    (tmp_path / name).write_bytes(files[name][: len(files[name]) - 3])
    assert damaged(tmp_path / name) is not None
    assert check_dir(tmp_path).startswith(f"{name}: ")


def test_a_record_finds_truncation_and_rewrites_and_leaves_hidden_files_out(tmp_path: Path) -> None:
    files = _whole_files(tmp_path)
    (tmp_path / ".rows.jsonl.lock").write_text("pid")
    record = make_record(tmp_path)
    assert set(record) == set(files)
    assert check_record(tmp_path, record) == ([], record)

    (tmp_path / "config.json").write_text('{"a": 2}')  # the same size, other bytes
    problems, _ = check_record(tmp_path, record)
    assert problems == [("config.json", "its bytes differ from the recorded sha256")]
    (tmp_path / "config.json").write_bytes(files["config.json"])  # back as recorded, a newer time: refreshed, not a problem
    os.utime(tmp_path / "config.json", ns=(1, 1))
    problems, fresh = check_record(tmp_path, record)
    assert problems == [] and fresh["config.json"]["mtime_ns"] == 1
    (tmp_path / "rows.jsonl").unlink()
    assert check_record(tmp_path, record)[0] == [("rows.jsonl", "missing")]


def test_check_dir_records_a_whole_directory_at_its_first_check(tmp_path: Path) -> None:
    _whole_files(tmp_path)
    assert check_dir(tmp_path) is None and not (tmp_path / RECORD_FILE).exists()  # not asked to write
    assert check_dir(tmp_path, write=True) is None
    assert set(json.loads((tmp_path / RECORD_FILE).read_text())) == {"model.safetensors", "optimizer.pt", "embeddings.npy", "config.json", "rows.jsonl"}
    with open(tmp_path / "embeddings.npy", "ab") as fh:
        fh.write(b"\0")
    assert (
        check_dir(tmp_path, write=True)
        == f"embeddings.npy: {(tmp_path / 'embeddings.npy').stat().st_size} bytes, recorded {(tmp_path / 'embeddings.npy').stat().st_size - 1}"
    )
    record_dir(tmp_path)
    assert check_dir(tmp_path) is None
