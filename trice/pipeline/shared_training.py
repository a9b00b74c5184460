"""One training for stage-I settings whose training sets are identical.

Two SFT settings can get byte-identical training rows: when the untuned model answers every
probed question wrong, D_tool (``trice``: a verified call for every wrong answer) holds exactly the
rows of ``sft-100`` (a verified call for every question). Training both would spend the same
optimizer steps twice for the same adapter (up to floating-point noise). So a stage-I train stage,
before training, looks for a finished sibling train stage whose rows and config are the same and,
when there is one, writes ``same_as.json`` (a pointer) instead of an adapter; every reader of a
setting's training output (:func:`trained_dir`) follows it.

The decision reads the label stage's actual files, not which settings could coincide. The stage's
own fingerprint (config and data file) is that of a stage that trains, so a pointer never makes a
finished stage look changed. A pointer whose target has since been trained on other rows is stale
(:func:`pointer_stale`): the pipeline starts such a stage over, and it trains or points anew.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from trice.core.layout import SAME_AS, RunLayout, train_stage
from trice.pipeline.stage_dirs import finished_state, is_current, rebased
from trice.utils.io import read_json, write_json

# Config keys that only say where a training reads and writes: two trainings differing only in
# these train the same model on the same rows.
_PATHS = ("data", "output_dir")


def training_key(config: dict[str, Any]) -> str:
    """sha256 over a training's fingerprinted config (:func:`trice.utils.config.fingerprint_fields`)
    without its paths, and the bytes of its data file: equal for two trainings that would train the
    same adapter, whatever their files are called."""
    h = hashlib.sha256(json.dumps({k: v for k, v in config.items() if k not in _PATHS}, sort_keys=True, default=str).encode())
    h.update(Path(config["data"]).read_bytes())
    return h.hexdigest()


def trained_sibling(other: Path) -> dict[str, Any] | None:
    """The stored config of a sibling stage that trained itself on a data file and is still current
    (its hash equals the fingerprint of its config and that file now); None otherwise."""
    state = finished_state(other)
    if state is None or (other / SAME_AS).is_file():
        return None
    config = rebased(state.get("config"), other)
    if not isinstance(config, dict) or not isinstance(config.get("data"), str) or not Path(config["data"]).is_file():
        return None
    return config if is_current(other, state, config, [Path(config["data"])]) else None


def find_twin_training(stage_dir: Path, config: dict[str, Any]) -> str | None:
    """The name of a finished, current sibling ``train-*`` stage whose rows and config equal ours."""
    key = training_key(config)
    for other in sorted(stage_dir.parent.glob(train_stage("*"))):
        if other == stage_dir:
            continue
        theirs = trained_sibling(other)
        if theirs is not None and training_key(theirs) == key:
            return other.name
    return None


def share_training(stage_dir: Path, config: dict[str, Any]) -> str | None:
    """Point this train stage at a twin training (write ``same_as.json``) and return the twin's
    name; None when there is no twin and the stage must train."""
    twin = find_twin_training(stage_dir, config)
    if twin is not None:
        write_json(stage_dir / SAME_AS, {"same_as": twin, "key": training_key(config), "why": "byte-identical training rows and the same train config"})
    return twin


def trained_dir(run: Path, setting: str) -> Path:
    """Where a setting's training output lives: its own train stage's directory, or the twin's its
    ``same_as.json`` names."""
    out = RunLayout(run).train_dir(setting)
    pointer = out / SAME_AS
    return run / read_json(pointer)["same_as"] if pointer.is_file() else out


def pointer_stale(stage_dir: Path) -> bool:
    """Whether ``stage_dir`` holds a pointer its target does not honour: the target is gone,
    unfinished, out of date, or now trained on other rows or with another config."""
    pointer = stage_dir / SAME_AS
    if not pointer.is_file():
        return False
    recorded = read_json(pointer)
    theirs = trained_sibling(stage_dir.parent / recorded["same_as"])
    return theirs is None or training_key(theirs) != recorded["key"]


def shared_trainings(run: Path, settings: list[str]) -> dict[str, str]:
    """Setting -> the setting whose training it shares, for every setting whose train stage points."""
    shared = {}
    for setting in settings:
        pointer = RunLayout(run).train_dir(setting) / SAME_AS
        if pointer.is_file():
            shared[setting] = read_json(pointer)["same_as"].removeprefix(train_stage(""))
    return shared
