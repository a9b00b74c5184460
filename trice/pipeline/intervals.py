"""A run's uncertainty: 95% intervals of every accuracy and tool-use rate, and comparisons of the
stage II settings against TRICE-I and SFT 100%.

From a finished run's ``judged.jsonl`` files (:func:`read_judged`), or the compact copy of them a
report keeps in results.json (:func:`per_question`, :func:`judged_from_record`), the intervals are
bootstrapped and the comparisons paired; from recorded results that hold only each accuracy and its number of test
questions (benchmark files whose run directories are gone) they are binomial and unpaired
(:func:`binomial_rows`, :func:`unpaired_rows`). The statistics are :mod:`trice.utils.stats`; this module
lines results up by setting, dataset and question id, and formats what the reports show. Every
function takes any list of settings and datasets.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from trice.core.layout import JUDGED, RunLayout
from trice.pipeline.settings import BASELINES, COMPARED
from trice.utils.io import DataError, read_jsonl
from trice.utils.stats import N_RESAMPLES, average_interval, bootstrap_average, bootstrap_share, paired_difference, unpaired_difference, wilson_interval

# per setting, per dataset, per question id: (correct, used_tool)
Judged = dict[str, dict[str, dict[Any, tuple[bool, bool]]]]

JUDGED_FIELDS = {"dataset": str, "correct": bool, "used_tool": bool}


def interval_method(seed: int, n_resamples: int = N_RESAMPLES) -> str:
    """How :func:`interval_rows` and :func:`paired_rows` computed their numbers, for results.json."""
    return (
        f"95% percentile bootstrap over test questions, {n_resamples:,} resamples, seed {seed}; avg: resampled within "
        "each test set, then averaged (stratified); tool_rate: stratified, pooled over all questions; paired: both "
        "settings' answers to the same resampled question ids"
    )


BINOMIAL_METHOD = (
    "95% intervals from each accuracy and its number of test questions (no per-question data kept): Wilson "
    "binomial interval per test set; avg: normal interval from the summed per-set variances (what a stratified "
    "bootstrap estimates); tool_rate: the same, pooled over all questions; unpaired: the two settings' variances "
    "added, ignoring that they answered the same questions (wider than a paired test)"
)


def read_judged(run_dir: Path, settings: list[str], datasets: list[str]) -> Judged:
    """Each setting's per-question (correct, used_tool) on each dataset, from ``eval-<setting>/judged.jsonl``."""
    judged: Judged = {}
    for setting in settings:
        path = RunLayout(run_dir).eval_dir(setting) / JUDGED
        by_ds: dict[str, dict[Any, tuple[bool, bool]]] = {ds: {} for ds in datasets}
        for row in read_jsonl(path, JUDGED_FIELDS, unique="id"):
            if row["dataset"] in by_ds:
                by_ds[row["dataset"]][row["id"]] = (row["correct"], row["used_tool"])
        empty = [ds for ds, rows in by_ds.items() if not rows]
        if empty:
            raise DataError(path, None, "dataset", f"no judged questions of test set(s) {', '.join(empty)}")
        judged[setting] = by_ds
    return judged


def per_question(judged: Judged) -> dict[str, Any]:
    """The per-question results in compact form for results.json, so that tables assembled from
    recorded results (bench/) can still bootstrap and pair after the run directory is gone: each
    dataset's question ids once, and per setting and dataset its ``correct`` and ``used_tool`` as
    strings of 0/1 in that order. Every setting must have answered the same questions."""
    first, by_first = next(iter(judged.items()))
    ids = {ds: sorted(answers, key=str) for ds, answers in by_first.items()}
    for setting, by_ds in judged.items():
        for ds, answers in by_ds.items():
            if set(answers) != set(ids.get(ds, ())):
                raise ValueError(f"{setting} and {first} were judged on different {ds} questions")
    bits = lambda answers, ds, k: "".join("1" if answers[i][k] else "0" for i in ids[ds])  # noqa: E731
    return {
        "ids": ids,
        "correct": {s: {ds: bits(a, ds, 0) for ds, a in by_ds.items()} for s, by_ds in judged.items()},
        "used_tool": {s: {ds: bits(a, ds, 1) for ds, a in by_ds.items()} for s, by_ds in judged.items()},
    }


def judged_from_record(record: dict[str, Any]) -> Judged:
    """:func:`per_question`'s record read back into the form :func:`read_judged` returns."""
    ids = record["ids"]
    return {
        s: {ds: {i: (c == "1", u == "1") for i, c, u in zip(ids[ds], correct, record["used_tool"][s][ds], strict=True)} for ds, correct in by_ds.items()}
        for s, by_ds in record["correct"].items()
    }


def _column(answers: dict[Any, tuple[bool, bool]], which: int) -> list[float]:
    return [float(v[which]) for v in answers.values()]


def interval_rows(judged: Judged, seed: int, n_resamples: int = N_RESAMPLES) -> dict[str, dict[str, list[float]]]:
    """Per setting, the ``[low, high]`` 95% interval of each dataset's accuracy, of their unweighted
    average ("avg") and of the tool-use rate ("tool_rate"): the keys of the report's rows."""
    out: dict[str, dict[str, list[float]]] = {}
    for setting, by_ds in judged.items():
        correct = {ds: _column(answers, 0) for ds, answers in by_ds.items()}
        used = {ds: _column(answers, 1) for ds, answers in by_ds.items()}
        row = {ds: bootstrap_share(v, n_resamples, seed) for ds, v in correct.items()}
        row["avg"] = bootstrap_average(correct, "equal", n_resamples, seed)
        row["tool_rate"] = bootstrap_average(used, "size", n_resamples, seed)
        out[setting] = {k: [i.low, i.high] for k, i in row.items()}
    return out


