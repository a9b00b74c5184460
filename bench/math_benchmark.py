"""The math benchmark: run recipes/math_bench.yaml and commit its accuracy table.

Prints the result JSON ({"config": ..., "rows": {setting: {dataset: acc, ..., "tool_rate": r}}})
and a one-line summary; writes it to bench/results/math.json. The run resumes if interrupted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trice.io import read_json, write_json
from trice.pipeline import plan_recipe, run_plan

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "math_bench.yaml"))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "math.json"))
    args = parser.parse_args()
    plan = plan_recipe(args.recipe)
    report_dir = run_plan(plan)
    results = read_json(report_dir / "results.json")
    write_json(args.output, results)
    print(json.dumps(results["rows"]))
    rows = results["rows"]
    print(
        "math benchmark: "
        + ", ".join(f"{s} avg {100 * r['avg']:.1f}% (tool {100 * r['tool_rate']:.0f}%)" for s, r in rows.items())
        + f" -> {args.output}"
    )


if __name__ == "__main__":
    main()
