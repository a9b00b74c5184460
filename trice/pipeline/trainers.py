"""What a trainer is, as the registry (:mod:`trice.pipeline.settings`) declares it: its config class,
the function that trains with it, the recipe sections that configure it and the report rows it
trains. The recipe's trainer sections, the plan's trainer configs and the ``trice train-<name>``
subcommands are all read from these entries, so a training method is its config module, its
trainer module and one entry (verl looks its trainers up by name the same way).

The config class and the function are named by import path, as ``trice``'s subcommands are
(:mod:`trice.cli`), and imported when used: planning a run or printing ``--status`` loads no
training code, and ``trice evaluate`` does not import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# What a trainer's ``data`` is (:attr:`Trainer.reads`): the setting's labelled training set (stage I),
# stage II's scored candidates, or D_tool's questions (an online trainer makes its own responses).
LABELLED = "labelled"
SCORED = "scored"
QUESTIONS = "questions"
READS = (LABELLED, SCORED, QUESTIONS)


def import_ref(ref: str) -> Any:
    """The object ``module:name`` names."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Section:
    """A recipe section holding a trainer's config keys, a top-level key of the recipe. ``over``: the
    section it is laid over, key by key (its own keys win; left empty, it is that section)."""

    name: str
    help: str
    over: str | None = None


@dataclass(frozen=True)
class Trainer:
    """``name``: what a setting's ``trainer`` names and the subcommand's (``trice train-<name>``);
    ``config``: ``module:Class`` a section is read into; ``run``: ``module:function`` training with it;
    ``about``: the subcommand's one-line help; ``sections``: the recipe sections configuring it (the
    first is its settings' default); ``settings``: the report rows it trains
    (:class:`trice.pipeline.settings.Setting`, whose ``trainer`` the registry sets to this name); ``judges``: whether it judges responses itself (stage II's dev-set checkpoint
    choice), so its sections get the run's task and tool options and may name the adapter they
    start from; ``reads``: what its ``data`` is (:data:`READS`)."""

    name: str
    config: str
    run: str
    about: str
    sections: tuple[Section, ...]
    settings: tuple[Any, ...]
    judges: bool = True
    reads: str = SCORED

    def __post_init__(self) -> None:
        if self.reads not in READS:
            raise ValueError(f"trainer {self.name}: reads {self.reads!r}; one of {', '.join(READS)}")
        if not self.sections:
            raise ValueError(f"trainer {self.name}: needs a recipe section")

    @property
    def stage_two(self) -> bool:
        """Whether it trains after stage I, from D_tool (stage I trains on labelled sets)."""
        return self.reads != LABELLED

    @property
    def config_class(self) -> type:
        return import_ref(self.config)

    def train(self, config: Any) -> Any:
        fn: Callable[[Any], Any] = import_ref(self.run)
        return fn(config)
