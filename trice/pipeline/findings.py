"""TRICE's five findings, each a verdict (holds / does not hold / not measured yet / not measured) on one run's
per-question test results, so that a run on any model says whether the paper's claims hold there.

The findings (the TRICE paper, Qiao et al., NAACL 2024: Table 3 and Figure 4):

1. D_tool is a mix: the untuned policy's own right answers are kept for >= 15% of training questions.
2. Stage I raises tool use above what zero-shot needed (the share of questions zero-shot got wrong).
3. Stage II lowers tool use while accuracy does not fall: TRICE-ALL's tool-use rate below TRICE-I's.
4. TRICE-ALL above TRICE-I, SFT 100% and SFT 0% on the average (paired comparisons).
5. TRICE-II alone is less stable than TRICE-ALL: below it on test, or a wider dev curve.

Every comparison is paired over the same test questions with a bootstrap interval
(:func:`trice.utils.stats.paired_difference`); "holds" needs the difference beyond the noise. A
finding whose rows a run lacks is "not measured yet" while they are still to be evaluated, and
"not measured" when the recipe does not have the settings at all (a run without TRICE-II never
measures finding 5, however long it runs).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from trice.pipeline.intervals import Judged, paired_rows
from trice.utils.stats import HIGHER, LOWER, SAME, paired_difference, wilson_interval

MIX_FLOOR = 0.15  # finding 1: the share of training questions D_tool keeps the policy's own right answer for
NOT_YET = "not measured yet"
NOT_RUN = "not measured"  # the recipe lacks a setting the finding compares
# The paired comparisons finding 4 and 5 read: (setting, minus this one).
PAIRS = (("trice-all", "trice-i"), ("trice-all", "sft-100"), ("trice-all", "sft-0"), ("trice-ii", "trice-all"))
ORDER_BASELINES = ("trice-i", "sft-100", "sft-0")


def pooled(judged: Judged, setting: str, which: int) -> dict[str, list[float]]:
    """One setting's per-question ``correct`` (0) or ``used_tool`` (1) per dataset, in a fixed question order."""
    return {ds: [float(answers[i][which]) for i in sorted(answers, key=str)] for ds, answers in judged[setting].items()}


def verdict_line(holds: bool | None, text: str) -> dict[str, Any]:
    return {"holds": holds, "verdict": NOT_YET if holds is None else "holds" if holds else "does not hold", "measured": text}


def lacking(needed: tuple[str, ...], have: Collection[str], planned: Collection[str] | None) -> dict[str, Any] | None:
    """None when every ``needed`` setting is in ``have``; else the verdict of a finding that cannot
    be measured: "not measured" naming the settings the recipe lacks (``planned``: the recipe's
    settings, None when unknown), or "not measured yet" naming the evals still to run."""
    missing = [s for s in needed if s not in have]
    if not missing:
        return None
    absent = [s for s in missing if planned is not None and s not in planned]
    if absent:
        return {"holds": None, "verdict": NOT_RUN, "measured": f"the recipe has no {' or '.join(absent)} setting"}
    return verdict_line(None, "needs " + " and ".join(f"eval-{s}" for s in missing))


def mix_finding(label_stats: dict[str, Any]) -> dict[str, Any]:
    """Finding 1, from the trice label set's statistics."""
    stats = label_stats.get("trice")
    if not stats:
        return verdict_line(None, "the label stage has not run")
    right = stats.get("right", 0)  # absent where no own answer was right
    share = wilson_interval(right / stats["probed"], stats["probed"])
    text = f"own right answers kept for {right}/{stats['probed']} training questions = {share.estimate:.1%} [{share.low:.1%}, {share.high:.1%}]; tool share of D_tool {stats['tool_share']:.1%}"
    return verdict_line(share.estimate >= MIX_FLOOR, text) | {"share": share.__dict__}


