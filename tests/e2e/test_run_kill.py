"""`trice run` killed with SIGKILL at many moments, rerun each time, ends with exactly the results
of an uninterrupted run, and never redoes a stage that had finished before a kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trice.utils.io import read_json

REPO = Path(__file__).resolve().parents[2]
SMALL = {"max_new_tokens": 4, "batch_size": 2}
# The stages to kill in (each a separate run, killed a random moment after the stage started).
TARGETS = ["probe", "train-trice-i", "candidates", "score", "train-trice-all", "eval-trice-all", "report"]


def _recipe(tmp_path: Path, run_dir: Path, model: Path, data_dir: Path) -> Path:
    stage_two = {"max_steps": 3, "save_steps": 1, "learning_rate": 1e-3, "dev_max_new_tokens": 4, "dev_batch_size": 2}
    body = {
        "run_dir": str(run_dir),
        "model": str(model),
        "seed": 0,
        "settings": ["zero-shot", "trice-i", "trice-all"],
        "data": {"data_dir": str(data_dir), "n_train": 4, "n_test": 3},
        "probe": {"batch_size": 2, "max_new_tokens": 4},
        "train": {"max_steps": 4, "save_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3},
        "dev": {"n_per_dataset": 1},
        "candidates": {
            "sources": [
                {"name": "gold", "kind": "gold"},
                {"name": "base", "kind": "responses", "path": "probe"},
                {"name": "early", "kind": "model", "adapter": "stage-i-early", **SMALL},
                {"name": "sampled", "kind": "model", "adapter": "stage-i", "do_sample": True, "temperature": 1.5, **SMALL},
            ]
        },
        "rlef": stage_two | {"gradient_accumulation_steps": 2},
        "eval": {"batch_size": 2, "max_new_tokens": 4},
    }
    path = tmp_path / f"{run_dir.name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _env() -> dict[str, str]:
    return os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run(recipe: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trice.cli", "run", str(recipe)], cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def _finished(run_dir: Path) -> dict[str, int]:
    """Completed stages and their marker's mtime (a rerun of a stage rewrites its marker)."""
    done = {}
    for marker in run_dir.glob("*/stage.json"):
        state = json.loads(marker.read_text())
        if state["complete"]:
            done[marker.parent.name] = marker.stat().st_mtime_ns
    return done


def _kill_in(recipe: Path, run_dir: Path, stage: str, delay: float, log: Path, deadline_s: float = 300.0) -> bool:
    """Start the run; once ``stage`` has started, wait ``delay`` seconds and SIGKILL it. False when the
    run finished (or passed the stage) first."""
    proc, start = _run(recipe, log), time.monotonic()
    try:
        while proc.poll() is None:
            assert time.monotonic() - start < deadline_s, log.read_text(errors="replace")[-3000:]
            if (run_dir / stage / "stage.json").exists():
                time.sleep(delay)
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return True
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]
    return False


def _outputs(run_dir: Path) -> dict[str, object]:
    """Everything the results are made of: the report rows, every judged test answer, the scored candidates."""
    rows = lambda p: sorted(p.read_text().splitlines())  # noqa: E731
    out: dict[str, object] = {"rows": read_json(run_dir / "report" / "results.json")["rows"]}
    for path in sorted(run_dir.glob("eval-*/judged.jsonl")) + [run_dir / "score" / "scored.jsonl", run_dir / "dev" / "dev.jsonl"]:
        out[str(path.relative_to(run_dir))] = rows(path)
    out["selection"] = read_json(run_dir / "train-trice-all" / "selection.json")["best_step"]
    return out


@pytest.mark.slow
def test_run_killed_at_any_moment_finishes_with_the_uninterrupted_results(tmp_path, tiny_model_dir, data_dir) -> None:
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    log = tmp_path / "run.log"
    reference = _recipe(tmp_path, reference_dir, tiny_model_dir, data_dir)
    proc = _run(reference, log)
    assert proc.wait(timeout=600) == 0, log.read_text(errors="replace")[-3000:]

    recipe = _recipe(tmp_path, killed_dir, tiny_model_dir, data_dir)
    rng = random.Random(0)
    kills = 0
    for stage in TARGETS:
        before = _finished(killed_dir)
        if _kill_in(recipe, killed_dir, stage, rng.uniform(0.0, 1.5), log):
            kills += 1
        after = _finished(killed_dir)
        redone = [s for s, mtime in before.items() if after.get(s) != mtime]
        assert not redone, f"stages finished before the kill were run again: {redone}"
    assert kills >= len(TARGETS) - 2  # most kills landed mid-run (a fast stage may finish first)

    before = _finished(killed_dir)
    proc = _run(recipe, log)
    assert proc.wait(timeout=600) == 0, log.read_text(errors="replace")[-3000:]
    after = _finished(killed_dir)
    assert all(after[s] == mtime for s, mtime in before.items())
    assert _outputs(killed_dir) == _outputs(reference_dir)
