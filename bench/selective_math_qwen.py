"""The selective-calling benchmark: trice/recipes/selective_math_qwen.yaml (Qwen2.5-Coder-0.5B on every
ASDiv-A and SVAMP test question) and its lever tries, compared side by side on the same questions.

Each row is an evaluated setting: the main run's (zero-shot, SFT 100%, TRICE-I, TRICE-ALL) and each
try's (a recipe over the main one in ``bench/tries/selective_*.yaml``, or an online stage II row:
``trice/recipes/math_qwen_grpo.yaml`` and the ``bench/tries/math_qwen_grpo_*.yaml`` laid over it, in
its own run directory, reusing the main run's finished stages that it does not change). For every
row: accuracy with its 95% interval, tool use, the paired difference from SFT 100%, TRICE-I and
TRICE-ALL (bootstrapped over the same test questions), and the decision (:func:`trice.judge.decision.decision_summary`: AUC of P(call)
against zero-shot's correctness, tool use where zero-shot was right and wrong, call accuracy), plus
the oracle (answer alone exactly where zero-shot is right). The acceptance test of the issue is
``meets``: above SFT 100% and TRICE-I with each paired interval's lower bound above 0, and tool use
on zero-shot-right questions at least 20 points below that on zero-shot-wrong ones.

    python bench/selective_math_qwen.py                       # record the main run so far (runs nothing)
    python bench/selective_math_qwen.py --try bench/tries/selective_threshold.yaml --setting trice-i
    python bench/selective_math_qwen.py --evaluate-on FILE.jsonl   # the committed adapters on any test file

Writes bench/results/selective_math_qwen/results.json (its hand-written ``notes`` kept), decision.png,
rollouts.png (an online stage II row's reward, tool use and KL per step), and each row's adapter
(safetensors + config, a few MB) under ``adapters/<row>/`` so a row can be evaluated again without
the run directory. Prints the JSON and a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the findings benchmark's try machinery

from math_qwen import prepare_try  # noqa: E402

from trice.core.layout import JUDGED, SUMMARY, THRESHOLD_CHOICE, RunLayout  # noqa: E402
from trice.judge.decision import break_even_precision, decision_summary, oracle  # noqa: E402
from trice.pipeline.decisions import plot_decisions  # noqa: E402
from trice.pipeline.intervals import Judged, interval_rows, judged_from_record, paired_rows, per_question, read_judged  # noqa: E402
from trice.pipeline.plan import plan_recipe  # noqa: E402
from trice.pipeline.plots import ROLLOUT_PLOT, plot_rollout_curves  # noqa: E402
from trice.pipeline.runner import run_plan  # noqa: E402
from trice.pipeline.stage_specs import final_adapter  # noqa: E402
from trice.pipeline.stage_two_report import stage_two_summary  # noqa: E402
from trice.utils.artefacts import sha256_file  # noqa: E402
from trice.utils.config import load_yaml  # noqa: E402
from trice.utils.io import read_json, read_jsonl, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "trice" / "recipes" / "selective_math_qwen.yaml"
OUT_DIR = ROOT / "bench" / "results" / "selective_math_qwen"
SEED = 0
BASELINES = ("sft-100", "trice-i")
STAGE_TWO = "trice-all"  # an online stage II row (GRPO) is compared with the offline one too
DATASETS = ["asdiv-a", "svamp"]
NO_ROWS = "No row is recorded yet: every row's decision metrics need the main run's zero-shot evaluation."


def row_name(setting: str, try_name: str | None) -> str:
    return setting if try_name is None else f"{setting} ({try_name})"


def evaluated(run: RunLayout, settings: list[str]) -> list[str]:
    """The settings whose test evaluation has finished (its summary is written last)."""
    return [s for s in settings if (run.eval_dir(s) / SUMMARY).is_file()]


def decision_of(run: RunLayout, setting: str, zero_shot_right: dict[str, bool]) -> dict[str, Any]:
    summary = decision_summary(read_jsonl(run.eval_dir(setting) / JUDGED), zero_shot_right)
    choice = run.eval_dir(setting) / THRESHOLD_CHOICE
    if not choice.is_file():
        return summary
    return summary | {"threshold": read_json(choice)["choice"], "dev_branches": dev_branches(run.eval_dir(setting))}


def dev_branches(eval_dir: Path) -> dict[str, int]:
    """The policy's own two answers to each dev question (forced to call, forced to answer alone), as
    the threshold was chosen from: the questions only answering alone gets right are all a decision
    could win, those only the call gets right what it risks."""
    call, alone = ({r["id"]: r["correct"] for r in read_jsonl(eval_dir / f"dev-{b}" / JUDGED)} for b in ("call", "answer"))
    pairs = [(call[i], alone[i]) for i in call if i in alone]
    return {"both_right": pairs.count((True, True)), "call_only": pairs.count((True, False)),
            "alone_only": pairs.count((False, True)), "both_wrong": pairs.count((False, False))}  # fmt: skip


def rows_of(run_dir: Path, settings: list[str], try_name: str | None, base: dict[str, bool]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each finished setting of one run directory: its summary, decision and judged answers, and for
    a stage II setting how it trained (:func:`stage_two_of`)."""
    run = RunLayout(run_dir)
    done = evaluated(run, settings)
    judged = read_judged(run_dir, done, DATASETS) if done else {}
    rows = {
        row_name(s, try_name): {"run_dir": str(run_dir), "setting": s, "summary": read_json(run.eval_dir(s) / SUMMARY), "decision": decision_of(run, s, base)}
        | stage_two_of(run, s)
        for s in done
    }
    return rows, {row_name(s, try_name): judged[s] for s in done}


