"""Where a run keeps its files: every stage directory's name and every file one stage reads from
another, spelled here once.

A stage's directory name is its stage name (``data``, ``train-trice-i``, ``eval-zero-shot``,
``eval-trice-i-unseen-mini``, ...), and its fingerprint hashes its config and inputs with these
paths in them (:mod:`trice.pipeline.stage_dirs`), so a finished run skips its stages only while every
name here stays as it is: change none of them.

A training's output directory holds what the trainers write (``adapter``, ``checkpoints``,
``train_log.json``) and, for stage II, what the dev-set checkpoint choice writes
(:mod:`trice.stage2.select_checkpoint`: ``selection.json``, ``adapter_best``, ``dev_curve.png``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Stages without a setting, by name (each name is also its directory's).
DATA = "data"
PROBE = "probe"
PROBE_SAMPLES = "probe-samples"  # sampled answers to the training questions (trice.stage1.boundary)
LABEL = "label"
DEV = "dev"
CANDIDATES = "candidates"
SCORE = "score"
REPORT = "report"
REPORT_SO_FAR = "report-so-far"  # ``trice run --report-so-far``: no stage, so no stage reads it
# A setting's stages: ``train-<setting>`` and ``eval-<setting>`` (kinds of :func:`split_stage`).
TRAIN = "train"
EVAL = "eval"

OLD = "old"  # <run>/old/<stage>-<time>: stage directories moved aside when their stage starts over
RECIPE = "recipe.json"  # the recipe as run, written before any stage
RUN_LOCK = ".trice-run.lock"  # held by the one `trice run` writing the run (trice.pipeline.runner.holding_run_dir)

# Files inside stage directories.
RESPONSES = "responses.jsonl"
READINGS = "readings.jsonl"  # tool outputs read again by the model (qa, mlqa)
JUDGED = "judged.jsonl"
SUMMARY = "summary.json"
THRESHOLD_CHOICE = "threshold.json"  # an eval with decision threshold: its dev curve and tau
EVAL_OUTPUTS = (RESPONSES, READINGS, JUDGED, SUMMARY, THRESHOLD_CHOICE)  # what an eval stage writes
REUSED = "reused.json"  # an eval copied from a twin eval: which one
SPLITS = "splits.json"
TRAIN_EXAMPLES = "train.jsonl"
TEST_EXAMPLES = "test.jsonl"
DEV_EXAMPLES = "dev.jsonl"
CANDIDATES_FILE = "candidates.jsonl"
SCORED = "scored.jsonl"
SAME_AS = "same_as.json"  # a train stage sharing a twin's training (trice.pipeline.shared_training)
RESULTS = "results.json"
REPORT_MD = "report.md"
SAMPLED_EXAMPLES = "examples.jsonl"  # probe-samples: k copies of each training question
OWN_ACCURACY = "own_accuracy.jsonl"  # probe-samples: each training question's right answers of k+1

# A training's output directory.
ADAPTER = "adapter"
CHECKPOINTS = "checkpoints"
TRAIN_LOG = "train_log.json"
SELECTION = "selection.json"
BEST_ADAPTER = "adapter_best"
DEV_CURVE = "dev_curve.png"


def train_stage(setting: str) -> str:
    return f"{TRAIN}-{setting}"


def eval_stage(setting: str) -> str:
    return f"{EVAL}-{setting}"


def unseen_stage(setting: str, name: str) -> str:
    """The eval of ``setting`` on the unseen test set ``name`` (:mod:`trice.pipeline.unseen`)."""
    return f"{EVAL}-{setting}-unseen-{name}"


def split_stage(name: str) -> tuple[str, str | None]:
    """(kind, setting): ``("train", "trice-i")`` for ``train-trice-i``, ``(name, None)`` for a stage
    without a setting. An unseen eval's name splits as an eval of a setting that does not exist:
    look it up among the plan's unseen stages first."""
    for kind in (TRAIN, EVAL):
        if name.startswith(f"{kind}-"):
            return kind, name.removeprefix(f"{kind}-")
    return name, None


def label_file(mode: str) -> str:
    """A labelled training set's file in the label stage (``trice.jsonl`` is D_tool)."""
    return f"{mode}.jsonl"


def label_stats_file(mode: str) -> str:
    return f"{mode}.stats.json"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory."""

    root: Path

    def stage(self, name: str) -> Path:
        return self.root / name

    def stage_of(self, path: Path) -> str | None:
        """The stage whose directory holds ``path`` (None: a path outside the run)."""
        try:
            return path.relative_to(self.root).parts[0]
        except (ValueError, IndexError):
            return None

    @property
    def recipe(self) -> Path:
        return self.root / RECIPE

    @property
    def old(self) -> Path:
        return self.root / OLD

    @property
    def data(self) -> Path:
        return self.root / DATA

    @property
    def train_examples(self) -> Path:
        return self.data / TRAIN_EXAMPLES

    @property
    def test_examples(self) -> Path:
        return self.data / TEST_EXAMPLES

    @property
    def splits(self) -> Path:
        return self.data / SPLITS

    @property
    def probe(self) -> Path:
        return self.root / PROBE

    @property
    def own_accuracy(self) -> Path:
        return self.root / PROBE_SAMPLES / OWN_ACCURACY

    def label_rows(self, mode: str) -> Path:
        return self.root / LABEL / label_file(mode)

    def label_stats(self, mode: str) -> Path:
        return self.root / LABEL / label_stats_file(mode)

    @property
    def dev_examples(self) -> Path:
        return self.root / DEV / DEV_EXAMPLES

    @property
    def candidates(self) -> Path:
        return self.root / CANDIDATES / CANDIDATES_FILE

    @property
    def scored(self) -> Path:
        return self.root / SCORE / SCORED

    @property
    def score_summary(self) -> Path:
        return self.root / SCORE / SUMMARY

    def train_dir(self, setting: str) -> Path:
        """A setting's own train stage (one that shares a twin's training points there:
        :func:`trice.pipeline.shared_training.trained_dir`)."""
        return self.root / train_stage(setting)

    def eval_dir(self, setting: str) -> Path:
        return self.root / eval_stage(setting)

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def report_so_far(self) -> Path:
        return self.root / REPORT_SO_FAR
