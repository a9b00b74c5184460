"""The eight-test-set benchmark: SPLIT and MIX tables over WebQ, NQ, TriviaQA, T-REx, XQuAD-zh,
ASDiv, SVAMP and GSM8K, assembled from finished runs.

MIX is one run (recipes/mix_bench.yaml). SPLIT is one run per task: recipes/split_bench_{qa,lama,
mlqa}.yaml, and for math the committed math benchmark (bench/results/math_benchmark/results.json; its recipe trains on
more math questions than the MIX run's math share, which the result file says). Zero-shot is the same
base model on the same questions in both halves, so the MIX run's zero-shot row serves both.

Before anything is combined, every source must have drawn its test sets the same way (seed,
test_fraction, n_test and the number of questions used per set): a mismatch is an error naming the
file and the dataset, never a silently mixed table. A source that is not there yet (a run still going)
is listed under ``missing`` and the tables hold what is known; ``complete`` says whether all eight
sets are in every row.

Each finished run's ``report/`` directory is committed under bench/results/eight_sets/ (``mix/``,
``split-qa/``, ``split-lama/``, ``split-mlqa/``; copied there from the runs named on the command
line), which are this script's defaults, so the tables can be rebuilt from the repository alone.

Every accuracy gets its 95% interval, and ``differences`` compares TRICE-ALL and TRICE-I with TRICE-I
and each baseline (``split_vs_mix``: each trained setting's two halves). Where every source's report
recorded its per-question results (``per_question``), they are bootstrapped and the differences
paired; the committed reports lack that record, so their intervals are binomial (Wilson)
per set with each average's from the summed per-set variances, and the differences unpaired
(``interval_method`` says which).

Prints the result JSON and a one-line summary; writes bench/results/eight_sets/results.json and the
Markdown tables next to it (report.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared report copy

from run_reports import copy_report  # noqa: E402

from trice.utils.io import read_json, write_json, write_text  # noqa: E402
from trice.pipeline.report import markdown_table  # noqa: E402
from trice.pipeline.intervals import (  # noqa: E402
    BINOMIAL_METHOD,
    Judged,
    binomial_rows,
    comparison_pairs,
    comparison_table,
    interval_method,
    interval_rows,
    judged_from_record,
    paired_rows,
    unpaired_rows,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "eight_sets"  # this result, and the four run reports it is built from
TEST_SETS = {"webq": "qa", "nq": "qa", "triviaqa": "qa", "trex": "lama", "xquad-zh": "mlqa", "asdiv": "math", "svamp": "math", "gsm8k": "math"}
SETTINGS = ("zero-shot", "sft-0", "sft-100", "trice-i", "trice-all")
BASELINES = ("zero-shot", "sft-0", "sft-100")
DRAW = ("seed", "test_fraction", "n_test")  # what decides which test questions a run draws


def _draw(results: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, int]]:
    """How ``results`` drew its test sets: the recipe's sampling settings and questions used per set."""
    recipe = results["config"]["recipe"]
    draw = {"seed": recipe["seed"]} | {k: recipe["data"].get(k) for k in DRAW if k != "seed"}
    used = {ds: d["test_used"] for ds, d in results["config"]["splits"]["datasets"].items()}
    unknown = sorted(set(used) - set(TEST_SETS))
    if unknown:
        raise ValueError(f"{where}: test set(s) {unknown} are not among the benchmark's eight ({', '.join(TEST_SETS)})")
    return draw, used


def combine(sources: dict[str, dict[str, Any]], wanted: dict[str, tuple[str, ...]]) -> tuple[dict[str, Any], Judged | None]:
    """One table from several runs' results: ``sources`` maps a file name to its results; ``wanted``
    maps the same name to the settings to take from it. Every source must draw its test sets alike.
    Also returns the table's per-question results where every source recorded them, else None."""
    rows: dict[str, dict[str, float]] = {}
    answers: Judged | None = {} if all("per_question" in r for r in sources.values()) else None
    rates: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    sized_by: dict[str, str] = {}
    reference: tuple[str, dict[str, Any]] | None = None
    for where, results in sources.items():
        draw, used = _draw(results, where)
        if reference is None:
            reference = (where, draw)
        elif draw != reference[1]:
            raise ValueError(f"{where}: test sets drawn with {draw}, but {reference[0]} drew with {reference[1]}")
        for ds, n in used.items():
            if sizes.setdefault(ds, n) != n:
                raise ValueError(f"{where}: {ds} has {n} test questions, {sized_by[ds]} has {sizes[ds]}")
            sized_by.setdefault(ds, where)
        recorded = judged_from_record(results["per_question"]) if answers is not None else {}
        for setting in wanted[where]:
            if setting not in results["rows"]:
                raise ValueError(f"{where}: no row {setting!r} (rows: {', '.join(results['rows'])})")
            row, by_ds = results["rows"][setting], results["tool_rate_by_dataset"][setting]
            rows.setdefault(setting, {}).update({ds: row[ds] for ds in used})
            rates.setdefault(setting, {}).update({ds: by_ds[ds] for ds in used})
            if answers is not None:
                answers.setdefault(setting, {}).update({ds: recorded[setting][ds] for ds in used})
    order = [ds for ds in TEST_SETS if ds in sizes]
    table = {}
    for setting in [s for s in SETTINGS if s in rows]:
        have = [ds for ds in order if ds in rows[setting]]
        n = sum(sizes[ds] for ds in have)
        table[setting] = {ds: rows[setting][ds] for ds in have} | {
            "avg": sum(rows[setting][ds] for ds in have) / len(have),
            "tool_rate": sum(rates[setting][ds] * sizes[ds] for ds in have) / n,
            "n_sets": len(have),
        }
    table_rates = {s: {ds: rates[s][ds] for ds in order if ds in rates[s]} for s in table}
    test_sizes = {ds: sizes[ds] for ds in order}
    half = {"rows": table, "tool_rate_by_dataset": table_rates, "test_sizes": test_sizes}
    return half, None if answers is None else {s: answers[s] for s in table}


