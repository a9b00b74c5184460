"""A finished run's report copied into a benchmark's result folder (``bench/results/<benchmark>/``),
for the benchmarks recorded from runs of trice: the files a reader opens (``report.md``,
``results.json``, the plots), never the stage's own bookkeeping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from trice.pipeline.stage_dirs import MARKER

COPIED = ("*.md", "*.json", "*.png")


def copy_report(report: Path, out: Path, hint: str = "has the run finished? (trice run RECIPE --status)") -> dict[str, Any]:
    """The report directory's files into ``out``; its results. Files an earlier copy left in ``out``
    are removed first, so a plot of a setting not in this report cannot linger beside it. ``hint``
    ends the error when the report has no results.json."""
    if not (report / "results.json").is_file():
        raise SystemExit(f"{report / 'results.json'} does not exist: {hint}")
    if out.resolve() == report.resolve():
        return json.loads((out / "results.json").read_text(encoding="utf-8"))
    if out.is_dir():
        for pattern in COPIED:
            for old in out.glob(pattern):
                old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    for pattern in COPIED:
        for path in sorted(report.glob(pattern)):
            if path.name != MARKER:  # the stage's bookkeeping on this machine, not a result
                shutil.copy2(path, out / path.name)
    return json.loads((out / "results.json").read_text(encoding="utf-8"))
