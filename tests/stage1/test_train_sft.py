"""Stage I LoRA SFT on the tiny model: label mask, learning, adapter save/load, resume, errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from tests.helpers.callbacks import KillAfterSave, Killed, StepRecorder, poison_nth_forward
from tests.conftest import build_tiny_model
from trice.utils.io import DataError
from trice.core.prompts import task_prompt
from trice.stage1.config import SFTConfig

pytestmark = pytest.mark.usefixtures("one_thread")

ROWS = [{"id": f"r{i}", "task": "math", "question": f"What is {i} + {i}?", "output": f"calculator({i}+{i}) The answer is {2 * i}."} for i in range(8)]


def _data(tmp_path: Path, rows: list[dict] = ROWS) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(tiny_model_dir: Path, tmp_path: Path, out: str = "run", **kw) -> SFTConfig:
    values = dict(
        model=str(tiny_model_dir),
        data=str(_data(tmp_path)),
        output_dir=str(tmp_path / out),
        max_steps=6,
        per_device_train_batch_size=2,
        save_steps=3,
        logging_steps=1,
        learning_rate=1e-3,
        seed=7,
    )
    return SFTConfig(**(values | kw))


def _lora_state(adapter_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


# --- features and collator ---------------------------------------------------------------------


def test_label_mask_covers_prompt_and_keeps_response_plus_eos(tiny_model_dir):
    from trice.generation.models import load_tokenizer
    from trice.stage1.train_sft import IGNORE_INDEX, SFTCollator, build_sft_features

    tok = load_tokenizer(str(tiny_model_dir))
    rows = ROWS[:3]
    features = build_sft_features(rows, tok, "alpaca", 512)
    assert len(features) == 3
    for row, f in zip(rows, features):
        prompt_ids = tok(task_prompt(row["task"], row["question"], "alpaca", tok), add_special_tokens=False)["input_ids"]
        n = len(prompt_ids)
        assert f["input_ids"][:n] == prompt_ids  # the prompt exactly as generation tokenizes it
        assert f["labels"][:n] == [IGNORE_INDEX] * n
        assert IGNORE_INDEX not in f["labels"][n:]
        kept = [t for t in f["labels"] if t != IGNORE_INDEX]
        assert kept == f["input_ids"][n:] and kept[-1] == tok.eos_token_id
        assert tok.decode(kept) == row["output"] + tok.eos_token
        assert f["attention_mask"] == [1] * len(f["input_ids"])

    batch = SFTCollator(tok.pad_token_id)(features)
    width = max(len(f["input_ids"]) for f in features)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (3, width)
    for i, f in enumerate(features):
        n = len(f["input_ids"])
        assert batch["input_ids"][i, n:].eq(tok.pad_token_id).all()
        assert batch["labels"][i, n:].eq(IGNORE_INDEX).all()
        assert batch["attention_mask"][i, n:].eq(0).all() and batch["attention_mask"][i, :n].eq(1).all()
        assert batch["labels"][i, :n].tolist() == f["labels"]


def test_a_native_prompt_offers_the_tool_as_generation_prompts_it(tiny_model_dir, tmp_path):
    from tests.helpers.chat_template import with_chat_template
    from trice.responses.backends import TransformersBackend
    from trice.responses.config import GenerateConfig
    from trice.generation.models import load_tokenizer
    from trice.stage1.train_sft import IGNORE_INDEX, build_sft_features

    chat = str(with_chat_template(tiny_model_dir, tmp_path / "chat"))
    tok = load_tokenizer(chat)
    row = {"id": "n", "task": "math", "question": "2+3?", "output": '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>'}
    (feature,) = build_sft_features([row], tok, "chat", 1024, "native")
    n = feature["labels"].count(IGNORE_INDEX)
    config = GenerateConfig(model=chat, template="chat", call_format="native", tool_parser="hermes")
    prompt = TransformersBackend(config, model=object(), tokenizer=tok).prompt("math", "2+3?")  # what generation sends
    assert tok.decode(feature["input_ids"][:n]) == prompt and '"name": "calculator"' in prompt
    assert tok.decode(feature["input_ids"][n:-1]) == row["output"]


def test_too_long_examples_are_dropped_and_counted(tiny_model_dir, caplog):
    from trice.generation.models import load_tokenizer
    from trice.stage1.train_sft import build_sft_features

    tok = load_tokenizer(str(tiny_model_dir))
    long_row = dict(ROWS[0], id="long", output="calculator(1+1) " * 200)
    with caplog.at_level("WARNING"):
        features = build_sft_features([ROWS[0], long_row], tok, "alpaca", 128)
    assert [f["id"] for f in features] == ["r0"]
    assert "dropped 1 of 2" in caplog.text


# --- training ----------------------------------------------------------------------------------


def test_training_lowers_loss_and_writes_outputs(tiny_model_dir, tmp_path):
    from trice.stage1.train_sft import train_sft

    every_linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = _config(tiny_model_dir, tmp_path, max_steps=30, learning_rate=1e-2, save_steps=30, lora_dropout=0.0, target_modules=every_linear)
    adapter = train_sft(config)
    assert adapter == tmp_path / "run" / "adapter"
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    losses = [e["loss"] for e in log if "loss" in e]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.2, losses  # a random model starts near ln(vocab)
    assert json.loads((tmp_path / "run" / "sft_config.json").read_text())["learning_rate"] == 1e-2
    assert (adapter / "adapter_config.json").is_file() and (adapter / "tokenizer_config.json").is_file()
    state = _lora_state(adapter)
    assert any("lora_A" in k for k in state) and any("lora_B" in k for k in state)
    assert any(v.abs().sum() > 0 for k, v in state.items() if "lora_B" in k)  # trained, not an identity adapter


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """A trained adapter plus the in-memory model it came from (via a callback that keeps it)."""
    from transformers import TrainerCallback

    from trice.stage1.train_sft import train_sft

    class Keep(TrainerCallback):
        model = None

        def on_train_end(self, args, state, control, model=None, **kw):
            Keep.model = model

    tmp = tmp_path_factory.mktemp("trained")
    adapter = train_sft(_config(tiny_model_dir, tmp, learning_rate=1e-2), callbacks=[Keep()])
    return adapter, Keep.model


def test_saved_adapter_reloads_to_identical_logits(tiny_model_dir, trained):
    from trice.generation.models import load_model

    adapter, in_memory = trained
    in_memory.eval()
    ids = torch.tensor([[5, 17, 42, 99, 3, 250, 8]])
    with torch.no_grad():
        expected = in_memory(input_ids=ids).logits
        reloaded, tok = load_model(str(tiny_model_dir), adapter=adapter, merge=False)
        got = reloaded(input_ids=ids).logits
        merged, _ = load_model(str(tiny_model_dir), adapter=adapter)  # what generation uses
        merged_logits = merged(input_ids=ids).logits
    assert torch.equal(got, expected)
    assert torch.allclose(merged_logits, expected, atol=1e-5)
    base, _ = load_model(str(tiny_model_dir))
    with torch.no_grad():
        assert not torch.equal(base(input_ids=ids).logits, expected)  # the adapter does something


def test_adapter_on_other_base_model_is_a_clear_error(tiny_model_dir, trained, tmp_path):
    from trice.generation.models import load_model

    adapter, _ = trained
    wider = build_tiny_model(tmp_path / "wider", hidden_size=48)
    with pytest.raises(ValueError, match=r"does not match the base model") as err:
        load_model(str(wider), adapter=adapter)
    assert str(adapter) in str(err.value) and "size mismatch" in str(err.value)

    deeper = build_tiny_model(tmp_path / "deeper", num_hidden_layers=3)  # loads partially in plain peft
    with pytest.raises(ValueError, match=r"not in the adapter") as err:
        load_model(str(deeper), adapter=adapter)
    assert str(adapter) in str(err.value)


def test_broken_adapter_dirs_are_clear_errors(tiny_model_dir, trained, tmp_path):
    import shutil

    from safetensors.torch import save_file

    from trice.generation.models import load_model

    adapter, _ = trained
    with pytest.raises(ValueError, match="no adapter_config.json"):
        load_model(str(tiny_model_dir), adapter=tmp_path)
    with pytest.raises(ValueError, match="no such directory"):
        load_model(str(tiny_model_dir), adapter=tmp_path / "nope")
    empty = tmp_path / "empty"
    shutil.copytree(adapter, empty)
    save_file({}, str(empty / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match=f"adapter {empty}: the weights hold no LoRA tensors"):
        load_model(str(tiny_model_dir), adapter=empty)


def test_save_adapter_is_atomic_and_refuses_a_model_without_lora(tiny_model_dir, trained, tmp_path):
    from trice.generation.adapters import save_adapter
    from trice.generation.models import load_model

    adapter, _ = trained
    base, _ = load_model(str(tiny_model_dir))
    with pytest.raises(ValueError, match="lora_A missing"):
        save_adapter(base, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))

    model, tok = load_model(str(tiny_model_dir), adapter=adapter, merge=False)
    save_adapter(model, tmp_path / "out", tok)
    save_adapter(model, tmp_path / "out", tok)  # replaces an existing adapter
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    saved, original = _lora_state(tmp_path / "out"), _lora_state(adapter)
    assert saved.keys() == original.keys() and all(torch.equal(saved[k], original[k]) for k in saved)


def test_init_adapter_continues_from_a_saved_adapter(tiny_model_dir, trained, tmp_path):
    from trice.stage1.train_sft import train_sft

    adapter, _ = trained
    config = _config(tiny_model_dir, tmp_path, out="cont", init_adapter=str(adapter), max_steps=2, save_steps=2)
    cont = _lora_state(train_sft(config))
    start = _lora_state(adapter)
    assert cont.keys() == start.keys()
    assert any(not torch.equal(cont[k], start[k]) for k in cont if "lora_A" in k)  # trainable, and trained


def test_resume_after_a_kill_matches_a_straight_run(tiny_model_dir, tmp_path):
    from trice.stage1.train_sft import train_sft

    straight = train_sft(_config(tiny_model_dir, tmp_path, out="straight"))  # 6 steps, checkpoints at 3 and 6

    with pytest.raises(Killed):
        train_sft(_config(tiny_model_dir, tmp_path, out="resumed"), callbacks=[KillAfterSave(3)])
    run = tmp_path / "resumed"
    assert not (run / "adapter").exists() and (run / "checkpoints" / "checkpoint-3").is_dir()
    steps = StepRecorder()
    resumed = train_sft(_config(tiny_model_dir, tmp_path, out="resumed"), callbacks=[steps])
    assert steps.steps == [4, 5, 6]  # continued from step 3, did not start over

    a, b = _lora_state(straight), _lora_state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), k
    log = json.loads((run / "train_log.json").read_text())
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3, 4, 5, 6]  # the history survives the resume
    assert log[-1]["resumed_from"] == "checkpoint-3"

    # resume=False starts over (and clears the old checkpoints)
    steps = StepRecorder()
    train_sft(_config(tiny_model_dir, tmp_path, out="resumed", resume=False, max_steps=2), callbacks=[steps])
    assert steps.steps == [1, 2]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-2"]


def test_a_checkpoint_truncated_after_its_save_is_not_resumed_from(tiny_model_dir, tmp_path):
    from trice.stage1.train_sft import train_sft

    run = tmp_path / "run"
    first = _lora_state(train_sft(_config(tiny_model_dir, tmp_path)))  # 6 steps, checkpoints at 3 and 6, each recorded
    optimizer = run / "checkpoints" / "checkpoint-6" / "optimizer.pt"
    with open(optimizer, "r+b") as fh:
        fh.truncate(optimizer.stat().st_size // 2)  # its files exist: only the record tells
    steps = StepRecorder()
    again = _lora_state(train_sft(_config(tiny_model_dir, tmp_path), callbacks=[steps]))
    assert steps.steps == [4, 5, 6]  # from checkpoint-3; the damaged checkpoint-6 was made again
    for k in first:
        assert torch.allclose(first[k], again[k], atol=1e-5, rtol=0), k
    assert json.loads((run / "train_log.json").read_text())[-1]["resumed_from"] == "checkpoint-3"


def test_incomplete_checkpoint_is_skipped(tiny_model_dir, tmp_path):
    from trice.training.checkpoints import last_checkpoint

    ckpts = tmp_path / "checkpoints"
    good, torn = ckpts / "checkpoint-3", ckpts / "checkpoint-6"
    for d in (good, torn):
        d.mkdir(parents=True)
        for name in ("optimizer.pt", "scheduler.pt"):
            (d / name).write_bytes(b"x")
        (d / "adapter_model.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")  # whole, of no tensors
    (good / "trainer_state.json").write_text("{}")
    assert last_checkpoint(ckpts) == good
    assert not torn.exists()
    assert last_checkpoint(tmp_path / "none") is None


def test_nonfinite_guard_names_the_step():
    from types import SimpleNamespace

    from trice.training.lora import NonFiniteGuard

    guard = NonFiniteGuard()
    args, state = SimpleNamespace(output_dir="/x/checkpoints"), SimpleNamespace(global_step=4)
    layer = torch.nn.Linear(2, 2)
    layer.weight.grad = torch.tensor([[0.0, float("nan")], [1.0, 1.0]])
    with pytest.raises(RuntimeError, match=r"step 5: non-finite gradient .*weight"):
        guard.on_pre_optimizer_step(args, state, None, model=layer)
    layer.weight.grad = torch.zeros(2, 2)
    guard.on_pre_optimizer_step(args, state, None, model=layer)  # finite: fine
    with pytest.raises(RuntimeError, match=r"step 4: the logged loss is nan"):
        guard.on_log(args, state, None, logs={"loss": float("nan")})
    guard.on_log(args, state, None, logs={"loss": 1.5})


def test_nan_loss_stops_training_before_corrupting_weights(tiny_model_dir, tmp_path, monkeypatch):
    from trice.stage1 import train_sft as mod

    poison_nth_forward(monkeypatch, 5)
    with pytest.raises(RuntimeError, match=r"training stopped at step 5: the loss is nan on the batch of examples \['"):
        mod.train_sft(_config(tiny_model_dir, tmp_path, save_steps=2))
    ckpt = _lora_state(tmp_path / "run" / "checkpoints" / "checkpoint-4")
    assert all(torch.isfinite(v).all() for v in ckpt.values())


# --- config and data errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("lora_r", 0),
        ("lora_alpha", 0),
        ("learning_rate", 0.0),
        ("learning_rate", -1e-4),
        ("lora_dropout", 1.0),
        ("max_length", 0),
        ("per_device_train_batch_size", 0),
        ("gradient_accumulation_steps", 0),
        ("max_steps", 0),
        ("warmup_ratio", 1.5),
        ("warmup_steps", -1),
        ("save_steps", 0),
        ("save_total_limit", -1),
        ("target_modules", []),
        ("template", "nope"),
        ("lr_scheduler_type", "nope"),
        ("data", "/no/such/file.jsonl"),
    ],
)
def test_validate_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        SFTConfig(**{field: value}).validate()


def test_defaults_validate_and_paths_are_required_to_train(tmp_path):
    from trice.stage1.train_sft import train_sft

    SFTConfig().validate()  # the pipeline fills data/output_dir later
    with pytest.raises(ValueError, match="^data: required"):
        train_sft(SFTConfig(output_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="^output_dir: required"):
        train_sft(SFTConfig(data=str(_data(tmp_path))))


def test_bad_data_line_is_a_located_error(tiny_model_dir, tmp_path):
    from trice.stage1.train_sft import train_sft

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"id": "x", "task": "math", "question": "q"}) + "\n")
    with pytest.raises(DataError, match=rf"{path}:2: field 'output': missing"):
        train_sft(_config(tiny_model_dir, tmp_path, data=str(path)))
