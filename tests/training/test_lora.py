"""The LoRA plumbing's token rows: which tokens train beside LoRA, and that training them is what
lets a model write a call marker whose rows it never learned."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.helpers.chat_template import with_call_tokens
from trice.generation.models import load_model, load_tokenizer
from trice.stage1.config import SFTConfig
from trice.stage1.train_sft import train_sft
from trice.tasks import prompt_tools
from trice.core.prompts import task_prompt
from trice.training.lora import token_rows, trained_token_ids
from trice.utils.config import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>'


@pytest.fixture(scope="module")
def marker_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_call_tokens(tiny_model_dir, tmp_path_factory.mktemp("markers"))


def _config(model: Path, tmp_path: Path, **kw) -> SFTConfig:
    data = tmp_path / "train.jsonl"
    # half the rows hold the plain call, which a native training renders in the template's format
    rows = [{"id": f"r{i}", "task": "math", "question": f"What is {i} + 3?", "output": CALL if i % 2 else "calculator(2+3)"} for i in range(4)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    values = dict(
        model=str(model), data=str(data), output_dir=str(tmp_path / "run"), template="chat", call_format="native",
        tool_parser="hermes", max_steps=12, per_device_train_batch_size=4, learning_rate=5e-2, lora_dropout=0.0, seed=3,
        save_steps=12, max_length=1024,
    )  # fmt: skip
    return SFTConfig(**(values | kw))


def test_the_native_format_trains_its_markers_and_the_text_format_none(marker_model: Path, tmp_path: Path) -> None:
    tokenizer = load_tokenizer(str(marker_model))
    markers = sorted(tokenizer.convert_tokens_to_ids(["<tool_call>", "</tool_call>"]))
    config = _config(marker_model, tmp_path)
    assert trained_token_ids(config, tokenizer) == markers
    assert trained_token_ids(replace(config, tool_parser="auto"), tokenizer) == markers  # read from the template
    assert trained_token_ids(replace(config, tool_parser="llama3"), tokenizer) == []  # JSON calls have no marker
    assert trained_token_ids(replace(config, call_format="text", template="alpaca"), tokenizer) == []
    own = replace(config, call_format="text", template="alpaca", trainable_tokens=["<tool_call>"])
    assert trained_token_ids(own, tokenizer) == markers[:1]


def test_a_trainable_token_that_is_not_one_token_is_refused(marker_model: Path, tmp_path: Path) -> None:
    config = _config(marker_model, tmp_path, trainable_tokens=["<no such token>"])
    with pytest.raises(ConfigError, match=r"trainable_tokens: '<no such token>' is not one token"):
        trained_token_ids(config, load_tokenizer(str(marker_model)))
    with pytest.raises(ValueError, match="trainable_tokens: must be a list of non-empty"):
        replace(config, trainable_tokens=[""]).validate()


def test_an_untied_head_trains_its_rows_too_and_a_tied_one_shares_the_input_rows(marker_model: Path) -> None:
    model, _ = load_model(str(marker_model))
    assert token_rows(model, []) is None
    assert token_rows(model, [7, 9]) == {"embed_tokens": [7, 9], "lm_head": [7, 9]}
    model.lm_head.weight = model.get_input_embeddings().weight
    assert token_rows(model, [7]) == {"embed_tokens": [7]}


def test_training_the_marker_rows_teaches_the_model_to_open_a_call(marker_model: Path, tmp_path: Path) -> None:
    """Both markers start with the same rows, so any model gives them equal logits: the call can only
    open with <tool_call> (and not </tool_call>) once their rows are trained apart."""
    tokenizer = load_tokenizer(str(marker_model))
    open_id, close_id = tokenizer.convert_tokens_to_ids(["<tool_call>", "</tool_call>"])
    adapter = train_sft(_config(marker_model, tmp_path))
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert sorted(config["trainable_token_indices"]["embed_tokens"]) == sorted([open_id, close_id])

    prompt = task_prompt("math", "What is 1 + 3?", "chat", tokenizer, prompt_tools("math", True))
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    base, _ = load_model(str(marker_model))
    trained, _ = load_model(str(marker_model), adapter=adapter)  # merged, as generation uses it
    with torch.no_grad():
        before, after = base(input_ids=ids).logits[0, -1], trained(input_ids=ids).logits[0, -1]
    assert before[open_id] == before[close_id]
    assert after[open_id] > after[close_id] and int(after.argmax()) == open_id
