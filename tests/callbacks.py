"""Trainer callbacks the training tests share: a simulated kill right after a checkpoint is saved,
and a record of the optimizer steps a run took (to see that a resume continued, not restarted)."""

from __future__ import annotations

from transformers import TrainerCallback


class Killed(Exception):
    """Raised by :class:`KillAfterSave`: the process 'dies' with its checkpoint on disk."""


class KillAfterSave(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise Killed


class StepRecorder(TrainerCallback):
    def __init__(self):
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kw):
        self.steps.append(state.global_step)
