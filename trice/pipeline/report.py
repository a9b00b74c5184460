"""The run's report: ``results.json`` (machine-readable), ``report.md`` (tables), PNG plots.

``results.json`` follows the benchmark format:
``{"config": {...}, "rows": {"<setting>": {"<dataset>": accuracy, ..., "avg": a, "tool_rate": r}}}``,
with ``"intervals"`` holding ``[low, high]`` (95%) under the same keys as ``"rows"``, ``"paired"``
the stage II settings' paired differences from TRICE-I and SFT 100% (:mod:`trice.pipeline.intervals`),
and ``"per_question"`` every setting's right/wrong and tool use per test question.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from trice.pipeline.decisions import decision_section
from trice.pipeline.findings import findings, findings_markdown, tool_use_by_zero_shot
from trice.pipeline.intervals import comparison_pairs, interval_method, interval_rows, interval_text, paired_markdown, paired_rows, per_question, read_judged
from trice.core.layout import JUDGED, REPORT_MD, RESULTS, SAME_AS, SUMMARY, TRAIN_LOG, RunLayout, train_stage
from trice.pipeline.plan import Plan
from trice.pipeline.plots import ACCURACY_PLOT, FIGURE4_PLOT, TOOL_RATE_PLOT, TRAIN_LOSS_PLOT, UNSEEN_PLOT, Table, plot_grouped_bars, write_plots
from trice.pipeline.settings import BASE_MODEL, COMPARED, SETTINGS, SFT, STAGE_ONE
from trice.pipeline.shared_training import shared_trainings
from trice.pipeline.stage_two_report import stage_two_markdown, stage_two_summary
from trice.utils.config import to_dict
from trice.utils.environment import environment
from trice.utils.io import read_json, read_jsonl, write_json, write_text
from trice.utils.stats import bootstrap_share


def result_rows(summaries: dict[str, dict[str, Any]], datasets: list[str]) -> dict[str, dict[str, float]]:
    """Per setting (of its evaluation's ``summaries``): accuracy per dataset (in the recipe's order),
    their unweighted mean ("avg", as the paper averages), and the tool-use rate."""
    rows: dict[str, dict[str, float]] = {}
    for setting, summary in summaries.items():
        acc = {ds: summary["accuracy"][ds] for ds in datasets}
        rows[setting] = acc | {"avg": sum(acc.values()) / len(acc), "tool_rate": summary["tool_rate"]}
    return rows


def _with_interval(text: str, intervals: dict[str, dict[str, list[float]]] | None, setting: str, key: str) -> str:
    """``text`` followed by the 95% interval of ``setting``'s ``key`` where one is known."""
    interval = (intervals or {}).get(setting, {}).get(key)
    return text if interval is None else f"{text} {interval_text(*interval)}"


def markdown_table(
    rows: dict[str, dict[str, float]], tool_rates: dict[str, dict[str, float]] | None = None, intervals: dict[str, dict[str, list[float]]] | None = None
) -> str:
    """Accuracy (%) per setting and dataset, the average, and the tool-use rate (%), each with its 95%
    interval where ``intervals`` (keyed like ``rows``) has one. A row without a dataset some other row
    has (a run not finished yet) shows "-" there."""
    datasets = list(dict.fromkeys(k for r in rows.values() for k in r if k not in ("avg", "tool_rate")))
    head = "| setting | " + " | ".join(datasets) + " | avg | tool use |"
    lines = [head, "|" + "---|" * (len(datasets) + 3)]
    for setting, r in rows.items():
        cells = [
            "-"
            if ds not in r
            else _with_interval(f"{100 * r[ds]:.1f}", intervals, setting, ds) + (f" ({100 * tool_rates[setting][ds]:.0f}%)" if tool_rates else "")
            for ds in datasets
        ]
        avg = _with_interval(f"{100 * r['avg']:.1f}", intervals, setting, "avg")
        tool = _with_interval(f"{100 * r['tool_rate']:.1f}%", intervals, setting, "tool_rate")
        lines.append(f"| {setting} | " + " | ".join(cells) + f" | {avg} | {tool} |")
    return "\n".join(lines)


def case_studies(run_dir: Path, before: str, after: str, n: int = 4) -> list[dict[str, Any]]:
    """Test questions that ``after`` gets right and ``before`` wrong, one per dataset in turn."""
    run = RunLayout(run_dir)
    a = {r["id"]: r for r in read_jsonl(run.eval_dir(before) / JUDGED)}
    picked: list[dict[str, Any]] = []
    by_ds: dict[str, list[dict]] = {}
    for row in read_jsonl(run.eval_dir(after) / JUDGED):
        if row["correct"] and not a[row["id"]]["correct"]:
            by_ds.setdefault(row["dataset"], []).append(row | {"before": a[row["id"]]})
    while len(picked) < n and any(by_ds.values()):
        for ds in sorted(by_ds):
            if by_ds[ds] and len(picked) < n:
                picked.append(by_ds[ds].pop(0))
    return picked


