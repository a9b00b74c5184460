"""Stage II online, by GRPO (``trice train-grpo``): TRL's ``GRPOTrainer`` on D_tool's questions.

Each optimizer step samples ``num_generations`` responses to each of ``prompts_per_step`` questions
from the current policy (:mod:`trice.stage2.grpo_rollouts`: one batched generation, each response
stopped and cut at the end of its call), executes their calls and rewards them by trice's judge and
the recipe's reward table (:mod:`trice.stage2.grpo_reward`), and updates the LoRA on the
group-relative advantages with TRL's clipped loss and a KL term against the start (``beta``; TRL
keeps a frozen copy of the starting adapter, the stage-I one or a fresh LoRA's identity, as the
reference, dropped before the adapter is saved). The optimisation, its checkpoints and its log
are TRL's and transformers'; trice gives the data, the prompts, the rollouts, the rewards and the
run directory.

The model, the Trainer settings, the non-finite guard, resuming from the last checkpoint and saving
``adapter`` and ``train_log.json`` are stage I's (:mod:`trice.training.lora`); the log has per step
TRL's ``reward``, ``reward_std``, ``kl`` and ``step_time`` (its wall time: rollouts, rewards,
forwards and backwards), and trice's ``tool_rate``, ``accuracy`` and ``rollout_tokens_per_second``. With ``dev_data`` every checkpoint (and the
start) is then judged on the dev set and the best kept (:mod:`trice.stage2.select_checkpoint`), as
for RLEF and DPO. A tool outage while rewarding stops training (:class:`trice.stage2.reward.RewardOutage`);
a rerun resumes from the last checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import TrainingArguments
from trl import GRPOConfig, GRPOTrainer

from trice.responses.generate import task_stop_rule
from trice.generation.models import load_tokenizer
from trice.generation.stopping import StopRule
from trice.stage2.grpo_config import GRPOStageConfig
from trice.stage2.grpo_reward import ExecutionReward
from trice.stage2.grpo_rollouts import Rollouts
from trice.stage2.select_checkpoint import dev_for, select_on_dev
from trice.stage2.train_dpo import DropReference
from trice.tasks import prompt_tools
from trice.tasks.inputs import check_row_task, read_input
from trice.core.prompts import task_prompt
from trice.core.call_format import NATIVE_FORMAT
from trice.generation.models import call_format_of
from trice.training.lora import NonFiniteGuard, build_model, prepare_run, train_and_save, training_args

log = logging.getLogger(__name__)

QUESTION_FIELDS = {"id": str, "question": str, "answers": (list, str), "used_tool": bool}
READINGS = "readings.jsonl"  # tool outputs read again while rewarding (qa, mlqa)


def read_questions(path: str | Path, default_task: str) -> list[dict]:
    """D_tool's rows, checked; a bad line raises :class:`~trice.utils.io.DataError` naming its file, line and field."""
    return read_input(path, QUESTION_FIELDS, check=lambda row, where, line: check_row_task(row, default_task, where, line))


def build_prompts(rows: Sequence[dict], tokenizer: Any, config: GRPOStageConfig) -> tuple[list[dict], dict[str, StopRule], dict[str, list[int]]]:
    """TRL's dataset rows (``prompt`` and the columns the reward reads), and each prompt's stop rule
    and token ids as trice tokenizes prompts. A question whose prompt leaves less than
    ``max_completion_length`` of ``max_length`` is dropped (with a warning giving the count)."""
    calls = call_format_of(config)
    data, rules, ids = [], {}, {}
    for row in rows:
        task = row.get("task", config.task)
        prompt = task_prompt(task, row["question"], config.template, tokenizer, prompt_tools(task, config.call_format == NATIVE_FORMAT))
        prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if len(prompt_ids) + config.max_completion_length > config.max_length:
            continue
        rules[prompt], ids[prompt] = task_stop_rule(task, calls), prompt_ids
        data.append({"prompt": prompt, "id": row["id"], "task": task, "question": row["question"], "answers": row["answers"],
                     "dataset": row.get("dataset", ""), "used_tool": row["used_tool"]})  # fmt: skip
    if len(data) < len(rows):
        log.warning("dropped %d of %d questions whose prompt leaves less than max_completion_length=%d of max_length=%d tokens",
                    len(rows) - len(data), len(rows), config.max_completion_length, config.max_length)  # fmt: skip
    return data, rules, ids


def grpo_args(config: GRPOStageConfig, checkpoints_dir: Path) -> GRPOConfig:
    """Stage I's Trainer settings carried into TRL's GRPOConfig, plus the rollout shape (one
    generation batch per optimizer step) and GRPO's own. TRL counts the rollouts' tokens itself."""
    per_forward = config.generation_batch // config.gradient_accumulation_steps
    base = training_args(config, checkpoints_dir, per_forward, include_num_input_tokens_seen="no")
    shared = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    return GRPOConfig(
        **shared, num_generations=config.num_generations, steps_per_generation=config.gradient_accumulation_steps,
        max_completion_length=config.max_completion_length, temperature=config.temperature, top_p=config.top_p,
        beta=config.beta, epsilon=config.epsilon, loss_type=config.loss_type, scale_rewards=config.scale_rewards,
        use_vllm=config.use_vllm, vllm_mode=config.vllm_mode, vllm_gpu_memory_utilization=config.vllm_gpu_memory_utilization,
        vllm_importance_sampling_correction=False,  # the rollouts are cut after sampling: no sampling log-probs to correct with
    )  # fmt: skip


def train_grpo(config: GRPOStageConfig, callbacks: Sequence[Any] | None = None) -> Path:
    """Train the adapter by GRPO on ``config.data``'s questions; returns ``output_dir/adapter``. With
    ``config.dev_data`` the checkpoints are then judged on it and the best copied to
    ``output_dir/adapter_best`` (see ``selection.json``). ``callbacks``: extra
    ``transformers.TrainerCallback`` objects (progress hooks, tests)."""
    out = config.run_dir("D_tool's JSONL from `trice label`")
    rows = read_questions(config.data, config.task)
    dev = dev_for(config, {r["id"] for r in rows})
    tokenizer = load_tokenizer(config.model)
    data, rules, ids = build_prompts(rows, tokenizer, config)
    if not data:
        raise ValueError(
            f"max_length: every one of the {len(rows)} prompts in {config.data} leaves less than max_completion_length={config.max_completion_length} tokens"
        )
    rollouts = Rollouts(tokenizer, rules, ids, config.num_generations, config.reward_table().tool_free, config.seed)
    counts = {"questions": len(data), "dropped_too_long": len(rows) - len(data)}
    adapter = _train(config, data, rollouts, tokenizer, out, counts, callbacks)
    select_on_dev(config, dev)
    return adapter


def _train(
    config: GRPOStageConfig, data: list[dict], rollouts: Rollouts, tokenizer: Any, out: Path, counts: dict[str, int], callbacks: Sequence[Any] | None
) -> Path:
    """The training run proper; its model, reference copy and optimizer are freed when it returns, before selection."""
    resume_from = prepare_run(config, out, "grpo_config.json")
    trainer = GRPOTrainer(
        model=build_model(config, tokenizer),
        reward_funcs=[ExecutionReward(config, readings=str(out / READINGS))],
        args=grpo_args(config, out / "checkpoints"),
        train_dataset=Dataset.from_list(data),
        processing_class=tokenizer,
        callbacks=[NonFiniteGuard(), DropReference(), *(callbacks or [])],
        rollout_func=rollouts,
    )
    return train_and_save(trainer, resume_from, out, tokenizer, counts)
