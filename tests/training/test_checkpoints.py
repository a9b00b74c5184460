"""Checkpoints count as whole only when every engine's optimizer state and trainer_state.json (written
last) are there, each file as it was saved; a torn one is skipped, and only the main process deletes
it. A resume from a checkpoint whose optimizer state was truncated after the save resumes from the
checkpoint before it, to the same weights."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

EMPTY_SAFETENSORS = struct.pack("<Q", 2) + b"{}"  # a whole safetensors file of no tensors


@pytest.mark.parametrize(
    "engine_files",
    [
        ("optimizer.pt", "scheduler.pt"),  # plain Trainer and DDP
        ("latest", "global_step4/"),  # DeepSpeed: optimizer (and a DeepSpeed-built scheduler) under global_step*
        ("latest", "global_step4/", "scheduler.pt"),  # DeepSpeed with transformers' scheduler
        ("optimizer.bin", "scheduler.pt"),  # FSDP, full state dict
        ("optimizer_0/", "scheduler.pt"),  # FSDP, sharded state dict
    ],
)
def test_checkpoints_of_every_engine_count_as_whole(tmp_path: Path, engine_files: tuple[str, ...]) -> None:
    from trice.training.checkpoints import is_complete, last_checkpoint

    ckpt = tmp_path / "checkpoints" / "checkpoint-4"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_model.safetensors").write_bytes(EMPTY_SAFETENSORS)
    for name in engine_files:
        (ckpt / name).mkdir() if name.endswith("/") else (ckpt / name).write_bytes(b"x")
    assert not is_complete(ckpt)  # trainer_state.json, written last, is missing: killed mid-save
    (ckpt / "trainer_state.json").write_text("{}")
    assert is_complete(ckpt)
    assert last_checkpoint(tmp_path / "checkpoints") == ckpt


def test_a_checkpoint_without_optimizer_state_is_torn_and_only_the_main_process_deletes(tmp_path: Path) -> None:
    from trice.training.checkpoints import last_checkpoint

    ckpts = tmp_path / "checkpoints"
    good, torn = ckpts / "checkpoint-2", ckpts / "checkpoint-4"
    for ckpt, files in ((good, ("optimizer.pt", "scheduler.pt")), (torn, ("scheduler.pt",))):
        ckpt.mkdir(parents=True)
        for name in ("trainer_state.json", *files):
            (ckpt / name).write_text("{}")
        (ckpt / "adapter_model.safetensors").write_bytes(EMPTY_SAFETENSORS)
    assert last_checkpoint(ckpts, delete_incomplete=False) == good
    assert torn.exists()  # another rank only reads
    assert last_checkpoint(ckpts) == good
    assert not torn.exists()


def test_a_checkpoint_whose_files_are_not_as_saved_is_torn(tmp_path: Path) -> None:
    import torch

    from trice.training.checkpoints import is_complete
    from trice.utils.artefacts import record_dir

    ckpt = tmp_path / "checkpoint-4"
    ckpt.mkdir()
    (ckpt / "adapter_model.safetensors").write_bytes(EMPTY_SAFETENSORS)
    (ckpt / "trainer_state.json").write_text("{}")
    (ckpt / "scheduler.pt").write_bytes(b"x")
    torch.save({"state": torch.arange(1000)}, ckpt / "optimizer.pt")
    assert is_complete(ckpt)  # saved before records: structurally whole
    whole = (ckpt / "optimizer.pt").read_bytes()
    (ckpt / "optimizer.pt").write_bytes(whole[: len(whole) // 2])
    assert not is_complete(ckpt)  # a torn zip archive, even without a record

    (ckpt / "optimizer.pt").write_bytes(whole)
    record_dir(ckpt)
    assert is_complete(ckpt)
    (ckpt / "scheduler.pt").write_bytes(b"y")  # the same size, other bytes: only the record tells
    assert not is_complete(ckpt)
