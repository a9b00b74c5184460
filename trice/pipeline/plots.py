"""The report's plots (PNG): grouped bars per test set, tool use where zero-shot was right and wrong,
training losses, stage II's dev curves."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from trice.core.layout import DEV_CURVE, RunLayout  # noqa: E402

Table = dict[str, dict[str, float]]  # setting -> column -> value

# The plots' files in the report directory, which report.md shows.
ACCURACY_PLOT = "accuracy.png"
TOOL_RATE_PLOT = "tool_rate.png"
TRAIN_LOSS_PLOT = "train_loss.png"
STAGE_TWO_LOSS_PLOT = "stage2_loss.png"
ROLLOUT_PLOT = "rollouts.png"
UNSEEN_PLOT = "unseen_accuracy.png"
FIGURE4_PLOT = "tool_use_by_zero_shot.png"
FIGURE4_GROUPS = (("zero-shot right", "tab:green"), ("zero-shot wrong", "tab:red"))


def dev_curve_copy(setting: str) -> str:
    """The report's copy of a stage II setting's dev curve."""
    return f"dev_curve-{setting}.png"


def plot_grouped_bars(values: dict[str, dict[str, float]], path: Path, ylabel: str, title: str) -> None:
    """One group of bars per dataset, one bar per setting, values given as shares (plotted in %).

    Used for accuracy and for the tool-use rate by stage (the paper's Figure 4).
    """
    groups = list(next(iter(values.values())))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    width = 0.8 / len(values)
    for i, (setting, by_group) in enumerate(values.items()):
        xs = [g + (i - (len(values) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [100 * by_group[g] for g in groups], width, label=setting)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlabel("test set")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    top = max(100 * v for vs in values.values() for v in vs.values())
    ax.set_ylim(0, min(110.0, max(10.0, top * 1.2)))
    # below the axes, so the legend never hides a bar
    ax.legend(fontsize=8, ncols=min(len(values), 4), loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_train_loss(logs: dict[str, list[dict]], path: Path, title: str = "Stage-I training loss", ylabel: str = "training loss (response tokens)") -> None:
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for setting, history in logs.items():
        points = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
        if points:
            ax.plot(*zip(*points), marker=".", label=setting)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_tool_use_by_zero_shot(rates: Table, path: Path) -> None:
    """Each setting's tool-use rate on the test questions zero-shot got right and on those it got
    wrong (:func:`trice.pipeline.findings.tool_use_by_zero_shot`): the paper's Figure 4, where
    stage II should call less on the first."""
    settings = list(rates)
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(settings)), 4))
    width = 0.38
    for k, (group, colour) in enumerate(FIGURE4_GROUPS):
        ax.bar(
            [x + (k - 0.5) * width for x in range(len(settings))], [rates[s].get(group, 0.0) for s in settings], width, label=f"questions {group}", color=colour
        )
    ax.set_xticks(range(len(settings)), settings, rotation=20)
    ax.set_ylabel("tool-use rate")
    ax.set_ylim(0, 1)
    ax.set_title("Tool use where the untuned model was right / wrong\n(cf. TRICE Figure 4)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_rollout_curves(curves: dict[str, list[dict]], path: Path) -> None:
    """An online stage II setting's rollouts per optimizer step: mean reward, tool-use rate and KL
    from the start (:func:`trice.pipeline.stage_two_report.rollout_curves`), one panel each."""
    panels = [("reward", "mean reward"), ("tool_rate", "tool-use rate"), ("kl", "KL from the start")]
    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(7, 7), dpi=120)
    for ax, (key, label) in zip(axes, panels):
        for setting, curve in curves.items():
            points = [(c["step"], c[key]) for c in curve if key in c]
            if points:
                ax.plot(*zip(*points), marker=".", label=setting)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title("Online stage II: the rollouts per step")
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel("optimizer step")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_plots(
    run: RunLayout,
    out_dir: Path,
    rows: Table,
    tool_rates: Table,
    stage_one_logs: dict,
    stage_two_logs: dict,
    selected: Iterable[str],
    by_zero_shot: Table | None = None,
    rollouts: dict[str, list[dict]] | None = None,
) -> None:
    """The report's PNGs: accuracy and tool use per setting, tool use where zero-shot was right and
    wrong (``by_zero_shot``, when the run has a zero-shot row), both stages' losses, the dev curves
    of the ``selected`` stage II settings (those that chose a checkpoint on dev), and an online
    setting's ``rollouts`` curves."""
    accuracy = {s: {k: v for k, v in r.items() if k != "tool_rate"} for s, r in rows.items()}
    plot_grouped_bars(accuracy, out_dir / ACCURACY_PLOT, "accuracy (%)", "Accuracy per setting and test set")
    plot_grouped_bars(tool_rates, out_dir / TOOL_RATE_PLOT, "responses calling the tool (%)", "Tool-use rate by stage (the paper's Figure 4)")
    if by_zero_shot:
        plot_tool_use_by_zero_shot(by_zero_shot, out_dir / FIGURE4_PLOT)
    if stage_one_logs:
        plot_train_loss(stage_one_logs, out_dir / TRAIN_LOSS_PLOT)
    if stage_two_logs:
        plot_train_loss(stage_two_logs, out_dir / STAGE_TWO_LOSS_PLOT, "Stage-II training loss", "loss (RLEF: alpha * rank + sft; DPO)")
    if rollouts:
        plot_rollout_curves(rollouts, out_dir / ROLLOUT_PLOT)
    for s in selected:
        shutil.copyfile(run.train_dir(s) / DEV_CURVE, out_dir / dev_curve_copy(s))
