"""`accelerate launch` of `trice train-sft` with 2 CPU processes: real distributed data parallel (gloo).

Proof that two ranks trained together, not one (or two unaware of each other): train_log.json records
world size 2 on gloo, each checkpoint holds the RNG state of rank 0 and rank 1, and the adapter equals
the one a single process trains on the same global batch (2 ranks x 2 = 4 examples per step), while it
differs from a single process on 2 examples per step, which is what a silent single-process run
would give. LoRA dropout is off so the ranks' own RNGs cannot make the runs differ.

About 20 s on 2 CPU cores (process start-up dominates); ``-m "not distributed"`` skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trice.stage1.config import SFTConfig
from trice.utils.outputs import OUTPUT_MARKER

ROWS = [{"id": f"r{i}", "task": "math", "question": f"What is {i} + {i}?", "output": f"calculator({i}+{i}) The answer is {2 * i}."} for i in range(8)]
ROOT = Path(__file__).resolve().parents[2]
TRAIN = dict(max_steps=4, save_steps=2, logging_steps=1, learning_rate=1e-3, lora_dropout=0.0, seed=7)


def _lora(adapter: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(adapter / "adapter_model.safetensors"))


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.distributed
def test_accelerate_launch_two_cpu_processes_is_data_parallel(tiny_model_dir: Path, tmp_path: Path) -> None:
    from trice.stage1.train_sft import train_sft

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    out = tmp_path / "ddp"
    flags = [f"--{k}={v}" for k, v in TRAIN.items()]
    # The shipped DDP config (distributed_type MULTI_GPU: torchrun starts the processes); without a
    # GPU each rank takes the CPU and gloo. (`--cpu --num_processes 2` would quietly start a single
    # process: accelerate's CPU launcher spreads processes only through mpirun.)
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "recipes" / "accelerate" / "ddp.yaml"),
        "--num_processes", "2", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "trice.cli", "train-sft",
        "--model", str(tiny_model_dir), "--data", str(data), "--output_dir", str(out),
        "--per_device_train_batch_size", "2", *flags,
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf"), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    log = json.loads((out / "train_log.json").read_text())
    assert log[-1]["world_size"] == 2 and log[-1]["backend"] == "gloo" and log[-1]["distributed_type"] == "MULTI_CPU"
    assert log[-1]["step"] == 4
    assert [e["epoch"] for e in log if "loss" in e] == [0.5, 1.0, 1.5, 2.0]  # 4 of the 8 examples per step
    for step in (2, 4):
        saved = {p.name for p in (out / "checkpoints" / f"checkpoint-{step}").iterdir()}
        assert {"rng_state_0.pth", "rng_state_1.pth", "trainer_state.json", "optimizer.pt"} <= saved
    assert proc.stderr.count("trained to step 4") == 1  # only rank 0 reports and writes
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [OUTPUT_MARKER]  # the trainer's mark; no temporary leftovers

    distributed = _lora(out / "adapter")
    same_global_batch = _lora(
        train_sft(SFTConfig(model=str(tiny_model_dir), data=str(data), output_dir=str(tmp_path / "one4"), per_device_train_batch_size=4, **TRAIN))
    )
    one_rank_alone = _lora(
        train_sft(SFTConfig(model=str(tiny_model_dir), data=str(data), output_dir=str(tmp_path / "one2"), per_device_train_batch_size=2, **TRAIN))
    )
    assert _max_diff(distributed, same_global_batch) < 1e-6
    assert _max_diff(distributed, one_rank_alone) > 1e-4  # the comparison can tell the two apart