def _quote(text: str | None, limit: int = 300) -> str:
    text = "(none)" if text is None else text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= limit else text[:limit] + " ..."


def _by_task_markdown(label_stats: dict[str, dict[str, Any]]) -> list[str]:
    """A run of several tasks (MIX): what happened to each task's probed questions, per training set."""
    if not any(len(s.get("by_task", {})) > 1 for s in label_stats.values()):
        return []
    md = ["Per task:", "", "| training set | task | right (own answer) | labelled (tool call) | dropped |", "|---|---|---|---|---|"]
    for m, s in label_stats.items():
        if m == "sft-0":  # every question kept with its gold answer: nothing to break down
            continue
        for task, c in s.get("by_task", {}).items():
            md.append(f"| {m} | {task} | {c.get('right', 0)} | {c.get('labelled', 0)} | {c.get('dropped', 0)} |")
    return md + [""]


def _case_markdown(cases: list[dict[str, Any]], before: str, after: str) -> list[str]:
    """The paper's Figure 5: the same test question, ``before`` wrong and ``after`` right."""
    if not cases:
        return []
    md = [f"## Case studies: {before} wrong, {after} right", "", f"| dataset | question | {before} | {after} |", "|---|---|---|---|"]
    for c in cases:
        md.append(
            f"| {c['dataset']} | {_quote(c['question'], 200)} | {_quote(c['before']['response'])} -> {_quote(c['before']['prediction'])} "
            f"| {_quote(c['response'])} -> {_quote(c['prediction'])} |"
        )
    return md + [""]


