"""``trice run RECIPE.yaml``: every stage of TRICE in order, in one run directory.

data -> probe (base model on the training questions) -> label (D_tool and the SFT baselines' sets)
-> train-<setting> (stage I: LoRA SFT per SFT setting; one training for settings with identical
rows, :mod:`trice.pipeline.shared_training`) -> [stage II: dev (held-out training questions) -> candidates
(k responses per D_tool question) -> score (execution feedback) -> train-<setting> (RLEF or DPO,
checkpoint chosen on dev)] -> eval-<setting> (generate on the test questions and judge; few-shot:
the base model after worked examples, :mod:`trice.generation.few_shot`) -> [eval-<setting>-unseen-<name> per
unseen test set, :mod:`trice.pipeline.unseen`] -> report. Each stage is skipped when its config and inputs
are unchanged, so a killed run picks up where it stopped (see :mod:`trice.pipeline.stages`).
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.stage2.candidates import CandidatesConfig
from trice.utils.config import ConfigError, build_config, load_layered_yaml, to_dict
from trice.stage2.dpo_config import DPOStageConfig
from trice.generation.generate import GenerateConfig
from trice.utils.io import write_json
from trice.stage1.label import LabelConfig
from trice.generation.models import DEFAULT_MODEL
from trice.pipeline.plugins import load_plugins
from trice.data.prepare import DataConfig, check_pool_sizes
from trice.tasks.prompts import PER_TASK, READ_INSTRUCTIONS
from trice.stage2.rlef_config import RLEFConfig
from trice.stage2.score import ScoreConfig
from trice.stage1.sft_config import SFTConfig
from trice.pipeline.shared_training import pointer_stale
from trice.pipeline.stages import check_run_dir, claim_run_dir, run_stage, stage_verdict
from trice.tasks import PER_ROW
from trice.pipeline.unseen import UnseenSet, load_unseen, unseen_stages

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Setting:
    """How a report row's model is made: ``trainer`` none (the base model), ``sft`` on the ``label``
    training set, or ``rlef``/``dpo`` on the scored candidates, from the stage-I adapter when
    ``from_stage_one`` (TRICE-ALL) else from a fresh LoRA (TRICE-II). ``few_shot``: the preset of
    worked examples put before each test prompt (:mod:`trice.generation.few_shot`)."""

    trainer: str | None = None
    label: str | None = None
    from_stage_one: bool = False
    few_shot: str | None = None

    @property
    def stage_two(self) -> bool:
        return self.trainer in ("rlef", "dpo")


SETTINGS: dict[str, Setting] = {
    "zero-shot": Setting(),
    "few-shot": Setting(few_shot=PER_TASK),  # the paper's "Few-shot (3 examples)" row
    "sft-0": Setting("sft", "sft-0"),
    "sft-100": Setting("sft", "sft-100"),
    "trice-i": Setting("sft", "trice"),
    "trice-ii": Setting("rlef"),
    "trice-all": Setting("rlef", from_stage_one=True),
    "trice-all-dpo": Setting("dpo", from_stage_one=True),
}
STAGE_ONE = "trice-i"
# A recipe's rows when it names none: the settings there were before few-shot, so a finished run
# of such a recipe keeps its report's fingerprint.
DEFAULT_SETTINGS = ("zero-shot", "sft-0", "sft-100", "trice-i", "trice-ii", "trice-all", "trice-all-dpo")
# Pipeline-owned fields: a recipe sets these once at the top level, never inside a section.
_OWNED = {"input", "output", "output_dir", "model", "adapter", "template", "data", "init_adapter", "dev_data"}
# Placeholders a candidate source's ``adapter`` may name: the stage-I adapter, or its first checkpoint.
STAGE_ONE_ADAPTERS = ("stage-i", "stage-i-early")
# The path a ``responses`` source may name to reuse the probe's base-model responses.
PROBE_RESPONSES = "probe"


def default_sources() -> list[dict]:
    """The paper-like k = 5 mix: the gold response, the untuned model (answers without the tool; its
    greedy responses are the probe's, reused), the same model few-shot prompted to always call the
    tool, stage I early (greedy) and last (sampled)."""
    return [
        {"name": "gold", "kind": "gold"},
        {"name": "base", "kind": "responses", "path": PROBE_RESPONSES},
        {"name": "tool-always", "kind": "model", "few_shot": "math"},
        {"name": "stage1-early", "kind": "model", "adapter": "stage-i-early"},
        {"name": "stage1-last-sampled", "kind": "model", "adapter": "stage-i", "do_sample": True, "temperature": 1.0},
    ]


@dataclass
class DevConfig:
    """The dev set that chooses stage II checkpoints: training-pool questions no stage trains on."""

    n_per_dataset: int = field(default=20, metadata={"help": "Dev questions per dataset, from its training pool beyond the data stage's n_train picks."})

    def validate(self) -> None:
        if self.n_per_dataset < 1:
            raise ValueError(f"n_per_dataset: must be >= 1, got {self.n_per_dataset}")


@dataclass
class Recipe:
    """A whole run: top-level choices plus one section per stage config."""

    run_dir: str = field(default="runs/demo", metadata={"help": "Directory for every artifact of the run."})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Base model: hub name, local directory or embedded alias."})
    template: str = field(default="alpaca", metadata={"help": "Prompt template for every stage."})
    seed: int = field(default=0, metadata={"help": "Seed for data splits, sampling and training."})
    settings: list[str] = field(
        default_factory=lambda: list(DEFAULT_SETTINGS), metadata={"help": f"Rows of the report, of: {', '.join(SETTINGS)}."}
    )
    data: dict = field(default_factory=dict, metadata={"help": "DataConfig keys."})
    probe: dict = field(default_factory=dict, metadata={"help": "GenerateConfig keys for probing the base model."})
    train: dict = field(default_factory=dict, metadata={"help": "SFTConfig keys shared by every trained setting."})
    eval: dict = field(default_factory=dict, metadata={"help": "GenerateConfig keys for the test generations."})
    dev: dict = field(default_factory=dict, metadata={"help": "Stage II: DevConfig keys (the checkpoint-selection set)."})
    candidates: dict = field(
        default_factory=dict,
        metadata={"help": "Stage II: CandidatesConfig keys (sources, n_questions); a model source's adapter may be stage-i or stage-i-early."},
    )
    score: dict = field(default_factory=dict, metadata={"help": "Stage II: ScoreConfig keys (strategy)."})
    rlef: dict = field(default_factory=dict, metadata={"help": "Stage II: RLEFConfig keys for trice-all and trice-ii."})
    trice_ii: dict = field(
        default_factory=dict,
        metadata={"help": "RLEFConfig keys overriding `rlef` for trice-ii (a fresh LoRA usually wants stage I's learning rate)."},
    )
    dpo: dict = field(default_factory=dict, metadata={"help": "Stage II: DPOStageConfig keys for trice-all-dpo."})
    tools: dict = field(
        default_factory=dict,
        metadata={"help": "Tool options keyed by tool name for every stage that executes calls, e.g. {QA: {k: 2}, WikiSearch: {backend: bm25}}."},
    )
    label: dict = field(
        default_factory=dict,
        metadata={"help": "LabelConfig keys for D_tool's tool calls: search_k (qa), teacher (an endpoint proposing qa search terms), read_max_new_tokens (mlqa)."},
    )

    unseen: dict = field(
        default_factory=dict,
        metadata={
            "help": "Unseen test sets (the paper's Table 4), name: path of a JSONL in the bring-your-own-data schema (any task); "
            "every setting is evaluated on each, nothing trains on them, the report shows them apart from the average."
        },
    )

    plugins: dict = field(
        default_factory=dict,
        metadata={
            "help": "User tasks, tools and dataset loaders by import path, registered when the recipe is planned (trice.pipeline.plugins): "
            "{tools: {name: 'module:factory'}, tasks: {name: 'module:Task'}, loaders: {task: {dataset: 'module:loader'}}}."
        },
    )

    def validate(self) -> None:
        from trice.judge.evaluate import check_tool_options

        check_tool_options(self.tools)
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise ValueError(f"settings: unknown {unknown}; known: {', '.join(SETTINGS)}")
        if any(SETTINGS[s].stage_two for s in self.settings) and STAGE_ONE not in self.settings:
            raise ValueError(f"settings: stage II settings need {STAGE_ONE} (stage I makes candidates and TRICE-ALL's start)")

    @property
    def stage_two(self) -> list[str]:
        return [s for s in self.settings if SETTINGS[s].stage_two]


@dataclass
class Plan:
    """A recipe resolved into checked stage configs: built before any model is loaded."""

    recipe: Recipe
    run_dir: Path
    data: DataConfig
    probe: GenerateConfig
    train: SFTConfig
    eval: GenerateConfig
    dev: DevConfig
    candidates: CandidatesConfig
    score: ScoreConfig
    rlef: RLEFConfig
    trice_ii: RLEFConfig
    dpo: DPOStageConfig
    label: LabelConfig
    unseen: list[UnseenSet] = field(default_factory=list)

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
    def stages(self) -> list[str]:
        settings = self.recipe.settings
        # Stage I trains first: a baseline with identical rows then shares its training
        # (trice.pipeline.shared_training), and stage II's start keeps the stage-I path it always had.
        stage_one = sorted((s for s in settings if SETTINGS[s].trainer == "sft"), key=lambda s: s != STAGE_ONE)
        stage_two = self.recipe.stage_two
        return (
            ["data", "probe", "label"]
            + [f"train-{s}" for s in stage_one]
            + (["dev", "candidates", "score"] + [f"train-{s}" for s in stage_two] if stage_two else [])
            + [f"eval-{s}" for s in settings]
            + list(self.unseen_stages)
            + ["report"]
        )

    def stage_two_config(self, setting: str) -> RLEFConfig | DPOStageConfig:
        """The trainer config of a stage II setting (paths are filled in by the stage)."""
        return {"trice-ii": self.trice_ii, "trice-all": self.rlef, "trice-all-dpo": self.dpo}[setting]


def _section(cls: type, values: dict, where: str, seed: int | None, **owned: Any) -> Any:
    """A stage config from its recipe section; the recipe's seed is the default, owned keys are set here."""
    clash = sorted(set(values) & (_OWNED | set(owned)))
    if clash:
        raise ConfigError(f"{where}: key '{clash[0]}' is set by the pipeline (use the recipe's top-level keys)")
    return build_config(cls, ({} if seed is None else {"seed": seed}) | values | owned, where)


def _candidate_sources(values: dict, recipe: Recipe, where: str) -> dict:
    """The candidates section (the default sources unless given) with each model source defaulting
    to the recipe's model."""
    sources = values.get("sources", default_sources())
    if not isinstance(sources, list):
        raise ConfigError(f"{where}: key 'sources': expected a list of mappings, got {sources!r}")
    filled = [{"model": recipe.model} | s if isinstance(s, dict) and s.get("kind") == "model" else s for s in sources]
    return values | {"sources": filled}


def plan_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Plan:
    """Parse and check a recipe; every error names the file and key. A recipe may extend another
    (``base: other.yaml``, relative to it): its sections are laid over the base's, key by key, and
    ``null`` removes a key (:func:`trice.utils.config.load_layered_yaml`)."""
    raw = load_layered_yaml(path) | (overrides or {})
    load_plugins(raw.get("plugins"), f"{path}: plugins")  # first: the checks below look their names up
    recipe = build_config(Recipe, raw, str(path))
    run_dir = Path(recipe.run_dir)
    model = dict(model=recipe.model, template=recipe.template)
    data = _section(DataConfig, recipe.data, f"{path}: data", recipe.seed, output_dir=str(run_dir / "data"))
    tasks = data.task_names
    # Stage II trainers judge each row by its own task; this is only the default of rows without one.
    task = dict(task=tasks[0])
    # What stages that judge need beyond a math run's: tool options, and for tasks whose tool output
    # is read again the reading model (given only where used, so a math run's fingerprints stay).
    tools = dict(tools=recipe.tools) if recipe.tools else {}
    reads = bool(set(tasks) & set(READ_INSTRUCTIONS))
    reading = dict(model=recipe.model, template=recipe.template) if reads else {}
    score_task = dict(task=tasks[0] if len(tasks) == 1 else PER_ROW)
    rlef = _section(RLEFConfig, recipe.rlef, f"{path}: rlef", recipe.seed, **model, **task, **tools)
    dev = _section(DevConfig, recipe.dev, f"{path}: dev", None)
    try:  # only here are both the data and the dev sizes known
        check_pool_sizes(data, dev.n_per_dataset if recipe.stage_two else None, f"{path}: data")
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None
    return Plan(
        recipe=recipe,
        run_dir=run_dir,
        data=data,
        probe=_section(GenerateConfig, recipe.probe, f"{path}: probe", recipe.seed, **model),
        train=_section(SFTConfig, recipe.train, f"{path}: train", recipe.seed, **model),
        eval=_section(GenerateConfig, recipe.eval, f"{path}: eval", recipe.seed, **model),
        dev=dev,
        candidates=_section(
            CandidatesConfig, _candidate_sources(recipe.candidates, recipe, f"{path}: candidates"), f"{path}: candidates",
            recipe.seed, template=recipe.template,
        ),
        score=_section(ScoreConfig, recipe.score, f"{path}: score", None, **score_task, **reading, **tools),
        rlef=rlef,
        trice_ii=_section(RLEFConfig, recipe.rlef | recipe.trice_ii, f"{path}: trice_ii", recipe.seed, **model, **task, **tools) if recipe.trice_ii else rlef,
        dpo=_section(DPOStageConfig, recipe.dpo, f"{path}: dpo", recipe.seed, **model, **task, **tools),
        label=_section(LabelConfig, recipe.label, f"{path}: label", None, mode="trice", **tools),
        unseen=load_unseen(recipe.unseen, str(path)),
    )


def run_plan(plan: Plan, only: str | None = None, start: str | None = None) -> Path:
    """Run the stages in order (``only``: just that one; ``start``: that one and all after, forced)."""
    from trice.pipeline import stage_fns

    names = plan.stages
    for flag, value in (("--only", only), ("--from", start)):
        if value is not None and value not in names:
            raise ConfigError(f"{flag}: no stage {value!r}; stages: {', '.join(names)}")
    forced = set(names[names.index(start) :]) if start else set()
    if only:
        forced, names = {only}, [only]
    claim_run_dir(plan.run_dir)  # refuses a directory that is not a trice run, before writing into it
    write_json(plan.run_dir / "recipe.json", to_dict(plan.recipe))
    for name in names:
        config, inputs, fn = stage_fns.stage(plan, name)
        force = name in forced or pointer_stale(plan.run_dir / name)  # its twin now trained otherwise: train or point anew
        run_stage(plan.run_dir / name, name, config, inputs, fn, force=force, keep=stage_fns.KEEP_ON_RESTART.get(name, ()))
    return plan.run_dir / "report"


STATUSES = ("up to date", "partial", "incomplete: N failed rows", "running", "changed", "would redo", "to do", "waiting")


def stage_status(plan: Plan) -> dict[str, str]:
    """What a run would do with each stage, loading nothing: ``up to date`` (finished with the same
    fingerprint: skipped), ``partial`` (same fingerprint, killed part-way: resumed), ``incomplete:
    N failed rows`` (ran through, but N rows failed, e.g. an endpoint was down: those are retried),
    ``running`` (another process is running it now: a run reaching it stops with an error),
    ``changed`` (finished or started under another config or inputs, or pointing at a twin training
    that has since trained on other rows: started over, the old directory moved aside), ``would
    redo`` (unchanged itself, but an input comes from an earlier stage that is not up to date, so it
    will change), ``to do`` (never started), ``waiting`` (never started, and an input does not exist
    yet or comes from an earlier stage that must run first).

    ``trice run RECIPE --status`` prints it; after a code change it shows whether finished runs
    would be redone (``changed``/``would redo``)."""
    from trice.pipeline import stage_fns

    check_run_dir(plan.run_dir)
    status: dict[str, str] = {}
    for name in plan.stages:
        config, inputs, _ = stage_fns.stage(plan, name)
        verdict = stage_verdict(plan.run_dir / name, config, inputs)
        if verdict == "up to date" and pointer_stale(plan.run_dir / name):
            verdict = "changed"
        upstream = {_producer(plan.run_dir, Path(p)) for p in inputs} - {None, name}
        if any(status.get(u, "up to date") != "up to date" for u in upstream):
            verdict = {"to do": "waiting", "up to date": "would redo", "partial": "would redo"}.get(verdict, verdict)
            verdict = "would redo" if verdict.startswith("incomplete") else verdict
        status[name] = verdict
    return status


def _producer(run_dir: Path, path: Path) -> str | None:
    """The stage whose directory holds ``path`` (None: a path outside the run)."""
    try:
        return path.relative_to(run_dir).parts[0]
    except (ValueError, IndexError):
        return None


def environment() -> dict[str, str]:
    """Versions saved next to every result."""
    import importlib.metadata as md

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("trice", "torch", "transformers", "peft", "trl", "accelerate"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions
