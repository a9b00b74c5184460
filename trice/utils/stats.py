"""95% intervals for accuracies and tool-use rates, and paired comparisons of two settings.

Test sets of a few hundred questions leave several points of sampling noise in every accuracy, so a
ranking of settings means something only where it exceeds that noise. Two ways to measure it:

- from per-question results (a run's ``judged.jsonl`` files): a seeded percentile bootstrap over
  questions; an average over datasets is resampled within each dataset (stratified) and then
  averaged, as the TRICE paper (Qiao et al., NAACL 2024) averages its test sets; two settings judged
  on the same questions are compared by resampling the questions jointly (paired), which removes the
  noise both settings share;
- from an accuracy ``p`` on ``n`` questions alone (results recorded without per-question data): the
  Wilson binomial interval per dataset, and for an average over datasets the normal interval from
  the summed per-dataset variances, which is what the stratified bootstrap estimates.

Plain functions over numpy arrays and numbers; shares in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from collections.abc import Mapping, Sequence

import numpy as np

N_RESAMPLES = 2000
LEVEL = 0.95
Z = NormalDist().inv_cdf(0.5 + LEVEL / 2)  # 1.96
HIGHER, LOWER, SAME = "higher", "lower", "no difference"


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """``a - b`` with its 95% interval and what it says: "higher" or "lower" where the interval
    excludes 0, else "no difference"."""

    difference: float
    low: float
    high: float
    verdict: str


def verdict(low: float, high: float) -> str:
    """ "higher" / "lower" when the interval of a difference lies wholly above / below 0."""
    return HIGHER if low > 0 else LOWER if high < 0 else SAME


def _percentile_interval(estimate: float, samples: np.ndarray) -> tuple[float, float, float]:
    low, high = np.percentile(samples, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return float(estimate), float(low), float(high)


def _as_array(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what}: expected a non-empty list of per-question values, got shape {array.shape}")
    return array


def _resampled_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The means of ``n_resamples`` resamples (with replacement) of ``values``, all drawn at once.

    A resample is fully described by how often it draws each distinct value, and those counts are
    multinomial with the values' observed shares: drawing the counts gives exactly the bootstrap's
    distribution at a cost that grows with the distinct values (two for right/wrong, three for a
    paired difference) instead of with the questions."""
    distinct, counts = np.unique(values, return_counts=True)
    draws = rng.multinomial(values.size, counts / values.size, size=n_resamples)
    return draws @ distinct / values.size


def _stratified_means(strata: Mapping[str, Sequence[float] | np.ndarray], weights: str, n_resamples: int, seed: int) -> tuple[float, np.ndarray]:
    """Resample within each stratum, then combine the strata's means: ``"equal"`` weights (the
    unweighted average over datasets) or ``"size"`` (the pooled share over all questions)."""
    if not strata:
        raise ValueError("no datasets to average over")
    if weights not in ("equal", "size"):
        raise ValueError(f"weights must be 'equal' or 'size', got {weights!r}")
    rng = np.random.default_rng(seed)
    arrays = [_as_array(v, name) for name, v in strata.items()]
    sizes = np.array([a.size for a in arrays], dtype=float)
    w = np.full(len(arrays), 1 / len(arrays)) if weights == "equal" else sizes / sizes.sum()
    estimate = float(sum(wi * a.mean() for wi, a in zip(w, arrays)))
    samples = sum(wi * _resampled_means(a, n_resamples, rng) for wi, a in zip(w, arrays))
    return estimate, samples


def bootstrap_share(values: Sequence[float] | np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0) -> Interval:
    """The share of questions answered right (or calling a tool) on one dataset, resampled over questions."""
    array = _as_array(values, "bootstrap_share")
    return Interval(*_percentile_interval(array.mean(), _resampled_means(array, n_resamples, np.random.default_rng(seed))))


def bootstrap_average(
    by_dataset: Mapping[str, Sequence[float] | np.ndarray], weights: str = "equal", n_resamples: int = N_RESAMPLES, seed: int = 0
) -> Interval:
    """The unweighted average over datasets (``weights="equal"``, the paper's average accuracy) or
    the pooled share over all questions (``"size"``, the tool-use rate), resampled within datasets."""
    estimate, samples = _stratified_means(by_dataset, weights, n_resamples, seed)
    return Interval(*_percentile_interval(estimate, samples))


