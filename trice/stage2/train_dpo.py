"""DPO as an alternative stage II, from the same scored candidates as RLEF (``trice train-dpo``).

RLEF turns each question's execution-feedback scores into a rank hinge plus SFT on the best
response. DPO learns from the same preferences as pairs: for a question with responses y_i scored
r_i, ``pairs: all`` takes every (y_i preferred, y_j rejected) with r_i > r_j (ties make no pair);
``best_vs_rest`` takes the first best-scored response (the gold, when it ties) over each lower one.
Responses whose source failed (a non-null ``errors`` entry from ``trice candidates``) are no model's
behaviour, so they take part in no pair; the same (chosen, rejected) text pair of one question is
kept once.

Training is TRL's ``DPOTrainer`` on ``{prompt, chosen, rejected}`` texts, the prompt being the task
prompt in the chosen template (TRL appends EOS to both responses, as stage I's targets end with EOS).
The model is a PeftModel: the stage-I adapter (``init_adapter``, trainable) or a fresh LoRA. TRL then
keeps a frozen copy of the starting adapter as the reference ("ref"), so the reference is the model
DPO starts from (the base model, for a fresh zero-initialised LoRA); the copy is dropped when
training ends, before the adapter is saved. Model building, the Trainer settings, the NaN guard,
checkpoint resume and saving are stage I's (:mod:`trice.training.lora`), so the stages behave alike.

Where TRL's defaults make DPO differ from RLEF: a response's log-likelihood is summed, not
length-normalised; dropout (LoRA's included) is off; a prompt+response longer than ``max_length``
is cut at the end rather than dropped; and TRL writes a model card (README.md) beside the checkpoints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import TrainerCallback, TrainingArguments
from trl import DPOConfig, DPOTrainer

from trice.generation.models import load_tokenizer
from trice.tasks.inputs import read_input
from trice.stage2.dpo_config import DPOStageConfig
from trice.stage2.select_checkpoint import dev_for, select_on_dev
from trice.stage2.train_rlef import SCORED_FIELDS, check_group
from trice.tasks import prompt_tools
from trice.core.prompts import task_prompt
from trice.core.call_format import NATIVE_FORMAT
from trice.training.lora import CheckedLoss, NonFiniteGuard, build_model, prepare_run, train_and_save, training_args
from trice.stage2.reward import GOLD
from trice.utils.io import DataError, read_jsonl

REFERENCE_ADAPTER = "ref"  # the name TRL gives its frozen copy of the starting adapter


def preference_pairs(scores: Sequence[float], usable: Sequence[bool], mode: str = "all") -> list[tuple[int, int]]:
    """(preferred, rejected) index pairs of one question's responses; unusable ones take no part."""
    indices = [i for i, ok in enumerate(usable) if ok]
    if mode == "all":
        return [(i, j) for i in indices for j in indices if scores[i] > scores[j]]
    if mode == "best_vs_rest":
        if not indices:
            return []
        best = max(indices, key=lambda i: scores[i])  # the first maximal: the gold when it ties
        return [(best, j) for j in indices if scores[j] < scores[best]]
    raise ValueError(f"unknown pairs mode {mode!r}; choose all or best_vs_rest")


def boundary_pairs(states: Sequence[str], used_tool: Sequence[bool], usable: Sequence[bool], knows: bool) -> list[tuple[int, int]]:
    """(preferred, rejected) pairs that teach where the policy's knowledge ends (knowledge-boundary
    DPO, arXiv 2604.19749): on a question it ``knows`` (its own accuracy is high), each right answer
    given alone over each call; elsewhere each right call over each answer given alone. The gold
    response counts as right; unusable responses take no part."""
    right = [s == GOLD or s.startswith("True") for s in states]
    indices = [i for i, ok in enumerate(usable) if ok]
    chosen = [i for i in indices if right[i] and used_tool[i] != knows]
    rejected = [j for j in indices if used_tool[j] == knows]
    return [(i, j) for i in chosen for j in rejected]


def check_scored(row: dict, default_task: str, path: str | Path, line: int | None) -> None:
    """RLEF's checks of a scored row, plus the optional ``errors``: one null or message per response."""
    check_group(row, default_task, path, line)
    errors = row.get("errors")
    if errors is not None and (not isinstance(errors, list) or len(errors) != len(row["responses"])):
        raise DataError(path, line, "errors", f"expected a list of {len(row['responses'])} (null or a message), one per response")


def read_scored(path: str | Path, default_task: str) -> list[dict]:
    """The checked scored rows; a bad line raises :class:`DataError` naming its file, line and field."""
    return read_input(path, SCORED_FIELDS, check=lambda row, where, line: check_scored(row, default_task, where, line))


