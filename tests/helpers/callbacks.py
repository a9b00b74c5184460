"""What the training tests share: a simulated kill right after a checkpoint is saved, a record of the
optimizer steps a run took (to see that a resume continued, not restarted), and a base model whose
n-th forward turns NaN (to see the non-finite guard stop training)."""

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


def poison_nth_forward(monkeypatch, n: int) -> None:
    """Make every base model the trainers build return NaN from its final norm on its ``n``-th forward."""
    from trice.training import lora

    real = lora.load_base_model

    def poisoned(config):
        model = real(config)
        calls = {"n": 0}

        def hook(module, args, output):
            calls["n"] += 1
            return output * float("nan") if calls["n"] == n else output

        model.model.norm.register_forward_hook(hook)
        return model

    monkeypatch.setattr(lora, "load_base_model", poisoned)