def stage_two_of(run: RunLayout, setting: str) -> dict[str, Any]:
    """A stage II row's training as the run's report shows it: the dev curve that chose its
    checkpoint and, for an online trainer, the rollouts' reward, tool use, KL, seconds and rollout
    tokens/s per step, kept in the results since the run directory is scratch."""
    summary = stage_two_summary(run, [setting])  # empty for a stage I setting
    if not summary.get("selection"):
        return {}
    selection = summary["selection"][setting]
    kept = {"best_step": selection["best_step"], "dev_curve": selection["curve"]}
    return {"stage_two": kept | ({"rollouts": summary["rollouts"][setting]} if setting in summary.get("rollouts", {}) else {})}


def zero_shot_base(main: Path, recorded: Judged) -> dict[str, dict[Any, tuple[bool, bool]]] | None:
    """Zero-shot's judged test answers, the base of every row's decision metrics: from the main run
    while it holds them, else as recorded."""
    if (RunLayout(main).eval_dir("zero-shot") / SUMMARY).is_file():
        return read_judged(main, ["zero-shot"], DATASETS)["zero-shot"]
    return recorded.get("zero-shot")


def collect(main: Path, tries: list[dict[str, Any]], previous: dict[str, Any], restored: Judged | None = None) -> dict[str, Any]:
    """Every row evaluated so far, main run first, with intervals, paired differences and the oracle.

    A row is read from its run directory while that holds its evaluation, else kept as ``previous``
    recorded it, per-question answers included: run directories are scratch (a new machine starts
    without them), so recording again must never lose a row, and a new try still pairs with the old
    rows question by question. A row recorded before its answers were kept stays as it was (its
    intervals and paired differences as recorded), unless it is one every row pairs with; ``restored``:
    such rows' answers, from their committed adapters evaluated again (selective_reeval.restored_answers)."""
    recorded = (judged_from_record(previous["per_question"]) if previous.get("per_question") else {}) | (restored or {})
    settings = plan_recipe(RECIPE, {"run_dir": str(main)}).recipe.settings
    zero_shot = zero_shot_base(main, recorded)
    if zero_shot is None and previous.get("rows"):
        raise ValueError(
            "the zero-shot row was recorded without per-question answers and the main run has not evaluated it: every row's decision is read against it"
        )
    if zero_shot is None:
        return {"rows": {}, "not_yet": settings}
    base = {i: right for answers in zero_shot.values() for i, (right, _) in answers.items()}
    rows, judged = rows_of(main, settings, None, base)
    for t in tries:
        more, more_judged = rows_of(Path(t["run_dir"]), [t["setting"]], t["name"], base)
        rows |= {k: v | {"try": t["name"], "changes": t["changes"]} for k, v in more.items()}
        judged |= more_judged
    lost = [n for n in previous.get("rows", {}) if n not in rows and n not in recorded and n in ("zero-shot", *BASELINES, STAGE_TWO)]
    if lost:
        raise ValueError(
            f"rows {', '.join(lost)} were recorded without per-question answers and their run directories no longer hold them: every row pairs with them, so evaluate them again before recording"
        )
    kept = {n: r for n, r in previous.get("rows", {}).items() if n not in rows}
    rows, judged = {**kept, **rows}, {**{n: recorded[n] for n in kept if n in recorded}, **judged}
    rows = {n: rows[n] for n in [*previous.get("rows", {}), *rows] if n in rows}  # the recorded order, new rows last
    judged = {n: judged[n] for n in rows if n in judged}  # a row recorded without its answers keeps its numbers as recorded
    intervals = interval_rows(judged, SEED)
    pairs = [(r, b) for r in judged for b in (*BASELINES, STAGE_TWO) if b in judged and r != b]
    paired = paired_rows(judged, pairs, SEED)
    for name, row in ((n, r) for n, r in rows.items() if n in judged):
        row["avg"], row["interval_avg"] = sum(row["summary"]["accuracy"][ds] for ds in DATASETS) / len(DATASETS), intervals[name]["avg"]
        row["against_zero_shot"] = against(judged[name], judged["zero-shot"])
        row["paired"] = {b: paired[f"{name} vs {b}"]["avg"] for b in (*BASELINES, STAGE_TWO) if f"{name} vs {b}" in paired}
        row["meets"] = meets(row)
    calls = max((n for n in judged if n != "zero-shot"), key=lambda n: rows[n]["summary"]["tool_rate"], default=None)
    best_oracle = None if calls is None else oracle_row(judged["zero-shot"], judged[calls]) | {"calls_of": calls}
    return {"rows": rows, "oracle": best_oracle, "per_question": per_question(judged), "not_yet": [s for s in settings if s not in rows]}


