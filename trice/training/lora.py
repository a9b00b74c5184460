"""The LoRA training plumbing stage I (:mod:`trice.stage1.train_sft`) and stage II
(:mod:`trice.stage2.train_rlef`, :mod:`trice.stage2.train_dpo`) share, so the stages behave alike.

* the model: the base model with a fresh LoRA adapter seeded by ``seed``, or ``init_adapter``
  trainable (:func:`build_model`), plus the embedding rows of tokens the base model never learned
  (:func:`trained_token_ids`);
* the Trainer settings every stage starts from (:func:`training_args`);
* the non-finite guard: a NaN/inf loss stops training before backward, naming the step and the
  batch's examples (:class:`CheckedLoss`), and a non-finite gradient or logged loss stops it before
  the optimizer step (:class:`NonFiniteGuard`), so the last checkpoint stays a good one;
* the run directory: resume from the last complete checkpoint or start fresh (:func:`prepare_run`),
  then train and save ``adapter`` and ``train_log.json`` with this run's throughput
  (:func:`train_and_save`). Under ``accelerate launch`` only the main process deletes or writes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM, TrainerCallback, TrainingArguments, set_seed

from trice.generation.adapters import copy_adapter, load_adapter, lora_keys, save_adapter
from trice.generation.models import resolve_model
from trice.training.config import LoRATrainingConfig
from trice.core.call_format import NATIVE_FORMAT, parser_with
from trice.core.native import CALL_MARKERS
from trice.utils.config import ConfigError
from trice.training.checkpoints import last_checkpoint
from trice.utils.artefacts import record_dir
from trice.utils.io import read_json, write_json
from trice.utils.outputs import claim_output_dir

log = logging.getLogger(__name__)


def check_finite_loss(loss: torch.Tensor, step: int, ids: Sequence[Any]) -> None:
    """Stop before backward when a batch's loss is NaN/inf, naming the step and the batch's examples,
    so nothing non-finite reaches the weights or a checkpoint."""
    if not bool(torch.isfinite(loss).all()):
        raise RuntimeError(
            f"training stopped at step {step}: the loss is {loss.detach().float().tolist()} on the batch of "
            f"examples {list(ids)}; the weights were not updated and the last checkpoint is intact. "
            "Lower learning_rate or check those examples."
        )


class CheckedLoss:
    """Mixin for a transformers ``Trainer`` whose batches carry their example ids: the ids are taken
    out of the inputs, and a non-finite loss stops training before backward, naming them."""

    def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        ids = inputs.pop("ids", [])
        out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch=num_items_in_batch)  # type: ignore[misc]
        check_finite_loss(out[0] if return_outputs else out, self.state.global_step + 1, ids)  # type: ignore[attr-defined]
        return out


class NonFiniteGuard(TrainerCallback):
    """Stop with a RuntimeError naming the step when the loss or a gradient is not finite.

    Gradients are checked just before each optimizer step (a NaN/inf loss makes them non-finite),
    so the weights and every checkpoint saved so far stay clean. The logged loss is checked too.
    """

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is None:
            return
        bad = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        if bad:
            raise RuntimeError(
                f"training stopped at step {state.global_step + 1}: non-finite gradient in {len(bad)} "
                f"parameters (first: {bad[0]}), from a NaN/inf loss or an overflow; the weights were not "
                f"updated. Lower learning_rate or check the data; the last checkpoint is in {args.output_dir}."
            )

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise RuntimeError(
                f"training stopped at step {state.global_step}: the logged loss is {loss}. Lower "
                f"learning_rate or check the data; the last checkpoint is in {args.output_dir}."
            )


class RecordCheckpoints(TrainerCallback):
    """Once the Trainer has saved a checkpoint (every process its part), the main process records
    its files' sizes and hashes, which a resume checks (:func:`trice.training.checkpoints.is_complete`)."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        PartialState().wait_for_everyone()
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            record_dir(checkpoint)