def tool_raise_finding(judged: Judged, seed: int, planned: Collection[str] | None = None) -> dict[str, Any]:
    """Finding 2: TRICE-I's tool use minus zero-shot's wrong share, paired over the same test questions."""
    if (cannot := lacking(("zero-shot", "trice-i"), judged, planned)) is not None:
        return cannot
    wrong = {ds: [1.0 - c for c in v] for ds, v in pooled(judged, "zero-shot", 0).items()}
    diff = paired_difference(pooled(judged, "trice-i", 1), wrong, seed=seed)["avg"]
    text = f"TRICE-I tool use minus zero-shot's wrong share: {diff.difference:+.1%} [{diff.low:+.1%}, {diff.high:+.1%}]"
    return verdict_line(diff.low > 0, text) | {"difference": diff.__dict__}


def tool_drop_finding(judged: Judged, seed: int, planned: Collection[str] | None = None) -> dict[str, Any]:
    """Finding 3: TRICE-ALL's tool use below TRICE-I's and its accuracy not lower (both paired)."""
    if (cannot := lacking(("trice-i", "trice-all"), judged, planned)) is not None:
        return cannot
    tools = paired_difference(pooled(judged, "trice-all", 1), pooled(judged, "trice-i", 1), seed=seed)["avg"]
    accuracy = paired_difference(pooled(judged, "trice-all", 0), pooled(judged, "trice-i", 0), seed=seed)["avg"]
    text = (
        f"tool use TRICE-ALL - TRICE-I {tools.difference:+.1%} [{tools.low:+.1%}, {tools.high:+.1%}]; "
        f"accuracy {accuracy.difference:+.1%} [{accuracy.low:+.1%}, {accuracy.high:+.1%}] ({accuracy.verdict})"
    )
    return verdict_line(tools.verdict == LOWER and accuracy.verdict != LOWER, text) | {"tool_use": tools.__dict__, "accuracy": accuracy.__dict__}


def order_finding(judged: Judged, paired: dict[str, Any], planned: Collection[str] | None = None) -> dict[str, Any]:
    """Finding 4: TRICE-ALL above each of TRICE-I, SFT 100%, SFT 0% on the average (paired)."""
    wanted = [f"trice-all vs {b}" for b in ORDER_BASELINES]
    if (cannot := lacking(("trice-all", *ORDER_BASELINES), judged, planned)) is not None:
        return cannot
    parts = [
        f"{w}: {paired[w]['avg']['difference']:+.1%} [{paired[w]['avg']['low']:+.1%}, {paired[w]['avg']['high']:+.1%}] ({paired[w]['avg']['verdict']})"
        for w in wanted
    ]
    return verdict_line(all(paired[w]["avg"]["verdict"] == HIGHER for w in wanted), "; ".join(parts))


def stability_finding(judged: Judged, paired: dict[str, Any], stage_two: dict[str, Any], planned: Collection[str] | None = None) -> dict[str, Any]:
    """Finding 5: TRICE-II below TRICE-ALL on test (paired), or its dev curve spread wider."""
    if (cannot := lacking(("trice-ii", "trice-all"), judged, planned)) is not None:
        return cannot
    pair = paired["trice-ii vs trice-all"]
    selection = stage_two.get("selection", {})
    if not {"trice-ii", "trice-all"} <= set(selection):
        return verdict_line(None, "needs both stage II dev curves")
    spread = {s: max(p["accuracy"] for p in selection[s]["curve"]) - min(p["accuracy"] for p in selection[s]["curve"]) for s in ("trice-ii", "trice-all")}
    avg = pair["avg"]
    text = (
        f"TRICE-II - TRICE-ALL on test {avg['difference']:+.1%} [{avg['low']:+.1%}, {avg['high']:+.1%}] ({avg['verdict']}); "
        f"dev accuracy spread over checkpoints: TRICE-II {spread['trice-ii']:.1%}, TRICE-ALL {spread['trice-all']:.1%}"
    )
    return verdict_line(avg["verdict"] == LOWER or (avg["verdict"] == SAME and spread["trice-ii"] > spread["trice-all"]), text)


