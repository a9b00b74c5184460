"""The data stage for the qa, lama and mlqa tasks: their config, the files it writes, the descriptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.data.loaders import LOADERS
from trice.data.lama import load_trex
from trice.core.schema import describe
from trice.data.prepare import DataConfig, load_split, run_data


def test_data_config_accepts_the_new_tasks() -> None:
    for task, datasets in (("qa", ["webq", "nq", "triviaqa"]), ("lama", ["trex"]), ("mlqa", ["xquad-zh", "xquad-de"])):
        DataConfig(task=task, datasets=datasets).validate()
    with pytest.raises(ValueError, match=r"datasets: unknown \['gsm8k'\] for task qa; known: webq, nq, nq-dpr, triviaqa"):
        DataConfig(task="qa", datasets=["gsm8k"]).validate()
    with pytest.raises(ValueError, match="task: unknown 'chess'"):
        DataConfig(task="chess").validate()
    with pytest.raises(ValueError, match="datasets: none given"):
        DataConfig(task="lama", datasets=[]).validate()
    assert set(LOADERS) == {"math", "qa", "lama", "mlqa"}


def test_data_stage_writes_qa_files(tmp_path: Path, data_dir: Path) -> None:
    config = DataConfig(output_dir=str(tmp_path), task="qa", data_dir=str(data_dir), datasets=["webq", "nq", "triviaqa"], n_train=4, n_test=3)
    splits = run_data(config)
    rows = [json.loads(line) for line in (tmp_path / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["dataset"] for r in rows] == ["webq"] * 3 + ["nq"] * 3 + ["triviaqa"] * 3
    assert splits["datasets"]["nq"]["test"] == 1087 and splits["datasets"]["nq"]["test_used"] == 3
    train, test, _ = load_split(config)
    assert len(train) == 12 and [e.id for e in test] == [r["id"] for r in rows]


def test_data_stage_lama_and_mlqa_describe(data_dir: Path) -> None:
    train, test, splits = load_split(DataConfig(task="mlqa", data_dir=str(data_dir), datasets=["xquad-zh"], n_test=5))
    assert len(test) == 5 and all(e.dataset == "xquad-zh" for e in train + test)
    assert splits["datasets"]["xquad-zh"]["with_tool_call"]["test"] == 1190 - splits["datasets"]["xquad-zh"]["train"]
    summary = describe({"trex": load_trex(data_dir)})["trex"]
    assert summary["with_tool_call"]["train"] == summary["train"] and summary["skipped"] > 0
