"""The settings a recipe may name, the rows of the report (the paper's Table 3), and the trainers
that make them, in one registry: how each row's model is made, which recipe section configures its
training and what part it plays in the report. The plan, the stages, the report and the CLI all
read it; a training method is added here, by one :class:`~trice.pipeline.trainers.Trainer` entry
(:data:`TRAINERS`, or :func:`register_trainer`), beside its config and trainer modules.

A setting's stage names (``train-<name>``, ``eval-<name>``) come from its name, so renaming one
makes finished runs redo its stages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from trice.pipeline.trainers import LABELLED, QUESTIONS, Section, Trainer
from trice.core.prompts import PER_TASK

# Trainer names (:attr:`Setting.trainer`): stage I is SFT on a labelled set; every other trainer is
# stage II, from D_tool.
SFT = "sft"
RLEF = "rlef"
DPO = "dpo"
GRPO = "grpo"
# The label mode of D_tool (trice.stage1.label): stage I's set and what stage II's candidates answer.
D_TOOL = "trice"


@dataclass(frozen=True)
class Setting:
    """One report row.

    ``trainer``: None (the base model), or the name of its :class:`~trice.pipeline.trainers.Trainer`
    (its registry entry fills it in): :data:`SFT` on the ``label`` training set, or a stage II
    trainer, from the stage-I adapter when ``from_stage_one`` (TRICE-ALL) else from a fresh LoRA
    (TRICE-II). ``section``: the recipe section holding the trainer's config (None: the trainer's
    first). ``few_shot``: the preset of worked examples put before each test prompt
    (:mod:`trice.responses.few_shot`). ``default``: a row of a recipe that names no settings.
    ``compared``: its place among the rows the report compares with the baselines (paired
    differences, :mod:`trice.pipeline.intervals`), None for none; the first stage II one a run has
    is also the case studies' last column. ``baseline``: its place among those baselines."""

    name: str
    trainer: str | None = None
    label: str | None = None
    from_stage_one: bool = False
    section: str | None = None
    few_shot: str | None = None
    default: bool = False
    compared: int | None = None
    baseline: int | None = None

    @property
    def stage_two(self) -> bool:
        return self.trainer is not None and TRAINERS[self.trainer].stage_two


# The rows no trainer makes.
UNTRAINED = (
    Setting("zero-shot", default=True),
    Setting("few-shot", few_shot=PER_TASK),  # the paper's "Few-shot (3 examples)" row
)

TRAINERS: dict[str, Trainer] = {}
SETTINGS: dict[str, Setting] = {s.name: s for s in UNTRAINED}
SECTIONS: dict[str, tuple[str, Section]] = {}  # recipe section -> (its trainer, the section)


def register_trainer(trainer: Trainer) -> Trainer:
    """Add a trainer, its recipe sections and its settings to the registry. A name already taken
    (trainer, section, setting) is refused, so an entry cannot silently change another's rows."""
    if trainer.name in TRAINERS:
        raise ValueError(f"trainer {trainer.name!r} is already registered")
    names = [s.name for s in trainer.sections]
    taken = [n for n in names if n in SECTIONS] + [s.name for s in trainer.settings if s.name in SETTINGS]
    if taken:
        raise ValueError(f"trainer {trainer.name!r}: {taken[0]!r} is already registered")
    for section in trainer.sections:
        if section.over is not None and section.over not in names:
            raise ValueError(f"trainer {trainer.name!r}: section {section.name} is laid over {section.over!r}, not one of its own")
    rows = [replace(s, trainer=trainer.name, section=s.section or names[0]) for s in trainer.settings]
    for row in rows:
        if row.section not in names:
            raise ValueError(f"trainer {trainer.name!r}: setting {row.name} names section {row.section!r}, not one of {names}")
        if (row.label is not None) != (trainer.reads == LABELLED):
            raise ValueError(f"trainer {trainer.name!r}: setting {row.name} must name its labelled set exactly when the trainer reads one")
    TRAINERS[trainer.name] = trainer
    SECTIONS.update({s.name: (trainer.name, s) for s in trainer.sections})
    SETTINGS.update({row.name: row for row in rows})
    return trainer


register_trainer(Trainer(
    SFT, "trice.stage1.config:SFTConfig", "trice.stage1.train_sft:train_sft",
    "Stage I: LoRA SFT on response tokens (resumes from checkpoints).",
    sections=(Section("train", "SFTConfig keys shared by every trained setting."),),
    settings=(
        Setting("sft-0", label="sft-0", default=True),
        Setting("sft-100", label="sft-100", default=True, baseline=2),
        Setting("trice-i", label=D_TOOL, default=True, compared=4, baseline=1),
    ),
    judges=False, reads=LABELLED,
))  # fmt: skip
register_trainer(Trainer(
    RLEF, "trice.stage2.rlef_config:RLEFConfig", "trice.stage2.train_rlef:train_rlef",
    "Stage II: RLEF on scored candidates; with --dev_data picks the best checkpoint.",
    sections=(
        Section("rlef", "Stage II: RLEFConfig keys for trice-all and trice-ii."),
        # a fresh LoRA usually wants stage I's learning rate: trice_ii overrides rlef's keys
        Section("trice_ii", "RLEFConfig keys overriding `rlef` for trice-ii (a fresh LoRA usually wants stage I's learning rate).", over="rlef"),
    ),
    settings=(
        Setting("trice-ii", section="trice_ii", default=True, compared=3),
        Setting("trice-all", from_stage_one=True, default=True, compared=1),
    ),
))  # fmt: skip
register_trainer(Trainer(
    DPO, "trice.stage2.dpo_config:DPOStageConfig", "trice.stage2.train_dpo:train_dpo",
    "Stage II alternative: DPO on pairs from scored candidates (resumes from checkpoints).",
    sections=(Section("dpo", "Stage II: DPOStageConfig keys for trice-all-dpo."),),
    settings=(Setting("trice-all-dpo", from_stage_one=True, default=True, compared=2),),
))  # fmt: skip
register_trainer(Trainer(
    GRPO, "trice.stage2.grpo_config:GRPOStageConfig", "trice.stage2.train_grpo:train_grpo",
    "Stage II online: GRPO on D_tool's questions, rewarded by executing each response's call (resumes from checkpoints).",
    sections=(
        Section("grpo", "Stage II online: GRPOStageConfig keys for trice-grpo and trice-ii-grpo; reward: the reward table."),
        Section("trice_ii_grpo", "GRPOStageConfig keys overriding `grpo` for trice-ii-grpo (a fresh LoRA on the base model).", over="grpo"),
    ),
    settings=(
        Setting("trice-grpo", from_stage_one=True, compared=5),
        Setting("trice-ii-grpo", section="trice_ii_grpo", compared=6),
    ),
    reads=QUESTIONS,
))  # fmt: skip

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


def trainer_of(setting: str) -> Trainer:
    """The trainer of a trained setting."""
    trainer = SETTINGS[setting].trainer
    if trainer is None:
        raise KeyError(f"{setting} trains nothing")
    return TRAINERS[trainer]
