"""The GPU recipe (recipes/gpu_7b.yaml) and the accelerate configs (recipes/accelerate/), checked on
CPU: the recipe parses into every stage config, and with a tiny model standing in for the 7B one
its TrainingArguments and bf16 LoRA model are built and take a training step; each accelerate file
goes through accelerate's own launcher up to the point where processes would start."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from trice.pipeline.plan import plan_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "gpu_7b.yaml"
ACCELERATE = ROOT / "recipes" / "accelerate"


@pytest.fixture(scope="module")
def plan(tiny_model_dir: Path):
    return plan_recipe(RECIPE, overrides={"model": str(tiny_model_dir)})


def test_the_recipe_names_a_7b_hub_model_and_plans_every_stage(plan) -> None:
    assert plan_recipe(RECIPE).recipe.model == "lmsys/vicuna-7b-v1.5"  # parses without loading anything
    assert plan.stages[:3] == ["data", "probe", "label"] and plan.stages[-1] == "report"
    assert {"train-trice-i", "candidates", "score", "train-trice-all", "train-trice-all-dpo", "eval-trice-all"} <= set(plan.stages)
    for generate in (plan.probe, plan.eval):
        assert (generate.backend, generate.dtype, generate.num_beams) == ("vllm", "bfloat16", 1)
    for trainer in (plan.train, plan.rlef, plan.trice_ii, plan.dpo):
        assert trainer.bf16 and trainer.report_to == "tensorboard"
    assert plan.train.gradient_checkpointing and plan.dpo.gradient_checkpointing
    assert (plan.train.lora_r, plan.train.lora_alpha, plan.train.target_modules) == (8, 16, ["q_proj", "v_proj"])
    assert plan.trice_ii.learning_rate == 1e-4 and plan.rlef.learning_rate == 2e-5


def test_the_recipe_leaves_room_for_dev_in_every_training_pool(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Planned against the real data: n_train plus the dev questions fit every dataset's training
    pool. Without its n_train (every question) the dev stage would find none left after stage I."""
    from trice.utils.config import ConfigError

    monkeypatch.setenv("TRICE_DATA_DIR", str(data_dir))
    plan = plan_recipe(RECIPE)
    assert "dev" in plan.stages and plan.data.n_train + plan.dev.n_per_dataset <= 683  # SVAMP's training pool
    every = yaml.safe_load(RECIPE.read_text())
    del every["data"]["n_train"]
    (tmp_path / "every.yaml").write_text(yaml.safe_dump(every))
    with pytest.raises(ConfigError, match="leaves none of the 683 training questions of svamp for dev.n_per_dataset = 100"):
        plan_recipe(tmp_path / "every.yaml")


def test_generation_maps_to_vllm_greedy_with_the_papers_penalty(plan) -> None:
    from trice.responses.backends import vllm_sampling_kwargs

    kwargs = vllm_sampling_kwargs(plan.eval)
    assert (kwargs["temperature"], kwargs["repetition_penalty"], kwargs["max_tokens"]) == (0.0, 1.3, 128)


def test_training_arguments_build_for_every_trainer(plan, tmp_path: Path) -> None:
    """bf16 is kept as is: transformers accepts bf16 autocast on CPU, so nothing is adapted here."""
    from trice.stage2.train_dpo import dpo_args
    from trice.training.lora import training_args

    sft = training_args(plan.train, tmp_path / "sft", plan.train.per_device_train_batch_size)
    assert sft.bf16 and sft.activation_checkpointing and sft.report_to == ["tensorboard"]
    assert (sft.per_device_train_batch_size, sft.gradient_accumulation_steps, sft.learning_rate) == (16, 8, 1e-4)
    assert sft.lr_scheduler_type.value == "cosine" and sft.ddp_find_unused_parameters is False
    rlef = training_args(plan.rlef, tmp_path / "rlef", plan.rlef.groups_per_step, include_num_input_tokens_seen="no")
    assert rlef.bf16 and (rlef.per_device_train_batch_size, rlef.gradient_accumulation_steps) == (8, 32)
    dpo = dpo_args(plan.dpo, tmp_path / "dpo")
    assert dpo.bf16 and dpo.beta == 0.1 and dpo.gradient_accumulation_steps == 32


def test_the_bf16_lora_model_builds_and_takes_a_step(plan, tiny_model_dir: Path) -> None:
    from trice.generation.models import load_tokenizer
    from trice.training.lora import build_model

    model = build_model(replace(plan.train, model=str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir)))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {torch.bfloat16}  # the base model in bf16
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}  # peft keeps LoRA weights in fp32
    ids = torch.randint(0, model.config.vocab_size, (2, 12))
    model.train()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters() if p.requires_grad)