def build_pairs(rows: Sequence[dict], config: DPOStageConfig, tokenizer: Any) -> list[dict]:
    """TRL preference rows ``{id, prompt, chosen, rejected}`` from scored candidate rows (with
    ``pairs: boundary``, by each question's own accuracy in ``config.own_accuracy``)."""
    pairs: list[dict] = []
    knows = _knows(config) if config.needs_own_accuracy else {}
    for row in rows:
        responses = row["responses"]
        task = row.get("task", config.task)
        prompt = task_prompt(task, row["question"], config.template, tokenizer, prompt_tools(task, config.call_format == NATIVE_FORMAT))
        seen: set[tuple[str, str]] = set()
        usable = [error is None for error in row.get("errors") or [None] * len(responses)]
        if config.needs_own_accuracy:
            if not isinstance(row.get("states"), list) or not isinstance(row.get("used_tool"), list):
                raise DataError(
                    config.data, None, "states", f"question {row['id']}: pairs boundary reads each response's states and used_tool (trice score's output)"
                )
            drawn = boundary_pairs(row["states"], row["used_tool"], usable, knows.get(row["id"], False))
        else:
            drawn = preference_pairs(row["scores"], usable, config.pairs)
        for i, j in drawn:
            if (responses[i], responses[j]) not in seen:
                seen.add((responses[i], responses[j]))
                pairs.append({"id": row["id"], "prompt": prompt, "chosen": responses[i], "rejected": responses[j]})
    return pairs


def _knows(config: DPOStageConfig) -> dict[str, bool]:
    """Per question id, whether the policy's own accuracy reaches ``boundary_own``."""
    if not config.own_accuracy:
        raise ValueError("pairs boundary: needs own_accuracy (a recipe's probe.samples writes it)")
    return {row["id"]: row["own_accuracy"] >= config.boundary_own for row in read_jsonl(config.own_accuracy)}


def dpo_args(config: DPOStageConfig, checkpoints_dir: Path) -> DPOConfig:
    """Stage I's Trainer settings carried into TRL's DPOConfig, plus the DPO ones."""
    base = training_args(config, checkpoints_dir, config.per_device_train_batch_size)
    shared = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    return DPOConfig(**shared, beta=config.beta, max_length=config.max_length)


class CheckedDPOTrainer(CheckedLoss, DPOTrainer):
    """DPOTrainer whose batches carry their pairs' question ids, so a non-finite loss stops training
    before backward naming them (as stage I and RLEF do)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        collate = self.data_collator  # TRL's, built from its args: extend it, do not rebuild it
        self.data_collator = lambda examples: collate(examples) | {"ids": [e["id"] for e in examples]}


class DropReference(TrainerCallback):
    """Delete TRL's frozen reference copy when training ends, so the saved adapter is the trained one alone."""

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is not None and REFERENCE_ADAPTER in getattr(model, "peft_config", {}):
            model.delete_adapter(REFERENCE_ADAPTER)


def train_dpo(config: DPOStageConfig, callbacks: Sequence[Any] | None = None) -> Path:
    """Train the adapter by DPO on ``config.data``; returns the adapter directory (``output_dir/adapter``).

    With ``config.dev_data`` the checkpoints are then evaluated and the best is copied to
    ``output_dir/adapter_best``, as for RLEF (:func:`trice.stage2.select_checkpoint.select_on_dev`).

    ``callbacks`` are extra ``transformers.TrainerCallback`` objects (progress hooks, tests).
    """
    out = config.run_dir("the scored candidates JSONL from `trice score`")
    rows = read_scored(config.data, config.task)
    dev = dev_for(config, {r["id"] for r in rows})
    tokenizer = load_tokenizer(config.model)
    pairs = build_pairs(rows, config, tokenizer)
    if not pairs:
        raise ValueError(f"data: no preference pairs in {config.data}: every question's usable responses tie")

    resume_from = prepare_run(config, out, "dpo_config.json")
    trainer = CheckedDPOTrainer(
        model=build_model(config, tokenizer),
        args=dpo_args(config, out / "checkpoints"),
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        callbacks=[NonFiniteGuard(), DropReference(), *(callbacks or [])],
    )
    counts = {"pairs": len(pairs), "questions": len(rows), "questions_with_pairs": len({p["id"] for p in pairs})}
    adapter = train_and_save(trainer, resume_from, out, tokenizer, counts)
    del trainer  # free the model and optimizer before the checkpoints are evaluated
    select_on_dev(config, dev)
    return adapter
