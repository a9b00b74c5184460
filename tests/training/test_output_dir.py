"""A trainer writes only into a directory that is absent, empty or its own earlier output
(:func:`trice.utils.outputs.claim_output_dir`): a user's directory named as ``--output_dir`` costs an
error line, never its files, whatever ``--resume`` says; ``--overwrite`` is the explicit way in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.cli import main
from trice.stage1.config import SFTConfig
from trice.stage2.dpo_config import DPOStageConfig
from trice.stage2.rlef_config import RLEFConfig
from trice.training.lora import prepare_run
from trice.utils.io import OutputError
from trice.utils.outputs import OUTPUT_MARKER, claim_output_dir

ROW = {"id": "r0", "task": "math", "question": "What is 1 + 1?", "output": "calculator(1+1) The answer is 2."}
USER_FILES = {"notes.txt": "mine", "adapter/adapter_model.safetensors": "my weights", "checkpoints/checkpoint-5/optimizer.pt": "my run"}


def _user_dir(root: Path) -> Path:
    for name, text in USER_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("resume", [[], ["--resume", "false"]], ids=["resume", "no-resume"])
def test_train_sft_refuses_a_directory_of_user_files_and_touches_none(tiny_model_dir, tmp_path, capsys, resume) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps(ROW) + "\n")
    out = _user_dir(tmp_path / "mine")
    code = main(["train-sft", "--model", str(tiny_model_dir), "--data", str(data), "--output_dir", str(out), "--max_steps", "1", *resume])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(f"trice train-sft: error: {out}: output_dir exists and holds files trice did not write"), err
    assert "--overwrite" in err[-1] and "Traceback" not in "\n".join(err)
    assert _files(out) == USER_FILES  # nothing deleted, nothing added


@pytest.mark.parametrize("config_class", [SFTConfig, RLEFConfig, DPOStageConfig])
def test_every_trainer_shares_the_refusal_and_marks_its_own_output(tmp_path, config_class) -> None:
    out = _user_dir(tmp_path / "mine")
    with pytest.raises(OutputError, match="files trice did not write"):
        prepare_run(config_class(output_dir=str(out), resume=False), out, "x_config.json")
    assert _files(out) == USER_FILES

    fresh = tmp_path / "fresh"
    assert prepare_run(config_class(output_dir=str(fresh)), fresh, "x_config.json") is None
    assert json.loads((fresh / OUTPUT_MARKER).read_text())["config"] == "x_config.json"
    prepare_run(config_class(output_dir=str(fresh)), fresh, "x_config.json")  # its own: resumed
    with pytest.raises(OutputError, match=r"another trainer's output \(x_config.json\)"):
        prepare_run(config_class(output_dir=str(fresh)), fresh, "y_config.json")


def test_an_output_written_before_the_marker_is_recognised_by_its_config(tmp_path) -> None:
    out = tmp_path / "old-run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "sft_config.json").write_text(json.dumps({"output_dir": str(out), "model": "m"}))
    claim_output_dir(out, "sft_config.json")
    assert (out / OUTPUT_MARKER).is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        claim_output_dir(tmp_path / "file", "sft_config.json")


def test_overwrite_writes_into_a_foreign_directory(tmp_path) -> None:
    out = _user_dir(tmp_path / "mine")
    prepare_run(SFTConfig(output_dir=str(out), overwrite=True), out, "sft_config.json")
    assert (out / "sft_config.json").is_file() and (out / "notes.txt").read_text() == "mine"
