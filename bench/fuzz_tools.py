"""Long fuzz campaign for the tools: ``python bench/fuzz_tools.py --cases 10000``.

Runs the same hostile-input properties as tests/tools/test_fuzz.py over many more cases per target
(see bench/fuzz_cases.py and trice.tools.fuzz), prints one JSON object with the counts and then a one-line summary, and
exits 1 if any case raised something other than a ToolError, answered a valid expression wrongly,
took SLOW_SECONDS or more, or touched the file system.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import hypothesis
from fuzz_cases import TARGETS, run_campaign  # bench/fuzz_cases.py, beside this script

from trice.tools.fuzz import SLOW_SECONDS, campaign_failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="generated cases per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)

    report: dict = {
        "cases_per_target": args.cases,
        "seed": args.seed,
        "slow_seconds": SLOW_SECONDS,
        "python": platform.python_version(),
        "hypothesis": hypothesis.__version__,
        "targets": {},
    }
    for target in args.targets:
        start = time.perf_counter()
        stats = run_campaign(target, args.cases, args.seed)
        stats["wall_seconds"] = round(time.perf_counter() - start, 2)
        report["targets"][target] = stats
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")

    failed = [t for t, s in report["targets"].items() if campaign_failed(s)]
    parts = [
        f"{t}: {s['cases']} cases, {s['ok']} ok, {sum(s['errors'].values())} typed errors, "
        f"{s['unexpected']} unexpected, {s['wrong']} wrong, {s['slow']} slow (max {s['max_seconds']:.4f}s), "
        f"{s['fs_touches']} fs touches"
        for t, s in report["targets"].items()
    ]
    print(("FAIL " if failed else "PASS ") + "; ".join(parts))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