def comparison_pairs(settings: list[str], baselines: tuple[str, ...] = BASELINES) -> list[tuple[str, str]]:
    """(setting, baseline) for the stage II settings and TRICE-I against TRICE-I and SFT 100% (or
    ``baselines``), those of them in ``settings``."""
    return [(a, b) for a in COMPARED if a in settings for b in baselines if b in settings and b != a]


def _aligned(judged: Judged, a: str, b: str) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Both settings' correctness per dataset both have (a run not finished lacks some), in the same
    question order."""
    left: dict[str, list[float]] = {}
    right: dict[str, list[float]] = {}
    for ds, answers in judged[a].items():
        if ds not in judged[b]:
            continue
        other = judged[b][ds]
        if set(answers) != set(other):
            raise ValueError(
                f"{a} and {b} were judged on different {ds} questions ({len(answers)} and {len(other)} ids, {len(set(answers) ^ set(other))} not shared)"
            )
        ids = list(answers)
        left[ds], right[ds] = [float(answers[i][0]) for i in ids], [float(other[i][0]) for i in ids]
    return left, right


def paired_rows(judged: Judged, pairs: list[tuple[str, str]], seed: int, n_resamples: int = N_RESAMPLES) -> dict[str, dict[str, dict[str, Any]]]:
    """``"a vs b"`` -> per dataset and "avg" (over the datasets both have): a's accuracy minus b's, its
    paired 95% interval and verdict."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for a, b in pairs:
        diffs = paired_difference(*_aligned(judged, a, b), n_resamples, seed)
        out[f"{a} vs {b}"] = {k: asdict(d) for k, d in diffs.items()}
    return out


def binomial_rows(rows: dict[str, dict[str, float]], tool_rates: dict[str, dict[str, float]], sizes: dict[str, int]) -> dict[str, dict[str, list[float]]]:
    """:func:`interval_rows` for recorded results: ``rows`` and ``tool_rates`` as in results.json,
    ``sizes`` the test questions per dataset. A row covers the datasets it has (a run not finished)."""
    out: dict[str, dict[str, list[float]]] = {}
    for setting, r in rows.items():
        have = [ds for ds in sizes if ds in r]
        ns = [sizes[ds] for ds in have]
        row = {ds: wilson_interval(r[ds], sizes[ds]) for ds in have}
        row["avg"] = average_interval([r[ds] for ds in have], ns, "equal")
        row["tool_rate"] = average_interval([tool_rates[setting][ds] for ds in have], ns, "size")
        out[setting] = {k: [i.low, i.high] for k, i in row.items()}
    return out


def unpaired_rows(rows: dict[str, dict[str, float]], sizes: dict[str, int], pairs: list[tuple[str, str]]) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`paired_rows` for recorded results, from the accuracies alone (see
    :func:`trice.utils.stats.unpaired_difference`), over the datasets both settings have."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for a, b in pairs:
        have = [ds for ds in sizes if ds in rows[a] and ds in rows[b]]
        diffs = {ds: unpaired_difference([rows[a][ds]], [rows[b][ds]], [sizes[ds]]) for ds in have}
        diffs["avg"] = unpaired_difference([rows[a][ds] for ds in have], [rows[b][ds] for ds in have], [sizes[ds] for ds in have])
        out[f"{a} vs {b}"] = {k: asdict(d) for k, d in diffs.items()}
    return out


def interval_text(low: float, high: float) -> str:
    """``[24.4, 34.7]``: a share's interval in percent."""
    return f"[{100 * low:.1f}, {100 * high:.1f}]"


def difference_text(d: dict[str, Any]) -> str:
    """``-2.0 [-3.6, -0.4] lower``: a difference (as :func:`paired_rows` stores it) in points, with its
    interval and verdict."""
    return f"{100 * d['difference']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] {d['verdict']}"


def comparison_table(comparisons: dict[str, dict[str, dict[str, Any]]], datasets: list[str]) -> list[str]:
    """One Markdown row per ``"a vs b"`` of :func:`paired_rows` or :func:`unpaired_rows`, one column
    per dataset and avg ("-" where the pair lacks that dataset)."""
    md = ["| comparison | " + " | ".join(datasets) + " | avg |", "|" + "---|" * (len(datasets) + 2)]
    for name, diffs in comparisons.items():
        md.append(f"| {name} | " + " | ".join(difference_text(diffs[k]) if k in diffs else "-" for k in [*datasets, "avg"]) + " |")
    return md


def paired_markdown(paired: dict[str, dict[str, dict[str, Any]]], datasets: list[str], seed: int, n_resamples: int = N_RESAMPLES) -> list[str]:
    """The report's "Paired comparisons" section."""
    if not paired:
        return []
    return [
        "## Paired comparisons",
        "",
        "Accuracy of the first setting minus the second, in points, with its 95% interval from a paired bootstrap "
        f'(the same {n_resamples:,} resamples of test questions for both settings, seed {seed}): "higher" or "lower" '
        'where the interval excludes 0, else "no difference".',
        "",
        *comparison_table(paired, datasets),
        "",
    ]
