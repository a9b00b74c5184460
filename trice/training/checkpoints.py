"""Trainer checkpoints on disk: which ``checkpoint-N`` directories a run has, which are whole, and
the one to resume from. Stage I, stage II and the dev selection all read them."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from trice.utils.artefacts import check_dir
from trice.utils.io import read_json

log = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# What Trainer writes into a checkpoint; trainer_state.json comes last, so a readable one marks a whole
# checkpoint. The optimizer state has one form per engine: optimizer.pt (plain and DDP), DeepSpeed's
# ``latest`` tag file beside its global_step*/ directory (which also holds a DeepSpeed-built
# scheduler, so scheduler.pt may be absent), FSDP's optimizer.bin or sharded optimizer_0/.
_CHECKPOINT_FILES = ("adapter_model.safetensors", "trainer_state.json")
_OPTIMIZER_STATES = ("optimizer.pt", "latest", "optimizer.bin", "optimizer_0")
_SCHEDULER_STATES = ("scheduler.pt", "latest")


def checkpoints(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    """``(step, directory)`` of every ``checkpoint-N`` directory, highest step first, whole or not."""
    if not checkpoints_dir.is_dir():
        return []
    return sorted(((int(m.group(1)), p) for p in checkpoints_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))), reverse=True)


def is_complete(checkpoint: Path) -> bool:
    """Whether a checkpoint holds every file a resume needs, each as it was saved.

    Checkpoints of DeepSpeed and FSDP runs keep the optimizer in their own files; they count as whole
    too, or a resume under those engines would delete every checkpoint as torn. A checkpoint is
    recorded once the Trainer has saved it (:class:`trice.training.lora.RecordCheckpoints`): its files must still be as
    recorded, so a truncated ``optimizer.pt`` is not resumed from. One saved before records (or
    killed before its record) must pass the structural check (:func:`trice.utils.artefacts.check_dir`).
    """
    if not all((checkpoint / name).is_file() for name in _CHECKPOINT_FILES):
        return False
    for states in (_OPTIMIZER_STATES, _SCHEDULER_STATES):
        if not any((checkpoint / name).exists() for name in states):
            return False
    try:
        read_json(checkpoint / "trainer_state.json")
    except ValueError:
        return False
    problem = check_dir(checkpoint)
    if problem is not None:
        log.warning("checkpoint %s is not as it was saved: %s", checkpoint, problem)
    return problem is None


def last_checkpoint(checkpoints_dir: Path, delete_incomplete: bool = True) -> Path | None:
    """The highest-step complete checkpoint; incomplete ones (killed mid-save) are deleted with a
    warning unless ``delete_incomplete`` is off (the other processes of a distributed run only read)."""
    for _, path in checkpoints(checkpoints_dir):
        if is_complete(path):
            return path
        if delete_incomplete:
            log.warning("deleting incomplete checkpoint %s (killed while saving?)", path)
            shutil.rmtree(path, ignore_errors=True)
    return None
