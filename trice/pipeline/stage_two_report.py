"""The report's stage II part: what stage II learned from (the scored candidates), how each stage II
setting chose its checkpoint on the dev set, and, for an online trainer (GRPO), its rollouts' reward,
tool-use rate and KL per step (:func:`rollout_curves`)."""

from __future__ import annotations

from typing import Any

from trice.core.layout import SELECTION, TRAIN_LOG, RunLayout
from trice.pipeline.plots import ROLLOUT_PLOT, STAGE_TWO_LOSS_PLOT, dev_curve_copy
from trice.pipeline.settings import stage_two_settings
from trice.utils.io import read_json

# What an online trainer logs per step (trice.stage2.train_grpo) that the report follows.
ROLLOUT_KEYS = ("reward", "tool_rate", "accuracy", "kl", "step_time", "rollout_tokens_per_second")


def rollout_curves(logs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Per setting whose training log has rollout rewards: each logged step's :data:`ROLLOUT_KEYS`."""
    curves = {s: [{"step": e["step"]} | {k: e[k] for k in ROLLOUT_KEYS if k in e} for e in log if "reward" in e] for s, log in logs.items()}
    return {s: c for s, c in curves.items() if c}


def stage_two_summary(run: RunLayout, settings: list[str]) -> dict[str, Any]:
    """What stage II learned from: the scored candidates' states and per-source scores (where a
    setting trained on them), each stage II setting's checkpoint choice on the dev set, and an online
    setting's rollout curves."""
    trained = stage_two_settings(settings)
    if not trained:
        return {}
    selections = {
        s: {k: v for k, v in read_json(p).items() if k != "steps"}
        | {"curve": [{"step": x["step"], "accuracy": x["accuracy"]["total"], "tool_rate": x["tool_rate"]} for x in read_json(p)["steps"]]}
        for s in trained
        if (p := run.train_dir(s) / SELECTION).is_file()
    }
    rollouts = rollout_curves({s: read_json(p) for s in trained if (p := run.train_dir(s) / TRAIN_LOG).is_file()})
    candidates = {"candidates": read_json(run.score_summary)} if run.score_summary.is_file() else {}
    return candidates | {"selection": selections} | ({"rollouts": rollouts} if rollouts else {})


def _evaluated_with(selection: dict[str, Any]) -> str:
    """What a stage II test row was made with: the chosen checkpoint, or, where no checkpoint beat
    the start on dev (step 0, see :mod:`trice.stage2.select_checkpoint`), the start itself, so the row
    repeats stage I's or the base model's and says stage II did not help."""
    if selection["best_step"] != 0:
        return "the test row uses that checkpoint."
    start = "the base model" if selection["selected_from"] is None else "the adapter stage II started from (stage I's)"
    return f"no stage II checkpoint beat the start (step 0) on dev, so the test row uses {start}."


def _candidates_markdown(cand: dict[str, Any]) -> list[str]:
    md = [
        f"{cand['n']} questions with scored candidates (reward strategy `{cand['strategy']}`). Responses per state "
        "(True/False: the answer right or wrong; Yes/No: tool use as gold's or not; no-prediction: no answer could be read):",
        "",
        "| " + " | ".join(cand["states"]) + " |",
        "|" + "---|" * len(cand["states"]),
        "| " + " | ".join(str(v) for v in cand["states"].values()) + " |",
        "",
    ]
    if cand.get("mean_score_by_source"):
        md += ["| source | mean score |", "|---|---|", *[f"| {k} | {v:.2f} |" for k, v in cand["mean_score_by_source"].items()], ""]
    return md


def _rollouts_markdown(rollouts: dict[str, list[dict]]) -> list[str]:
    """Per online setting: its first and last logged step's reward and tool-use rate, its mean step
    time and its rollouts' mean generation speed (the completion tokens trained on per second)."""
    md = ["| online setting | steps | reward (first -> last) | tool use (first -> last) | s / step | rollout tokens / s |", "|---|---|---|---|---|---|"]
    for s, curve in rollouts.items():
        first, last = curve[0], curve[-1]
        seconds, speed = (mean_of(curve, key) for key in ("step_time", "rollout_tokens_per_second"))
        tools = f"{first.get('tool_rate', 0):.0%} -> {last.get('tool_rate', 0):.0%}"
        md.append(f"| {s} | {last['step']} | {first['reward']:.3f} -> {last['reward']:.3f} | {tools} | {seconds} | {speed} |")
    return [*md, "", f"![rollouts]({ROLLOUT_PLOT})", ""]


def mean_of(curve: list[dict], key: str) -> str:
    """The mean of ``key`` over the steps that logged it, to one decimal ("-" where none did)."""
    values = [c[key] for c in curve if key in c]
    return f"{sum(values) / len(values):.1f}" if values else "-"


def stage_two_markdown(stage_two: dict[str, Any], with_loss: bool) -> list[str]:
    md = ["## Stage II", ""]
    if "candidates" in stage_two:
        md += _candidates_markdown(stage_two["candidates"])
    for s, sel in stage_two["selection"].items():
        md += [
            f"**{s}**: best dev step {sel['best_step']} (dev accuracy {100 * sel['best_accuracy']:.1f}% on {sel['n_dev']} held-out "
            f"training questions); {_evaluated_with(sel)}",
            "",
            f"![dev curve {s}]({dev_curve_copy(s)})",
            "",
        ]
    if stage_two.get("rollouts"):
        md += _rollouts_markdown(stage_two["rollouts"])
    if with_loss:
        md += [f"![stage II loss]({STAGE_TWO_LOSS_PLOT})", ""]
    return md