# --- accelerate configs -----------------------------------------------------------------------------


def _launch(config: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str], object]:
    """Run ``accelerate launch --config_file recipes/accelerate/<config>`` up to the launcher, and
    return which launcher it chose, the environment it would give the processes, and its arguments."""
    import accelerate.commands.launch as launch
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    chosen: dict[str, object] = {}
    for name in ("deepspeed_launcher", "multi_gpu_launcher", "simple_launcher"):
        monkeypatch.setattr(launch, name, lambda args, name=name: chosen.update(name=name, args=args))
    monkeypatch.chdir(ROOT)  # the YAML names its DeepSpeed JSON relative to the repository, as the docs launch it
    args = launch.launch_command_parser().parse_args(["--config_file", str(ACCELERATE / config), "-m", "trice.cli", "train-sft"])
    launch.launch_command(args)
    args = chosen["args"]
    env = prepare_deepspeed_cmd_env(args)[1] if chosen["name"] == "deepspeed_launcher" else prepare_multi_gpu_env(args)
    return str(chosen["name"]), env, args


def _known_launch_keys() -> set[str]:
    import accelerate.commands.launch as launch

    return {action.dest for action in launch.launch_command_parser()._actions}


@pytest.mark.parametrize("config", ["ddp.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml", "fsdp.yaml"])
def test_accelerate_configs_use_only_keys_accelerate_knows(config: str) -> None:
    """accelerate ignores an unknown key inside deepspeed_config or fsdp_config silently: check them."""
    from accelerate.commands.config.config_args import load_config_from_file

    cluster = load_config_from_file(str(ACCELERATE / config))  # unknown top-level keys raise here
    known = _known_launch_keys()
    nested = {**cluster.deepspeed_config, **{k if k.startswith("fsdp") else f"fsdp_{k}": v for k, v in cluster.fsdp_config.items()}}
    assert not sorted(set(nested) - known)


def test_ddp_config_launches_torchrun_in_bf16(monkeypatch) -> None:
    launcher, env, args = _launch("ddp.yaml", monkeypatch)
    assert launcher == "multi_gpu_launcher" and args.num_processes == 8
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"


@pytest.mark.parametrize(("config", "stage"), [("deepspeed_zero2.yaml", 2), ("deepspeed_zero3.yaml", 3)])
def test_deepspeed_configs_build_accelerates_plugin(config: str, stage: int, monkeypatch) -> None:
    """The plugin reads the JSON and refuses settings given twice (precision in the YAML and the JSON)."""
    from accelerate.utils import DeepSpeedPlugin

    launcher, env, _ = _launch(config, monkeypatch)
    assert launcher == "deepspeed_launcher"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == stage
    zero = plugin.deepspeed_config["zero_optimization"]
    assert "optimizer" not in plugin.deepspeed_config and "scheduler" not in plugin.deepspeed_config  # transformers' AdamW and schedule
    if stage == 3:  # trice gathers the sharded weights to write the final adapter
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert plugin.deepspeed_config["bf16"]["enabled"] == "auto"  # follows the trainer's --bf16


def test_fsdp_config_keeps_checkpoints_trice_can_resume(monkeypatch) -> None:
    """A full state dict puts adapter_model.safetensors and optimizer.bin in each checkpoint, which
    trice.training.checkpoints.is_complete accepts; orig params let LoRA mix frozen and trainable weights."""
    launcher, env, _ = _launch("fsdp.yaml", monkeypatch)
    assert launcher == "multi_gpu_launcher" and env["ACCELERATE_USE_FSDP"] == "true"
    assert (env["FSDP_STATE_DICT_TYPE"], env["FSDP_USE_ORIG_PARAMS"], env["FSDP_SHARDING_STRATEGY"]) == ("FULL_STATE_DICT", "true", "FULL_SHARD")
    assert env["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "LlamaDecoderLayer" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"


def test_deepspeed_json_files_are_valid_json() -> None:
    for path in ACCELERATE.glob("*.json"):
        assert json.loads(path.read_text())["zero_optimization"]["stage"] in (2, 3), path


def test_scaling_doc_names_only_files_that_exist() -> None:
    doc = (ROOT / "docs" / "scaling.md").read_text()
    named = set(re.findall(r"recipes/[\w./-]+\.(?:yaml|json)", doc))
    assert {"recipes/gpu_7b.yaml", "recipes/accelerate/ddp.yaml", "recipes/accelerate/deepspeed_zero2.yaml"} <= named
    assert not sorted(p for p in named if not (ROOT / p).is_file())
