"""The findings benchmark: recipes/math_qwen.yaml (Qwen2.5-Coder-0.5B policy), and TRICE's five
findings, each marked holds / does not hold with its numbers and 95% intervals.

``python bench/math_qwen.py`` runs the recipe (resumably) and records it; ``--record-only`` records
what the run directory holds so far without running anything, so a run spread over several sessions
can be committed part by part: each finding whose rows are not evaluated yet says "not measured yet".
Prints the result JSON and a one-line summary; writes bench/results/math_qwen/results.json (its hand-written
``notes`` and ``tries`` are kept) and the Figure 4 plot beside it.

``--try TRY.yaml`` runs one stage II try (a recipe laid over math_qwen.yaml, in ``bench/tries/``,
with its own run directory): the main run's finished stages that the try's stage II reads are
copied into the try's directory, those the try changes (an online round's candidates) are run
again there, the try's stage II setting is trained and evaluated (all resumably), and its entry in
``tries`` is written: what the try changes, its dev curve and chosen step, its test row with the
95% interval, and paired differences from the main run's TRICE-I and SFT 100% on the same questions.

The findings and their verdicts are :mod:`trice.pipeline.findings`' (every run's report has them too).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from trice.pipeline import stage_specs
from trice.pipeline.findings import findings, tool_drop_finding, tool_use_by_zero_shot
from trice.pipeline.intervals import interval_rows, paired_rows, per_question, read_judged
from trice.core.layout import SELECTION, SUMMARY, RunLayout
from trice.pipeline.plan import Plan, plan_recipe
from trice.pipeline.plots import plot_tool_use_by_zero_shot
from trice.pipeline.report import stage_two_summary
from trice.pipeline.runner import run_plan, stage_status
from trice.pipeline.stage_dirs import MARKER, claim_run_dir
from trice.utils.config import load_yaml
from trice.utils.io import read_json, write_json

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "trice" / "recipes" / "math_qwen.yaml"
OUTPUT = ROOT / "bench" / "results" / "math_qwen" / "results.json"
SEED = 0


def finished_evals(run: RunLayout, settings: list[str]) -> list[str]:
    """The settings whose test evaluation stage has finished (its summary is written last)."""
    return [s for s in settings if (run.eval_dir(s) / SUMMARY).is_file()]


def collect(run_dir: Path) -> dict[str, Any]:
    """Everything the run directory holds so far, with the findings."""
    run = RunLayout(run_dir)
    recipe = read_json(run.recipe)
    settings, datasets = recipe["settings"], recipe["data"]["datasets"]
    done = finished_evals(run, settings)
    judged = read_judged(run_dir, done, datasets) if done else {}
    label_stats = {m: read_json(run.label_stats(m)) for m in ("trice", "sft-0", "sft-100") if run.label_stats(m).is_file()}
    stage_two = stage_two_summary(run, [s for s in settings if (run.train_dir(s) / SELECTION).is_file()])
    pairs = [
        (a, b)
        for a, b in (
            ("trice-all", "trice-i"),
            ("trice-all", "sft-100"),
            ("trice-all", "sft-0"),
            ("trice-ii", "trice-all"),
            ("trice-i", "zero-shot"),
            ("trice-all-dpo", "trice-i"),
        )
        if a in judged and b in judged
    ]
    paired = paired_rows(judged, pairs, SEED) if pairs else {}
    probe = run.probe / SUMMARY
    return {
        "config": {"recipe": recipe, "run_dir": str(run_dir)},
        "evaluated": done,
        "not_yet": [s for s in settings if s not in done],
        "rows": {s: read_json(run.eval_dir(s) / SUMMARY) for s in done},
        "intervals": interval_rows(judged, SEED) if judged else {},
        "paired": paired,
        "per_question": per_question(judged) if judged else {},
        "label_stats": label_stats,
        "probe": read_json(probe) if probe.is_file() else {},
        "stage_two": stage_two,
        "figure4": tool_use_by_zero_shot(judged),
        "findings": findings(judged, label_stats, stage_two, SEED, paired, planned=settings),
    }


def upstream(plan: Plan, names: list[str]) -> list[str]:
    """Every stage whose output ``names`` read, directly or through another stage, in the recipe's order."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        for path in stage_specs.stage(plan, todo.pop())[1]:
            stage = plan.layout.stage_of(Path(path))
            if stage in plan.stages and stage not in seen:
                seen.add(stage)
                todo.append(stage)
    return [s for s in plan.stages if s in seen and s not in names]


def prepare_try(plan: Plan, main_run: Path, names: list[str]) -> list[str]:
    """Copy into the try's run directory the main run's stages that ``names`` read; return those the
    try changes (an online round's candidates, say), which it runs again in its own directory: still
    to run, or already run there (their fingerprint differs from the main run's)."""
    claim_run_dir(plan.run_dir)
    reused = upstream(plan, names)
    for stage in reused:  # a stage the main run lacks (a try's own training, say) is run in the try's directory
        if not plan.layout.stage(stage).exists() and RunLayout(main_run).stage(stage).exists():
            shutil.copytree(RunLayout(main_run).stage(stage), plan.layout.stage(stage), symlinks=True)
    status = stage_status(plan)
    return [s for s in reused if status[s] != "up to date" or fingerprint(plan.run_dir, s) != fingerprint(main_run, s)]