def findings(
    judged: Judged,
    label_stats: dict[str, Any],
    stage_two: dict[str, Any],
    seed: int,
    paired: dict[str, Any] | None = None,
    planned: Collection[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The five findings on ``judged`` (the evaluated settings' per-question results), the run's
    label statistics and its stage II summary (:func:`trice.pipeline.report.stage_two_summary`).
    ``paired``: comparisons the caller already bootstrapped with the same ``seed`` (each pair's
    resamples depend on the seed alone), so only the missing :data:`PAIRS` are computed.
    ``planned``: the recipe's settings, so that a finding needing one it lacks says "not measured"
    rather than "not measured yet"."""
    paired = dict(paired or {})
    missing = [(a, b) for a, b in PAIRS if a in judged and b in judged and f"{a} vs {b}" not in paired]
    if missing:
        paired |= paired_rows(judged, missing, seed)
    return {
        "1 D_tool is a mix": mix_finding(label_stats),
        "2 stage I raises tool use": tool_raise_finding(judged, seed, planned),
        "3 stage II lowers tool use, accuracy kept": tool_drop_finding(judged, seed, planned),
        "4 TRICE-ALL above TRICE-I, SFT 100%, SFT 0%": order_finding(judged, paired, planned),
        "5 TRICE-II less stable than TRICE-ALL": stability_finding(judged, paired, stage_two, planned),
    }


def tool_use_by_zero_shot(judged: Judged) -> dict[str, dict[str, float]]:
    """Per setting, the tool-use rate on the test questions zero-shot got right and on those it got
    wrong: the paper's Figure 4 (stage II should call tools less where the model knows the answer)."""
    if "zero-shot" not in judged:
        return {}
    right = {(ds, i) for ds, answers in judged["zero-shot"].items() for i, (c, _) in answers.items() if c}
    out: dict[str, dict[str, float]] = {}
    for setting, by_ds in judged.items():
        groups: dict[str, list[bool]] = {"zero-shot right": [], "zero-shot wrong": []}
        for ds, answers in by_ds.items():
            for i, (_, used) in answers.items():
                groups["zero-shot right" if (ds, i) in right else "zero-shot wrong"].append(used)
        out[setting] = {k: sum(v) / len(v) for k, v in groups.items() if v}
    return out


def findings_markdown(found: dict[str, dict[str, Any]], by_zero_shot: dict[str, dict[str, float]] | None = None, plot: str = "") -> list[str]:
    """The report's section: one table row per finding, then each setting's tool use on the questions
    zero-shot got right and wrong (``by_zero_shot``, :func:`tool_use_by_zero_shot`) and its ``plot``."""
    lines = [
        "## TRICE's findings on this run",
        "",
        "Each of the TRICE paper's five findings on this run's test questions, with paired comparisons and their 95% intervals.",
        "",
        "| finding | verdict | measured |",
        "|---|---|---|",
        *[f"| {name} | {f['verdict']} | {f['measured']} |" for name, f in found.items()],
        "",
    ]
    if not by_zero_shot:
        return lines
    cell = lambda rates, group: f"{rates[group]:.0%}" if group in rates else "-"  # noqa: E731 (no question in the group)
    return lines + [
        "Tool use on the test questions zero-shot answered right, and on those it got wrong (the paper's Figure 4: "
        "stage II should call less where the model knows the answer):",
        "",
        "| setting | zero-shot right | zero-shot wrong |",
        "|---|---|---|",
        *[f"| {s} | {cell(r, 'zero-shot right')} | {cell(r, 'zero-shot wrong')} |" for s, r in by_zero_shot.items()],
        "",
        *([f"![tool use where zero-shot was right or wrong]({plot})", ""] if plot else []),
    ]
