"""scripts/compare_runs.py: a produced file that differs is caught; a stage record that differs only in
its wall time is not a difference."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_runs", ROOT / "scripts" / "compare_runs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compare_runs = load_script()


def run_dir(root: Path, seconds: float, answer: str, extra: bool = False) -> Path:
    (root / "eval-sft").mkdir(parents=True)
    (root / "eval-sft" / "stage.json").write_text(json.dumps({"seconds": seconds, "config": {"seed": 0}}))
    (root / "eval-sft" / "judged.jsonl").write_text(json.dumps({"id": "q1", "response": answer}) + "\n")
    (root / "train" / "old").mkdir(parents=True)
    (root / "train" / "old" / "stale.bin").write_bytes(bytes([int(seconds) % 256]))  # moved aside: not compared
    (root / "adapter.safetensors").write_bytes(b"weights")
    if extra:
        (root / "report.md").write_text("# report\n")
    return root


def test_the_same_outputs_with_other_wall_times_are_the_same(tmp_path: Path) -> None:
    result = compare_runs.compare(run_dir(tmp_path / "a", 1.0, "4"), run_dir(tmp_path / "b", 9.5, "4"))
    assert result["same"]
    assert result["bookkeeping"] == ["eval-sft/stage.json"]
    assert result["identical"] == ["adapter.safetensors", "eval-sft/judged.jsonl"]


def test_a_changed_answer_or_a_file_on_one_side_is_a_difference(tmp_path: Path, capsys) -> None:
    before, after = run_dir(tmp_path / "a", 1.0, "4"), run_dir(tmp_path / "b", 1.0, "5", extra=True)
    assert compare_runs.main([str(before), str(after)]) == 1
    result = json.loads(capsys.readouterr().out.rsplit("\ncompare_runs:", 1)[0])
    assert result["different"] == ["eval-sft/judged.jsonl"] and result["only_after"] == ["report.md"]


def test_a_changed_config_in_a_stage_record_is_a_difference(tmp_path: Path) -> None:
    before, after = run_dir(tmp_path / "a", 1.0, "4"), run_dir(tmp_path / "b", 1.0, "4")
    (after / "eval-sft" / "stage.json").write_text(json.dumps({"seconds": 1.0, "config": {"seed": 1}}))
    assert compare_runs.compare(before, after)["different"] == ["eval-sft/stage.json"]


def test_runs_made_in_other_directories_compare_with_renames_and_set_ordered_lists(tmp_path: Path) -> None:
    before, after = tmp_path / "runs" / "demo", tmp_path / "runs" / "demo-after"
    for run, modules in ((before, ["q_proj", "v_proj"]), (after, ["v_proj", "q_proj"])):
        run.mkdir(parents=True)
        (run / "selection.json").write_text(json.dumps({"best_adapter": f"{run.relative_to(tmp_path)}/adapter_best"}))
        (run / "adapter_config.json").write_text(json.dumps({"target_modules": modules, "r": 8}))
    assert compare_runs.compare(before, after)["different"] == ["selection.json"]
    result = compare_runs.compare(before, after, renames=[("runs/demo/", "runs/demo-after/")])
    assert result["same"] and result["bookkeeping"] == ["adapter_config.json", "selection.json"]
