"""The report's stage II text says which model a stage II test row was made with."""

from __future__ import annotations

import pytest

from trice.report import _stage_two_markdown

CANDIDATES = {"n": 2, "strategy": "paper", "states": {"True-Yes": 2}}


def _selection(best_step: int, selected_from: str | None) -> dict:
    return {"best_step": best_step, "best_accuracy": 0.5, "n_dev": 4, "selected_from": selected_from}


@pytest.mark.parametrize(
    "best_step, selected_from, says",
    [
        (20, "run/train-trice-all/checkpoints/checkpoint-20", "the test row uses that checkpoint."),
        (0, "run/train-trice-i/adapter", "no stage II checkpoint beat the start (step 0) on dev, so the test row uses the adapter stage II started from"),
        (0, None, "no stage II checkpoint beat the start (step 0) on dev, so the test row uses the base model."),
    ],
)
def test_stage_two_text_names_the_chosen_step_or_the_start(best_step: int, selected_from: str | None, says: str) -> None:
    md = "\n".join(_stage_two_markdown({"candidates": CANDIDATES, "selection": {"trice-x": _selection(best_step, selected_from)}}, with_loss=False))
    assert f"**trice-x**: best dev step {best_step} (dev accuracy 50.0% on 4 held-out training questions); {says}" in md
