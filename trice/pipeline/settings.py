"""The settings a recipe may name, the rows of the report (the paper's Table 3), in one registry:
how each row's model is made, which recipe section configures its training and what part it plays
in the report. The plan, the stages and the report all read it; a setting is added here.

A setting's stage names (``train-<name>``, ``eval-<name>``) come from its name, so renaming one
makes finished runs redo its stages.
"""

from __future__ import annotations

from dataclasses import dataclass

from trice.core.prompts import PER_TASK

# What a setting trains: stage I is SFT on a labelled set; every other trainer is stage II, on the
# scored candidates, keyed by its loss (trice.pipeline.trainers).
SFT = "sft"
RLEF = "rlef"
DPO = "dpo"
# The label mode of D_tool (trice.stage1.label): stage I's set and what stage II's candidates answer.
D_TOOL = "trice"


@dataclass(frozen=True)
class Setting:
    """One report row.

    ``trainer``: None (the base model), :data:`SFT` on the ``label`` training set, or a stage II
    loss (:data:`RLEF`, :data:`DPO`) on the scored candidates, from the stage-I adapter when
    ``from_stage_one`` (TRICE-ALL) else from a fresh LoRA (TRICE-II). ``section``: the recipe
    section (a field of both :class:`trice.pipeline.plan.Recipe` and ``Plan``) holding the trainer's
    config; ``over``: the section it is laid over, key by key (its own keys win; left empty, it is
    that section). ``few_shot``: the preset of worked examples put before each test prompt
    (:mod:`trice.responses.few_shot`). ``default``: a row of a recipe that names no settings.
    ``compared``: its place among the rows the report compares with the baselines (paired
    differences, :mod:`trice.pipeline.intervals`), None for none; the first stage II one a run has
    is also the case studies' last column. ``baseline``: its place among those baselines."""

    name: str
    trainer: str | None = None
    label: str | None = None
    from_stage_one: bool = False
    section: str | None = None
    over: str | None = None
    few_shot: str | None = None
    default: bool = False
    compared: int | None = None
    baseline: int | None = None

    @property
    def stage_two(self) -> bool:
        return self.trainer not in (None, SFT)


def _registry(*settings: Setting) -> dict[str, Setting]:
    return {s.name: s for s in settings}


SETTINGS: dict[str, Setting] = _registry(
    Setting("zero-shot", default=True),
    Setting("few-shot", few_shot=PER_TASK),  # the paper's "Few-shot (3 examples)" row
    Setting("sft-0", SFT, label="sft-0", section="train", default=True),
    Setting("sft-100", SFT, label="sft-100", section="train", default=True, baseline=2),
    Setting("trice-i", SFT, label=D_TOOL, section="train", default=True, compared=4, baseline=1),
    # a fresh LoRA usually wants stage I's learning rate: trice_ii overrides rlef's keys
    Setting("trice-ii", RLEF, section="trice_ii", over="rlef", default=True, compared=3),
    Setting("trice-all", RLEF, from_stage_one=True, section="rlef", default=True, compared=1),
    Setting("trice-all-dpo", DPO, from_stage_one=True, section="dpo", default=True, compared=2),
)
# The setting whose adapter makes stage II's candidates and TRICE-ALL's start.
STAGE_ONE = "trice-i"
# The row the case studies start from: the untuned model.
BASE_MODEL = "zero-shot"
# A recipe's rows when it names none: the settings there were before few-shot, so a finished run of
# such a recipe keeps its report's fingerprint.
DEFAULT_SETTINGS = tuple(name for name, s in SETTINGS.items() if s.default)


def _ranked(rank: dict[str, int | None]) -> tuple[str, ...]:
    return tuple(sorted((name for name, r in rank.items() if r is not None), key=lambda name: rank[name] or 0))


# The report's paired comparisons: each of COMPARED against each of BASELINES, where a run has both.
COMPARED = _ranked({name: s.compared for name, s in SETTINGS.items()})
BASELINES = _ranked({name: s.baseline for name, s in SETTINGS.items()})


def stage_one_settings(settings: list[str]) -> list[str]:
    """The SFT settings among ``settings``, :data:`STAGE_ONE` first: a baseline with identical rows
    then shares its training (trice.pipeline.shared_training), and stage II's start keeps the
    stage-I path it always had."""
    return sorted((s for s in settings if SETTINGS[s].trainer == SFT), key=lambda s: s != STAGE_ONE)


def stage_two_settings(settings: list[str]) -> list[str]:
    return [s for s in settings if SETTINGS[s].stage_two]


def sections() -> dict[str, tuple[str, str | None]]:
    """Each trainer section a setting reads: section -> (trainer, the section it is laid over)."""
    return {s.section: (s.trainer, s.over) for s in SETTINGS.values() if s.section is not None and s.trainer is not None}