def unseen_results(plan: Plan, settings: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Per setting of ``settings`` and unseen test set: accuracy over the whole file with its 95%
    interval (bootstrapped over the file's questions, as the main table's), tool-use rate and size."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name, (setting, unseen) in plan.unseen_stages.items():
        if setting not in settings:
            continue
        summary = read_json(plan.layout.stage(name) / SUMMARY)
        interval = bootstrap_share([float(r["correct"]) for r in read_jsonl(plan.layout.stage(name) / JUDGED)], seed=plan.recipe.seed)
        results.setdefault(setting, {})[unseen.name] = {
            "accuracy": summary["accuracy"]["total"], "interval": [interval.low, interval.high], "tool_rate": summary["tool_rate"], "n": summary["n"],
        }  # fmt: skip
    return results


def unseen_markdown(rows: dict[str, dict[str, float]], unseen: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """The paper's Table 4 beside Table 3's average: one column per unseen set, kept out of ``avg``."""
    if not unseen:
        return []
    names = list(next(iter(unseen.values())))
    sizes = next(iter(unseen.values()))
    md = [
        "## Unseen test sets",
        "",
        "Test files no stage trained on or chose a checkpoint by (the paper's Table 4); not in the average above. "
        "Cells: accuracy [95% interval] (tool-use rate) over the whole file.",
        "",
        "| setting | avg (seen) | " + " | ".join(f"unseen: {n} ({sizes[n]['n']})" for n in names) + " |",
        "|" + "---|" * (len(names) + 2),
    ]
    for setting, by_set in unseen.items():
        cells = [f"{100 * by_set[n]['accuracy']:.1f} {interval_text(*by_set[n]['interval'])} ({100 * by_set[n]['tool_rate']:.0f}%)" for n in names]
        md.append(f"| {setting} | {100 * rows[setting]['avg']:.1f} | " + " | ".join(cells) + " |")
    return md + ["", f"![unseen accuracy]({UNSEEN_PLOT})", ""]


def shared_training_markdown(shared: dict[str, str], settings: list[str]) -> list[str]:
    """One line per setting whose train stage reused a twin's training (:mod:`trice.pipeline.shared_training`),
    the pair named in the report's row order."""
    order = {s: i for i, s in enumerate(settings)}
    lines = []
    for setting, twin in shared.items():
        first, second = sorted((setting, twin), key=lambda s: order.get(s, len(order)))
        lines.append(
            f"{first} and {second} trained on identical sets: one training, shared adapter "
            f"(`{train_stage(setting)}/{SAME_AS}` points to `{train_stage(twin)}`)."
        )
    return lines + ([""] if lines else [])


def unseen_and_shared(plan: Plan, settings: list[str], rows: dict[str, dict[str, float]], out_dir: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    """results.json's ``unseen`` and ``shared_training`` (each only where there is any), the unseen
    section with its plot, and the shared-training lines."""
    unseen = unseen_results(plan, settings)
    shared = shared_trainings(plan.run_dir, settings)
    if unseen:
        accuracy = {s: {n: r["accuracy"] for n, r in by_set.items()} for s, by_set in unseen.items()}
        plot_grouped_bars(accuracy, out_dir / UNSEEN_PLOT, "accuracy (%)", "Accuracy on unseen test sets")
    results = ({"unseen": unseen} if unseen else {}) | ({"shared_training": shared} if shared else {})
    return results, unseen_markdown(rows, unseen), shared_training_markdown(shared, settings)


def _data_markdown(splits: dict[str, Any], probe: dict[str, Any], label_stats: dict[str, dict[str, Any]]) -> list[str]:
    """Which split each dataset came from, the probe's accuracy and how each training set was labelled."""
    split_lines = [
        f"| {ds}{' (' + d['task'] + ')' if 'task' in d else ''} | {d['split']} | {d['train_used']} | {d['test_used']} |" for ds, d in splits["datasets"].items()
    ]
    return [
        "## Data",
        "",
        "| dataset | split | train questions | test questions |",
        "|---|---|---|---|",
        *split_lines,
        "",
        f"Probe of the base model on the training questions: accuracy {100 * probe['accuracy']['total']:.1f}% (tool use {100 * probe['tool_rate']:.1f}%).",
        "",
        "| training set | probed | kept | right (own answer) | labelled (tool call) | dropped | tool share |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {m} | {s['probed']} | {s['kept']} | {s.get('right', 0)} | {s.get('labelled', 0)} | {s.get('dropped', 0)} | {100 * s['tool_share']:.0f}% |"
            for m, s in label_stats.items()
        ],
        "",
        *_by_task_markdown(label_stats),
    ]


def outages_markdown(outages: dict[str, dict[str, int]]) -> list[str]:
    """A warning under the accuracy table when a tool or its server did not answer some calls: they
    are judged wrong, so the row measures the outage as much as the model."""
    if not outages:
        return []
    counts = "; ".join(f"{s}: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items()) for s, kinds in outages.items())
    return [
        f"**Tool outages**: calls a tool or its server did not answer, judged wrong ({counts}). "
        "Run those evaluations again once the tool answers (`trice run RECIPE --only eval-SETTING`).",
        "",
    ]


def _accuracy_markdown(plan: Plan, rows: Table, tool_rates: Table, intervals: dict[str, Any]) -> list[str]:
    """The report's title and its first section: the accuracy table with intervals and its plots."""
    return [
        "# trice report",
        "",
        f"Model `{plan.recipe.model}`, template `{plan.recipe.template}`, seed {plan.recipe.seed}. Run directory `{plan.run_dir}`.",
        "",
        "## Accuracy (%) and tool use",
        "",
        "Cells: accuracy [95% interval] (tool-use rate). avg: the unweighted mean over the test sets (of every task), as in "
        f"the paper. Intervals: {interval_method(plan.recipe.seed)}.",
        "",
        markdown_table(rows, tool_rates, intervals),
        "",
        f"![accuracy]({ACCURACY_PLOT})",
        "",
        f"![tool use]({TOOL_RATE_PLOT})",
        "",
    ]


def _cases_markdown(run: Path, settings: list[str]) -> list[str]:
    """Case studies: zero-shot vs TRICE-I, then TRICE-I vs the final stage II setting, the first of
    :data:`trice.pipeline.settings.COMPARED` the run has (the paper's Figure 5)."""
    final = next((s for s in COMPARED if SETTINGS[s].stage_two and s in settings), None)
    md: list[str] = []
    for before, after in ((BASE_MODEL, STAGE_ONE), (STAGE_ONE, final)):
        if before in settings and after in settings:
            md += _case_markdown(case_studies(run, before, after), before, after)
    return md


def partial_markdown(plan: Plan, settings: list[str]) -> tuple[dict[str, Any], list[str]]:
    """results.json's ``partial`` and the report's warning, when it covers only ``settings`` (those
    evaluated so far) of the recipe's: nothing when it covers them all."""
    not_yet = [s for s in plan.recipe.settings if s not in settings]
    if not not_yet:
        return {}, []
    line = f"**Partial report**: evaluated so far {', '.join(settings)}; not yet {', '.join(not_yet)}. Findings that need a setting not yet evaluated read *not measured yet*."
    return {"partial": {"evaluated": settings, "not_yet": not_yet}}, [line, ""]


def write_report(plan: Plan, out_dir: Path, settings: Sequence[str] | None = None) -> dict[str, Any]:
    """Write results.json, report.md and the plots for a finished run; returns the results.
    ``settings``: only these (those evaluated so far, while the rest still run), named as partial."""
    run, layout = plan.run_dir, plan.layout
    settings = list(plan.recipe.settings if settings is None else settings)
    partial, partial_md = partial_markdown(plan, settings)
    datasets = plan.data.all_datasets  # every task's test sets (a MIX run has several tasks)
    summaries = {s: read_json(layout.eval_dir(s) / SUMMARY) for s in settings}
    rows = result_rows(summaries, datasets)
    outages = {s: o for s, summary in summaries.items() if (o := summary.get("tool_outages"))}
    tool_rates = {s: {ds: summary["tool_rate_by_dataset"][ds] for ds in datasets} for s, summary in summaries.items()}
    splits = read_json(layout.splits)
    label_stats = {m: read_json(layout.label_stats(m)) for s in settings if (m := SETTINGS[s].label)}
    probe = read_json(layout.probe / SUMMARY)
    logs = {s: read_json(p) for s in settings if (p := layout.train_dir(s) / TRAIN_LOG).is_file()}
    stage_one_logs = {s: h for s, h in logs.items() if SETTINGS[s].trainer == SFT}
    stage_two = stage_two_summary(layout, settings)
    stage_two_logs = {s: h for s, h in logs.items() if SETTINGS[s].stage_two and s not in stage_two.get("rollouts", {})}  # online: its own curves
    judged = read_judged(run, settings, datasets)
    intervals = interval_rows(judged, plan.recipe.seed)
    paired = paired_rows(judged, comparison_pairs(settings), plan.recipe.seed)
    found = findings(judged, label_stats, stage_two, plan.recipe.seed, paired, planned=plan.recipe.settings)
    by_zero_shot = tool_use_by_zero_shot(judged)
    decision, decision_md = decision_section(layout, settings, rows, out_dir)
    results = {
        "config": {"recipe": to_dict(plan.recipe), "splits": splits, "environment": environment()},
        "rows": rows,
        "tool_rate_by_dataset": tool_rates,
        "intervals": intervals,
        "paired": paired,
        "interval_method": interval_method(plan.recipe.seed),
        "per_question": per_question(judged),
        "label_stats": label_stats,
        "probe": probe,
        "stage_two": stage_two,
        "findings": found,
        "figure4": by_zero_shot,
        **decision,
        **({"tool_outages": outages} if outages else {}),
        **partial,
    }
    extra, unseen_md, shared_md = unseen_and_shared(plan, settings, rows, out_dir)
    results |= extra
    write_json(out_dir / RESULTS, results)
    write_plots(layout, out_dir, rows, tool_rates, stage_one_logs, stage_two_logs, stage_two.get("selection", {}), by_zero_shot, stage_two.get("rollouts"))
    md = [
        *_accuracy_markdown(plan, rows, tool_rates, intervals),
        *partial_md,
        *outages_markdown(outages),
        *paired_markdown(paired, datasets, plan.recipe.seed),
        *findings_markdown(found, by_zero_shot, FIGURE4_PLOT),
        *decision_md,
        *unseen_md,
        *_data_markdown(splits, probe, label_stats),
        *shared_md,
        *_closing_markdown(plan, settings, bool(stage_one_logs), stage_two, bool(stage_two_logs)),
    ]
    write_text(out_dir / REPORT_MD, "\n".join(md))
    return results


def _closing_markdown(plan: Plan, settings: list[str], stage_one: bool, stage_two: dict[str, Any], stage_two_logged: bool) -> list[str]:
    """The report's last sections: both stages' training, the case studies, the environment, the recipe."""
    md = ["## Stage I training", "", f"![training loss]({TRAIN_LOSS_PLOT})", ""] if stage_one else []
    if stage_two:
        md += stage_two_markdown(stage_two, stage_two_logged)
    md += _cases_markdown(plan.run_dir, settings)
    md += ["## Environment", "", ", ".join(f"{k} {v}" for k, v in environment().items()), ""]
    return md + [
        "## Recipe",
        "",
        "Every setting of this run (also in `results.json`; each stage's `stage.json` holds the settings its hash covers):",
        "",
        "```yaml",
        yaml.safe_dump(to_dict(plan.recipe), sort_keys=False).rstrip(),
        "```",
        "",
    ]
