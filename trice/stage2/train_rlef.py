"""Stage II, RLEF: train on execution-scored candidates with ``alpha * L_rank + L_sft``.

The data is the scored JSONL of ``trice score``: per question its candidate responses (the gold
one first) and their scores. Each line becomes one *group*: the prompt's ids (the task instruction
and question in the template, tokenized exactly as in stage I and in generation), each response's
ids plus EOS, and the scores as rewards. A group whose rewards are all equal is kept: it forms no
rank pair, but its SFT term (on the first best candidate, the gold one) still teaches the target,
as in stage I. A group with any prompt+response longer than ``max_length`` is dropped whole (and
counted), so no group loses a candidate and with it some of its pairs.

The trainer is transformers' ``Trainer`` with :meth:`RLEFTrainer.compute_loss` running each
group's k candidates through :func:`trice.stage2.rlef_forward.grouped_response_logprobs` (``method``:
``shared_prefix`` encodes the prompt once) and :class:`trice.stage2.rlef_loss.RLEFLoss` on the padded
groups of a forward, reduced over them as ``reduction`` says (:mod:`trice.stage2.rlef_loss`). The rank
and sft parts are averaged over the forwards of each logging window and logged next to the loss.
Run directory, checkpoints, resume, the non-finite guard and the final ``adapter``/``train_log.json``
are stage I's (:mod:`trice.training.lora`); the config goes to ``rlef_config.json``. With ``dev_data``
every checkpoint (and the start, ``select_start``) is then evaluated on the dev set and the best one
copied to ``adapter_best`` (:mod:`trice.stage2.select_checkpoint`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from transformers import Trainer

from trice.generation.models import load_tokenizer
from trice.tasks.inputs import read_input
from trice.training.tokens import prompt_token_ids, target_token_ids
from trice.tasks import get_task
from trice.core.call_format import TEXT_FORMAT, CallFormat
from trice.generation.models import call_format_of
from trice.training.decision import decision_index, decision_weights
from trice.stage2.rlef_config import RLEFConfig
from trice.stage2.rlef_forward import GroupLogprobs, grouped_response_logprobs
from trice.stage2.rlef_loss import RLEFLoss
from trice.stage2.select_checkpoint import dev_for, select_on_dev
from trice.core.prompts import INSTRUCTIONS
from trice.training.lora import NonFiniteGuard, build_model, check_finite_loss, prepare_run, train_and_save, training_args
from trice.utils.config import ConfigError
from trice.utils.io import DataError

log = logging.getLogger(__name__)

SCORED_FIELDS = {"id": str, "question": str, "responses": (list, str), "scores": (list, float)}


def check_group(row: dict, default_task: str, path: str | Path, line: int | None) -> None:
    """What the field types cannot say: a gold response exists, one finite score per response, a known task."""
    if not row["responses"]:
        raise DataError(path, line, "responses", "empty: the first response must be the gold one")
    if len(row["scores"]) != len(row["responses"]):
        raise DataError(path, line, "scores", f"{len(row['scores'])} scores for {len(row['responses'])} responses")
    if not all(math.isfinite(s) for s in row["scores"]):
        raise DataError(path, line, "scores", f"not all finite: {row['scores']}")
    task = row.get("task", default_task)
    if not isinstance(task, str) or task not in INSTRUCTIONS:
        raise DataError(path, line, "task", f"unknown {task!r}; known tasks: {', '.join(INSTRUCTIONS)}")


def read_groups(path: str | Path, default_task: str) -> list[dict]:
    """The checked scored rows; a bad line raises :class:`DataError` naming its file, line and field."""
    return read_input(path, SCORED_FIELDS, check=lambda row, where, line: check_group(row, default_task, where, line))


def build_groups(
    rows: Sequence[dict], tokenizer: Any, template: str, max_length: int, default_task: str, call_format: str = TEXT_FORMAT, calls: CallFormat | None = None
) -> list[dict]:
    """One training group per row whose every prompt+response fits in ``max_length`` tokens (the
    others are dropped, with a warning giving their count): ``id``, ``prompt_ids`` (list of ints),
    ``response_ids`` (a list of int lists, each ending in EOS) and ``rewards`` (the scores).
    ``call_format`` native: the prompts offer the task's tool, as the responses were prompted.
    Given ``calls`` (the responses' call format), also ``decisions``: each response's decision
    token index (:func:`trice.training.decision.decision_index`)."""
    groups: list[dict] = []
    for row in rows:
        task = row.get("task", default_task)
        prompt_ids = prompt_token_ids(task, row["question"], tokenizer, template, call_format)
        response_ids = [target_token_ids(r, tokenizer) for r in row["responses"]]
        if len(prompt_ids) + max(map(len, response_ids)) > max_length:
            continue
        group = {"id": row["id"], "prompt_ids": prompt_ids, "response_ids": response_ids, "rewards": [float(s) for s in row["scores"]]}
        if calls is not None:
            group["decisions"] = [decision_index(r, tokenizer, (get_task(task).tool,), calls) for r in row["responses"]]
        groups.append(group)
    if len(groups) < len(rows):
        log.warning("dropped %d of %d groups with a prompt+response longer than max_length=%d tokens", len(rows) - len(groups), len(rows), max_length)
    return groups


def collate_groups(features: Sequence[dict]) -> list[dict[str, Any]]:
    """The groups of one forward as tensors, unpadded (each group is padded by its own forward)."""
    return [
        {
            "prompt_ids": torch.tensor(f["prompt_ids"], dtype=torch.long),
            "response_ids": [torch.tensor(r, dtype=torch.long) for r in f["response_ids"]],
            "rewards": torch.tensor(f["rewards"], dtype=torch.float32),
            "id": f["id"],
        }
        | ({"decisions": torch.tensor(f["decisions"], dtype=torch.long)} if "decisions" in f else {})
        for f in features
    ]


def pad_groups(groups: Sequence[GroupLogprobs], rewards: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stack groups of different k and response length: ``(token_logps [B, K, R], token_mask [B, K, R],
    rewards [B, K], group_mask [B, K])``, the form :class:`RLEFLoss` takes for a batch of groups."""
    K = max(g.token_logps.shape[0] for g in groups)
    R = max(g.token_logps.shape[1] for g in groups)

    def pad(t: Tensor, value: Any = 0) -> Tensor:
        widths = (0, R - t.shape[1], 0, K - t.shape[0]) if t.dim() == 2 else (0, K - t.shape[0])
        return F.pad(t, widths, value=value)

    return (
        torch.stack([pad(g.token_logps) for g in groups]),
        torch.stack([pad(g.token_mask, False) for g in groups]),
        torch.stack([pad(r.to(g.token_logps.device)) for g, r in zip(groups, rewards)]),
        torch.stack([pad(torch.ones_like(r, dtype=torch.bool, device=g.token_logps.device), False) for g, r in zip(groups, rewards)]),
    )


def padded_length(batch: Sequence[dict[str, Any]]) -> int:
    """The longest prompt+response of a forward's groups, in tokens: the width the released trainer
    padded its batch to, which its SFT term divided by (the ``released`` reduction)."""
    return max(g["prompt_ids"].numel() + max(r.numel() for r in g["response_ids"]) for g in batch)


def rlef_batch_loss(
    model: Any, batch: Sequence[dict[str, Any]], loss_fn: RLEFLoss, method: str, decision_weight: float = 1.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """The RLEF loss of one forward's groups (as :func:`collate_groups` makes them) and its parts;
    with ``decision_weight`` each candidate's decision token's log-prob counts that many times."""
    groups = [grouped_response_logprobs(model, g["prompt_ids"], g["response_ids"], loss_fn.length_penalty, method) for g in batch]
    token_logps, *rest = pad_groups(groups, [g["rewards"] for g in batch])
    if decision_weight != 1.0:
        positions = pad_sequence([g["decisions"] for g in batch], batch_first=True, padding_value=-1).to(token_logps.device)
        weights = decision_weights(token_logps.flatten(0, 1), positions.flatten(), decision_weight).view_as(token_logps)
        token_logps = token_logps * weights
    return loss_fn(token_logps, *rest, padded_length=padded_length(batch))


def sequence_tokens(batch: Sequence[dict[str, Any]]) -> int:
    """Tokens of the groups' prompt+response sequences, counted as if each were run on its own, so
    tokens/s compares the forward methods on the same work."""
    return sum(len(g["response_ids"]) * g["prompt_ids"].numel() + sum(r.numel() for r in g["response_ids"]) for g in batch)


class RLEFTrainer(Trainer):
    """A Trainer whose loss is RLEF over groups of candidates; logs the rank and sft parts."""

    def __init__(self, *args: Any, loss_fn: RLEFLoss, method: str, decision_weight: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.loss_fn, self.method, self.decision_weight = loss_fn, method, decision_weight
        self._parts: dict[str, list[Tensor]] = {"rank": [], "sft": []}

    def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        loss, parts = rlef_batch_loss(model, inputs, self.loss_fn, self.method, self.decision_weight)
        check_finite_loss(loss, self.state.global_step + 1, [g["id"] for g in inputs])
        for name, values in self._parts.items():
            values.append(parts[name])
        # with include_num_input_tokens_seen off, this count is ours; it is saved and resumed with the state
        self.state.num_input_tokens_seen += sequence_tokens(inputs)
        return (loss, parts) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._parts["rank"]:
            for name, values in self._parts.items():
                logs[name] = torch.stack(values).mean().item()
                values.clear()
        super().log(logs, start_time)


def train_rlef(config: RLEFConfig, callbacks: Sequence[Any] | None = None) -> Path:
    """Train stage II on ``config.data``; returns the final adapter directory (``output_dir/adapter``).

    With ``config.dev_data`` the checkpoints are then evaluated and the best is copied to
    ``output_dir/adapter_best`` (see ``selection.json``). ``callbacks`` are extra
    ``transformers.TrainerCallback`` objects (progress hooks, tests).
    """
    out = config.run_dir("the scored JSONL of `trice score`")
    rows = read_groups(config.data, config.task)
    dev = dev_for(config, {r["id"] for r in rows})
    tokenizer = load_tokenizer(config.model)
    calls = call_format_of(config) if config.decision_weight != 1.0 else None
    groups = build_groups(rows, tokenizer, config.template, config.max_length, config.task, config.call_format, calls)
    if not groups:
        raise ConfigError(f"max_length: every one of the {len(rows)} groups in {config.data} has a response longer than {config.max_length} tokens")

    adapter = _train(config, groups, tokenizer, out, {"groups": len(groups), "dropped_too_long": len(rows) - len(groups)}, callbacks)
    select_on_dev(config, dev)
    return adapter


def _train(config: RLEFConfig, groups: list[dict], tokenizer: Any, out: Path, counts: dict[str, int], callbacks: Sequence[Any] | None) -> Path:
    """The training run proper; its model and optimizer are freed when it returns, before selection."""
    resume_from = prepare_run(config, out, "rlef_config.json")
    trainer = RLEFTrainer(
        model=build_model(config, tokenizer),
        args=training_args(config, out / "checkpoints", config.groups_per_step, include_num_input_tokens_seen="no"),
        train_dataset=groups,
        data_collator=collate_groups,
        processing_class=tokenizer,
        callbacks=[NonFiniteGuard(), *(callbacks or [])],
        loss_fn=RLEFLoss(config.alpha, config.length_penalty, config.margin, config.sft_ties, config.reduction),
        method=config.method,
        decision_weight=config.decision_weight,
    )
    return train_and_save(trainer, resume_from, out, tokenizer, counts)
