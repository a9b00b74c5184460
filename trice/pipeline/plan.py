"""``trice run RECIPE.yaml``: every stage of TRICE in order, in one run directory.

data -> probe (base model on the training questions) -> label (D_tool and the SFT baselines' sets)
-> train-<setting> (stage I: LoRA SFT per SFT setting; one training for settings with identical
rows, :mod:`trice.pipeline.shared_training`) -> [stage II: dev (held-out training questions) -> candidates
(k responses per D_tool question) -> score (execution feedback) -> train-<setting> (RLEF or DPO
on the scored candidates, or GRPO online on D_tool's questions, which needs no candidates;
checkpoint chosen on dev)] -> eval-<setting> (generate on the test questions and judge; few-shot:
the base model after worked examples, :mod:`trice.responses.few_shot`) -> [eval-<setting>-unseen-<name> per
unseen test set, :mod:`trice.pipeline.unseen`] -> report. Each stage is skipped when its config and inputs
are unchanged, so a killed run picks up where it stopped (see :mod:`trice.pipeline.stage_dirs`).

Here a recipe is read and checked into a :class:`Plan` before any model loads; what each stage
reads and runs is :mod:`trice.pipeline.stage_specs`, and :mod:`trice.pipeline.runner` runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.data.mapped import is_file_source
from trice.data.prepare import DataConfig, check_pool_sizes
from trice.responses.generate import GenerateConfig
from trice.core.call_format import THRESHOLD
from trice.generation.models import resolve_parser
from trice.tools.factories import tool_models
from trice.core import layout
from trice.core.layout import RunLayout
from trice.pipeline.plugins import load_plugins
from trice.pipeline.recipe_files import shipped_recipe
from trice.pipeline.recipe import Recipe, default_sources, recipe_class
from trice.pipeline.settings import D_TOOL, SECTIONS, SETTINGS, TRAINERS, stage_one_settings
from trice.pipeline.unseen import UnseenSet, load_unseen, unseen_stages
from trice.stage1.boundary import SAMPLE_KEYS, ProbeSamplesConfig
from trice.stage1.label import LabelConfig
from trice.stage2.candidates import CandidatesConfig
from trice.stage2.score import ScoreConfig
from trice.stage2.candidate_sources import ModelSource, parse_sources
from trice.tasks import PER_ROW, TASKS, get_task
from trice.core.prompts import READ_INSTRUCTIONS
from trice.core.call_format import NATIVE_FORMAT
from trice.utils.config import ConfigError, build_config, fingerprint_fields, load_layered_yaml, merge_over

# Pipeline-owned fields: a recipe sets these once at the top level, never inside a section (overwrite: every stage's outputs are its own).
OWNED = {
    "input",
    "output",
    "output_dir",
    "model",
    "adapter",
    "template",
    "data",
    "init_adapter",
    "dev_data",
    "call_format",
    "tool_parser",
    "own_accuracy",
    "overwrite",
}
# Placeholders a candidate source's ``adapter`` may name: the stage-I adapter, or its first checkpoint.
STAGE_ONE_ADAPTERS = ("stage-i", "stage-i-early")


@dataclass
class DevConfig:
    """The dev set that chooses stage II checkpoints: training-pool questions no stage trains on."""

    n_per_dataset: int = field(default=20, metadata={"help": "Dev questions per dataset, from its training pool beyond the data stage's n_train picks."})

    def validate(self) -> None:
        if self.n_per_dataset < 1:
            raise ValueError(f"n_per_dataset: must be >= 1, got {self.n_per_dataset}")


@dataclass
class Plan:
    """A recipe resolved into checked stage configs: built before any model is loaded. ``sections``:
    the config of each trainer section of the registry (:data:`trice.pipeline.settings.SECTIONS`:
    ``train``, ``rlef``, ...), by section."""

    recipe: Recipe
    run_dir: Path
    data: DataConfig
    probe: GenerateConfig
    eval: GenerateConfig
    dev: DevConfig
    candidates: CandidatesConfig
    score: ScoreConfig
    label: LabelConfig
    sections: dict[str, Any]
    unseen: list[UnseenSet] = field(default_factory=list)
    probe_samples: ProbeSamplesConfig = field(default_factory=ProbeSamplesConfig)
    # What of a stage's config objects enters its fingerprint: the one rule trice runs by;
    # `trice migrate-run` plans an old run under the rules older versions hashed by
    # (trice.pipeline.earlier_rules) to recognise its finished stages.
    fields_of: Callable[[Any], dict[str, Any]] = fingerprint_fields

    def __getattr__(self, name: str) -> Any:
        """A trainer section's config by the section's name (``plan.rlef``), as the recipe's is ``recipe.rlef``."""
        if name in (sections := self.__dict__.get("sections", {})):
            return sections[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def tools(self) -> dict:
        """Tool options by tool name, for every stage that executes calls."""
        return self.recipe.tools

    @property
    def judge_task(self) -> str:
        """The task judging the run's rows: its one task, or each row's own in a mixed (MIX) run."""
        tasks = self.data.task_names
        return tasks[0] if len(tasks) == 1 else PER_ROW

    @property
    def unseen_stages(self) -> dict[str, tuple[str, UnseenSet]]:
        """Stage name -> (setting, unseen set) of each setting's eval on each unseen test set."""
        return unseen_stages(self.recipe.settings, self.unseen)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    @property
    def stages(self) -> list[str]:
        settings = self.recipe.settings
        stage_two = self.recipe.stage_two
        return (
            [layout.DATA, layout.PROBE]
            + ([layout.PROBE_SAMPLES] if self.probe_samples.samples else [])
            + [layout.LABEL]
            + [layout.train_stage(s) for s in stage_one_settings(settings)]
            + ([layout.DEV] if stage_two or self.eval.decision == THRESHOLD else [])
            + ([layout.CANDIDATES, layout.SCORE] if self.recipe.scores_candidates else [])
            + [layout.train_stage(s) for s in stage_two]
            + [layout.eval_stage(s) for s in settings]
            + list(self.unseen_stages)
            + [layout.REPORT]
        )

    def local_models(self) -> list[tuple[str, str]]:
        """``(where, model)`` for each model the run loads on this machine: the policy, the candidate
        sources' own models and its tasks' tools' models (a translator, a QA reader), so that a
        missing package stops the run before its first stage, not at the stage that first loads it."""
        needed = [("model", self.recipe.model)]
        if layout.CANDIDATES in self.stages:
            needed += [(f"candidates: {s.name}", s.model) for s in parse_sources(self.candidates.sources) if isinstance(s, ModelSource)]
        for tool, options in self.task_tools():
            needed += [(f"tools: {tool}", m) for m in tool_models(tool, options)]
        return list(dict.fromkeys(needed))

    def task_tools(self) -> list[tuple[str, dict]]:
        """Each tool the run's tasks call, once, with the recipe's options for it."""
        tools = dict.fromkeys(get_task(task).tool for task in self.data.task_names)
        return [(tool, self.recipe.tools.get(tool, {})) for tool in tools]

    def trainer_config(self, setting: str) -> Any:
        """The config of a trained setting's trainer: its recipe section's (paths are filled in by the stage)."""
        section = SETTINGS[setting].section
        if section is None:
            raise KeyError(f"{setting} trains nothing")
        return self.sections[section]


def _section(cls: type, values: dict, where: str, seed: int | None, free: frozenset[str] = frozenset(), **owned: Any) -> Any:
    """A stage config from its recipe section; the recipe's seed is the default, owned keys are set
    here, ``free``: pipeline-owned keys this section may set all the same."""
    clash = sorted(set(values) & ((OWNED - free) | set(owned)))
    if clash:
        raise ConfigError(f"{where}: key '{clash[0]}' is set by the pipeline (use the recipe's top-level keys, where it has one)")
    return build_config(cls, ({} if seed is None else {"seed": seed}) | values | owned, where)


def _candidate_sources(values: dict, recipe: Recipe, where: str) -> dict:
    """The candidates section (the default sources unless given) with each model source defaulting
    to the recipe's model."""
    sources = values.get("sources", default_sources())
    if not isinstance(sources, list):
        raise ConfigError(f"{where}: key 'sources': expected a list of mappings, got {sources!r}")
    filled = [{"model": recipe.model} | s if isinstance(s, dict) and s.get("kind") == "model" else s for s in sources]
    return values | {"sources": filled}


def plan_recipe(path: str | Path, overrides: dict[str, Any] | None = None, over: dict[str, Any] | None = None) -> Plan:
    """Parse and check a recipe; every error names the file and key. A recipe may extend another
    (``base: other.yaml``, relative to it, or a shipped recipe's name): its sections are laid over the
    base's, key by key, and ``null`` removes a key (:func:`trice.utils.config.load_layered_yaml`).
    ``overrides`` replace top-level keys; ``over`` (the command line's ``key.sub=value``) is laid over
    the recipe as a recipe over its base. Plug-in modules are imported from the recipe's directory
    first; ``run_dir`` is each recipe's own, by default ``runs/<recipe name>``, so two recipes never
    share a run directory unless one names the other's."""
    raw = merge_over(load_layered_yaml(path, named=shipped_recipe, own=("run_dir",)), over or {}) | (overrides or {})
    # first: the checks below look their names up
    load_plugins(raw.get("plugins"), f"{path}: plugins", search=[Path(path).resolve().parent])
    recipe = build_config(recipe_class(), raw, str(path))
    if not recipe.run_dir:  # a recipe without one never writes into another recipe's run
        recipe.run_dir = str(Path("runs") / Path(path).stem)
    run_dir = Path(recipe.run_dir)
    calls = _call_format(recipe, str(path))
    model = dict(model=recipe.model, template=recipe.template) | calls
    data = _section(DataConfig, _data_sources(recipe.data, Path(path).parent), f"{path}: data", recipe.seed, output_dir=str(RunLayout(run_dir).data))
    if data.mapped and data.task not in TASKS:
        raise ConfigError(f"{path}: data: task: unknown {data.task!r}; known tasks: {', '.join(TASKS)} (a plug-in registers more)")
    tasks = data.task_names
    # Stage II trainers judge each row by its own task; this is only the default of rows without one.
    task = dict(task=tasks[0])
    # What stages that judge need beyond a math run's: tool options, and for tasks whose tool output
    # is read again the reading model (given only where used, so a math run's fingerprints stay).
    tools = dict(tools=recipe.tools) if recipe.tools else {}
    reads = bool(set(tasks) & set(READ_INSTRUCTIONS))
    reading = dict(model=recipe.model, template=recipe.template) if reads else {}
    labelling = dict(model=recipe.model, template=recipe.template) | calls if calls else {}  # native: the template writes the calls
    score_task = dict(task=tasks[0] if len(tasks) == 1 else PER_ROW)
    trainers = _trainer_sections(recipe, str(path), calls, **task, **tools)
    dev = _section(DevConfig, recipe.dev, f"{path}: dev", None)
    try:  # only here are both the data and the dev sizes known
        dev_used = recipe.stage_two or recipe.eval.get("decision") == THRESHOLD  # the threshold is chosen on dev too
        check_pool_sizes(data, dev.n_per_dataset if dev_used else None, f"{path}: data")
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None
    probe_values = {k: v for k, v in recipe.probe.items() if k not in SAMPLE_KEYS}
    samples = build_config(ProbeSamplesConfig, {k: v for k, v in recipe.probe.items() if k in SAMPLE_KEYS}, f"{path}: probe")
    label = _section(LabelConfig, recipe.label, f"{path}: label", None, mode=D_TOOL, **tools, **labelling)
    check_own_accuracy(label, trainers, samples, str(path))
    candidates_at = f"{path}: candidates"
    return Plan(
        recipe=recipe,
        run_dir=run_dir,
        data=data,
        probe=_section(GenerateConfig, probe_values, f"{path}: probe", recipe.seed, **model),
        probe_samples=samples,
        eval=_section(GenerateConfig, recipe.eval, f"{path}: eval", recipe.seed, **model),
        dev=dev,
        candidates=_section(
            CandidatesConfig, _candidate_sources(recipe.candidates, recipe, candidates_at), candidates_at, recipe.seed, template=recipe.template, **calls
        ),
        score=_section(ScoreConfig, recipe.score, f"{path}: score", None, **score_task, **reading, **tools, **calls),
        label=label,
        sections=trainers,
        unseen=load_unseen(recipe.unseen, str(path)),
    )


def check_own_accuracy(label: LabelConfig, trainers: dict[str, Any], samples: ProbeSamplesConfig, where: str) -> None:
    """What reads the policy's own accuracy needs ``probe.samples``: ``label.own_if`` counts right
    answers among the greedy one and the samples (at most all k+1), boundary DPO pairs by it."""
    if label.own_if and not samples.samples:
        raise ConfigError(f"{where}: label: key 'own_if' counts the right answers among probe.samples sampled ones, and probe.samples is 0; set it")
    if label.own_if > samples.samples + 1:
        raise ConfigError(f"{where}: label: key 'own_if' = {label.own_if} > the {samples.samples + 1} answers per question (the greedy one and probe.samples)")
    for section, config in trainers.items():
        if getattr(config, "needs_own_accuracy", False) and not samples.samples:
            raise ConfigError(f"{where}: {section}: pairs boundary draws pairs by the policy's own accuracy, which probe.samples measures; set probe.samples")


def _data_sources(values: dict, recipe_dir: Path) -> dict:
    """The data section with its ``train``/``test`` files read from the recipe's directory (a hub
    dataset's name, or an absolute path, stays as written)."""
    out = dict(values)
    for key in ("train", "test"):
        source = out.get(key)
        if isinstance(source, str) and is_file_source(source) and not Path(source).expanduser().is_absolute():
            out[key] = str(recipe_dir / source)
        elif isinstance(source, str) and is_file_source(source):
            out[key] = str(Path(source).expanduser())
    return out


def _call_format(recipe: Recipe, where: str) -> dict[str, str]:
    """The keys every stage of a native-format run gets, its parser resolved here once (``auto``:
    from the model tokenizer's chat template), so stages that load no tokenizer know it; none for
    the text format, whose stage configs (and fingerprints) stay as they were."""
    if recipe.call_format != NATIVE_FORMAT:
        return {}
    try:
        parser = resolve_parser(recipe.call_format, recipe.tool_parser, recipe.model)
    except (ValueError, OSError) as err:
        raise ConfigError(f"{where}: tool_parser: {err}") from None
    return {"call_format": recipe.call_format, "tool_parser": parser}


def _trainer_sections(recipe: Recipe, where: str, calls: dict[str, str], **judging: Any) -> dict[str, Any]:
    """Every trainer section of the registry (:data:`trice.pipeline.settings.SECTIONS`) read into its
    trainer's config; ``calls``: the run's call format keys (every trainer prompts); ``judging``: the
    keys a trainer that judges responses gets. A section laid over another takes that section's keys
    (its own win), all but the adapter it starts from."""
    model = dict(model=recipe.model, template=recipe.template) | calls
    configs: dict[str, Any] = {}
    for name, (trainer_name, section) in sorted(SECTIONS.items(), key=lambda item: item[1][1].over is not None):  # bases first
        trainer = TRAINERS[trainer_name]
        values: dict = getattr(recipe, name)
        owned = model | (judging if trainer.judges else {})
        over = section.over
        base: dict = {} if over is None else {k: v for k, v in getattr(recipe, over).items() if k != "init_adapter"}  # a start is the setting's own
        # A stage II section may name the adapter it starts from (an online round: the previous
        # round's stage II adapter); the pipeline's default is stage I's (TRICE-ALL) or none.
        free = frozenset({"init_adapter"}) if trainer.judges else frozenset()
        configs[name] = _section(trainer.config_class, base | values, f"{where}: {name}", recipe.seed, free, **owned)
    return configs
