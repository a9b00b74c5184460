"""The prompts' shared prefix, encoded once, gives the responses of the path that encodes it per row."""

from __future__ import annotations

import pytest
import torch

from trice.core.prompts import few_shot_prefix
from trice.generation.decode import generate_responses
from trice.generation.models import load_model
from trice.generation.prefix_cache import MIN_SHARED_TOKENS, SharedPrefix, shared_prefix_length
from trice.core.prompts import task_prompt
from trice.responses.generate import task_stop_rule

QUESTIONS = [
    "48 + 2?",
    "How many clips did Natalia sell in April and May altogether?",
    "1",
    "What is 7 * 6 + 1?",
    "ok",
    "Natalia sold 48 clips to her friends in April, and then she sold half as many clips in May.",
    "Natalia sold 48 clips",
]


@pytest.fixture(scope="module")
def sharp(tiny_model_dir):
    """The tiny model with weights large enough that its output depends on the prompt (at the
    default init every prompt gives the same text, which would make any comparison vacuous)."""
    model, tokenizer = load_model(str(tiny_model_dir))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    return model, tokenizer


def _both(model, tokenizer, prompts, **kwargs):
    without = generate_responses(model, tokenizer, prompts, share_prefix=False, **kwargs)
    with_prefix = generate_responses(model, tokenizer, prompts, share_prefix=True, **kwargs)
    return without, with_prefix


@pytest.mark.parametrize("few_shot", [None, "math"])
def test_greedy_responses_equal_the_per_row_path(sharp, one_thread, few_shot) -> None:
    model, tokenizer = sharp
    prompts = [few_shot_prefix(few_shot) + task_prompt("math", q) for q in QUESTIONS]
    without, with_prefix = _both(model, tokenizer, prompts, batch_size=3, max_new_tokens=12, do_sample=False)
    assert len(set(without)) > 3  # the responses differ by prompt, so equality says something
    assert with_prefix == without
    one_by_one = [generate_responses(model, tokenizer, [p], batch_size=1, max_new_tokens=12, share_prefix=False)[0] for p in prompts]
    assert with_prefix == one_by_one


def test_sampled_responses_and_stopped_responses_equal_the_per_row_path(sharp, one_thread) -> None:
    model, tokenizer = sharp
    prompts = [few_shot_prefix("math") + task_prompt("math", q) for q in QUESTIONS]
    sampled = _both(model, tokenizer, prompts, batch_size=4, max_new_tokens=10, do_sample=True, seed=3)
    assert sampled[0] == sampled[1]
    stops = [task_stop_rule("math")] * len(prompts)
    stopped = _both(model, tokenizer, prompts, batch_size=4, max_new_tokens=10, stops=stops, repetition_penalty=1.3)
    assert stopped[0] == stopped[1]


def test_the_prefix_is_the_common_token_prefix_leaving_each_prompt_a_token(sharp) -> None:
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2], [3, 4]]) == 0 and shared_prefix_length([]) == 0
    model, tokenizer = sharp
    ids = [tokenizer(few_shot_prefix("math") + task_prompt("math", q), add_special_tokens=False)["input_ids"] for q in QUESTIONS[:2]]
    prefix = SharedPrefix.encode(model, ids)
    assert prefix is not None and len(prefix.ids) >= len(tokenizer(few_shot_prefix("math"), add_special_tokens=False)["input_ids"]) - 1
    batch = prefix.batch(ids, tokenizer.pad_token_id)
    width = max(map(len, ids))
    assert batch["input_ids"].shape == (2, width) and batch["cache"].get_seq_length() == len(prefix.ids)
    assert batch["attention_mask"].sum(dim=1).tolist() == [len(s) for s in ids]  # pads, between prefix and tail, are masked
    assert SharedPrefix.encode(model, ids, num_beams=2) is None  # beams would need the cache per beam
    assert SharedPrefix.encode(model, ids[:1]) is None
    assert SharedPrefix.encode(model, [s[: MIN_SHARED_TOKENS - 1] + [0] for s in ids]) is None  # too short to pay
