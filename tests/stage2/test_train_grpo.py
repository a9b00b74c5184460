"""GRPO as online stage II on the tiny model, through TRL's GRPOTrainer: a step is one generation
batch, its log has the reward, tool-use rate and KL; the adapter is saved without TRL's reference
copy; the dev set chooses among the checkpoints and the start; `trice train-grpo` killed with
SIGKILL mid-training and run again ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from trice.stage2.grpo_config import GRPOStageConfig
from trice.stage2.train_grpo import build_prompts, grpo_args, train_grpo
from trice.utils.io import DataError, read_json, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]
ROWS = [
    {"id": f"q{i}", "dataset": "svamp", "task": "math", "question": f"Natalia sold {i} clips and {i + 2} more. How many?",
     "answers": [str(2 * i + 2)], "output": f"calculator({i}+{i + 2})" if i % 2 else f"The answer is {2 * i + 2}.", "used_tool": bool(i % 2)}
    for i in range(6)
]  # fmt: skip
SMALL = {"prompts_per_step": 2, "num_generations": 4, "gradient_accumulation_steps": 2, "max_completion_length": 6,
         "learning_rate": 1e-2, "save_steps": 1, "seed": 5, "reward": {"tool_free": 1, "tool_cost": 0.1}}  # fmt: skip


def _config(model: Path, tmp_path: Path, **kw) -> GRPOStageConfig:
    write_jsonl(tmp_path / "d_tool.jsonl", ROWS)
    return GRPOStageConfig(**({"model": str(model), "data": str(tmp_path / "d_tool.jsonl"), "output_dir": str(tmp_path / "run"), "max_steps": 2} | SMALL | kw))


def test_a_step_is_one_generation_batch_of_the_questions_groups(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = _config(tiny_model_dir, tmp_path, prompts_per_step=4, gradient_accumulation_steps=4)
    args = grpo_args(config, tmp_path / "checkpoints")
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.steps_per_generation) == (4, 4, 4)
    assert args.generation_batch_size == 16 and args.num_generations == 4 and args.beta == 0.04
    from trice.generation.models import load_tokenizer

    data, rules, ids = build_prompts(ROWS, load_tokenizer(str(tiny_model_dir)), config)
    assert [d["id"] for d in data] == [r["id"] for r in ROWS] and set(rules) == set(ids) == {d["prompt"] for d in data}
    assert data[1]["used_tool"] and not data[0]["used_tool"] and rules[data[0]["prompt"]].tools == ("calculator",)
    kept, _, _ = build_prompts(ROWS, load_tokenizer(str(tiny_model_dir)), replace(config, max_length=40))
    assert kept == []  # every prompt leaves less than 6 of 40 tokens


def test_training_logs_rewards_tool_use_and_kl_and_the_dev_set_chooses(tiny_model_dir: Path, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "dev.jsonl", [{"id": "d1", "dataset": "svamp", "task": "math", "question": "What is 2 + 2?", "answers": ["4"], "split": "dev"}])
    config = _config(tiny_model_dir, tmp_path, dev_data=str(tmp_path / "dev.jsonl"), dev_max_new_tokens=4)
    adapter = train_grpo(config)
    out = tmp_path / "run"
    assert adapter == out / "adapter" and (adapter / "adapter_model.safetensors").is_file() and not (adapter / "ref").exists()
    steps = [e for e in read_json(out / "train_log.json") if "reward" in e]
    assert [e["step"] for e in steps] == [1, 2]
    assert all({"reward", "reward_std", "kl", "tool_rate", "accuracy", "step_time", "rollout_tokens_per_second", "tool_free_accuracy"} <= set(e) for e in steps)
    assert read_json(out / "train_log.json")[-1]["questions"] == 6
    assert [s["step"] for s in read_json(out / "selection.json")["steps"]] == [0, 1, 2]  # the start, then each checkpoint
    with pytest.raises(DataError, match="used_tool"):
        write_jsonl(tmp_path / "bad.jsonl", [{k: v for k, v in ROWS[0].items() if k != "used_tool"}])
        train_grpo(replace(config, data=str(tmp_path / "bad.jsonl")))


def _train_cli(config: Path, log: Path) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "trice.cli", "train-grpo", "--config", str(config)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab")
    )


def test_killed_with_sigkill_mid_training_a_rerun_ends_as_an_uninterrupted_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d_tool.jsonl", ROWS)
    log = tmp_path / "train.log"
    configs = {}
    for name in ("reference", "killed"):
        configs[name] = tmp_path / f"{name}.yaml"
        body = {"model": str(tiny_model_dir), "data": str(tmp_path / "d_tool.jsonl"), "output_dir": str(tmp_path / name), "max_steps": 4} | SMALL
        configs[name].write_text(yaml.safe_dump(body))
    assert _train_cli(configs["reference"], log).wait(timeout=600) == 0, log.read_text()[-3000:]

    proc, start = _train_cli(configs["killed"], log), time.monotonic()
    while not (tmp_path / "killed" / "checkpoints" / "checkpoint-2" / "trainer_state.json").exists():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() - start < 600
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "adapter").exists()  # killed before the end
    assert _train_cli(configs["killed"], log).wait(timeout=600) == 0, log.read_text()[-3000:]

    logs = {name: read_json(tmp_path / name / "train_log.json") for name in configs}
    assert logs["killed"][-1]["resumed_from"] in ("checkpoint-2", "checkpoint-3")
    curve = lambda entries: [(e["step"], e["reward"], e["tool_rate"]) for e in entries if "reward" in e]  # noqa: E731
    assert curve(logs["killed"]) == curve(logs["reference"]) and len(curve(logs["reference"])) == 4
    weights = {name: load_file(tmp_path / name / "adapter" / "adapter_model.safetensors") for name in configs}
    assert weights["killed"].keys() == weights["reference"].keys()
    assert all(weights["killed"][k].equal(weights["reference"][k]) for k in weights["reference"]), "the resumed run ended elsewhere"
    assert json.loads((tmp_path / "killed" / "grpo_config.json").read_text())["max_steps"] == 4


def test_native_calls_are_prompted_through_the_chat_template_and_judged_in_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tests.helpers.chat_template import with_chat_template
    from trice.generation.models import load_tokenizer

    chat = with_chat_template(tiny_model_dir, tmp_path / "chat-model")
    config = _config(chat, tmp_path, template="chat", call_format="native", tool_parser="hermes", max_steps=1, max_length=1024)
    data, rules, _ = build_prompts(ROWS, load_tokenizer(str(chat)), config)
    assert '"name": "calculator"' in data[0]["prompt"] and rules[data[0]["prompt"]].calls.parser == "hermes"  # the tool's schema offered
    train_grpo(config)
    steps = [e for e in read_json(tmp_path / "run" / "train_log.json") if "reward" in e]
    assert [e["step"] for e in steps] == [1]
