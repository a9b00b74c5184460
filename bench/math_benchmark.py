"""The math benchmark: run recipes/math_bench.yaml and commit its accuracy table.

Prints the result JSON ({"config": ..., "rows": {setting: {dataset: acc, ..., "tool_rate": r}}})
and a one-line summary; writes it to bench/results/math_benchmark/results.json, and the run's report
and plots to report/ beside it. The run resumes if interrupted.

The result file is also the benchmark's lab notebook: its hand-written ``notes`` are kept, and
``tries`` gains one entry per distinct stage II configuration run (the recipe's stage II sections,
the stage II rows and the checkpoints chosen), so what was tried before a result stays on record.
``--results`` records a finished run's ``results.json`` instead of running the recipe.

Every accuracy gets its 95% interval: a run's report bootstraps them from its per-question results
(``intervals``, ``paired``); results recorded before reports held them get binomial intervals and
unpaired comparisons from the accuracies and test sizes alone (``interval_method`` says which).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared report copy

from run_reports import copy_report  # noqa: E402

from trice.pipeline.intervals import BINOMIAL_METHOD, binomial_rows, comparison_pairs, interval_text, unpaired_rows  # noqa: E402
from trice.utils.io import read_json, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGE_TWO_SECTIONS = ("dev", "candidates", "score", "rlef", "trice_ii", "dpo")


def stage_two_try(results: dict[str, Any]) -> dict[str, Any] | None:
    """This run's stage II configuration and outcome, or None for a run without stage II."""
    stage_two = results.get("stage_two") or {}
    if not stage_two:
        return None
    recipe = results["config"]["recipe"]
    rows = {s: r for s, r in results["rows"].items() if s in stage_two.get("selection", {})}
    return {
        "config": {k: recipe.get(k, {}) for k in STAGE_TWO_SECTIONS},
        "rows": rows,
        "best_step": {s: sel["best_step"] for s, sel in stage_two["selection"].items()},
        "dev_accuracy": {s: sel["best_accuracy"] for s, sel in stage_two["selection"].items()},
    }


def with_intervals(results: dict[str, Any]) -> dict[str, Any]:
    """The results, with binomial intervals and unpaired comparisons added where the run's report
    did not bootstrap them (its results hold no per-question rows)."""
    if "intervals" in results:
        return results
    sizes = {ds: d["test_used"] for ds, d in results["config"]["splits"]["datasets"].items()}
    rows = results["rows"]
    return results | {
        "intervals": binomial_rows(rows, results["tool_rate_by_dataset"], sizes),
        "unpaired": unpaired_rows(rows, sizes, comparison_pairs(list(rows))),
        "interval_method": BINOMIAL_METHOD,
    }


def record(results: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """The results with the previous file's notes and tries carried over and this run's try added."""
    tries = [t for t in previous.get("tries", [])]
    this = stage_two_try(results)
    if this is not None:  # a rerun of a recorded config replaces its numbers, keeping notes written on it
        notes = {k: v for t in tries if t["config"] == this["config"] for k, v in t.items() if k not in this}
        tries = [t for t in tries if t["config"] != this["config"]] + [this | notes]
    return results | {"notes": previous.get("notes", []), "tries": tries}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "math_bench.yaml"))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "math_benchmark" / "results.json"))
    parser.add_argument("--results", help="A finished run's report/results.json to record instead of running the recipe.")
    args = parser.parse_args(argv)
    if args.results:
        report = Path(args.results).parent
    else:
        from trice.pipeline.plan import plan_recipe
        from trice.pipeline.runner import run_plan

        report = run_plan(plan_recipe(args.recipe))
    output = Path(args.output)
    results = copy_report(report, output.parent / "report")  # the run's report and plots beside the record
    results = record(with_intervals(results), read_json(output) if output.is_file() else {})
    write_json(output, results)
    rows = results["rows"]
    print(json.dumps(rows))
    print(
        "math benchmark: "
        + ", ".join(
            f"{s} avg {100 * r['avg']:.1f}% {interval_text(*results['intervals'][s]['avg'])} (tool {100 * r['tool_rate']:.0f}%)" for s, r in rows.items()
        )
        + f" -> {args.output}"
    )


if __name__ == "__main__":
    main()