def against(row: dict[str, dict[Any, tuple[bool, bool]]], zero_shot: dict[str, dict[Any, tuple[bool, bool]]]) -> dict[str, int]:
    """Where a row and zero-shot's own answers are right, question by question: what answering alone
    could add to a row that calls is only its ``zero_shot_only`` questions, at the risk of its
    ``row_only`` ones."""
    pairs = [(row[ds][i][0], zero_shot[ds][i][0]) for ds in zero_shot for i in zero_shot[ds] if i in row[ds]]
    return {"both_right": pairs.count((True, True)), "row_only": pairs.count((True, False)),
            "zero_shot_only": pairs.count((False, True)), "both_wrong": pairs.count((False, False))}  # fmt: skip


def oracle_row(zero_shot: dict[str, dict[Any, tuple[bool, bool]]], calling: dict[str, dict[Any, tuple[bool, bool]]]) -> dict[str, float | None]:
    """The oracle per dataset (answer alone where zero-shot is right, else ``calling``'s call), averaged,
    and the share of its own answers a real gate in front of ``calling`` must get right before it
    wins anything (:func:`trice.judge.decision.break_even_precision`, over both datasets)."""
    per = [oracle({i: c for i, (c, _) in zero_shot[ds].items()}, {i: c for i, (c, _) in calling[ds].items()}) for ds in zero_shot]
    alone, call = ({(ds, i): c for ds in zero_shot for i, (c, _) in judged[ds].items()} for judged in (zero_shot, calling))
    return {
        "avg": sum(o["accuracy"] for o in per) / len(per),
        "tool_rate": sum(o["tool_rate"] * o["n"] for o in per) / sum(o["n"] for o in per),
        "break_even_precision": break_even_precision(alone, call),
    }


def meets(row: dict[str, Any]) -> bool:
    """The issue's acceptance for one row: above both baselines (each paired lower bound > 0) and
    tool use on zero-shot-right questions at least 20 points below that on zero-shot-wrong ones."""
    d = row["decision"]
    above = all(b in row["paired"] and row["paired"][b]["low"] > 0 for b in BASELINES)
    right, wrong = d["tool_use_zero_shot_right"], d["tool_use_zero_shot_wrong"]
    return above and right is not None and wrong is not None and wrong - right >= 0.20


