"""GRPO's rollouts on the tiny model: a group's prompt encoded once gives the responses a plain batch
gives; each response is cut at the end of its call and ends with EOS; tool-free rows cannot open a
call; a step's rollouts depend on the seed and the step alone."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from tests.helpers.models import converted_qwen
from trice.generation.models import load_model, load_tokenizer
from trice.generation.stopping import StopRule
from trice.stage2.grpo_rollouts import CallOpenings, ForbidCalls, Rollouts, cut_completion, group_inputs, seam
from trice.core.prompts import task_prompt
from trice.core.call_format import CallFormat

pytestmark = pytest.mark.usefixtures("one_thread")

RULE = StopRule(tools=("calculator",))
QUESTIONS = ["Natalia sold 48 clips. How many?", "What is 3 + 4?", "How many clips in May?"]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir: Path):
    model, tokenizer = load_model(str(tiny_model_dir))
    return model, tokenizer


def _ids(tokenizer, prompts: list[str]) -> list[list[int]]:
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


@pytest.mark.parametrize(
    "prompts", [[task_prompt("math", q) for q in QUESTIONS], ["48 + 1", "clips ( ) sold", "The answer is"]], ids=["shared-header", "no-shared-prefix"]
)
def test_a_groups_prompt_encoded_once_gives_the_plain_batchs_responses(model_and_tokenizer, prompts: list[str]) -> None:
    model, tokenizer = model_and_tokenizer
    ids = _ids(tokenizer, prompts)
    shared = model.generate(
        **group_inputs(model, ids, 3, tokenizer.pad_token_id), do_sample=False, max_new_tokens=8, pad_token_id=tokenizer.pad_token_id, use_cache=True
    )
    width = max(map(len, ids))
    repeated = [p for p in ids for _ in range(3)]
    plain = model.generate(
        input_ids=torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in repeated]),
        attention_mask=torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in repeated]),
        do_sample=False, max_new_tokens=8, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    assert shared[:, -8:].tolist() == plain[:, -8:].tolist()


def test_a_response_is_cut_at_its_calls_end_and_ends_with_eos(model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    enc = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    ids, response = cut_completion(enc("calculator(48+48/2) The answer is 72") + [pad, pad], RULE, tokenizer, (eos,))
    assert response == "calculator(48+48/2)" and ids[-1] == eos and tokenizer.decode(ids[:-1]).startswith("calculator(48+48/2)")
    assert len(ids) <= len(enc("calculator(48+48/2)")) + 1  # the fewest tokens holding the call
    assert cut_completion(enc("The answer is 72") + [eos, pad], RULE, tokenizer, (eos,)) == (enc("The answer is 72") + [eos], "The answer is 72")
    assert cut_completion(enc("calculator(48+"), RULE, tokenizer, (eos,)) == (enc("calculator(48+"), "calculator(48+")  # clipped: as it is
    ids, response = cut_completion(enc("The answer is 72\n### Instruction:\n"), RULE, tokenizer, (eos,))
    assert response == "The answer is 72" and ids[-1] == eos and "###" not in tokenizer.decode(ids)


class Push(LogitsProcessor):
    """Steer every row to write ``target``'s tokens, one per step, as long as it is allowed."""

    def __init__(self, target: list[int], prompt_length: int):
        self.target, self.prompt_length = target, prompt_length

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_length
        if step < len(self.target):
            scores[:, self.target[step]] += 1000.0
        return scores


@pytest.mark.parametrize("text", ["calculator(48+48/2)", "x = calculator (7*6)"])
def test_a_tool_free_row_cannot_open_a_call(model_and_tokenizer, text: str) -> None:
    model, tokenizer = model_and_tokenizer
    ids = _ids(tokenizer, [task_prompt("math", QUESTIONS[0])])
    enc = group_inputs(model, ids, 2, tokenizer.pad_token_id)
    width = enc["input_ids"].shape[1]
    target = tokenizer(text, add_special_tokens=False)["input_ids"]
    forbid = ForbidCalls(CallOpenings(tokenizer), [RULE, RULE], [False, True], width)
    out = model.generate(**enc, do_sample=False, max_new_tokens=len(target) + 2, pad_token_id=tokenizer.pad_token_id, use_cache=True,
                         logits_processor=LogitsProcessorList([Push(target, width), forbid]))  # fmt: skip
    free, pushed = (tokenizer.decode(row[width:], skip_special_tokens=True) for row in (out[1], out[0]))
    assert pushed.startswith(text) and RULE.calls.start(pushed, RULE.tools) is not None
    assert RULE.calls.start(free, RULE.tools) is None and free.startswith(text[: text.index("calculator")])


