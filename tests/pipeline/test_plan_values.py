"""Values that once passed the plan and failed hours later, after earlier stages had run and changed
ones had been moved aside, now stop ``trice run`` (and ``--status``) with one located line before any
stage: an empty settings list, a seed numpy refuses, a learning rate of ``.inf``, sampling values out
of range; and, once the model is known but before the first stage, LoRA target modules the model does
not have and an experiment tracker that is not installed."""

from __future__ import annotations

import pytest
import yaml

from trice.cli import main


def _recipe(tmp_path, **body) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run")} | body))
    return str(path)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"settings": []}, "settings: name at least one setting"),
        ({"settings": ["zero-shot", "sft-100", "zero-shot"]}, "settings: zero-shot is named twice"),
        ({"seed": -1}, "key 'seed': must be in [0, 4294967295], got -1"),
        ({"seed": 2**32}, "key 'seed': must be in [0, 4294967295], got 4294967296"),
        ({"train": {"learning_rate": float("inf")}}, "train: key 'learning_rate': must be a finite number, got inf"),
        ({"rlef": {"learning_rate": float("nan")}}, "rlef: key 'learning_rate': must be a finite number, got nan"),
        ({"probe": {"repetition_penalty": -1.0}}, "probe: repetition_penalty must be > 0"),
        ({"eval": {"top_p": 2.0}}, "eval: top_p must be in (0, 1], got 2.0"),
        ({"candidates": {"sources": [{"name": "s", "kind": "model", "top_p": 0.0}]}}, "top_p must be in (0, 1], got 0.0"),
    ],
    ids=["no-settings", "settings-twice", "seed-negative", "seed-too-big", "lr-inf", "lr-nan", "penalty", "top-p", "source-top-p"],
)
def test_values_no_stage_could_use_are_one_located_line_at_status(tmp_path, capsys, body, message) -> None:
    path = _recipe(tmp_path, **({"data": {"n_train": 10}} | body))  # room for the dev set: only the value is wrong
    assert main(["run", path, "--status"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"trice run: error: {path}") and message in line, line
    assert not (tmp_path / "run").exists()


def _training_recipe(tmp_path, model: str, data_dir, **train) -> str:
    return _recipe(
        tmp_path,
        model=model,
        settings=["zero-shot", "sft-100"],
        data={"data_dir": str(data_dir), "n_train": 2, "n_test": 2},
        probe={"max_new_tokens": 2},
        eval={"max_new_tokens": 2},
        train={"max_steps": 1} | train,
    )


@pytest.mark.parametrize(
    "train, message",
    [
        ({"target_modules": ["q_proj", "nope_proj"]}, "train: target_modules: 'nope_proj' names no module of"),
        ({"report_to": "wandb"}, "train: report_to: wandb is not installed"),
        ({"report_to": "nope"}, "train: report_to: unknown tracker 'nope'"),
    ],
    ids=["target-modules", "tracker-missing", "tracker-unknown"],
)
def test_a_training_that_cannot_start_stops_the_run_before_its_first_stage(tmp_path, capsys, tiny_model_dir, data_dir, train, message) -> None:
    path = _training_recipe(tmp_path, str(tiny_model_dir), data_dir, **train)
    assert main(["run", path, "--status"]) == 0  # it plans: a finished run would need no training
    capsys.readouterr()
    assert main(["run", path]) == 2
    line = _one_line(capsys)
    assert line.startswith("trice run: error: ") and message in line, line
    if "target_modules" in train:
        assert "(its linear layers: down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj)" in line
    assert not (tmp_path / "run").exists()  # no stage ran


def test_a_max_length_no_example_fits_is_one_line(tmp_path, capsys, tiny_model_dir) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"id": "r0", "task": "math", "question": "What is 1 + 1?", "output": "calculator(1+1)"}\n')
    argv = ["train-sft", "--model", str(tiny_model_dir), "--data", str(data), "--output_dir", str(tmp_path / "out"), "--max_length", "3"]
    assert main(argv) == 2
    assert _one_line(capsys) == f"trice train-sft: error: max_length: every one of the 1 examples in {data} is longer than 3 tokens"