def keep_adapters(rows: dict[str, Any], out: Path) -> None:
    """Each trained row's evaluated adapter (weights and config) under ``out/adapters/<row>/``; a row
    evaluating the very weights of an earlier row (a decision rule's try, or a stage II row whose dev
    set chose its start) points to that row's copy, also when that row's run directory is gone and
    only its committed copy is left."""
    live = {name: final_adapter(Path(row["run_dir"]), row["setting"]) if row["setting"] != "zero-shot" else None for name, row in rows.items()}
    kept: dict[str, Path] = {}
    for name, row in rows.items():
        committed = ROOT / row["adapter"] if "adapter" in row else None
        if (live[name] is None or not live[name].is_dir()) and committed is not None and (committed / "adapter_model.safetensors").is_file():
            kept[sha256_file(committed / "adapter_model.safetensors")] = committed
    for name, row in rows.items():
        adapter = live[name]
        if adapter is None or not adapter.is_dir():
            continue
        weights = sha256_file(adapter / "adapter_model.safetensors")
        dest = kept.setdefault(weights, out / "adapters" / name.replace(" ", "_").replace("(", "").replace(")", ""))
        dest.mkdir(parents=True, exist_ok=True)
        for file in ("adapter_model.safetensors", "adapter_config.json"):
            shutil.copyfile(adapter / file, dest / file)
        row["adapter"] = str(dest.relative_to(ROOT))


def run_try(try_yaml: Path, main: Path, setting: str) -> dict[str, Any]:
    """Train and evaluate one lever try's ``setting`` in its own run directory, reusing the main run's
    finished stages that it reads unchanged; returns its entry for ``tries``."""
    plan = plan_recipe(try_yaml)
    names = [f"eval-{setting}"]  # its training is upstream: copied where the try leaves it as the main run's, else redone
    redone = prepare_try(plan, main, names)
    run_plan(plan, stages=redone + names)
    changes = {k: v for k, v in load_yaml(try_yaml).items() if k not in ("base", "run_dir")}
    return {"name": try_yaml.stem.removeprefix("selective_").removeprefix("math_qwen_"), "recipe": str(try_yaml.relative_to(ROOT)), "run_dir": str(plan.run_dir),
            "setting": setting, "changes": changes, "stages_redone": redone}  # fmt: skip


def record(main: Path, out: Path, tries: list[dict[str, Any]], restored: Judged | None = None) -> dict[str, Any]:
    previous = read_json(out / "results.json") if (out / "results.json").is_file() else {}
    try:
        rows = collect(main, tries, previous, restored)
    except ValueError as e:  # nothing is written: the recorded rows stay as they were
        raise SystemExit(f"{out / 'results.json'}: {e}") from e
    result = rows | {"tries": tries, "notes": previous.get("notes", []), "seed": SEED, "recipe": str(RECIPE.relative_to(ROOT))}
    keep_adapters(result["rows"], out)
    write_json(out / "results.json", result)
    if result["rows"]:
        points = {
            n: {"avg": r["avg"], "tool_rate": r["summary"]["tool_rate"], "low": r["interval_avg"][0], "high": r["interval_avg"][1]}
            for n, r in result["rows"].items()
        }
        plot_decisions(points, {"oracle": result["oracle"]} if result["oracle"] else {}, out / "decision.png")
    rollouts = {n: r["stage_two"]["rollouts"] for n, r in result["rows"].items() if "rollouts" in r.get("stage_two", {})}
    if rollouts:
        plot_rollout_curves(rollouts, out / ROLLOUT_PLOT)
    return result


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _diff(d: dict[str, Any] | None) -> str:
    return "-" if d is None else f"{100 * d['difference']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"


