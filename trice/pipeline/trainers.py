"""The trainers a setting may name (:attr:`trice.pipeline.settings.Setting.trainer`): each one's
config class and the function that trains with it.

The function is named by import path, as ``trice``'s subcommands are (:mod:`trice.cli`), and
imported when its stage runs: planning a run or printing ``--status`` loads no training code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trice.pipeline.plugins import import_object
from trice.pipeline.settings import DPO, RLEF, SFT
from trice.stage1.config import SFTConfig
from trice.stage2.dpo_config import DPOStageConfig
from trice.stage2.rlef_config import RLEFConfig

TrainerConfig = SFTConfig | RLEFConfig | DPOStageConfig


@dataclass(frozen=True)
class Trainer:
    """``config``: the class a recipe section is read into; ``run``: ``module:function`` training
    with it; ``judges``: whether it judges responses itself (stage II's dev-set checkpoint choice),
    so its section gets the run's task and tool options."""

    config: type[TrainerConfig]
    run: str
    judges: bool

    def train(self, config: TrainerConfig) -> Any:
        fn: Callable[[TrainerConfig], Any] = import_object(self.run, f"trainer {self.run}")
        return fn(config)


TRAINERS: dict[str, Trainer] = {
    SFT: Trainer(SFTConfig, "trice.stage1.train_sft:train_sft", judges=False),
    RLEF: Trainer(RLEFConfig, "trice.stage2.train_rlef:train_rlef", judges=True),
    DPO: Trainer(DPOStageConfig, "trice.stage2.train_dpo:train_dpo", judges=True),
}
