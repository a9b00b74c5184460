"""DPO as stage II on the tiny model: pairs from scores (ties make none), the preference margin grows,
a killed run resumes, the adapter is saved alone, an init adapter is both the start and the reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers.callbacks import KillAfterSave, Killed, StepRecorder, poison_nth_forward
from trice.stage2.dpo_config import DPOStageConfig
from trice.utils.io import DataError, write_jsonl
from trice.core.prompts import task_prompt
from trice.stage2.train_dpo import build_pairs, preference_pairs, read_scored
from trice.training.tokens import prompt_token_ids, target_token_ids

pytestmark = pytest.mark.usefixtures("one_thread")

EVERY_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ROWS = [
    {
        "id": f"q{i}",
        "task": "math",
        "question": f"What is {i} + 3?",
        "answers": [str(i + 3)],
        "responses": [f"calculator({i}+3)", f"The answer is {i + 4}.", f"calculator({i}+4)", f"calculator({i}+3)"],
        "scores": [20, 5, 10, 20],
        "sources": ["gold", "a", "b", "c"],
    }
    for i in range(4)
]


def _config(tiny_model_dir: Path, tmp_path: Path, rows: list[dict] = ROWS, **kw) -> DPOStageConfig:
    write_jsonl(tmp_path / "scored.jsonl", rows)
    values = dict(
        model=str(tiny_model_dir),
        data=str(tmp_path / "scored.jsonl"),
        output_dir=str(tmp_path / "run"),
        max_steps=8,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        lora_dropout=0.0,
        target_modules=EVERY_LINEAR,
        save_steps=4,
        logging_steps=1,
        seed=7,
    )
    return DPOStageConfig(**(values | kw))


def test_preference_pairs_from_scores():
    scores, usable = [20, 20, 15, 10, 0], [True] * 5
    assert preference_pairs(scores, usable, "all") == [(0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]  # the tie (0, 1) makes no pair
    assert preference_pairs(scores, usable, "best_vs_rest") == [(0, 2), (0, 3), (0, 4)]  # the first best: the gold
    assert preference_pairs(scores, [True, True, True, False, True], "all") == [(0, 2), (0, 4), (1, 2), (1, 4), (2, 4)]
    assert preference_pairs([5, 5, 5], [True] * 3, "all") == preference_pairs([5, 5, 5], [True] * 3, "best_vs_rest") == []
    assert preference_pairs([20, 10], [False, False], "best_vs_rest") == []


def test_build_pairs_prompts_dedup_and_failed_responses(tiny_model_dir, tmp_path):
    from trice.generation.models import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    row = {k: v for k, v in ROWS[0].items() if k != "task"} | {"errors": [None, None, "timeout: no answer", None]}
    pairs = build_pairs([row], _config(tiny_model_dir, tmp_path, [row]), tokenizer)
    prompt = task_prompt("math", row["question"])  # a row without task takes the config's
    # gold and source c say the same and both beat a; b (failed) takes no part; the repeated pair is kept once
    assert pairs == [{"id": "q0", "prompt": prompt, "chosen": "calculator(0+3)", "rejected": "The answer is 4."}]


@pytest.mark.parametrize(
    "change,message",
    [({"scores": [20, 5, 10]}, ":2: field 'scores': 3 scores for 4 responses"), ({"errors": [None]}, ":2: field 'errors': expected a list of 4")],
)
def test_bad_scored_rows_fail_located(tmp_path, change, message):
    write_jsonl(tmp_path / "scored.jsonl", [ROWS[0], ROWS[1] | change])
    with pytest.raises(DataError, match=message):
        read_scored(tmp_path / "scored.jsonl", "math")


def _margins(model, tokenizer, rows: list[dict]) -> list[float]:
    """Summed log-prob of the gold minus that of the worst response, per question (what DPO raises)."""
    from trice.stage2.rlef_forward import naive_response_logprobs

    margins = []
    with torch.no_grad():
        for row in rows:
            prompt = torch.tensor(prompt_token_ids(row["task"], row["question"], tokenizer))
            best, worst = (torch.tensor(target_token_ids(row["responses"][i], tokenizer)) for i in (0, 1))
            logps = naive_response_logprobs(model, prompt, [best, worst]).token_logps.sum(1)
            margins.append(float(logps[0] - logps[1]))
    return margins


def test_dpo_resumes_after_a_kill_raises_the_margin_and_saves_the_adapter_alone(tiny_model_dir, tmp_path):
    from trice.generation.models import load_model
    from trice.stage2.train_dpo import train_dpo

    config = _config(tiny_model_dir, tmp_path)
    base, tokenizer = load_model(str(tiny_model_dir))
    before = _margins(base, tokenizer, ROWS)
    with pytest.raises(Killed):
        train_dpo(config, callbacks=[KillAfterSave(4)])
    steps = StepRecorder()
    adapter = train_dpo(config, callbacks=[steps])
    assert steps.steps == [5, 6, 7, 8]  # continued from checkpoint-4 (with TRL's reference copy in it)
    assert adapter == tmp_path / "run" / "adapter"
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "ref").exists()
    tuned, _ = load_model(str(tiny_model_dir), str(adapter))
    after = _margins(tuned, tokenizer, ROWS)
    assert all(a > b + 1.0 for a, b in zip(after, before)), (before, after)

    summary = json.loads((tmp_path / "run" / "train_log.json").read_text())[-1]
    assert summary["step"] == 8 and summary["resumed_from"] == "checkpoint-4"
    assert summary["questions"] == 4 and summary["questions_with_pairs"] == 4
    assert summary["pairs"] == 4 * 3  # per question: gold > a, gold > b, b > a (c repeats the gold)
    assert json.loads((tmp_path / "run" / "dpo_config.json").read_text())["beta"] == 0.1
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]


def test_init_adapter_is_the_start_and_the_reference(tiny_model_dir, tmp_path):
    from peft import LoraConfig, TaskType, get_peft_model
    from safetensors.torch import load_file

    from trice.generation.adapters import save_adapter
    from trice.generation.models import load_model
    from trice.stage2.train_dpo import train_dpo

    base, _ = load_model(str(tiny_model_dir))
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    start = save_adapter(get_peft_model(base, lora), tmp_path / "stage1")  # nonzero lora_B: unlike the base model

    config = _config(tiny_model_dir, tmp_path, init_adapter=str(start), max_steps=1, learning_rate=1e-12)
    adapter = train_dpo(config)
    first = json.loads((tmp_path / "run" / "train_log.json").read_text())[0]
    assert first["rewards/chosen"] == 0.0 and first["rewards/margins"] == 0.0  # the policy starts at the reference
    before, after = load_file(str(start / "adapter_model.safetensors")), load_file(str(adapter / "adapter_model.safetensors"))
    assert before.keys() == after.keys() and any(bool(v.any()) for k, v in after.items() if "lora_B" in k)
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)


def test_nan_loss_stops_training_before_backward_naming_the_questions(tiny_model_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from trice.stage2.train_dpo import train_dpo

    poison_nth_forward(monkeypatch, 5)  # each step runs the policy, then the reference: call 5 is step 3's policy
    with pytest.raises(RuntimeError, match=r"training stopped at step 3: the loss is nan on the batch of examples \['q"):
        train_dpo(_config(tiny_model_dir, tmp_path, save_steps=2))
    saved = load_file(str(tmp_path / "run" / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors"))
    assert all(torch.isfinite(v).all() for v in saved.values())


def test_config_checks(capsys):
    from trice.cli import main

    with pytest.raises(ValueError, match="beta"):
        DPOStageConfig(beta=0).validate()
    assert main(["train-dpo", "--pairs", "some"]) == 2
    assert "pairs: unknown 'some'; choose one of all, best_vs_rest" in capsys.readouterr().err


def test_dev_selection_picks_among_checkpoints_from_a_stage_one_start(tiny_model_dir, tmp_path):
    """As RLEF: every checkpoint is judged on the dev set and the best copied, the trained adapter
    (not TRL's frozen reference copy of the start) being what is evaluated and kept (the start
    itself, step 0, is left out here so that a trained checkpoint is kept whatever the dev scores)."""
    from peft import LoraConfig, TaskType, get_peft_model
    from safetensors.torch import load_file

    from trice.generation.adapters import save_adapter
    from trice.core.schema import Example, save_examples
    from trice.generation.models import load_model
    from trice.stage2.train_dpo import train_dpo

    base, _ = load_model(str(tiny_model_dir))
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    start = save_adapter(get_peft_model(base, lora), tmp_path / "stage1")
    dev = [Example(f"d{i}", "toy", "math", f"What is {i} + 5?", (str(i + 5),), split="dev") for i in range(2)]
    save_examples(tmp_path / "dev.jsonl", dev)
    config = _config(
        tiny_model_dir,
        tmp_path,
        init_adapter=str(start),
        target_modules=["q_proj", "v_proj"],
        max_steps=4,
        save_steps=2,
        dev_data=str(tmp_path / "dev.jsonl"),
        dev_max_new_tokens=4,
        dev_batch_size=2,
        select_start=False,
    )
    train_dpo(config)
    run = tmp_path / "run"
    selection = json.loads((run / "selection.json").read_text())
    assert [s["step"] for s in selection["steps"]] == [2, 4] and selection["n_dev"] == 2
    chosen = Path(selection["selected_from"])
    assert chosen.name == f"checkpoint-{selection['best_step']}"
    best, trained = load_file(str(run / "adapter_best" / "adapter_model.safetensors")), load_file(str(chosen / "adapter_model.safetensors"))
    assert best.keys() == trained.keys() and all(torch.equal(best[k], trained[k]) for k in best)
    first = load_file(str(start / "adapter_model.safetensors"))
    assert any(not torch.allclose(first[k], best[k]) for k in first)  # trained, not the reference copy


def test_boundary_pairs_prefer_an_own_answer_where_the_policy_knows_and_a_call_where_it_does_not() -> None:
    from trice.stage2.train_dpo import boundary_pairs

    # gold (a call), a right answer alone, a wrong call, a wrong answer alone, a right call
    states = ["gold", "True-No", "False-Yes", "False-No", "True-Yes"]
    used = [True, False, True, False, True]
    usable = [True] * 5
    assert boundary_pairs(states, used, usable, knows=True) == [(1, 0), (1, 2), (1, 4)]  # the right own answer over every call
    assert boundary_pairs(states, used, usable, knows=False) == [(0, 1), (0, 3), (4, 1), (4, 3)]  # right calls over own answers
    assert boundary_pairs(states, used, [True, False, True, True, True], knows=True) == []  # its one right own answer is unusable
