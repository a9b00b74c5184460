"""Stage I under ``accelerate launch`` with the shipped DeepSpeed configs, set beside one plain
process: same rows, seed and flags, on one GPU.

ZeRO on one process shards nothing, so a run that trains the same numbers as the plain one shows
that the launcher, the DeepSpeed JSON and trice's trainer fit together (the ``"auto"`` values, the
response-only loss, the LoRA adapter saved from a ZeRO-3 model whose weights are partitioned),
which the CPU tests can only check up to starting the processes. Each run is a directory that
``trice train-sft --output_dir`` wrote; this reads their logged losses and saved adapters.

    python bench/gpu_distributed.py --runs plain=DIR zero2=DIR zero3=DIR --out bench/results/gpu_distributed/results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

ADAPTER = Path("adapter") / "adapter_model.safetensors"


def read_run(run_dir: Path) -> dict:
    """The losses logged per step and the saved adapter's tensors."""
    log = json.loads((run_dir / "train_log.json").read_text())
    losses = {entry["step"]: entry["loss"] for entry in log if "loss" in entry}
    return {"losses": losses, "adapter": load_file(str(run_dir / ADAPTER))}


def compare(base: dict, other: dict) -> dict:
    """How far ``other`` trained from ``base``: per-step loss and final adapter weights."""
    steps = sorted(base["losses"].keys() & other["losses"].keys())
    keys = sorted(base["adapter"].keys() & other["adapter"].keys())
    weight_diff = max((base["adapter"][k].float() - other["adapter"][k].float()).abs().max().item() for k in keys) if keys else None
    weight_norm = max(base["adapter"][k].float().abs().max().item() for k in keys) if keys else None
    return {
        "steps_compared": len(steps),
        "loss_max_abs_diff": max((abs(base["losses"][s] - other["losses"][s]) for s in steps), default=None),
        "adapter_same_keys": base["adapter"].keys() == other["adapter"].keys(),
        "adapter_tensors": len(keys),
        "adapter_max_abs_diff": weight_diff,
        "adapter_max_abs_weight": weight_norm,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=DIR", help="The first is the baseline.")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_distributed/results.json"))
    args = parser.parse_args(argv)
    named = [tuple(item.split("=", 1)) for item in args.runs]
    runs = {name: read_run(Path(path)) for name, path in named}
    base_name = named[0][0]
    record = {
        "machine": {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "torch": torch.__version__},
        "baseline": base_name,
        "losses": {name: run["losses"] for name, run in runs.items()},
        "against_baseline": {name: compare(runs[base_name], run) for name, run in runs.items() if name != base_name},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    summary = {name: (c["loss_max_abs_diff"], c["adapter_max_abs_diff"]) for name, c in record["against_baseline"].items()}
    print(f"against {base_name} (max |loss diff|, max |adapter diff|): {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
