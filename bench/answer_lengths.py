"""How long the untuned policy's answers are, and what a generation limit of N tokens costs it:
the measurement a recipe's ``max_new_tokens`` is chosen from, rather than a habit.

``python bench/answer_lengths.py RECIPE`` probes the recipe's model on a few training-pool
questions per dataset (its ``probe`` section, the same prompt zero-shot uses) with a generous
limit (``--max-new-tokens``, 256 by default), in a scratch run directory of its own (resumable), then
cuts every answer to each of ``--cuts`` tokens and judges it again. Greedy decoding makes this exact:
the first N tokens of a 256-token greedy answer are the N-token greedy answer. ``--probe-dir``
measures an existing probe (a run's ``probe/``) instead of generating, at the limit it was probed with.

Per dataset: the answers' length (median, 90th percentile, the share that reached the limit, so a
limit that was itself too short shows), the share calling a tool, the accuracy at each cut with its
95% (Wilson) interval, and ``lossless_cut``: the shortest cut at which every answer right at the
longest cut is still right. Training-pool questions only: no test question decides a decoding
setting. Prints the result JSON and a one-line summary; writes ``--output``
(bench/results/answer_lengths/<recipe>.json by default).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trice.generation.models import call_format_of, load_tokenizer
from trice.judge.evaluate import judge_rows
from trice.judge.reading import ReadingModel
from trice.core.layout import JUDGED, READINGS
from trice.pipeline.plan import Plan, plan_recipe
from trice.pipeline.runner import run_plan
from trice.pipeline.stage_dirs import MARKER
from trice.tasks import tool_registries
from trice.utils.config import load_layered_yaml, merge_over
from trice.utils.io import read_json, read_jsonl, write_json
from trice.utils.stats import wilson_interval

ROOT = Path(__file__).resolve().parents[1]
CUTS = (32, 48, 64, 96, 128, 160, 200, 256)
SLACK = 2  # an answer's text encoded again can come out a token or two shorter than it was generated


def probe_plan(recipe: Path, run_dir: Path, n_per_dataset: int, max_new_tokens: int) -> Plan:
    """The recipe with only what a probe needs changed: a few training questions per dataset, the
    generous limit, its own run directory, and no trained setting (so no stage II pool to check)."""
    raw = load_layered_yaml(recipe)
    changes = {"run_dir": str(run_dir), "settings": ["zero-shot"], "data": {"n_train": n_per_dataset}, "probe": {"max_new_tokens": max_new_tokens}}
    return plan_recipe(recipe, overrides=merge_over(raw, changes))


def cut_response(text: str, ids: list[int], decode: Callable[[list[int]], str], n: int) -> str:
    """``text`` (encoded as ``ids``) cut to its first ``n`` tokens."""
    return text if len(ids) <= n else decode(ids[:n])


def length_stats(lengths: Sequence[int], limit: int) -> dict[str, float]:
    """Median, 90th percentile and longest answer, and the share that reached the probe's limit
    (within :data:`SLACK` tokens)."""
    a = np.asarray(lengths)
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "max": int(a.max()), "at_limit": float(np.mean(a >= limit - SLACK))}


def cut_table(judged_by_cut: dict[int, list[dict]]) -> dict[str, dict[str, Any]]:
    """Per dataset: accuracy at each cut with its interval, and the shortest lossless cut."""
    longest = max(judged_by_cut)
    table: dict[str, dict[str, Any]] = defaultdict(lambda: {"accuracy": {}})
    for cut, rows in sorted(judged_by_cut.items()):
        by_dataset: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_dataset[row["dataset"]].append(row)
        for name, group in by_dataset.items():
            i = wilson_interval(float(np.mean([r["correct"] for r in group])), len(group))
            table[name]["accuracy"][str(cut)] = {"accuracy": i.estimate, "low": i.low, "high": i.high}
    for name, entry in table.items():
        right = {r["id"] for r in judged_by_cut[longest] if r["dataset"] == name and r["correct"]}
        entry["lossless_cut"] = next(
            cut for cut in sorted(judged_by_cut) if right <= {r["id"] for r in judged_by_cut[cut] if r["dataset"] == name and r["correct"]}
        )
    return dict(table)


def measure(rows: list[dict], cuts: Sequence[int], limit: int, tokenizer: Any, judge: Callable[[list[dict]], list[dict]]) -> dict[str, Any]:
    """Lengths, tool use and accuracy at each cut of probe ``rows`` (with ``response``); ``judge``
    judges a list of rows (the recipe's task, tools and reader)."""
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    ids = {r["id"]: tokenizer.encode(r["response"], add_special_tokens=False) for r in rows}  # once per answer, for every cut
    lengths = {i: len(v) for i, v in ids.items()}
    judged = {cut: judge([r | {"response": cut_response(r["response"], ids[r["id"]], decode, cut)} for r in rows]) for cut in cuts}
    table = cut_table(judged)
    for name, entry in table.items():
        group = [r for r in judged[max(cuts)] if r["dataset"] == name]
        entry |= {
            "n": len(group),
            "tokens": length_stats([lengths[r["id"]] for r in group], limit),
            "tool_use": float(np.mean([r["used_tool"] for r in group])),
        }
    return {"limit": limit, "cuts": list(cuts), "datasets": table}


def summary_line(result: dict[str, Any]) -> str:
    parts = [
        f"{name}: median {d['tokens']['median']:.0f} tok, {d['tokens']['at_limit']:.0%} at limit, "
        f"tool {d['tool_use']:.0%}, acc {d['accuracy'][str(max(result['cuts']))]['accuracy']:.0%}, lossless at {d['lossless_cut']}"
        for name, d in sorted(result["datasets"].items())
    ]
    return f"answer_lengths ({result['recipe']}, limit {result['limit']}): " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--n-per-dataset", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="The probe's limit (a --probe-dir's own is used).")
    parser.add_argument("--cuts", default=",".join(map(str, CUTS)))
    parser.add_argument("--probe-dir", help="Measure this existing probe directory (judged.jsonl) instead of generating.")
    parser.add_argument("--run-dir", help="Scratch run directory (default runs/answer-lengths-<recipe>).")
    parser.add_argument("--output", help="Default bench/results/answer_lengths/<recipe>.json.")
    args = parser.parse_args()
    recipe = Path(args.recipe).resolve()
    plan = probe_plan(recipe, Path(args.run_dir or ROOT / "runs" / f"answer-lengths-{recipe.stem}"), args.n_per_dataset, args.max_new_tokens)
    probe_dir = Path(args.probe_dir) if args.probe_dir else plan.layout.probe
    if not args.probe_dir:
        run_plan(plan, stages=["data", "probe"])
    limit = read_json(probe_dir / MARKER)["config"]["max_new_tokens"]
    cuts = sorted({int(c) for c in args.cuts.split(",") if int(c) < limit} | {limit})  # longer cuts than the limit cut nothing
    reader = ReadingModel.for_config(plan.probe, cache=probe_dir / READINGS, desc="read again")
    registry = tool_registries(plan.tools)  # every cut's calls run on the same built tools

    def judge(rows: list[dict]) -> list[dict]:
        return judge_rows(rows, plan.judge_task, reader, plan.tools, calls=call_format_of(plan.probe), registry=registry)

    rows = read_jsonl(probe_dir / JUDGED)
    result = measure(rows, cuts, limit, load_tokenizer(plan.probe.model), judge)
    result |= {
        "recipe": recipe.stem,
        "model": plan.probe.model,
        "template": plan.probe.template,
        "probe_dir": str(probe_dir),
        "n_per_dataset": args.n_per_dataset,
        "split": "train",
        "seed": plan.recipe.seed,
    }
    write_json(Path(args.output or ROOT / "bench" / "results" / "answer_lengths" / f"{recipe.stem}.json"), result)
    print(json.dumps(result, indent=1))
    print(summary_line(result))


if __name__ == "__main__":
    main()
