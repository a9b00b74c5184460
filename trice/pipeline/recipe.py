"""What a recipe holds: its top-level keys and stage sections (:class:`RecipeKeys`), and the
trainer sections the registry adds (:func:`recipe_class`, one per
:data:`trice.pipeline.settings.SECTIONS`), checked as a whole (:meth:`Recipe.validate`) before
:mod:`trice.pipeline.plan` reads each section into its stage's config.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any

from trice.core.call_format import NATIVE_FORMAT, call_format_field, check_call_format, tool_parser_field
from trice.generation.models import DEFAULT_MODEL
from trice.pipeline.settings import DEFAULT_SETTINGS, SECTIONS, SETTINGS, STAGE_ONE, TRAINERS, stage_two_settings, trainer_of
from trice.pipeline.trainers import SCORED
from trice.tools.factories import check_tool_options

# The path a ``responses`` source may name to reuse the probe's base-model responses.
PROBE_RESPONSES = "probe"


def check_native_prompts(recipe: Recipe) -> None:
    """Refuse what prompts a native-format run with the paper's text calls: the few-shot presets'
    worked examples are alpaca prompts answered ``calculator(...)``, which would teach the model the
    format it is not judged in."""
    few_shot = [s for s in recipe.settings if SETTINGS[s].few_shot]
    if few_shot:
        raise ValueError(
            f"settings: {few_shot[0]} prompts with the few-shot presets, whose worked examples call tools in the paper's text "
            "format; a call_format native run has none (drop the setting)"
        )
    sources = recipe.candidates.get("sources", default_sources() if recipe.scores_candidates else [])
    for source in sources if isinstance(sources, list) else []:
        if isinstance(source, dict) and source.get("few_shot"):
            raise ValueError(
                f"candidates: source {source.get('name')!r} prompts with few_shot {source['few_shot']!r}, worked examples in the "
                "paper's text call format; a call_format native run cannot use them (drop the source or its few_shot)"
            )


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
class RecipeKeys:
    """A recipe's keys but its trainer sections: top-level choices plus one section per stage config
    that is no trainer's (:func:`recipe_class` adds those)."""

    run_dir: str = field(
        default="", metadata={"help": "Directory for every artifact of the run; default runs/<the recipe file's name without .yaml> (never a base recipe's)."}
    )
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Base model: hub name, local directory or embedded alias."})
    template: str = field(default="alpaca", metadata={"help": "Prompt template for every stage."})
    call_format: str = call_format_field()
    tool_parser: str = tool_parser_field()
    seed: int = field(default=0, metadata={"help": "Seed for data splits, sampling and training."})
    settings: list[str] = field(default_factory=lambda: list(DEFAULT_SETTINGS), metadata={"help": f"Rows of the report, of: {', '.join(SETTINGS)}."})
    data: dict = field(default_factory=dict, metadata={"help": "DataConfig keys."})
    probe: dict = field(
        default_factory=dict,
        metadata={
            "help": "GenerateConfig keys for probing the base model, and ProbeSamplesConfig's (samples: sampled answers per question besides the greedy one)."
        },
    )
    eval: dict = field(default_factory=dict, metadata={"help": "GenerateConfig keys for the test generations."})
    dev: dict = field(default_factory=dict, metadata={"help": "Stage II: DevConfig keys (the checkpoint-selection set)."})
    candidates: dict = field(
        default_factory=dict,
        metadata={"help": "Stage II: CandidatesConfig keys (sources, n_questions); a model source's adapter may be stage-i or stage-i-early."},
    )
    score: dict = field(default_factory=dict, metadata={"help": "Stage II: ScoreConfig keys (strategy)."})
    tools: dict = field(
        default_factory=dict,
        metadata={"help": "Tool options keyed by tool name for every stage that executes calls, e.g. {QA: {k: 2}, WikiSearch: {backend: bm25}}."},
    )
    label: dict = field(
        default_factory=dict,
        metadata={
            "help": "LabelConfig keys for D_tool's tool calls: search_k (qa), teacher (an endpoint proposing qa search terms), read_max_new_tokens (mlqa)."
        },
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


class Recipe:
    """A whole run, as :func:`recipe_class` reads it: :class:`RecipeKeys` and a mapping per trainer
    section of the registry (``train``, ``rlef``, ...)."""

    def validate(self) -> None:
        check_tool_options(self.tools)
        check_call_format(self.call_format, self.tool_parser, self.template)
        if not self.settings:
            raise ValueError(f"settings: name at least one setting (the report's rows), of: {', '.join(SETTINGS)}")
        twice = sorted({s for s in self.settings if self.settings.count(s) > 1})
        if twice:
            raise ValueError(f"settings: {twice[0]} is named twice (each setting is one row of the report)")
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise ValueError(f"settings: unknown {unknown}; known: {', '.join(SETTINGS)}")
        if any(SETTINGS[s].stage_two for s in self.settings) and STAGE_ONE not in self.settings:
            raise ValueError(f"settings: stage II settings need {STAGE_ONE} (stage I makes candidates and TRICE-ALL's start)")
        if self.call_format == NATIVE_FORMAT:
            check_native_prompts(self)

    @property
    def stage_two(self) -> list[str]:
        return stage_two_settings(self.settings)

    @property
    def scores_candidates(self) -> bool:
        """Whether a stage II setting trains on scored candidates (so the run collects and scores them)."""
        return any(trainer_of(s).reads == SCORED for s in self.stage_two)


# Where the trainer sections sit among a recipe's keys, which recipe.json and the report list in this
# order: stage I's after the probe, stage II's after the score stage.
_SECTIONS_AFTER = {False: "probe", True: "score"}


def recipe_class() -> type[Recipe]:
    """The dataclass a recipe is read into: :class:`RecipeKeys`' fields with a mapping field per
    trainer section of the registry (:data:`trice.pipeline.settings.SECTIONS`), its help the
    section's. Made anew when the registry has other sections (a trainer registered since)."""
    return _recipe_class(tuple(SECTIONS))


@functools.cache
def _recipe_class(names: tuple[str, ...]) -> type[Recipe]:
    hints = typing.get_type_hints(RecipeKeys)
    fields: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(RecipeKeys):
        fields.append((f.name, hints[f.name], field(default=f.default, default_factory=f.default_factory, metadata=f.metadata)))
        after = [name for name in names if _SECTIONS_AFTER[TRAINERS[SECTIONS[name][0]].stage_two] == f.name]
        fields += [(name, dict, field(default_factory=dict, metadata={"help": SECTIONS[name][1].help})) for name in after]
    return dataclasses.make_dataclass("Recipe", fields, bases=(Recipe,))