def test_call_openings_know_each_call_format(model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    openings = CallOpenings(tokenizer)
    paren = tokenizer("(", add_special_tokens=False)["input_ids"][-1]
    assert paren in openings.banned("So calculator", RULE) and paren in openings.banned("So calculator  ", RULE)
    assert paren not in openings.banned("So mycalculator", RULE) and paren not in openings.banned("So 48 * ", RULE)
    assert openings.banned("calculator(1", RULE) == []  # a call already open: nothing left to forbid
    assert CallFormat("hermes").start("I will <tool_call>\n{", ["calculator"]) == 7 and CallFormat("hermes").start("no call", []) is None
    assert CallFormat("llama3").start('  {"name": "calculator"', []) == 2 and CallFormat("llama3").start("a {", []) is None


@pytest.mark.parametrize("rule", [RULE, StopRule(tools=("calculator", "calc")), StopRule(tools=("calculator",), calls=CallFormat("hermes")),
                                  StopRule(tools=("calculator",), calls=CallFormat("llama3"))], ids=["text", "two-names", "hermes", "llama3"])  # fmt: skip
@pytest.mark.parametrize("vocabulary", ["tiny", "qwen"])
def test_the_tokens_banned_after_a_texts_seam_are_those_banned_after_the_whole_text(model_and_tokenizer, rule: StopRule, vocabulary: str) -> None:
    """On the tiny vocabulary and on Qwen2.5's (thousands of tokens holding "(", <tool_call> one token)."""
    tokenizer = model_and_tokenizer[1] if vocabulary == "tiny" else load_tokenizer(str(converted_qwen()))
    openings = CallOpenings(tokenizer)
    candidates = openings.texts(rule.calls.opening_ends_with)
    pieces = ["calc", "ulator", "calculator", " ", "  ", "\n", "x", "my", "=", "(", "<tool_", "call", ">", "<|python_tag|>", "<|py", "{", "7"]
    rng = random.Random(0)
    for _ in range(200):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 5)))
        opens = lambda t: rule.calls.start(t, rule.tools) is not None  # noqa: E731
        expected = [] if opens(text) else [i for i, t in candidates.items() if opens(text + t)]
        assert openings.banned(text, rule) == expected, (text, seam(text, rule))


def _trainer(model, step: int) -> SimpleNamespace:
    args = SimpleNamespace(temperature=1.0, top_p=1.0, top_k=0, max_completion_length=6)
    metrics: dict[str, float] = {}
    return SimpleNamespace(model=model, accelerator=SimpleNamespace(unwrap_model=lambda m: m), args=args, use_vllm=False,
                           state=SimpleNamespace(global_step=step), eos_token_ids=[], _log_metric=metrics.__setitem__, metrics=metrics)  # fmt: skip


def test_a_steps_rollouts_are_one_batch_drawn_from_the_seed_and_the_step(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    prompts = [task_prompt("math", q) for q in QUESTIONS[:2]]
    rollouts = Rollouts(tokenizer, dict.fromkeys(prompts, RULE), dict(zip(prompts, _ids(tokenizer, prompts))), group_size=4, tool_free=1, seed=3)
    batch = [p for p in prompts for _ in range(4)]
    first = rollouts(batch, _trainer(model, 5))
    assert first["prompt_ids"] == [rollouts.ids[p] for p in batch] and first["logprobs"] is None
    assert first["tool_free"] == [False, False, False, True] * 2 and len(first["completion_ids"]) == len(first["response"]) == 8
    assert len({tuple(c) for c in first["completion_ids"][:4]}) > 1  # a group's responses are sampled apart
    assert rollouts(batch, _trainer(model, 5))["completion_ids"] == first["completion_ids"]  # a resumed step samples the same
    model.train()
    assert rollouts(batch, _trainer(model, 6))["completion_ids"] != first["completion_ids"]
    assert model.training  # generated in eval mode (no dropout), training mode restored
    model.eval()
    with pytest.raises(ValueError, match="do not come 4 times in a row"):
        rollouts(prompts * 4, _trainer(model, 5))


HERMES = StopRule(tools=("calculator",), calls=CallFormat("hermes"))
NATIVE_CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "1+2"}}\n</tool_call>'


def test_a_native_call_is_cut_after_its_closing_tag_and_a_tool_free_row_cannot_open_one(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    enc = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    ids, response = cut_completion(enc(NATIVE_CALL + " and then more"), HERMES, tokenizer, (tokenizer.eos_token_id,))
    assert response == NATIVE_CALL and ids[-1] == tokenizer.eos_token_id and "more" not in tokenizer.decode(ids)
    prompt = group_inputs(model, _ids(tokenizer, ["What is 1 + 2?"]), 2, tokenizer.pad_token_id)
    width = prompt["input_ids"].shape[1]
    target = enc("Sure " + NATIVE_CALL)
    forbid = ForbidCalls(CallOpenings(tokenizer), [HERMES, HERMES], [False, True], width)
    out = model.generate(**prompt, do_sample=False, max_new_tokens=len(target), pad_token_id=tokenizer.pad_token_id, use_cache=True,
                         logits_processor=LogitsProcessorList([Push(target, width), forbid]))  # fmt: skip
    pushed, free = (tokenizer.decode(row[width:], skip_special_tokens=True) for row in out)
    assert "<tool_call>" in pushed and "<tool_call>" not in free and free.startswith("Sure")
