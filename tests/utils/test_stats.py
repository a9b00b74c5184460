"""trice.utils.stats: bootstrap and binomial 95% intervals on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from trice.utils import stats


def _half_right(n: int) -> np.ndarray:
    return np.array([1.0, 0.0] * (n // 2))


def test_all_right_or_all_wrong_has_a_zero_width_interval() -> None:
    assert stats.bootstrap_share(np.ones(50)) == stats.Interval(1.0, 1.0, 1.0)
    assert stats.bootstrap_share(np.zeros(50)) == stats.Interval(0.0, 0.0, 0.0)


def test_half_right_of_400_is_about_the_normal_approximation() -> None:
    """p = 0.5, n = 400: the normal interval is 0.5 +- 1.96 * 0.025 = +- 4.9 points."""
    interval = stats.bootstrap_share(_half_right(400))
    assert interval.estimate == 0.5
    assert interval.low == pytest.approx(0.451, abs=0.008) and interval.high == pytest.approx(0.549, abs=0.008)
    wilson = stats.wilson_interval(0.5, 400)
    assert wilson.low == pytest.approx(0.4512, abs=1e-3) and wilson.high == pytest.approx(0.5488, abs=1e-3)


def test_the_seed_fixes_the_numbers() -> None:
    values = np.random.default_rng(1).random(300) < 0.3
    assert stats.bootstrap_share(values, seed=7) == stats.bootstrap_share(values, seed=7)
    assert stats.bootstrap_share(values, seed=7) != stats.bootstrap_share(values, seed=8)
    by_ds = {"a": values[:150], "b": values[150:]}
    assert stats.bootstrap_average(by_ds, seed=3) == stats.bootstrap_average(by_ds, seed=3)


def test_the_average_is_resampled_within_each_dataset() -> None:
    """One set all right, one all wrong: a stratified resample always averages 0.5 (a pooled one would not)."""
    interval = stats.bootstrap_average({"right": np.ones(100), "wrong": np.zeros(300)})
    assert interval == stats.Interval(0.5, 0.5, 0.5)
    pooled = stats.bootstrap_average({"right": np.ones(100), "wrong": np.zeros(300)}, weights="size")
    assert pooled == stats.Interval(0.25, 0.25, 0.25)  # the tool-use rate's weighting: every question counts once


def test_summed_variances_match_the_stratified_bootstrap() -> None:
    """What recorded results get without per-question data estimates what the bootstrap measures."""
    rng = np.random.default_rng(0)
    by_ds = {name: rng.random(300) < p for name, p in (("a", 0.1), ("b", 0.3), ("c", 0.6))}
    boot = stats.bootstrap_average(by_ds)
    normal = stats.average_interval([v.mean() for v in by_ds.values()], [v.size for v in by_ds.values()])
    assert normal.estimate == pytest.approx(boot.estimate)
    assert normal.low == pytest.approx(boot.low, abs=0.006) and normal.high == pytest.approx(boot.high, abs=0.006)


def test_paired_superset_is_higher_and_identical_settings_show_no_difference() -> None:
    b = {"x": _half_right(200), "y": np.zeros(100)}
    a = {"x": np.ones(200), "y": np.r_[np.ones(30), np.zeros(70)]}  # right wherever b is, and on more questions
    diffs = stats.paired_difference(a, b)
    assert diffs["x"].difference == 0.5 and diffs["x"].verdict == "higher" and diffs["x"].low > 0.4
    assert diffs["y"].verdict == "higher" and diffs["avg"].difference == pytest.approx(0.4) and diffs["avg"].verdict == "higher"
    assert stats.paired_difference(b, a)["avg"].verdict == "lower"
    same = stats.paired_difference(a, a)
    assert all(d == stats.Difference(0.0, 0.0, 0.0, "no difference") for d in same.values())


def test_pairing_is_narrower_than_treating_the_settings_as_independent() -> None:
    """Two settings that differ on 12 of 300 questions: the paired interval sees only those 12."""
    rng = np.random.default_rng(2)
    b = (rng.random(300) < 0.4).astype(float)
    a = b.copy()
    flip = np.flatnonzero(b == 0)[:12]
    a[flip] = 1.0
    paired = stats.paired_difference({"x": a}, {"x": b})["avg"]
    unpaired = stats.unpaired_difference([a.mean()], [b.mean()], [300])
    assert paired.difference == pytest.approx(unpaired.difference) == pytest.approx(0.04)
    assert paired.verdict == "higher" and unpaired.verdict == "no difference"
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 2


def test_wilson_at_zero_is_not_of_zero_width() -> None:
    interval = stats.wilson_interval(0.0, 10)
    assert interval.low == 0.0 and interval.high == pytest.approx(stats.Z**2 / (10 + stats.Z**2))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: stats.bootstrap_share([]), "non-empty"),
        (lambda: stats.paired_difference({"x": [1, 0]}, {"x": [1, 0, 1]}), "same questions"),
        (lambda: stats.paired_difference({"x": [1]}, {"y": [1]}), "same datasets"),
        (lambda: stats.bootstrap_average({"x": [1]}, weights="mean"), "weights"),
        (lambda: stats.wilson_interval(0.5, 0), "n > 0"),
    ],
)
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_counting_resamples_matches_drawing_question_indices() -> None:
    """The bootstrap draws how often each distinct value is resampled; drawing question indices, the
    textbook way, must give the same interval up to resampling noise."""
    rng = np.random.default_rng(5)
    values = (rng.random(300) < 0.3).astype(float)
    index = rng.integers(0, values.size, size=(20000, values.size))
    textbook = np.percentile(values[index].mean(axis=1), [2.5, 97.5])
    interval = stats.bootstrap_share(values, n_resamples=20000)
    assert interval.low == pytest.approx(textbook[0], abs=0.004) and interval.high == pytest.approx(textbook[1], abs=0.004)
