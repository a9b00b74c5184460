"""GRPO's reward: trice's judge on each rollout response, then the recipe's reward table over each
group (one question's responses).

Every response is judged as the score stage judges candidates (:func:`trice.judge.evaluate.judge_many`:
its first call executed by the task's tools, sandboxed and bounded, with their caches; a tool output
the model reads again read by the base model), so a rollout is rewarded exactly as stage II's
offline candidates are scored. A judgement that is the machine's failure (an outage, an unread
output: :func:`trice.judge.evaluate.machine_failure`) is no reward at all: training stops with
:class:`trice.stage2.reward.RewardOutage` and a rerun resumes from the last checkpoint.

The table (:class:`trice.stage2.grpo_config.RewardTable`), applied in this order to a group:

1. ``levels``: the judged state's level, the paper's by default (gold 20, True-Yes 20, True-No 15,
   False-Yes 10, False-No 5, no prediction 0; True/False: the answer right; Yes/No: tool use as the
   gold response's, D_tool's output), divided by the highest, so 0..1;
2. ``otc`` (OTC-GRPO, arXiv 2504.14870): a right response's level times
   ``r_tool(m, n)`` (:func:`otc_tool_reward`), ``m`` its calls and ``n`` the fewest calls among the
   group's right responses, the group's estimate of the calls the question needs; a wrong response
   keeps its level (OTC multiplies a correctness reward that is 0 there, which TRICE's levels are not);
3. ``tool_cost``: minus the cost per call;
4. ``difficulty_aware`` (EAPO, arXiv 2606.02132): minus the cost per call, in groups where more than
   half of the responses without a call are right (an easy question for the policy without its
   tool; with ``tool_free: n`` every group has at least the n generated with calls forbidden).

A TRICE response makes at most one call (generation stops at its end), so ``m`` is 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from trice.responses.config import GenerateConfig
from trice.judge.evaluate import judge_many, machine_failure
from trice.judge.reading import ReadingModel
from trice.stage2.grpo_config import LEVELS, GRPOStageConfig, RewardTable
from trice.stage2.reward import RewardOutage, response_state
from trice.tasks import PER_ROW, Judgement, tool_registries
from trice.generation.models import call_format_of


def otc_tool_reward(calls: int, optimum: int, c: float) -> float:
    """OTC-GRPO's r_tool: 1 at the group's fewest calls ``optimum`` (n), falling as ``calls`` (m)
    exceed it: ``cos(m pi / (2m + c))`` where the group needed none, else ``sin(f pi / (2n))`` with
    ``f = 2nm / (m + n)``, which is n (r_tool 1) at m = n."""
    if calls == 0 and optimum == 0:
        return 1.0
    if optimum == 0:
        return math.cos(calls * math.pi / (2 * calls + c))
    mapped = 2 * optimum * calls / (calls + optimum)
    return math.sin(mapped * math.pi / (2 * optimum))


def level_of(judgement: Judgement, gold_tool: bool, levels: str) -> float:
    """The judged state's level against a gold response that did (not) call, scaled to 0..1."""
    scores = LEVELS[levels]
    gold = Judgement(prediction="", correct=True, used_tool=gold_tool)
    return scores[response_state(judgement, gold)] / max(scores.values())


def easy_for_the_policy(judgements: Sequence[Judgement]) -> bool:
    """EAPO's difficulty: more than half of the group's responses without a call are right."""
    tool_free = [j.correct for j in judgements if not j.used_tool]
    return bool(tool_free) and sum(tool_free) > len(tool_free) / 2


def group_rewards(judgements: Sequence[Judgement], gold_tool: bool, table: RewardTable) -> list[float]:
    """The rewards of one question's judged responses by ``table`` (the module docstring's order)."""
    rewards = [level_of(j, gold_tool, table.levels) for j in judgements]
    calls = [int(j.used_tool) for j in judgements]
    if table.otc is not None:
        right = [m for m, j in zip(calls, judgements) if j.correct]
        if right:
            optimum = min(right)
            rewards = [r * otc_tool_reward(m, optimum, table.otc) if j.correct else r for r, m, j in zip(rewards, calls, judgements)]
    cost = table.tool_cost + (table.difficulty_aware if table.difficulty_aware and easy_for_the_policy(judgements) else 0.0)
    return [r - cost * m for r, m in zip(rewards, calls)]


class ExecutionReward:
    """The reward function TRL's ``GRPOTrainer`` calls with a generation batch: groups of
    ``group_size`` consecutive responses of one question, the dataset's columns (``id``, ``task``,
    ``question``, ``answers``, ``dataset``, ``used_tool``) and the rollouts' (``response``: the
    response as generation cut it; ``tool_free``). Logs the batch's tool-use rate and accuracy (and,
    with tool-free rollouts, theirs) beside TRL's reward and KL."""

    __name__ = "execution_feedback"

    def __init__(self, config: GRPOStageConfig, readings: str | None = None):
        self.table = config.reward_table()
        self.group_size = config.num_generations
        self.calls = call_format_of(config)
        self.registry = tool_registries(config.tools)
        reading = GenerateConfig(model=config.model, template=config.template, call_format=config.call_format, tool_parser=config.tool_parser)
        self.reader = ReadingModel.for_config(reading, cache=readings)  # loads its model only for a task that reads tool outputs

    def judge(self, rows: Sequence[dict]) -> list[Judgement]:
        """Each response judged; :class:`RewardOutage` where one is the machine's failure."""
        judgements = judge_many(rows, PER_ROW, self.reader, registry=self.registry, calls=self.calls)
        failed = [why for j in judgements if (why := machine_failure(j.tool_error, j.unread))]
        if failed:
            raise RewardOutage(len(failed), len(rows), failed[0][:200])
        return judgements

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], log_metric: Callable[[str, float], None] | None = None, **columns: Any
    ) -> list[float]:
        n = len(completions)
        rows = [
            {"id": columns["id"][i], "task": columns["task"][i], "question": columns["question"][i], "answers": columns["answers"][i],
             "dataset": columns["dataset"][i], "response": columns["response"][i]}
            for i in range(n)
        ]  # fmt: skip
        judgements = self.judge(rows)
        rewards: list[float] = []
        for start in range(0, n, self.group_size):
            ids = set(columns["id"][start : start + self.group_size])
            if len(ids) != 1:
                raise ValueError(
                    f"a rollout group holds responses of {len(ids)} questions ({sorted(ids)}): TRL's sampler repeats each question num_generations times in a row"
                )
            rewards += group_rewards(judgements[start : start + self.group_size], bool(columns["used_tool"][start]), self.table)
        if log_metric is not None:
            log_metric("tool_rate", sum(j.used_tool for j in judgements) / n)
            log_metric("accuracy", sum(j.correct for j in judgements) / n)
            forced = [j for j, free in zip(judgements, columns.get("tool_free") or [False] * n) if free]
            if forced:
                log_metric("tool_free_accuracy", sum(j.correct for j in forced) / len(forced))
        return rewards
