"""The native call format at demo size (``recipes/demo_native.yaml``: Qwen2.5-Coder-0.5B trained and
judged on its chat template's own tool calls): a finished run's report recorded under a variant
name beside the other variants, so runs that differ in one training choice (the call markers'
embedding rows trained or not) sit in one file with the notes written on them.

    trice run demo_native                                     # about an hour on 2 CPU cores
    python bench/demo_native.py --variant with_marker_rows    # records runs/demo_native/report/results.json

Writes bench/results/demo_native/results.json: the recipe, the commit and machine of the latest
record, the hand-written ``notes`` kept, and one key per variant holding its run's ``results.json``
(rows, intervals, paired comparisons, label statistics). Prints a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "trice/recipes/demo_native.yaml"
OUT = ROOT / "bench" / "results" / "demo_native" / "results.json"
HEADER = ("recipe", "commit", "machine", "notes")


def record(previous: dict[str, Any], variant: str, results: dict[str, Any], commit: str, machine: str) -> dict[str, Any]:
    """The result file with ``results`` under ``variant``: the other variants and the notes kept, in
    their order, and the commit and machine this record was made on."""
    out: dict[str, Any] = {"recipe": RECIPE, "commit": commit, "machine": machine, "notes": previous.get("notes", [])}
    return out | {k: v for k, v in previous.items() if k not in HEADER} | {variant: results}


def this_machine() -> str:
    """The machine in words: CPU cores, and the GPU if there is one."""
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores, {gpu}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True, help="The name the run is recorded under (e.g. with_marker_rows).")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "demo_native", help="The finished run directory.")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--machine", help="The machine in words (default: its CPU cores and GPU).")
    args = parser.parse_args(argv)
    results_file = args.run / "report" / "results.json"
    if not results_file.is_file():
        raise SystemExit(f"{results_file} does not exist: has the run finished? (trice run demo_native --status)")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    previous = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip() or "unknown"
    recorded = record(previous, args.variant, results, commit, args.machine or this_machine())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    avg = {setting: round(100 * row["avg"], 1) for setting, row in results["rows"].items()}
    print(f"demo_native {args.variant}: avg accuracy {avg} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
