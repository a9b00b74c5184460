"""The config of online stage II by GRPO (``trice train-grpo``): TRL's ``GRPOTrainer`` samples a group
of responses per D_tool question from the current policy, trice executes their calls and rewards
them by its judge (:mod:`trice.stage2.grpo_reward`), and the policy is updated on the group-relative
advantages.

The data, start, checkpoint and dev-selection fields are those of every stage II trainer
(:class:`trice.stage2.config.StageIIConfig`); GRPO adds the rollout shape (questions per step x group
size, one generation batch per optimizer step), TRL's loss knobs, vLLM generation on a GPU, and the
reward table (:class:`RewardTable`, the recipe's ``reward:`` mapping).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trice.stage2.config import StageIIConfig
from trice.stage2.reward import PAPER_SCORES
from trice.utils.config import build_config

# Reward levels by name: each judged state's score, divided by the highest so the levels run 0..1 and
# a cost (tool_cost, difficulty_aware) reads as a share of a right answer's reward.
LEVELS = {"paper": PAPER_SCORES}
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo")
SCALE_REWARDS = ("group", "batch", "none")
VLLM_MODES = ("colocate", "server")


@dataclass
class RewardTable:
    """How a group's judged responses are rewarded (:func:`trice.stage2.grpo_reward.group_rewards`)."""

    levels: str = field(
        default="paper",
        metadata={
            "help": f"Reward per judged state, of: {', '.join(LEVELS)} (the paper's order: right > wrong; tool use as gold's > not; no prediction 0), scaled to 0..1."
        },
    )
    tool_cost: float = field(default=0.0, metadata={"help": "A flat cost subtracted per tool call."})
    otc: float | None = field(
        default=None,
        metadata={
            "help": "OTC-GRPO (arXiv 2504.14870): a right response's reward times r_tool(m, n), m its calls, n the fewest calls "
            "of the group's right responses; this is the smoothing constant c (null: off)."
        },
    )
    difficulty_aware: float = field(
        default=0.0, metadata={"help": "EAPO (arXiv 2606.02132): a cost per call, only in groups where most responses without a call are right."}
    )
    tool_free: int = field(default=0, metadata={"help": "EAPO's tool-free rollouts: this many of each group's responses are generated with calls forbidden."})

    def validate(self) -> None:
        if self.levels not in LEVELS:
            raise ValueError(f"levels: unknown {self.levels!r}; known: {', '.join(LEVELS)}")
        for name in ("tool_cost", "difficulty_aware", "tool_free"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.otc is not None and not self.otc > 0:
            raise ValueError(f"otc: the smoothing constant must be > 0, got {self.otc}")


@dataclass
class GRPOStageConfig(StageIIConfig):
    """Stage II online: GRPO on D_tool's questions, rewarded by executing the responses' calls."""

    data: str = field(
        default="", metadata={"help": "D_tool JSONL from `trice label`: id, question, answers, used_tool (the gold's tool use); optional task, dataset."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate (AdamW)."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the questions (ignored when max_steps > 0)."})
    max_length: int = field(
        default=512, metadata={"help": "Longest prompt + max_completion_length in tokens; a question with a longer prompt is dropped (and counted)."}
    )
    logging_steps: int = field(default=1, metadata={"help": "Log reward, tool-use rate and KL every this many optimizer steps."})
    prompts_per_step: int = field(default=8, metadata={"help": "Questions per optimizer step; their groups are one generation batch."})
    num_generations: int = field(default=4, metadata={"help": "Group size: responses sampled per question."})
    gradient_accumulation_steps: int = field(
        default=4, metadata={"help": "Forwards per optimizer step, each on prompts_per_step x num_generations / this of the step's responses."}
    )
    max_completion_length: int = field(default=64, metadata={"help": "New tokens per response (a response stops at the end of its first call)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the rollouts."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the rollouts (1: off)."})
    beta: float = field(
        default=0.04, metadata={"help": "KL coefficient against the start (the stage-I adapter or the base model); 0 drops the KL term and its logging."}
    )
    epsilon: float = field(default=0.2, metadata={"help": "Clipping range of the policy ratio."})
    loss_type: str = field(default="dapo", metadata={"help": f"TRL's token aggregation of the loss: {', '.join(LOSS_TYPES)}."})
    scale_rewards: str = field(default="group", metadata={"help": f"Advantage scaling by the rewards' std: {', '.join(SCALE_REWARDS)}."})
    reward: dict = field(default_factory=dict, metadata={"help": "The reward table (RewardTable keys): levels, tool_cost, otc, difficulty_aware, tool_free."})
    use_vllm: bool = field(default=False, metadata={"help": "Generate rollouts with vLLM (a GPU); trice still cuts each at the end of its call."})
    vllm_mode: str = field(
        default="colocate", metadata={"help": f"TRL's vLLM mode: {', '.join(VLLM_MODES)} (colocate: in the training process, sharing its GPU)."}
    )
    vllm_gpu_memory_utilization: float = field(default=0.3, metadata={"help": "Share of the GPU's memory vLLM may take in colocate mode."})

    def reward_table(self) -> RewardTable:
        return build_config(RewardTable, self.reward, "reward")

    @property
    def generation_batch(self) -> int:
        """Responses per optimizer step: one generation batch."""
        return self.prompts_per_step * self.num_generations

    def validate(self) -> None:
        """As :meth:`StageIIConfig.validate`, plus the rollout shape, TRL's knobs and the reward table."""
        super().validate()
        table = self.reward_table()
        if self.num_generations < 2:
            raise ValueError(f"num_generations: a group needs >= 2 responses to compare, got {self.num_generations}")
        if self.prompts_per_step < 1 or self.max_completion_length < 1:
            raise ValueError("prompts_per_step and max_completion_length: must be >= 1")
        if self.generation_batch % self.gradient_accumulation_steps:
            raise ValueError(
                f"gradient_accumulation_steps: {self.gradient_accumulation_steps} does not divide the step's "
                f"{self.prompts_per_step} x {self.num_generations} = {self.generation_batch} responses"
            )
        if not table.tool_free < self.num_generations:
            raise ValueError(f"reward: tool_free: {table.tool_free} of a group of {self.num_generations} leaves none that may call")
        if table.tool_free and self.use_vllm:
            raise ValueError("reward: tool_free: the tool-free rollouts forbid calls in transformers' generate; use_vllm has no such constraint here")
        if not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise ValueError(f"temperature, top_p: need temperature > 0 and top_p in (0, 1], got {self.temperature}, {self.top_p}")
        for name, value, known in (
            ("loss_type", self.loss_type, LOSS_TYPES),
            ("scale_rewards", self.scale_rewards, SCALE_REWARDS),
            ("vllm_mode", self.vllm_mode, VLLM_MODES),
        ):
            if value not in known:
                raise ValueError(f"{name}: unknown {value!r}; choose one of {', '.join(known)}")
        if not self.beta >= 0 or not self.epsilon > 0:
            raise ValueError(f"beta, epsilon: need beta >= 0 and epsilon > 0, got {self.beta}, {self.epsilon}")
