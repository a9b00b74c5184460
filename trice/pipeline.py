"""``trice run RECIPE.yaml``: every stage of the math slice in order, in one run directory.

data -> probe (base model on the training questions) -> label (D_tool and the SFT baselines' sets)
-> train-<setting> (LoRA SFT per trained setting) -> eval-<setting> (generate on the test questions
and judge) -> report. Each stage is skipped when its config and inputs are unchanged, so a killed
run picks up where it stopped (see :mod:`trice.stages`).
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trice.config import ConfigError, build_config, load_yaml, to_dict
from trice.generate import GenerateConfig
from trice.io import write_json
from trice.models import DEFAULT_MODEL
from trice.prepare import DataConfig
from trice.sft_config import SFTConfig
from trice.stages import run_stage

log = logging.getLogger(__name__)

# setting -> the training set it is fine-tuned on (None: the untuned base model)
SETTINGS: dict[str, str | None] = {"zero-shot": None, "sft-0": "sft-0", "sft-100": "sft-100", "trice-i": "trice"}
# Pipeline-owned fields: a recipe sets these once at the top level, never inside a section.
_OWNED = {"input", "output", "output_dir", "model", "adapter", "template", "data", "init_adapter"}


@dataclass
class Recipe:
    """A whole run: top-level choices plus one section per stage config."""

    run_dir: str = field(default="runs/demo", metadata={"help": "Directory for every artifact of the run."})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Base model: hub name, local directory or embedded alias."})
    template: str = field(default="alpaca", metadata={"help": "Prompt template for every stage."})
    seed: int = field(default=0, metadata={"help": "Seed for data splits, sampling and training."})
    settings: list[str] = field(default_factory=lambda: list(SETTINGS), metadata={"help": "Rows of the report."})
    data: dict = field(default_factory=dict, metadata={"help": "DataConfig keys."})
    probe: dict = field(default_factory=dict, metadata={"help": "GenerateConfig keys for probing the base model."})
    train: dict = field(default_factory=dict, metadata={"help": "SFTConfig keys shared by every trained setting."})
    eval: dict = field(default_factory=dict, metadata={"help": "GenerateConfig keys for the test generations."})

    def validate(self) -> None:
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise ValueError(f"settings: unknown {unknown}; known: {', '.join(SETTINGS)}")


@dataclass
class Plan:
    """A recipe resolved into checked stage configs: built before any model is loaded."""

    recipe: Recipe
    run_dir: Path
    data: DataConfig
    probe: GenerateConfig
    train: SFTConfig
    eval: GenerateConfig

    @property
    def stages(self) -> list[str]:
        trained = [s for s in self.recipe.settings if SETTINGS[s] is not None]
        return (
            ["data", "probe", "label"]
            + [f"train-{s}" for s in trained]
            + [f"eval-{s}" for s in self.recipe.settings]
            + ["report"]
        )


def _section(cls: type, values: dict, where: str, seed: int, **owned: Any) -> Any:
    """A stage config from its recipe section; the recipe's seed is the default, owned keys are set here."""
    clash = sorted(set(values) & _OWNED)
    if clash:
        raise ConfigError(f"{where}: key '{clash[0]}' is set by the pipeline (use the recipe's top-level keys)")
    return build_config(cls, {"seed": seed} | values | owned, where)


def plan_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Plan:
    """Parse and check a recipe; every error names the file and key."""
    raw = load_yaml(path) | (overrides or {})
    recipe = build_config(Recipe, raw, str(path))
    run_dir = Path(recipe.run_dir)
    model = dict(model=recipe.model, template=recipe.template)
    return Plan(
        recipe=recipe,
        run_dir=run_dir,
        data=_section(DataConfig, recipe.data, f"{path}: data", recipe.seed, output_dir=str(run_dir / "data")),
        probe=_section(GenerateConfig, recipe.probe, f"{path}: probe", recipe.seed, **model),
        train=_section(SFTConfig, recipe.train, f"{path}: train", recipe.seed, **model),
        eval=_section(GenerateConfig, recipe.eval, f"{path}: eval", recipe.seed, **model),
    )


def run_plan(plan: Plan, only: str | None = None, start: str | None = None) -> Path:
    """Run the stages in order (``only``: just that one; ``start``: that one and all after, forced)."""
    from trice import stage_fns

    names = plan.stages
    for flag, value in (("--only", only), ("--from", start)):
        if value is not None and value not in names:
            raise ConfigError(f"{flag}: no stage {value!r}; stages: {', '.join(names)}")
    forced = set(names[names.index(start) :]) if start else set()
    if only:
        forced, names = {only}, [only]
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(plan.run_dir / "recipe.json", to_dict(plan.recipe))
    for name in names:
        config, inputs, fn = stage_fns.stage(plan, name)
        run_stage(plan.run_dir / name, name, config, inputs, fn, force=name in forced)
    return plan.run_dir / "report"


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
