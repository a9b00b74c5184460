"""trice/pipeline/decisions.py's plot: one point per setting, its interval where given, the oracle."""

from __future__ import annotations

from pathlib import Path

from trice.pipeline.decisions import plot_decisions


def test_the_plot_draws_every_row_with_or_without_its_interval_and_the_oracle(tmp_path: Path, monkeypatch) -> None:
    import matplotlib.axes

    drawn: list[str] = []
    for name in ("errorbar", "scatter", "annotate"):
        original = getattr(matplotlib.axes.Axes, name)
        monkeypatch.setattr(matplotlib.axes.Axes, name, lambda self, *a, _o=original, _n=name, **k: (drawn.append(_n), _o(self, *a, **k))[1])
    rows = {"sft-100": {"avg": 0.67, "tool_rate": 1.0, "low": 0.635, "high": 0.704}, "trice-i": {"avg": 0.645, "tool_rate": 1.0}}
    plot_decisions(rows, {"oracle": {"avg": 0.738, "tool_rate": 0.6}}, tmp_path / "decision.png")
    assert (tmp_path / "decision.png").stat().st_size > 0
    assert drawn.count("errorbar") == 1 and drawn.count("scatter") == 2 and drawn.count("annotate") == 3