def load_base_model(config: LoRATrainingConfig) -> Any:
    """The base model to train, in ``bf16`` or float32, without a KV cache."""
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(resolve_model(config.model), dtype=dtype)
    model.config.use_cache = False  # no KV cache while training
    return model


def single_token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` when the tokenizer encodes it as exactly one token, else None."""
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


def trained_token_ids(config: LoRATrainingConfig, tokenizer: Any) -> list[int]:
    """The tokens whose embedding rows train beside LoRA: ``config.trainable_tokens`` and, in the
    native call format, the parser's call markers where the vocabulary holds them as one token.

    Why the markers: a LoRA on the attention cannot tell two tokens apart whose rows are (nearly)
    the same. Qwen2.5-Coder-0.5B-Instruct's ``<tool_call>`` and ``</tool_call>`` rows are equal to
    4e-4 and 0.93 cosine from ``<|im_start|>``'s; trained without them, it wrote ``<|im_start|>``
    where its labels had ``<tool_call>`` (dropped as a special token), so no call ever parsed.
    """
    ids = []
    for token in config.trainable_tokens:
        token_id = single_token_id(tokenizer, token)
        if token_id is None:
            raise ConfigError(f"trainable_tokens: {token!r} is not one token of {config.model}'s vocabulary, so it has no row to train")
        ids.append(token_id)
    if config.call_format == NATIVE_FORMAT:
        markers = CALL_MARKERS[parser_with(config.tool_parser, tokenizer)]
        ids += [i for i in (single_token_id(tokenizer, m) for m in markers) if i is not None]
    return sorted(set(ids))


def token_rows(model: Any, token_ids: Sequence[int]) -> dict[str, list[int]] | None:
    """PEFT's ``trainable_token_indices`` for ``token_ids``: the input embedding's rows, and the
    output head's unless it shares the input's weights (PEFT then trains both through one delta)."""
    if not token_ids:
        return None
    names = {id(module): name.rsplit(".", 1)[-1] for name, module in model.named_modules()}
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    rows = {names[id(embed)]: list(token_ids)}
    if head is not None and head.weight is not embed.weight:
        rows[names[id(head)]] = list(token_ids)
    return rows


def trainable_model(model: Any, config: LoRATrainingConfig, token_ids: Sequence[int] = ()) -> Any:
    """``model`` with a trainable LoRA adapter: ``init_adapter``'s (keeping its own rank and trained
    tokens), else a fresh one that also trains the rows of ``token_ids``."""
    if config.init_adapter:
        peft_model = load_adapter(model, config.init_adapter, trainable=True)
        lora = peft_model.peft_config["default"]
        if (lora.r, lora.lora_alpha) != (config.lora_r, config.lora_alpha):
            log.warning(
                "init_adapter %s has r=%s alpha=%s; it keeps them (config lora_r=%s lora_alpha=%s ignored)",
                config.init_adapter,
                lora.r,
                lora.lora_alpha,
                config.lora_r,
                config.lora_alpha,
            )
        return peft_model
    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        trainable_token_indices=token_rows(model, token_ids),
        bias="none",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as err:  # "Target modules {...} not found in the base model"
        raise ValueError(f"target_modules: {err}") from None


def check_target_modules(config: LoRATrainingConfig) -> None:
    """ConfigError unless each of ``target_modules`` names a module of ``config.model`` as peft matches
    names (the whole name or its last dotted parts). The model is built from its config on the meta
    device, so no weights load: ``trice run`` checks this before its first stage, not when the
    training stage is reached. A model whose config cannot be read here is left to the training."""
    from accelerate import init_empty_weights
    from peft.tuners.tuners_utils import check_target_module_exists
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(resolve_model(config.model))
    except (OSError, ValueError) as err:
        log.info("target_modules not checked before training: %s", err)
        return
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(model_config)
    names = [name for name, _ in model.named_modules()]
    for target in config.target_modules:
        if not any(check_target_module_exists(LoraConfig(target_modules=[target]), name) for name in names):
            linear = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)})
            raise ConfigError(f"target_modules: {target!r} names no module of {config.model} (its linear layers: {', '.join(linear)})")


def build_model(config: LoRATrainingConfig, tokenizer: Any) -> Any:
    """The base model with its trainable LoRA adapter (fresh, seeded by ``config.seed``, or
    ``init_adapter``) and the rows of :func:`trained_token_ids`."""
    token_ids = [] if config.init_adapter else trained_token_ids(config, tokenizer)  # init_adapter keeps its own
    if token_ids:
        log.info("training the embedding rows of %s", ", ".join(repr(tokenizer.decode([i])) for i in token_ids))
    set_seed(config.seed)  # before the LoRA weights are initialised
    model = trainable_model(load_base_model(config), config, token_ids)
    if config.gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def training_args(config: LoRATrainingConfig, checkpoints_dir: Path, batch_size: int, **overrides: Any) -> TrainingArguments:
    """TrainingArguments for ``config``; ``overrides`` replace single arguments (a stage's own needs)."""
    args = dict(
        output_dir=str(checkpoints_dir),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_steps if config.warmup_steps > 0 else config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,  # a NaN loss must show in the log (the guard stops on it), not be averaged away
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit or None,
        seed=config.seed,
        data_seed=config.seed,
        report_to=config.report_to,
        bf16=config.bf16,
        deepspeed=config.deepspeed,
        # every LoRA weight is on every forward path: DDP need not search the graph for unused ones
        ddp_find_unused_parameters=False,
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        remove_unused_columns=False,  # the collator builds the batch; keep every feature key
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        include_num_input_tokens_seen="non_padding",
    )
    return TrainingArguments(**(args | overrides))


def prepare_run(config: LoRATrainingConfig, out: Path, config_name: str) -> Path | None:
    """The checkpoint to resume from (None: start fresh), after writing the config to ``out/config_name``.

    ``out`` must be absent, empty or this trainer's own earlier output, unless ``config.overwrite``
    (:func:`trice.utils.outputs.claim_output_dir`): nothing in a directory trice did not make is
    replaced or deleted.
    With ``resume`` off the old checkpoints are deleted; resuming under a config that differs from
    the one saved last time logs the changed fields (the run then mixes two settings).

    Under ``accelerate launch`` (several processes) only the main process deletes and writes; the
    others wait for it, then read the same checkpoint, so every rank resumes from one step.
    """
    state = PartialState()  # the launcher's process group; a plain run is one process
    checkpoints_dir = out / "checkpoints"
    claim_output_dir(out, config_name, overwrite=config.overwrite, mark=False)  # every rank, so all refuse alike
    with state.main_process_first():
        if not state.is_main_process:
            return last_checkpoint(checkpoints_dir, delete_incomplete=False) if config.resume else None
        claim_output_dir(out, config_name, overwrite=config.overwrite)
        resume_from = last_checkpoint(checkpoints_dir) if config.resume else None
        if not config.resume and checkpoints_dir.exists():
            log.warning("resume is off: deleting the old checkpoints in %s", checkpoints_dir)
            shutil.rmtree(checkpoints_dir)
        previous = out / config_name
        if resume_from is not None and previous.is_file():
            try:
                changed = sorted(k for k, v in read_json(previous).items() if getattr(config, k, v) != v and k != "overwrite")
            except ValueError:
                changed = []
            if changed:
                log.warning("resuming %s with a changed config (%s): the run mixes two settings", resume_from, ", ".join(changed))
        write_json(previous, dataclasses.asdict(config))
        return resume_from


def train_and_save(trainer: Any, resume_from: Path | None, out: Path, tokenizer: Any, counts: dict[str, int]) -> Path:
    """Run ``trainer`` (from ``resume_from`` when given), then save ``out/adapter`` (with the tokenizer,
    left-padding for generation) and ``out/train_log.json``: the log history plus one entry with this
    run's throughput, how many processes trained (``world_size``, ``distributed_type``, ``backend``)
    and ``counts`` (examples used, dropped). Returns the adapter directory. Each checkpoint saved is
    recorded (:class:`RecordCheckpoints`).

    In a distributed run every process gathers the weights (DeepSpeed ZeRO-3 and FSDP shard them, so
    gathering is collective) but only the main process writes, and all return once the files exist.
    """
    trainer.add_callback(RecordCheckpoints())
    if resume_from is not None and reached_max_steps(resume_from, trainer.args.max_steps):
        return _save_finished(trainer, resume_from, out, tokenizer, counts)
    if resume_from is not None:
        log.info("resuming from %s", resume_from)
    tokens_before = trainer.state.num_input_tokens_seen if resume_from is None else _tokens_seen(resume_from)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    tokens = int(trainer.state.num_input_tokens_seen) - tokens_before
    runtime = float(result.metrics.get("train_runtime") or 0.0)
    accelerator = trainer.accelerator
    throughput = _throughput(trainer, trainer.state.global_step, tokens, runtime, resume_from) | counts
    state_dict = accelerator.get_state_dict(trainer.model_wrapped)  # collective under ZeRO-3/FSDP: every rank calls it
    adapter = out / "adapter"
    if accelerator.is_main_process:
        log.info("trained to step %d: %d tokens in %.1f s (%s tokens/s)", throughput["step"], tokens, runtime, throughput["run_tokens_per_second"])
        tokenizer.padding_side = "left"  # the saved tokenizer is for generation
        save_adapter(accelerator.unwrap_model(trainer.model), adapter, tokenizer, state_dict=state_dict)
        write_json(out / "train_log.json", [*trainer.state.log_history, throughput])
    accelerator.wait_for_everyone()
    return adapter


def reached_max_steps(checkpoint: Path, max_steps: int) -> bool:
    """Whether ``checkpoint`` already holds step ``max_steps`` (when training is bounded by steps).
    transformers' loop takes an optimizer step before it first checks ``max_steps``, so resuming such
    a checkpoint would train past it: one step more each time a stage is restarted after training
    (a stage II run killed during its dev evaluation)."""
    return max_steps > 0 and _trainer_state(checkpoint).get("global_step", 0) >= max_steps


def _save_finished(trainer: Any, checkpoint: Path, out: Path, tokenizer: Any, counts: dict[str, int]) -> Path:
    """``out/adapter`` and ``out/train_log.json`` of a training whose last checkpoint reached
    ``max_steps``: copied from that checkpoint, nothing trained."""
    state, accelerator, adapter = _trainer_state(checkpoint), trainer.accelerator, out / "adapter"
    if accelerator.is_main_process:
        log.info("%s already holds step %d (max_steps): nothing left to train", checkpoint, state["global_step"])
        tokenizer.padding_side = "left"  # the saved tokenizer is for generation
        copy_adapter(checkpoint, adapter, lora_keys(accelerator.unwrap_model(trainer.model)), tokenizer)
        throughput = _throughput(trainer, state["global_step"], 0, 0.0, checkpoint) | counts
        write_json(out / "train_log.json", [*state.get("log_history", []), throughput])
    accelerator.wait_for_everyone()
    return adapter


def _throughput(trainer: Any, step: int, tokens: int, runtime: float, resume_from: Path | None) -> dict[str, Any]:
    """train_log.json's last entry: this run's steps, tokens and speed, and how many processes trained."""
    accelerator = trainer.accelerator
    return {
        "step": step,
        "run_tokens": tokens,
        "run_runtime_s": runtime,
        "run_tokens_per_second": round(tokens / runtime, 1) if runtime > 0 else None,
        "resumed_from": None if resume_from is None else resume_from.name,
        "world_size": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type.value),
        "backend": accelerator.state.backend,
    }


def _trainer_state(checkpoint: Path) -> dict[str, Any]:
    try:
        state = read_json(checkpoint / "trainer_state.json")
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def _tokens_seen(checkpoint: Path) -> int:
    return int(_trainer_state(checkpoint).get("num_input_tokens_seen") or 0)
