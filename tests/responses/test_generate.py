"""Batched, left-padded generation matches one-at-a-time generation and resumes after a kill."""

from __future__ import annotations

import pytest

from trice.core.schema import Example
from trice.generation.decode import generate_responses
from trice.responses.generate import GenerateConfig, generate_for_examples
from trice.generation.stopping import clean_response
from trice.utils.io import read_jsonl
from trice.generation.models import load_model


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def _examples(n: int) -> list[Example]:
    qs = ["48 + 2?", "How many clips did Natalia sell in April and May altogether?", "1", "What is 7 * 6 + 1?", "ok"]
    return [Example(f"e{i}", "svamp", "math", qs[i % len(qs)] * (1 + i % 3), ("1",)) for i in range(n)]


def test_batched_generation_equals_one_at_a_time(tiny) -> None:
    model, tokenizer = tiny
    prompts = [f"Question {i}: " + "how many " * (i % 4) + "?" for i in range(7)]
    batched = generate_responses(model, tokenizer, prompts, batch_size=4, max_new_tokens=8, do_sample=False)
    single = [generate_responses(model, tokenizer, [p], batch_size=1, max_new_tokens=8, do_sample=False)[0] for p in prompts]
    assert batched == single


def test_generation_resumes_and_keeps_order(tiny, tmp_path) -> None:
    model, tokenizer = tiny
    examples = _examples(6)
    out = tmp_path / "responses.jsonl"
    config = GenerateConfig(batch_size=2, max_new_tokens=4)
    first = generate_for_examples(examples[:3], out, model, tokenizer, config)
    calls = []
    original = model.generate

    def counting_generate(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    model.generate = counting_generate
    try:
        rows = generate_for_examples(examples, out, model, tokenizer, config)
    finally:
        model.generate = original
    assert sum(calls) == 3  # only the three new examples were generated
    assert [r["id"] for r in rows] == [e.id for e in examples]
    assert rows[:3] == first
    assert len(read_jsonl(out)) == 6 and all("response" in r for r in rows)


def test_clean_response_cuts_at_new_prompt() -> None:
    assert clean_response(" 72\n### Instruction:\nmore") == "72"
    assert clean_response("calculator(1+2)\n\n\n\njunk") == "calculator(1+2)"
    assert clean_response("plain") == "plain"


def test_sampled_generation_resumed_after_a_kill_equals_an_uninterrupted_run(tiny, tmp_path) -> None:
    """Batches and their seeds come from the whole example list, so the batches a kill left undone
    are sampled exactly as an uninterrupted run samples them."""
    model, tokenizer = tiny
    examples = _examples(7)
    config = GenerateConfig(batch_size=2, max_new_tokens=6, do_sample=True, temperature=1.5, seed=11)
    whole = generate_for_examples(examples, tmp_path / "whole.jsonl", model, tokenizer, config)

    out = tmp_path / "killed.jsonl"
    original, made = model.generate, []

    def dies_after_two_batches(*args, **kwargs):
        if len(made) == 2:
            raise KeyboardInterrupt("killed")
        made.append(1)
        return original(*args, **kwargs)

    model.generate = dies_after_two_batches
    try:
        with pytest.raises(KeyboardInterrupt):
            generate_for_examples(examples, out, model, tokenizer, config)
    finally:
        model.generate = original
    assert len(read_jsonl(out)) == 4
    resumed = generate_for_examples(examples, out, model, tokenizer, config)
    assert resumed == whole
    assert len({r["response"] for r in whole}) > 1  # sampling really varied the responses
