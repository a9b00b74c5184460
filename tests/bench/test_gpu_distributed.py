"""bench/gpu_distributed.py: two training runs set side by side by their logged losses and saved
adapters."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("gpu_distributed", ROOT / "bench" / "gpu_distributed.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def write_run(root: Path, losses: list[float], weights: dict[str, torch.Tensor]) -> Path:
    (root / "adapter").mkdir(parents=True)
    log = [{"loss": loss, "step": i + 1} for i, loss in enumerate(losses)] + [{"train_runtime": 1.0, "step": len(losses)}]
    (root / "train_log.json").write_text(json.dumps(log))
    save_file(weights, str(root / bench.ADAPTER))
    return root


def test_compare_reports_loss_and_weight_differences(tmp_path: Path) -> None:
    base = write_run(tmp_path / "plain", [3.0, 2.5], {"a": torch.tensor([0.1, -0.2]), "b": torch.tensor([0.05])})
    other = write_run(tmp_path / "zero2", [3.0, 2.4], {"a": torch.tensor([0.1, -0.25]), "b": torch.tensor([0.05])})
    found = bench.compare(bench.read_run(base), bench.read_run(other))
    assert found["steps_compared"] == 2 and found["adapter_same_keys"] and found["adapter_tensors"] == 2
    assert abs(found["loss_max_abs_diff"] - 0.1) < 1e-6 and abs(found["adapter_max_abs_diff"] - 0.05) < 1e-6
    assert abs(found["adapter_max_abs_weight"] - 0.2) < 1e-6


def test_main_writes_one_comparison_per_run_against_the_first(tmp_path: Path) -> None:
    weights = {"a": torch.zeros(2)}
    runs = [f"{name}={write_run(tmp_path / name, [1.0], weights)}" for name in ("plain", "zero2", "zero3")]
    out = tmp_path / "out.json"
    assert bench.main(["--runs", *runs, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["baseline"] == "plain" and sorted(record["against_baseline"]) == ["zero2", "zero3"]
    assert record["against_baseline"]["zero3"]["loss_max_abs_diff"] == 0.0
