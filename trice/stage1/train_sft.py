"""Stage I, behaviour cloning: LoRA SFT with the loss on the response tokens only.

L_clone = -sum log p(o | s, q): the prompt (instruction + question in the chosen template) and the
target response are tokenized separately and concatenated, so the boundary between them is exact
and matches generation (which tokenizes the prompt alone, without special tokens, and continues
it); the labels are -100 on the prompt and on padding. The target ends with the EOS token so the
model learns to stop. Only the response's positions are projected through the LM head
(:mod:`trice.training.response_logits`): the prompt is most of each row and needs no logits.

Training is transformers' ``Trainer`` with a right-padding collator. Checkpoints (adapter, optimizer,
scheduler, RNG state) go to ``output_dir/checkpoints`` every ``save_steps``; a rerun resumes from the
last complete one. The final adapter (with the tokenizer) goes to ``output_dir/adapter`` atomically,
next to ``train_log.json`` (the trainer's log history) and ``sft_config.json``. A non-finite loss or
gradient stops training with a RuntimeError naming the step, before the optimizer touches the
weights, so the last checkpoint stays a good one.

Several processes: ``accelerate launch --multi_gpu --num_processes N -m trice.cli train-sft ...`` runs
distributed data parallel (NCCL on GPUs, gloo on CPUs; ``--cpu`` would start one process only),
each rank on its own shard of every global batch of N x ``per_device_train_batch_size``. Only the
main process deletes or writes files; ``train_log.json`` records ``world_size`` and the backend.
DeepSpeed and FSDP come in through accelerate config files (``recipes/accelerate/``, docs/scaling.md).

The model, the Trainer settings, the non-finite guard, resume and saving are
:mod:`trice.training.lora`'s, which stage II (:mod:`trice.stage2.train_rlef`, :mod:`trice.stage2.train_dpo`)
trains with too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import Trainer

from trice.generation.models import load_tokenizer
from trice.stage1.config import SFTConfig
from trice.tasks import PER_ROW, get_task
from trice.tasks.inputs import check_row_task, read_input
from trice.stage1.native_labels import native_targets
from trice.core.call_format import NATIVE_FORMAT, TEXT_FORMAT, CallFormat, parser_with
from trice.generation.models import call_format_of
from trice.training.lora import CheckedLoss, NonFiniteGuard, build_model, prepare_run, train_and_save, training_args
from trice.training.decision import decision_index, decision_weights, weighted_token_loss
from trice.training.response_logits import IGNORE_INDEX, response_only_inputs
from trice.training.tokens import prompt_token_ids, target_token_ids
from trice.utils.config import ConfigError

log = logging.getLogger(__name__)

SFT_FIELDS = {"id": str, "task": str, "question": str, "output": str}


def build_sft_features(
    rows: Sequence[dict], tokenizer: Any, template: str = "alpaca", max_length: int = 512, call_format: str = TEXT_FORMAT, calls: CallFormat | None = None
) -> list[dict]:
    """Token features for training, one per row that fits in ``max_length`` tokens (longer rows are
    dropped, with a warning giving their count). ``call_format`` native: prompts offer the task's
    tool (the rows' tool calls are then native calls already: :mod:`trice.stage1.native_labels`).

    Each feature holds ``input_ids`` (prompt ids + response ids + EOS), ``labels`` (-100 over the
    prompt, the response ids + EOS after it) and ``attention_mask``, as lists of ints, plus the row's
    ``id``; given ``calls`` (the rows' call format), also ``decision``: the index in ``input_ids`` of
    the target's decision token (:func:`trice.training.decision.decision_index`).
    """
    features: list[dict] = []
    dropped = 0
    for row in rows:
        prompt_ids = prompt_token_ids(row["task"], row["question"], tokenizer, template, call_format)
        target_ids = target_token_ids(row["output"], tokenizer)
        input_ids = prompt_ids + target_ids
        if len(input_ids) > max_length:
            dropped += 1
            continue
        feature = {"id": row.get("id"), "input_ids": input_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + target_ids, "attention_mask": [1] * len(input_ids)}
        if calls is not None:
            feature["decision"] = len(prompt_ids) + decision_index(row["output"], tokenizer, (get_task(row["task"]).tool,), calls)
        features.append(feature)
    if dropped:
        log.warning("dropped %d of %d examples longer than max_length=%d tokens", dropped, len(rows), max_length)
    return features


class SFTCollator:
    """Right-pads ``input_ids`` (with the pad id), ``labels`` (with -100) and ``attention_mask`` (with 0)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None, decision_weight: float = 1.0):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.decision_weight = decision_weight

    def __call__(self, features: Sequence[dict]) -> dict[str, Any]:
        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {"input_ids": [], "labels": [], "attention_mask": []}
        for f in features:
            pad = width - len(f["input_ids"])
            batch["input_ids"].append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            batch["labels"].append(list(f["labels"]) + [IGNORE_INDEX] * pad)
            batch["attention_mask"].append(list(f["attention_mask"]) + [0] * pad)
        tensors: dict[str, Any] = {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
        if self.decision_weight != 1.0:  # per-token weights on the labels' grid (trice.training.decision)
            positions = torch.tensor([f["decision"] for f in features], dtype=torch.long)
            tensors["weights"] = decision_weights(tensors["labels"], positions, self.decision_weight)
        return tensors | {"ids": [f.get("id") for f in features]}  # named if the loss turns non-finite


class SFTTrainer(CheckedLoss, Trainer):
    """Stage I's Trainer: the loss is the model's own (response tokens only, by the labels), checked.

    Only the positions that predict a response token go through the LM head
    (:func:`trice.training.response_logits.response_only_inputs`); the loss, its normalisation by
    ``num_items_in_batch`` and the gradients are those of the full forward. A batch with per-token
    ``weights`` (``decision_weight``) is scored by :func:`trice.training.decision.weighted_token_loss`
    through the Trainer's ``compute_loss_func``, so its accumulation and device scaling are the Trainer's.
    """

    def __init__(self, *args: Any, decision_weight: float = 1.0, **kwargs: Any):
        super().__init__(*args, compute_loss_func=self._weighted_loss if decision_weight != 1.0 else None, **kwargs)
        self._targets: tuple[Tensor, Tensor] | None = None

    def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        weights = inputs.pop("weights", None)
        inputs = response_only_inputs(inputs)
        if weights is not None:  # the kept positions' targets and weights, in the order of the logits
            self._targets = (inputs["shift_labels"], weights[:, 1:][inputs["logits_to_keep"][:, :-1]])
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch=num_items_in_batch)

    def _weighted_loss(self, outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Tensor:
        assert self._targets is not None, "compute_loss sets the batch's targets first"
        targets, weights = self._targets
        return weighted_token_loss(outputs.logits, targets, weights, num_items_in_batch)


def train_sft(config: SFTConfig, callbacks: Sequence[Any] | None = None) -> Path:
    """Train a LoRA adapter on ``config.data``; returns the adapter directory (``output_dir/adapter``).

    ``callbacks`` are extra ``transformers.TrainerCallback`` objects (progress hooks, tests).
    """
    out = config.run_dir("a JSONL of id, task, question, output")

    check = lambda row, path, line: check_row_task(row, PER_ROW, path, line)  # noqa: E731  (before the model loads)
    rows = read_input(config.data, SFT_FIELDS, check=check)
    tokenizer = load_tokenizer(config.model)
    if config.call_format == NATIVE_FORMAT:
        parser = parser_with(config.tool_parser, tokenizer)
        rows, rewritten = native_targets(rows, tokenizer, parser)
        if rewritten:
            log.info("%d of %d rows held a plain call; trained as the model's native %s call", rewritten, len(rows), parser)
    calls = call_format_of(config) if config.decision_weight != 1.0 else None
    features = build_sft_features(rows, tokenizer, config.template, config.max_length, config.call_format, calls)
    if not features:
        raise ConfigError(f"max_length: every one of the {len(rows)} examples in {config.data} is longer than {config.max_length} tokens")

    resume_from = prepare_run(config, out, "sft_config.json")
    model = build_model(config, tokenizer)
    tokenizer.padding_side = "right"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    trainer = SFTTrainer(
        model=model,
        args=training_args(config, out / "checkpoints", config.per_device_train_batch_size),
        train_dataset=features,
        data_collator=SFTCollator(pad_id, decision_weight=config.decision_weight),
        processing_class=tokenizer,
        callbacks=[NonFiniteGuard(), *(callbacks or [])],
        decision_weight=config.decision_weight,
    )
    return train_and_save(trainer, resume_from, out, tokenizer, {"examples": len(features), "dropped_too_long": len(rows) - len(features)})