def _paired_deltas(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    left, right = _as_array(a, name), _as_array(b, name)
    if left.size != right.size:
        raise ValueError(f"{name}: paired settings need the same questions, got {left.size} and {right.size} answers")
    return left - right


def paired_difference(
    a: Mapping[str, Sequence[float] | np.ndarray], b: Mapping[str, Sequence[float] | np.ndarray], n_resamples: int = N_RESAMPLES, seed: int = 0
) -> dict[str, Difference]:
    """Setting ``a`` minus setting ``b`` per dataset and on the unweighted average ("avg").

    ``a[ds][i]`` and ``b[ds][i]`` are the two settings' results on the same question: the bootstrap
    resamples question indices once for both (it resamples the per-question differences), so only the
    questions where the settings disagree move the interval.
    """
    if set(a) != set(b):
        raise ValueError(f"paired settings need the same datasets, got {sorted(a)} and {sorted(b)}")
    deltas = {ds: _paired_deltas(a[ds], b[ds], ds) for ds in a}
    out: dict[str, Difference] = {}
    for ds, delta in deltas.items():  # each dataset its own seeded draw, so its interval does not depend on the others
        estimate, low, high = _percentile_interval(delta.mean(), _resampled_means(delta, n_resamples, np.random.default_rng(seed)))
        out[ds] = Difference(estimate, low, high, verdict(low, high))
    estimate, low, high = _percentile_interval(*_stratified_means(deltas, "equal", n_resamples, seed))
    out["avg"] = Difference(estimate, low, high, verdict(low, high))
    return out


def wilson_interval(p: float, n: int) -> Interval:
    """The Wilson score interval of a share ``p`` observed on ``n`` questions (never outside [0, 1],
    and not of zero width at 0% or 100% as the normal interval is)."""
    if n <= 0 or not 0 <= p <= 1:
        raise ValueError(f"wilson_interval: need 0 <= p <= 1 and n > 0, got p={p}, n={n}")
    z2 = Z * Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # the interval always holds p; min/max keep rounding from putting 0% a hair above its own low end
    return Interval(float(p), float(max(0.0, min(p, centre - half))), float(min(1.0, max(p, centre + half))))


def _average_variance(ps: Sequence[float], ns: Sequence[int], weights: str) -> tuple[float, float]:
    """The weighted mean of the shares and the variance of that mean, datasets independent."""
    p, n = np.asarray(ps, dtype=float), np.asarray(ns, dtype=float)
    if p.size == 0 or p.size != n.size or (n <= 0).any():
        raise ValueError(f"need one positive question count per share, got shares {list(ps)} and counts {list(ns)}")
    if weights not in ("equal", "size"):
        raise ValueError(f"weights must be 'equal' or 'size', got {weights!r}")
    w = np.full(p.size, 1 / p.size) if weights == "equal" else n / n.sum()
    return float(w @ p), float((w * w) @ (p * (1 - p) / n))


def average_interval(ps: Sequence[float], ns: Sequence[int], weights: str = "equal") -> Interval:
    """The normal interval of the average of per-dataset shares ``ps`` on ``ns`` questions, from the
    summed variances (``weights`` as in :func:`bootstrap_average`), clipped to [0, 1]."""
    mean, variance = _average_variance(ps, ns, weights)
    half = Z * np.sqrt(variance)
    return Interval(mean, float(max(0.0, mean - half)), float(min(1.0, mean + half)))


def unpaired_difference(a_ps: Sequence[float], b_ps: Sequence[float], ns: Sequence[int]) -> Difference:
    """The difference of two settings' unweighted averages when only their shares are known.

    It treats the two settings as independent samples; settings judged on the same questions are
    positively correlated, so this interval is wider than the paired bootstrap's (conservative): a
    verdict of "higher"/"lower" holds, "no difference" means only "not shown apart"."""
    mean_a, var_a = _average_variance(a_ps, ns, "equal")
    mean_b, var_b = _average_variance(b_ps, ns, "equal")
    half = Z * np.sqrt(var_a + var_b)
    diff = mean_a - mean_b
    return Difference(diff, float(diff - half), float(diff + half), verdict(diff - half, diff + half))