def with_uncertainty(half: dict[str, Any], answers: Judged | None, seed: int) -> dict[str, Any]:
    """The half's table with each accuracy's 95% interval and TRICE-ALL's and TRICE-I's differences
    from TRICE-I and each baseline: bootstrapped and paired from per-question results where there are
    some, else binomial and unpaired."""
    pairs = comparison_pairs(list(half["rows"]), ("trice-i", *BASELINES[::-1]))
    if answers is not None:
        return half | {"intervals": interval_rows(answers, seed), "differences": paired_rows(answers, pairs, seed)}
    return half | {
        "intervals": binomial_rows(half["rows"], half["tool_rate_by_dataset"], half["test_sizes"]),
        "differences": unpaired_rows(half["rows"], half["test_sizes"], pairs),
    }


def _committed_nq(value: Any) -> Any:
    """``value`` with the dataset key ``nq-dpr`` spelled ``nq``: the benchmark recipes draw NQ as
    ``nq-dpr`` (DPR training pool, NQ-open dev as test, the same question ids), the split the
    committed results name ``nq``."""
    if isinstance(value, dict):
        return {("nq" if k == "nq-dpr" else k): _committed_nq(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_committed_nq(v) for v in value]
    return value


def _load(path: Path, missing: list[str]) -> dict[str, Any] | None:
    if path.is_file():
        return _committed_nq(read_json(path))
    missing.append(_rel(path))
    return None


def _rel(path: Path) -> str:
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def split_vs_mix(halves: dict[str, Any], answers: dict[str, Judged | None], seed: int) -> dict[str, dict[str, dict[str, Any]]]:
    """Each trained setting's SPLIT accuracy minus its MIX accuracy where both halves have it: paired
    where both halves have per-question results (the same questions), else unpaired."""
    if set(halves) != {"split", "mix"}:
        return {}
    trained = [s for s in SETTINGS if s != "zero-shot" and all(s in halves[h]["rows"] for h in halves)]
    pairs = [(f"{s} (split)", f"{s} (mix)") for s in trained]
    split_answers, mix_answers = answers.get("split"), answers.get("mix")
    if split_answers is not None and mix_answers is not None:
        judged = {f"{s} ({h})": a[s] for s in trained for h, a in (("split", split_answers), ("mix", mix_answers))}
        return paired_rows(judged, pairs, seed)
    rows = {f"{s} ({h})": halves[h]["rows"][s] for s in trained for h in ("split", "mix")}
    return unpaired_rows(rows, halves["mix"]["test_sizes"], pairs)


def build(mix: Path, split: dict[str, Path]) -> dict[str, Any]:
    """The benchmark result from the MIX run's results and each SPLIT task's results."""
    missing: list[str] = []
    mix_results = _load(mix, missing)
    split_results = {task: r for task, path in split.items() if (r := _load(path, missing)) is not None}
    halves: dict[str, Any] = {}
    answers: dict[str, Judged | None] = {}
    recipes: dict[str, Any] = {}
    if mix_results is not None:
        halves["mix"], answers["mix"] = combine({_rel(mix): mix_results}, {_rel(mix): SETTINGS})
        recipes["mix"] = mix_results["config"]["recipe"]
    split_sources = {_rel(split[t]): r for t, r in split_results.items()}
    split_wanted = {_rel(split[t]): tuple(s for s in SETTINGS if s in r["rows"] and s != "zero-shot") for t, r in split_results.items()}
    if mix_results is not None:  # zero-shot: the same base model and questions, run once
        split_sources[_rel(mix)] = mix_results
        split_wanted[_rel(mix)] = ("zero-shot",)
    if split_sources:
        halves["split"], answers["split"] = combine(split_sources, split_wanted)
        recipes["split"] = {t: r["config"]["recipe"] for t, r in split_results.items()}
    loaded = [r for r in (mix_results, *split_results.values()) if r is not None]
    seed = loaded[0]["config"]["recipe"]["seed"] if loaded else 0  # every source drew with the same seed (combine checks)
    bootstrap = bool(halves) and all(a is not None for a in answers.values())
    if not bootstrap:  # one method for the whole result: binomial wherever a single source lacks the record
        answers = {h: None for h in answers}
    halves = {h: with_uncertainty(half, answers[h], seed) for h, half in halves.items()}
    complete = (
        not missing
        and all(set(h["rows"]) == set(SETTINGS) and all(r["n_sets"] == len(TEST_SETS) for r in h["rows"].values()) for h in halves.values())
        and len(halves) == 2
    )
    result: dict[str, Any] = {
        "complete": complete,
        "missing": missing,
        "sources": {"mix": _rel(mix), "split": {t: _rel(p) for t, p in split.items()}, "zero-shot": "the MIX run's zero-shot row, for both halves"},
        **halves,
        "split_vs_mix": split_vs_mix(halves, answers, seed),
        "interval_method": interval_method(seed) if bootstrap else BINOMIAL_METHOD,
        "recipes": recipes,
    }
    mix_rows = halves.get("mix", {}).get("rows", {})
    if complete:
        result["acceptance"] = {
            "trice-all (mix) avg": mix_rows["trice-all"]["avg"],
            "beats": {b: mix_rows["trice-all"]["avg"] > mix_rows[b]["avg"] for b in BASELINES},
            "beyond_noise": {b: halves["mix"]["differences"][f"trice-all vs {b}"]["avg"]["verdict"] for b in BASELINES},
        }
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Eight test sets: SPLIT and MIX", "", f"Complete: {result['complete']}."]
    if result["missing"]:
        lines += ["", "Not run yet: " + ", ".join(f"`{m}`" for m in result["missing"]) + "."]
    for half in ("split", "mix"):
        if half in result:
            sizes = ", ".join(f"{ds} {n}" for ds, n in result[half]["test_sizes"].items())
            lines += ["", f"## {half.upper()}", "", f"Test questions: {sizes}.", "", "Cells: accuracy % [95% interval] (tool-use rate).", ""]
            named = {s: s if r["n_sets"] == len(TEST_SETS) else f"{s} ({r['n_sets']} of {len(TEST_SETS)} sets)" for s, r in result[half]["rows"].items()}
            rows = {named[s]: {k: v for k, v in r.items() if k != "n_sets"} for s, r in result[half]["rows"].items()}
            rates = {named[s]: r for s, r in result[half]["tool_rate_by_dataset"].items()}
            intervals = {named[s]: r for s, r in result[half]["intervals"].items()}
            lines.append(markdown_table(rows, rates, intervals))
            if result[half]["differences"]:
                lines += [
                    "",
                    "Accuracy differences, first setting minus second, points [95% interval]:",
                    "",
                    *comparison_table(result[half]["differences"], list(result[half]["test_sizes"])),
                ]
    if result["split_vs_mix"]:
        lines += ["", "## SPLIT minus MIX", "", "Points [95% interval]:", "", *comparison_table(result["split_vs_mix"], list(TEST_SETS))]
    lines += ["", f"Intervals: {result['interval_method']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--mix", default=str(OUT / "mix" / "results.json"), help="The MIX run's report/results.json (committed: a copy of its report/ directory)."
    )
    parser.add_argument("--split-math", default=str(ROOT / "bench" / "results" / "math_benchmark" / "results.json"))
    for task in ("qa", "lama", "mlqa"):
        parser.add_argument(f"--split-{task}", default=str(OUT / f"split-{task}" / "results.json"), help=f"The {task} SPLIT run's report/results.json.")
    parser.add_argument("--output", default=str(OUT / "results.json"))
    args = parser.parse_args(argv)
    split = {t: Path(getattr(args, f"split_{t}")) for t in ("math", "qa", "lama", "mlqa")}
    result = build(Path(args.mix), split)
    output = Path(args.output)
    reports = {"mix": Path(args.mix)} | {f"split-{t}": split[t] for t in ("qa", "lama", "mlqa")}
    for name, path in reports.items():  # each run's report beside the result (a copy of itself: nothing)
        if path.is_file():
            copy_report(path.parent, output.parent / name)
    write_json(output, result)
    write_text(output.parent / "report.md", markdown(result))
    print(json.dumps({h: result[h]["rows"] for h in ("split", "mix") if h in result}))
    summary = [
        f"{h.upper()} " + ", ".join(f"{s} {100 * r['avg']:.1f}%/{r['n_sets']} sets" for s, r in result[h]["rows"].items())
        for h in ("split", "mix")
        if h in result
    ]
    state = "complete" if result["complete"] else f"INCOMPLETE ({len(result['missing'])} sources missing)"
    print(f"eight sets, {state}: " + "; ".join(summary) + f" -> {args.output}")


if __name__ == "__main__":
    main()
