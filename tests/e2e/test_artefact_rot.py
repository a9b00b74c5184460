"""A finished run whose trained adapter was truncated afterwards: ``--status`` names the file and what
depends on it, and a rerun rebuilds the adapter from the training's own checkpoint to the same
result, where it once kept the stage "up to date" and failed every eval after it with a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.e2e.test_pipeline import recipe
from trice.cli import main
from trice.utils.io import read_json


def test_a_truncated_adapter_is_rebuilt_to_the_same_result(tmp_path, tiny_model_dir, data_dir, capsys) -> None:
    path = recipe(tmp_path, str(tiny_model_dir), data_dir, settings=["zero-shot", "sft-100"])
    assert main(["run", str(path)]) == 0
    run = tmp_path / "run"
    results = read_json(run / "report" / "results.json")
    weights = run / "train-sft-100" / "adapter" / "adapter_model.safetensors"
    whole = weights.read_bytes()
    with open(weights, "r+b") as fh:
        fh.truncate(len(whole) // 2)

    capsys.readouterr()
    assert main(["run", str(path), "--status"]) == 0
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status["train-sft-100"] == f"to redo: adapter/adapter_model.safetensors: {len(whole) // 2} bytes, recorded {len(whole)}"
    assert status["eval-sft-100"] == "changed"  # its input, the adapter, is not what it evaluated
    assert status["report"] == "would redo" and status["eval-zero-shot"] == "up to date"

    judged = (run / "eval-sft-100" / "judged.jsonl").read_bytes()
    assert main(["run", str(path)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert weights.read_bytes() == whole  # from the last checkpoint, which holds max_steps
    assert (run / "eval-sft-100" / "judged.jsonl").read_bytes() == judged
    assert read_json(run / "report" / "results.json")["rows"] == results["rows"]
    assert main(["run", str(path), "--status"]) == 0
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {v for k, v in status.items() if k != "moved aside"} == {"up to date"}
    assert [re.sub(r"-\d{8}T\d{6}Z$", "", Path(old).name) for old in status["moved aside"]] == ["eval-sft-100", "train-sft-100"]
