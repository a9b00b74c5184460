"""A toy stage II method, outside trice, for the test that registers one (tests/pipeline/test_settings.py):
its config module and its trainer, the two files a method brings besides its registry entry."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trice.stage2.config import StageIIConfig


@dataclass
class ToyConfig(StageIIConfig):
    """Stage II by doing nothing but writing what it was given."""

    strength: float = field(default=1.0, metadata={"help": "How hard the toy trains."})


def train_toy(config: ToyConfig) -> Path:
    """Write the config it trained with and an ``adapter`` directory, as a trainer does."""
    out = Path(config.output_dir)
    (out / "adapter").mkdir(parents=True, exist_ok=True)
    (out / "toy_config.json").write_text(json.dumps(asdict(config)))
    return out / "adapter"
