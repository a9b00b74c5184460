"""What a stage that did not finish raises, and the one line the user reads about it.

A stage whose rows failed on the machine's side (an endpoint that did not answer, a tool that met an
outage) writes what it has and raises :class:`FailedRows`; :func:`trice.pipeline.stage_dirs.run_stage`
keeps it incomplete and stops the run with :class:`StageIncomplete`, so a rerun retries those rows
and no report is built on them as if they were the model's wrong answers.
"""

from __future__ import annotations

from collections.abc import Sequence


class StageError(RuntimeError):
    """A stage that cannot run now, or did not finish: one located line for the user."""


class StageBusy(StageError):
    """Another process is running this stage of this run."""


class StageIncomplete(StageError):
    """A stage ran through but some rows failed; it stays incomplete and a rerun retries them."""


class FailedRows(Exception):
    """Raised by a stage function after writing what it could: ``count`` of ``total`` rows failed
    (``first``: the first error), so the stage must not count as complete."""

    failure = "failed"  # what happened to the rows, in the message
    then = "what succeeded is kept, and a rerun of the recipe retries the failed rows (is the server up?)"

    def __init__(self, count: int, total: int, first: str):
        self.count, self.total, self.first = count, total, first
        super().__init__(f"{count} of {total} rows {self.failure} (first: {first})")


class ToolOutages(FailedRows):
    """Raised by a probe, eval, label or score stage after writing everything: for ``count`` of
    ``total`` rows a tool or its server did not answer a call (judged wrong; in labelling, the
    question left without a verified call; in scoring, the candidate scored as a failed call; in
    stage II training, the dev evaluation that chose the checkpoint). The stage stays incomplete, and a rerun executes those calls again,
    unless the run accepts outages (``trice run --accept-outages``)."""

    failure = "met a tool outage"
    then = (
        "everything is kept, and a rerun of the recipe executes those calls again (is the tool's server up?); "
        "`trice run --accept-outages` instead finishes the stage with them judged wrong"
    )


class TrainingOutages(FailedRows):
    """Raised by an online stage II training stage whose rewards met a tool outage
    (:class:`trice.stage2.reward.RewardOutage`): training stopped part-way, its checkpoints kept. Not
    a :class:`ToolOutages`: ``--accept-outages`` cannot finish a training that did not."""

    failure = "met a tool outage while rewarded"
    then = "the checkpoints are kept, and a rerun of the recipe resumes training from the last one (is the tool's server up?)"


def raise_failed_rows(rows: Sequence[dict], key: str = "error") -> None:
    """:class:`FailedRows` when some row holds a truthy ``key`` (a list of errors counts where any is set)."""
    failed = [row[key] for row in rows if row.get(key) and (not isinstance(row[key], list) or any(row[key]))]
    if failed:
        first = failed[0] if not isinstance(failed[0], list) else next(e for e in failed[0] if e)
        raise FailedRows(len(failed), len(rows), str(first)[:200])
