"""The report's decision section: where each setting calls its tool, against where the base model
could answer alone.

For every evaluated setting, from its judged test rows (:func:`trice.judge.decision.decision_summary`):
P(call) at the response's first token and its AUC against zero-shot's correctness, tool use on the
questions zero-shot got right and wrong, the accuracy of the calls made and of the answers given
alone, and, for an eval with ``decision: threshold``, the tau its dev set chose. The oracle marks the
perfect decision: answer alone exactly where zero-shot is right, call elsewhere (the calls of the
setting that calls most). One plot puts every setting at its tool use and accuracy, the oracle beside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trice.judge.decision import decision_summary, oracle
from trice.core.layout import JUDGED, THRESHOLD_CHOICE, RunLayout
from trice.pipeline.settings import BASE_MODEL
from trice.utils.io import read_json, read_jsonl

DECISION_PLOT = "decision.png"


def _rows(run: RunLayout, setting: str) -> list[dict[str, Any]]:
    return read_jsonl(run.eval_dir(setting) / JUDGED)


def decision_results(run: RunLayout, settings: Sequence[str], rows: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """``{"settings": {setting: summary}, "oracle": {...}}``; empty without a zero-shot row (the
    questions the base model answers alone are what a decision is judged against)."""
    if BASE_MODEL not in settings:
        return {}
    judged = {s: _rows(run, s) for s in settings}
    base = {r["id"]: bool(r["correct"]) for r in judged[BASE_MODEL]}
    summaries = {}
    for s in settings:
        summaries[s] = decision_summary(judged[s], base)
        choice = run.eval_dir(s) / THRESHOLD_CHOICE
        if choice.is_file():
            summaries[s]["threshold"] = read_json(choice)["choice"]
    calling = max((s for s in settings if s != BASE_MODEL), key=lambda s: (rows[s]["tool_rate"], s), default=None)
    out: dict[str, Any] = {"settings": summaries}
    if calling is not None:
        by_dataset: dict[str, dict[str, dict[str, bool]]] = {}
        for setting, name in ((BASE_MODEL, "base"), (calling, "calls")):
            for r in judged[setting]:
                by_dataset.setdefault(r["dataset"], {}).setdefault(name, {})[r["id"]] = bool(r["correct"])
        per_dataset = [oracle(d["base"], d["calls"]) for d in by_dataset.values() if "calls" in d]
        out["oracle"] = {
            "calls_of": calling,
            "avg": sum(o["accuracy"] for o in per_dataset) / len(per_dataset),  # as a row's avg: datasets weigh alike
            "tool_rate": sum(o["tool_rate"] * o["n"] for o in per_dataset) / sum(o["n"] for o in per_dataset),
        }
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def decision_markdown(decisions: Mapping[str, Any]) -> list[str]:
    """The section: one row per setting, the oracle under the table, and the plot."""
    if not decisions:
        return []
    md = [
        "## The decision to call",
        "",
        "P(call): the probability of the call's first token at the response's first position (read during generation). "
        "AUC: how well P(call) puts the questions zero-shot got wrong above those it got right (0.5 = chance). "
        "Tool use on the questions zero-shot got right and wrong; accuracy of the calls made and of the answers given alone.",
        "",
        "| setting | mean P(call) | AUC | tool use, zero-shot right | tool use, zero-shot wrong | call accuracy | alone accuracy | threshold (dev) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, d in decisions["settings"].items():
        auc = "-" if d["auc_zero_shot_wrong_over_right"] is None else f"{d['auc_zero_shot_wrong_over_right']:.2f}"
        mean = "-" if d["mean_p_call"] is None else f"{d['mean_p_call']:.2f}"
        tau = f"{d['threshold']['tau']:.3f}" if "threshold" in d else "-"
        md.append(
            f"| {s} | {mean} | {auc} | {_pct(d['tool_use_zero_shot_right'])} | {_pct(d['tool_use_zero_shot_wrong'])} | "
            f"{_pct(d['call_accuracy'])} | {_pct(d['alone_accuracy'])} | {tau} |"
        )
    if "oracle" in decisions:
        o = decisions["oracle"]
        md += [
            "",
            f"Oracle (answer alone where zero-shot is right, else {o['calls_of']}'s call): {_pct(o['avg'])} accuracy at {_pct(o['tool_rate'])}% tool use.",
        ]
    return md + ["", f"![accuracy against tool use]({DECISION_PLOT})", ""]


def plot_decisions(rows: Mapping[str, Mapping[str, float]], decisions: Mapping[str, Any], path: Path) -> None:
    """Accuracy against tool use, one point per setting (with its 95% interval where ``rows`` give
    ``low`` and ``high``), the oracle marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ys = [100 * r["avg"] for r in rows.values()]
    gap = 0.04 * max(max(ys) - min(ys), 10.0)  # a label's height in accuracy points, about
    placed: list[tuple[float, float]] = []  # (x, label y) of the labels drawn so far, highest point first
    for s, r in sorted(rows.items(), key=lambda item: -item[1]["avg"]):
        x, y = 100 * r["tool_rate"], 100 * r["avg"]
        if "low" in r and "high" in r:  # the row's 95% interval, where the caller has one
            ax.errorbar(x, y, yerr=[[y - 100 * r["low"]], [100 * r["high"] - y]], fmt="o", ms=5, capsize=3)
        else:
            ax.scatter(x, y, s=30)
        below = [ly for px, ly in placed if abs(x - px) < 15]  # labels of nearby points stack downwards
        label_y = min([y, *(ly - gap for ly in below)])
        placed.append((x, label_y))
        ax.annotate(s, (x, y), xytext=(x + 2, label_y), fontsize=8, va="center", arrowprops={"arrowstyle": "-", "lw": 0.5} if label_y < y else None)
    if "oracle" in decisions:
        o = decisions["oracle"]
        ax.scatter(100 * o["tool_rate"], 100 * o["avg"], marker="*", s=160, color="black")
        ax.annotate("oracle", (100 * o["tool_rate"], 100 * o["avg"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel("tool use (% of test questions)")
    ax.set_ylabel("accuracy (%, average over test sets)")
    ax.set_title("Accuracy against tool use")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def decision_section(run: RunLayout, settings: Sequence[str], rows: Mapping[str, Mapping[str, float]], out_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """What the report adds: ``{"decision": ...}`` for results.json, the markdown, and the plot in
    ``out_dir`` (nothing without a zero-shot row)."""
    decisions = decision_results(run, settings, rows)
    if not decisions:
        return {}, []
    plot_decisions(rows, decisions, out_dir / DECISION_PLOT)
    return {"decision": decisions}, decision_markdown(decisions)