def table(result: dict[str, Any]) -> str:
    """docs/benchmarks.md's table of the rows (a test holds the page to results.json)."""
    if not result["rows"]:
        return NO_ROWS
    lines = [
        "| row | accuracy [95%] | tool use | tool use, zero-shot right / wrong | AUC | vs SFT 100% | vs TRICE-I | vs TRICE-ALL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        d, (low, high) = row["decision"], row["interval_avg"]
        auc = "-" if d["auc_zero_shot_wrong_over_right"] is None else f"{d['auc_zero_shot_wrong_over_right']:.2f}"
        lines.append(
            f"| {name} | {_pct(row['avg'])} [{_pct(low)}, {_pct(high)}] | {_pct(row['summary']['tool_rate'], 0)}% | "
            f"{_pct(d['tool_use_zero_shot_right'], 0)}% / {_pct(d['tool_use_zero_shot_wrong'], 0)}% | {auc} | "
            f"{_diff(row['paired'].get('sft-100'))} | {_diff(row['paired'].get('trice-i'))} | {_diff(row['paired'].get(STAGE_TWO))} |"
        )
    if result.get("oracle"):
        o = result["oracle"]
        lines.append(f"| oracle (zero-shot's answer where right, else {o['calls_of']}'s call) | {_pct(o['avg'])} | {_pct(o['tool_rate'], 0)}% | | | | | |")
    return "\n".join(lines)


def summary_line(result: dict[str, Any]) -> str:
    parts = []
    for name, row in result["rows"].items():
        d = row["decision"]
        vs = ", ".join(f"vs {b} {p['difference']:+.1%} [{p['low']:+.1%}, {p['high']:+.1%}]" for b, p in row["paired"].items())
        parts.append(
            f"{name}: {row['avg']:.1%} tool {row['summary']['tool_rate']:.0%} (zs-right {d['tool_use_zero_shot_right'] or 0:.0%}, zs-wrong {d['tool_use_zero_shot_wrong'] or 0:.0%}) {vs}"
        )
    met = [n for n, r in result["rows"].items() if r["meets"]]
    return "selective_math_qwen: " + "; ".join(parts) + f". Meets the acceptance: {', '.join(met) or 'none'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default=str(ROOT / "runs" / "selective-math-qwen"), help="The main run's directory.")
    parser.add_argument("--out", default=str(OUT_DIR))
    parser.add_argument("--try", dest="try_yaml", help="Run this lever try (a recipe over selective_math_qwen.yaml) and record it.")
    parser.add_argument("--setting", default="trice-i", help="The setting a --try trains and evaluates.")
    parser.add_argument("--evaluate-on", help="Evaluate every committed adapter on this JSONL (bring-your-own-data schema); runs in --eval-dir.")
    parser.add_argument("--eval-dir", default=str(ROOT / "runs" / "selective-reeval"))
    parser.add_argument("--rows", help="With --evaluate-on: only these rows, comma-separated (default: every row with an adapter).")
    parser.add_argument(
        "--restore-from", help="An --eval-dir of the committed adapters on this benchmark's test file: rows that reproduce get their answers back."
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")  # each stage says whether it runs
    main_run, out = Path(args.run_dir), Path(args.out)
    if args.evaluate_on:
        from selective_reeval import evaluate_committed  # noqa: PLC0415  (only this mode loads models)

        only = [r.strip() for r in args.rows.split(",")] if args.rows else None
        print(json.dumps(evaluate_committed(out, Path(args.evaluate_on), Path(args.eval_dir), only), indent=1))
        return
    previous = read_json(out / "results.json") if (out / "results.json").is_file() else {}
    tries = previous.get("tries", [])
    if args.try_yaml:
        entry = run_try(Path(args.try_yaml).resolve(), main_run, args.setting)
        tries = [t for t in tries if (t["name"], t["setting"]) != (entry["name"], entry["setting"])] + [entry]
    restored = None
    if args.restore_from:
        from selective_reeval import restored_answers  # noqa: PLC0415

        restored = restored_answers(out, Path(args.restore_from))
    result = record(main_run, out, tries, restored)
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "rows"}
            | {"rows": {n: {k: r[k] for k in ("avg", "interval_avg", "paired", "meets")} for n, r in result["rows"].items()}},
            indent=1,
        )
    )
    print(summary_line(result))


if __name__ == "__main__":
    main()
