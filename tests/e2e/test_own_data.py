"""A recipe with your own questions and no Python: `data: {train: file.jsonl, test: file.jsonl,
columns: {...}}` runs every stage with the tiny model; the files enter the run by their bytes, so
the same files elsewhere are the same run and a changed file redoes the data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from trice.cli import main
from trice.utils.io import read_json, read_jsonl

TRAIN = [
    {"q": f"Tom has {a} apples and buys {b} more. How many apples does he have?", "a": a + b, "calc": f"calculator({a}+{b})"}
    for a, b in [(3, 4), (10, 5), (7, 8), (12, 9), (6, 6), (20, 1)]
]
TEST = [{"q": f"A box holds {a} pens and {b} more are added. How many pens are there?", "a": str(a + b)} for a, b in [(2, 2), (9, 4), (15, 5)]]
SMALL = [
    "probe.batch_size=4",
    "probe.max_new_tokens=8",
    "eval.batch_size=4",
    "eval.max_new_tokens=8",
    "train.max_steps=2",
    "train.save_steps=1",
    "train.logging_steps=1",
    "train.per_device_train_batch_size=2",
    "train.learning_rate=1e-3",
]


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TRAIN))
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TEST))
    recipe = {
        "settings": ["zero-shot", "sft-100", "trice-i"],
        "data": {
            "task": "math",
            "train": "train.jsonl",
            "test": "test.jsonl",
            "datasets": ["apples"],
            "columns": {"question": "q", "answers": "a", "tool_call": "calc"},
        },
    }
    (root / "apples.yaml").write_text(yaml.safe_dump(recipe))
    return root / "apples.yaml"


def test_own_jsonl_files_run_end_to_end_without_python(tmp_path: Path, tiny_model_dir: Path, monkeypatch, capsys) -> None:
    recipe = _project(tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    argv = ["run", str(recipe), f"model={tiny_model_dir}", *SMALL]
    assert main(argv) == 0, capsys.readouterr().err[-2000:]
    run = tmp_path / "runs" / "apples"  # no run_dir: runs/<recipe name>
    results = read_json(run / "report" / "results.json")
    assert list(results["rows"]) == ["zero-shot", "sft-100", "trice-i"] and "apples" in results["rows"]["trice-i"]
    assert [r["id"] for r in read_jsonl(run / "data" / "test.jsonl")] == ["apples-test-1", "apples-test-2", "apples-test-3"]
    sft_100 = read_jsonl(run / "label" / "sft-100.jsonl")
    assert len(sft_100) == 6 and all(r["output"].startswith("calculator(") for r in sft_100)  # the mapped tool_call column
    assert len(read_jsonl(run / "eval-trice-i" / "judged.jsonl")) == 3

    moved = tmp_path / "elsewhere" / "project"
    shutil.copytree(recipe.parent, moved)
    capsys.readouterr()
    assert main(["run", str(moved / "apples.yaml"), f"model={tiny_model_dir}", *SMALL, "--status"]) == 0
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1]).values()) == {"up to date"}  # same bytes, same run

    with (moved / "test.jsonl").open("a") as fh:
        fh.write(json.dumps({"q": "A bag holds 1 pen and 1 more is added. How many pens are there?", "a": "2"}) + "\n")
    assert main(["run", str(moved / "apples.yaml"), f"model={tiny_model_dir}", *SMALL, "--status"]) == 0
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status["data"] == "changed"
