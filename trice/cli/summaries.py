"""The JSON line a command prints last, for the commands whose function returns no summary itself.

Every ``trice`` command ends with one JSON object on stdout (a script reads the last line); the
trainers and ``candidates`` return the directory or file they wrote, so their summary is read back
from what they wrote: the training log's last entry (steps, examples) and last logged loss, the dev
choice of a stage II training, the candidates' counts per source; ``generate`` returns its rows.
Each summary function takes the command's config and what its function returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trice.core.layout import SELECTION, TRAIN_LOG
from trice.utils.io import read_json, read_jsonl


def training_summary(config: Any, adapter: Path) -> dict[str, Any]:
    """A trainer's result (``output_dir/adapter``): where it is, the steps trained, the examples used
    and the last logged training loss; for a stage II training with a dev set, the step it chose."""
    adapter = Path(adapter)
    out = adapter.parent
    log = read_json(out / TRAIN_LOG) if (out / TRAIN_LOG).is_file() else []
    last = log[-1] if log else {}
    losses = [entry["loss"] for entry in log if "loss" in entry]
    summary = {
        "output_dir": str(out),
        "adapter": str(adapter),
        "step": last.get("step"),
        "examples": last.get("examples"),
        "loss": losses[-1] if losses else None,
    }
    if (out / SELECTION).is_file():
        selection = read_json(out / SELECTION)
        summary |= {k: selection.get(k) for k in ("best_step", "best_accuracy", "best_adapter")}
    return summary


def candidates_summary(config: Any, output: Path) -> dict[str, Any]:
    """``trice candidates``' result (its output file): questions, responses in all, and per source
    how many it gave and how many failed (an endpoint that did not answer)."""
    rows = read_jsonl(output)
    per_source: dict[str, dict[str, int]] = {}
    for row in rows:
        for source, error in zip(row["sources"], row.get("errors") or [None] * len(row["sources"])):
            counts = per_source.setdefault(source, {"responses": 0, "failed": 0})
            counts["failed" if error else "responses"] += 1
    return {"output": str(output), "questions": len(rows), "responses": sum(len(row["responses"]) for row in rows), "sources": per_source}


def generation_summary(config: Any, rows: list[dict]) -> dict[str, Any]:
    """``trice generate``'s rows: where they are, how many, how many requests failed (a rerun retries them)."""
    return {"output": config.output, "responses": len(rows), "failed": sum("error" in row for row in rows)}
