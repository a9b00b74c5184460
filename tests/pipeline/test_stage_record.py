"""A finished stage is trusted only while its files are as it recorded them: a truncated or rewritten
output makes it "to redo" (one line naming the file) and a run redoes it from what is intact; a
stage.json written before records is not redone, only recorded; a torn stage.json is recovered."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from trice.pipeline.stage_dirs import moved_aside, run_stage, stage_verdict


def _work(calls: list[dict]):
    def fn(d: Path) -> None:
        calls.append({p.name for p in d.iterdir()})
        (d / "adapter").mkdir(exist_ok=True)
        (d / "adapter" / "weights.bin").write_bytes(b"0123456789")
        (d / "responses.jsonl").write_text('{"id": "a"}\n')

    return fn


def test_a_finished_stage_whose_output_rotted_is_redone_from_what_is_intact(tmp_path, caplog) -> None:
    stage, calls = tmp_path / "run" / "train-x", []
    assert run_stage(stage, "train-x", {"k": 1}, [], _work(calls))
    recorded = json.loads((stage / "stage.json").read_text())["outputs"]
    assert set(recorded) == {"adapter/weights.bin", "responses.jsonl"} and recorded["responses.jsonl"]["size"] == 12
    assert stage_verdict(stage, {"k": 1}, []) == "up to date"

    with open(stage / "adapter" / "weights.bin", "r+b") as fh:
        fh.truncate(3)
    assert stage_verdict(stage, {"k": 1}, []) == "to redo: adapter/weights.bin: 3 bytes, recorded 10"
    with caplog.at_level(logging.WARNING, logger="trice.pipeline.stage_dirs"):
        assert run_stage(stage, "train-x", {"k": 1}, [], _work(calls))
    assert calls[-1] == {"stage.json", "responses.jsonl"}  # the intact output kept, the damaged one moved aside
    (old,) = moved_aside(tmp_path / "run")
    assert (Path(old) / "adapter" / "weights.bin").read_bytes() == b"012"
    assert "adapter/weights.bin: 3 bytes, recorded 10: redoing it" in caplog.text
    assert stage_verdict(stage, {"k": 1}, []) == "up to date" and (stage / "adapter" / "weights.bin").read_bytes() == b"0123456789"

    (stage / "responses.jsonl").write_text('{"id": "b"}\n')  # the same size, other bytes
    assert stage_verdict(stage, {"k": 1}, []) == "to redo: responses.jsonl: its bytes differ from the recorded sha256"


def test_a_stage_finished_before_records_is_recorded_not_redone(tmp_path) -> None:
    stage, calls = tmp_path / "run" / "eval-x", []
    run_stage(stage, "eval-x", {"k": 1}, [], _work(calls))
    state = json.loads((stage / "stage.json").read_text())
    del state["outputs"]
    (stage / "stage.json").write_text(json.dumps(state))
    (stage / "responses.jsonl").write_text('{"id": "a"')  # even a torn file: the earlier stage.json vouches for it
    assert stage_verdict(stage, {"k": 1}, []) == "up to date"
    assert not run_stage(stage, "eval-x", {"k": 1}, [], _work(calls)) and len(calls) == 1
    assert json.loads((stage / "stage.json").read_text())["outputs"]["responses.jsonl"]["size"] == 10  # recorded at this first check
    assert moved_aside(tmp_path / "run") == []


@pytest.mark.parametrize("force", [False, True], ids=["rerun", "only"])
def test_a_torn_stage_json_is_to_redo_and_recovered(tmp_path, force) -> None:
    stage, calls = tmp_path / "run" / "probe", []
    run_stage(stage, "probe", {"k": 1}, [], _work(calls))
    (stage / "stage.json").write_text('{"stage": "probe", "ha')
    assert stage_verdict(stage, {"k": 1}, []).startswith("to redo: stage.json is damaged (malformed JSON")
    assert run_stage(stage, "probe", {"k": 1}, [], _work(calls), force=force)
    assert calls[-1] == {"stage.json"} and stage_verdict(stage, {"k": 1}, []) == "up to date"
    (old,) = moved_aside(tmp_path / "run")
    assert (Path(old) / "stage.json").read_text() == '{"stage": "probe", "ha'  # kept, as every moved-aside stage is