def fingerprint(run: Path, stage: str) -> str:
    """The hash a finished stage of ``run`` was made under."""
    return read_json(RunLayout(run).stage(stage) / MARKER)["hash"]


def try_entry(name: str, try_yaml: Path, plan: Plan, main_run: Path, setting: str) -> dict[str, Any]:
    """A try's record: what it changes, its dev curve, its test row against the main run's (TRICE-I,
    SFT 100%, and TRICE-ALL and its DPO row where evaluated), and finding 3 and the Figure 4 split
    with the try standing in for TRICE-ALL."""
    datasets = plan.data.datasets
    tried = f"{setting} ({name})"
    baselines = ["trice-i", "sft-100"] + finished_evals(RunLayout(main_run), ["trice-all", "trice-all-dpo"])  # stage II rows where the main run has them
    main = read_judged(main_run, ["zero-shot", *baselines], datasets)
    judged = main | {tried: read_judged(plan.run_dir, [setting], datasets)[setting]}
    as_trice_all = main | {"trice-all": judged[tried]}
    selection = stage_two_summary(RunLayout(plan.run_dir), [setting])["selection"][setting]
    changes = {k: v for k, v in load_yaml(try_yaml).items() if k not in ("base", "run_dir")}
    return {
        "name": name,
        "recipe": str(try_yaml.relative_to(ROOT)) if try_yaml.is_relative_to(ROOT) else str(try_yaml),
        "run_dir": str(plan.run_dir),
        "changes": changes,
        "dev_curve": selection["curve"],
        "best_step": selection["best_step"],
        "test": read_json(RunLayout(plan.run_dir).eval_dir(setting) / SUMMARY) | {"interval_avg": interval_rows({tried: judged[tried]}, SEED)[tried]["avg"]},
        "paired": {k: v["avg"] for k, v in paired_rows(judged, [(tried, b) for b in baselines], SEED).items()},
        "finding_3": tool_drop_finding(as_trice_all, SEED),
        "figure4": tool_use_by_zero_shot(as_trice_all)["trice-all"],
    }


def record_try(tries: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """``tries`` with ``entry`` in place of the one of its name (at its position, else at the end);
    the old entry's hand-written ``measured`` is kept while the test row it describes is unchanged."""
    old = next((t for t in tries if t["name"] == entry["name"]), None)
    if old is None:
        return [*tries, entry]
    if "measured" in old and old.get("test") == entry["test"]:
        entry = entry | {"measured": old["measured"]}
    return [entry if t is old else t for t in tries]


def run_try(try_yaml: Path, main_run: Path, output: Path, setting: str) -> dict[str, Any]:
    """Run one stage II try and record its entry in ``output``'s ``tries`` (:func:`record_try`);
    a try whose stages are all done is recorded again without running anything."""
    plan = plan_recipe(try_yaml)
    names = [f"train-{setting}", f"eval-{setting}"]
    redone = prepare_try(plan, main_run, names)
    run_plan(plan, stages=redone + names)
    entry = try_entry(try_yaml.stem, try_yaml, plan, main_run, setting) | {"stages_redone": redone}
    result = read_json(output)
    result["tries"] = record_try(result.get("tries", []), entry)
    write_json(output, result)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default=str(ROOT / "runs" / "math-qwen"))
    parser.add_argument("--output", default=str(OUTPUT))
    parser.add_argument("--record-only", action="store_true", help="Record what the run directory holds; run nothing.")
    parser.add_argument("--try", dest="try_yaml", help="Run this stage II try (a recipe over math_qwen.yaml) and record it in tries.")
    parser.add_argument("--setting", default="trice-all", help="The stage II setting a --try trains and evaluates.")
    args = parser.parse_args()
    run, output = Path(args.run_dir), Path(args.output)
    if args.try_yaml:
        entry = run_try(Path(args.try_yaml).resolve(), run, output, args.setting)
        print(json.dumps(entry, indent=1))
        paired = "; ".join(f"{k}: {v['difference']:+.1%} [{v['low']:+.1%}, {v['high']:+.1%}]" for k, v in entry["paired"].items())
        print(
            f"math_qwen try {entry['name']}: best dev step {entry['best_step']}, test {entry['test']['accuracy']['total']:.1%}, tool use {entry['test']['tool_rate']:.0%}; {paired}"
        )
        return
    if not args.record_only:
        subprocess.run([sys.executable, "-m", "trice.cli", "run", str(RECIPE), "--run-dir", str(run)], check=True)
    previous = read_json(output) if output.is_file() else {}
    result = collect(run) | {"notes": previous.get("notes", []), "tries": previous.get("tries", [])}
    write_json(output, result)
    if result["figure4"]:
        plot_tool_use_by_zero_shot(result["figure4"], output.parent / "tool_use_by_zero_shot.png")
    print(json.dumps(result["findings"], indent=1))
    verdicts = ", ".join(f"{k.split()[0]}: {v['verdict']}" for k, v in result["findings"].items())
    print(f"math_qwen: {len(result['evaluated'])}/{len(result['evaluated']) + len(result['not_yet'])} rows evaluated; findings {verdicts}")


if __name__ == "__main__":
    main()
