"""The first token's decision: P(call) read off the first step's logits, the rules that act on it,
and P(call) written beside each response of a local generation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trice.core.schema import Example
from trice.responses.config import GenerateConfig
from trice.generation.decision import CallOpening, FirstTokenDecision
from trice.responses.generate import generate_for_examples
from trice.generation.models import load_tokenizer
from trice.core.call_format import CallFormat

pytestmark = pytest.mark.usefixtures("one_thread")


def _scores() -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]]))
    return torch.zeros(2, 4, dtype=torch.long), logits


@pytest.mark.parametrize(
    ("rule", "tau", "first"), [("greedy", 0.5, [0, 2]), ("threshold", 0.4, [0, 2]), ("threshold", 0.2, [1, 1]), ("call", 0.5, [1, 1]), ("answer", 0.5, [0, 2])]
)
def test_rules_act_on_p_call_at_the_first_step_only(rule: str, tau: float, first: list[int]) -> None:
    ids, scores = _scores()
    decide = FirstTokenDecision([(1,), (1,)], prompt_length=4, rule=rule, tau=tau)
    out = decide(ids, scores.clone())
    assert decide.p_call == pytest.approx([0.3, 0.3]) and out.argmax(-1).tolist() == first
    later = torch.zeros(2, 5, dtype=torch.long)
    assert torch.equal(decide(later, scores.clone()), scores)  # the next steps decode as they would


def test_a_row_without_an_opening_is_neither_read_nor_decided() -> None:
    ids, scores = _scores()
    decide = FirstTokenDecision([(), (1,)], prompt_length=4, rule="call")
    out = decide(ids, scores.clone())
    assert decide.p_call[0] is None and out[0].argmax().item() == 0 and out[1].argmax().item() == 1


def test_the_opening_is_the_calls_first_token_as_a_target_tokenizes_it(tiny_model_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_model_dir))
    (first,) = CallOpening("calculator").token_ids(tok)
    assert first == tok("calculator(48+48/2)", add_special_tokens=False)["input_ids"][0]
    assert CallOpening("calculator", CallFormat("llama3")).token_ids(tok) == ()  # no marker token to read


def _generate(tiny_model_dir: Path, out: Path, **kw) -> list[dict]:
    examples = [Example(f"q{i}", "svamp", "math", f"What is {i} + {i}?", (str(2 * i),)) for i in range(3)]
    config = GenerateConfig(model=str(tiny_model_dir), max_new_tokens=6, batch_size=2, stop_after_call=True, **kw)
    config.validate()
    return generate_for_examples(examples, out, None, None, config)


def test_local_generation_writes_p_call_and_forced_branches_open_as_told(tiny_model_dir: Path, tmp_path: Path) -> None:
    greedy = _generate(tiny_model_dir, tmp_path / "greedy.jsonl")
    assert all(0.0 <= row["p_call"] <= 1.0 for row in greedy)
    called = _generate(tiny_model_dir, tmp_path / "call.jsonl", decision="call")
    assert all(row["response"].startswith("calculator") for row in called)
    assert [row["p_call"] for row in called] == pytest.approx([row["p_call"] for row in greedy])  # read before deciding
    answered = _generate(tiny_model_dir, tmp_path / "answer.jsonl", decision="answer")
    assert not any(row["response"].startswith("calculator") for row in answered)


@pytest.mark.parametrize(
    ("values", "message"),
    [({"decision": "coin"}, "decision: unknown 'coin'"), ({"decision": "threshold", "num_beams": 2}, "only the transformers backend without beams"),
     ({"decision_tau": 1.5}, "decision_tau: a probability")],
)  # fmt: skip
def test_a_decision_that_cannot_be_applied_is_refused(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GenerateConfig(**values).validate()
