"""The MIX benchmark with Qwen2.5-Coder-0.5B as the policy (``recipes/mix_qwen.yaml``): one run over
the eight test sets, recorded from that run's own report.

``eight_sets.py`` assembles the SmolLM2 tables from four runs; this run is one recipe, so its
report already holds every row, interval, paired comparison and finding. This copies the report
into ``bench/results/mix_qwen/`` and prints the table of ``docs/benchmarks.md`` from ``results.json``,
which ``tests/bench/test_mix_qwen.py`` holds that page (and the README's summary of it) to.

    trice run mix_qwen              # resumable; several sessions on 2 CPU cores
    python bench/mix_qwen.py        # then paste the printed tables into docs/benchmarks.md

While the run is still evaluating, ``trice run mix_qwen --report-so-far`` then
``python bench/mix_qwen.py --so-far`` records the settings evaluated so far (results.json's
``partial`` names the rest); the old results are replaced, not merged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared report copy

from run_reports import copy_report as copy_report_dir  # noqa: E402

from trice.core.layout import REPORT, REPORT_SO_FAR  # noqa: E402
from trice.pipeline.intervals import interval_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "mix-qwen"
OUT = ROOT / "bench" / "results" / "mix_qwen"
NAMES = {
    "asdiv-a": "ASDiv-A", "svamp": "SVAMP", "gsm8k": "GSM8K", "webq": "WebQ", "nq": "NQ",
    "triviaqa": "TriviaQA", "trex": "T-REx", "xquad-zh": "XQuAD-zh",
}  # fmt: skip


def cell(value: float, interval: list[float]) -> str:
    """An accuracy in points with its 95% interval, as docs/benchmarks.md writes it."""
    return f"{100 * value:.1f} {interval_text(*interval)}"


def docs_table(results: dict[str, Any]) -> list[str]:
    """The table of docs/benchmarks.md: each setting's accuracy per test set and on average, with intervals, and
    its tool use over all test questions."""
    datasets = [ds for ds in next(iter(results["rows"].values())) if ds not in ("avg", "tool_rate")]
    lines = ["| setting | " + " | ".join(NAMES.get(ds, ds) for ds in datasets) + " | avg | tool use |", "|---|" + "---|" * (len(datasets) + 2)]
    for setting, row in results["rows"].items():
        intervals = results["intervals"][setting]
        cells = [cell(row[ds], intervals[ds]) for ds in datasets] + [cell(row["avg"], intervals["avg"]), f"{row['tool_rate']:.0%}"]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return lines


def findings_table(results: dict[str, Any]) -> list[str]:
    """The five findings as docs/benchmarks.md lists them: verdict and what was measured."""
    return ["| finding (the paper's) | status | measured |", "|---|---|---|"] + [
        f"| {name} | {found['verdict']} | {found['measured']} |" for name, found in results["findings"].items()
    ]


def copy_report(run: Path, out: Path, so_far: bool = False) -> dict[str, Any]:
    """The finished run's report files into ``out`` (``so_far``: the report of the settings evaluated
    so far); its results (:func:`run_reports.copy_report`)."""
    hint = "trice run mix_qwen --report-so-far" if so_far else "the run has not finished (trice run mix_qwen --status)"
    return copy_report_dir(run / (REPORT_SO_FAR if so_far else REPORT), out, hint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN, help="The finished run directory.")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--so-far", action="store_true", help="Record the run's report-so-far/ (the settings evaluated so far).")
    args = parser.parse_args(argv)
    results = copy_report(args.run, args.out, args.so_far)
    print("\n".join(docs_table(results)) + "\n\n" + "\n".join(findings_table(results)))
    avg = {setting: round(100 * row["avg"], 1) for setting, row in results["rows"].items()}
    not_yet = results.get("partial", {}).get("not_yet", [])
    print(f"mix-qwen: avg accuracy {avg}" + (f"; not evaluated yet: {', '.join(not_yet)}" if not_yet else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
