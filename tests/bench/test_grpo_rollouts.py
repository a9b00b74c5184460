"""bench/grpo_rollouts.py end to end on the tiny model: both methods measured, the report printed and
written, its results folder made where it is missing (a measurement of minutes must not be lost to
a missing folder at the end)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
SPEC = importlib.util.spec_from_file_location("grpo_rollouts", BENCH / "grpo_rollouts.py")
bench = importlib.util.module_from_spec(SPEC)
sys.modules["grpo_rollouts"] = bench
SPEC.loader.exec_module(bench)


def test_a_tiny_measurement_is_printed_and_written_into_a_new_folder(tiny_model_dir: Path, data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TRICE_DATA_DIR", str(data_dir))
    output = tmp_path / "results" / "grpo_rollouts" / "results.json"
    argv = ["grpo_rollouts.py", "--model", str(tiny_model_dir), "--prompts", "2", "--group", "2", "--max-new-tokens", "4", "--repeats", "1", "--threads", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--output", str(output)])
    bench.main()
    written = json.loads(output.read_text(encoding="utf-8"))
    assert set(written["methods"]) == {"trice", "plain"} and written["batch"] == "2 prompts x 2 = 4 sequences"
    assert all(m["tokens_per_second"] > 0 for m in written["methods"].values())
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("grpo rollouts (2 prompts x 2 = 4 sequences, 4 new tokens)")
