"""GRPO's reward: trice's judge on each rollout response, then the reward table per group (the paper's
levels, a tool cost, OTC-GRPO's r_tool, EAPO's difficulty-aware cost); an outage is no reward."""

from __future__ import annotations

import math

import pytest

from trice.stage2.grpo_config import GRPOStageConfig, RewardTable
from trice.stage2.grpo_reward import ExecutionReward, group_rewards, level_of, otc_tool_reward
from trice.stage2.reward import RewardOutage
from trice.tasks import Judgement
from trice.core.tools import ToolError
from trice.tools.factories import TOOL_FACTORIES
from trice.utils.config import ConfigError, build_config

RIGHT_CALL = Judgement("3", True, True)
RIGHT_OWN = Judgement("3", True, False)
WRONG_CALL = Judgement("4", False, True)
WRONG_OWN = Judgement("4", False, False)
NOTHING = Judgement(None, False, True)


def test_otc_tool_reward_is_one_at_the_groups_fewest_calls_and_falls_beyond() -> None:
    assert otc_tool_reward(0, 0, 1.0) == 1.0 and otc_tool_reward(1, 1, 1.0) == pytest.approx(1.0)
    assert otc_tool_reward(1, 0, 1.0) == pytest.approx(math.cos(math.pi / 3))  # a call where none was needed: 0.5
    assert otc_tool_reward(2, 1, 1.0) == pytest.approx(math.sin(2 * math.pi / 3))  # one call too many
    assert otc_tool_reward(1, 0, 3.0) > otc_tool_reward(1, 0, 1.0)  # a larger c decays slower


def test_the_paper_levels_scaled_to_one() -> None:
    assert [level_of(j, True, "paper") for j in (RIGHT_CALL, RIGHT_OWN, WRONG_CALL, WRONG_OWN, NOTHING)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert [level_of(j, False, "paper") for j in (RIGHT_OWN, RIGHT_CALL)] == [1.0, 0.75]  # tool use as the gold's


def test_each_shaping_changes_only_what_it_names() -> None:
    group = [RIGHT_CALL, RIGHT_OWN, WRONG_CALL, WRONG_OWN]
    assert group_rewards(group, True, RewardTable()) == [1.0, 0.75, 0.5, 0.25]
    assert group_rewards(group, True, RewardTable(tool_cost=0.1)) == pytest.approx([0.9, 0.75, 0.4, 0.25])
    # OTC: a right call costs where a right own answer shows the question needs none; a wrong one keeps its level
    assert group_rewards(group, True, RewardTable(otc=1.0)) == pytest.approx([0.5, 0.75, 0.5, 0.25])
    assert group_rewards([RIGHT_CALL, WRONG_OWN], True, RewardTable(otc=1.0)) == pytest.approx([1.0, 0.25])
    # difficulty-aware: a cost on calls where most responses without a call are right, none elsewhere
    easy = [RIGHT_CALL, RIGHT_OWN, RIGHT_OWN, WRONG_OWN]
    hard = [RIGHT_CALL, RIGHT_OWN, WRONG_OWN, WRONG_OWN]
    assert group_rewards(easy, True, RewardTable(difficulty_aware=0.3)) == pytest.approx([0.7, 0.75, 0.75, 0.25])
    assert group_rewards(hard, True, RewardTable(difficulty_aware=0.3)) == [1.0, 0.75, 0.25, 0.25]
    assert group_rewards([RIGHT_CALL, WRONG_CALL], True, RewardTable(difficulty_aware=0.3)) == [1.0, 0.5]  # no response without a call


@pytest.mark.parametrize(
    "values, message",
    [
        ({"levels": "original"}, "levels: unknown 'original'"),
        ({"otc": 0}, "otc: the smoothing constant must be > 0"),
        ({"tool_cost": -1}, "tool_cost: must be >= 0"),
        ({"tool_fre": 1}, "unknown key 'tool_fre'"),
    ],
)
def test_a_bad_reward_table_is_named(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(GRPOStageConfig, {"reward": values}, "grpo")


def test_a_group_with_tool_free_rollouts_keeps_a_response_that_may_call() -> None:
    with pytest.raises(ConfigError, match="tool_free: 4 of a group of 4 leaves none"):
        build_config(GRPOStageConfig, {"num_generations": 4, "reward": {"tool_free": 4}}, "grpo")
    with pytest.raises(ConfigError, match="does not divide the step's 3 x 4 = 12 responses"):
        build_config(GRPOStageConfig, {"prompts_per_step": 3, "gradient_accumulation_steps": 5}, "grpo")


def _columns(responses: list[str], used_tool: bool = True, free: list[bool] | None = None) -> dict:
    n = len(responses)
    return {"id": ["q1"] * 2 + ["q2"] * (n - 2), "task": ["math"] * n, "question": ["What is 1 + 2?"] * n, "answers": [["3"]] * n,
            "dataset": ["svamp"] * n, "used_tool": [used_tool] * n, "response": responses, "tool_free": free or [False] * n}  # fmt: skip


def test_the_reward_judges_each_response_by_executing_its_call_and_logs_tool_use() -> None:
    reward = ExecutionReward(GRPOStageConfig(num_generations=2, reward={"tool_cost": 0.1}))
    logged: dict[str, float] = {}
    responses = ["calculator(1+2)", "The answer is 3.", "calculator(1+3)", "calculator(1/0)"]
    got = reward(["p"] * 4, responses, log_metric=logged.__setitem__, **_columns(responses, free=[False, True, False, True]))
    assert got == pytest.approx([0.9, 0.75, 0.4, -0.1])  # right call; right own answer; wrong call; a failing call predicts nothing
    assert logged == {"tool_rate": 0.75, "accuracy": 0.5, "tool_free_accuracy": 0.5}
    with pytest.raises(ValueError, match="a rollout group holds responses of 2 questions"):
        reward(["p"] * 3, responses[:3], **(_columns(responses[:3]) | {"id": ["q1", "q2", "q2"]}))


def test_an_outage_is_no_reward_it_stops_training(monkeypatch) -> None:
    class Down:
        name = "calculator"

        def run(self, argument: str) -> str:
            raise ToolError("timeout", "no answer within 5 s")

    monkeypatch.setitem(TOOL_FACTORIES, "calculator", lambda **_: Down())
    reward = ExecutionReward(GRPOStageConfig(num_generations=2))
    responses = ["calculator(1+2)", "The answer is 3."]
    with pytest.raises(RewardOutage, match=r"1 of 2 rollout responses met a tool outage while rewarded \(first: timeout: no answer"):
        reward(["p"] * 2, responses, **(_columns(responses) | {"id": ["q1", "q1"]}))
