"""The decision position of a response (where calling and answering part) and the decision-weighted
losses of stage I and stage II: weight 1 is the unweighted loss exactly; another weight moves only
that token's term."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trice.generation.models import load_tokenizer
from trice.stage1.config import SFTConfig
from trice.stage1.train_sft import SFTCollator, build_sft_features, train_sft
from trice.core.call_format import TEXT, CallFormat
from trice.training.decision import decision_index, decision_weights, weighted_token_loss

pytestmark = pytest.mark.usefixtures("one_thread")

CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "3+4"}}\n</tool_call>'


def test_the_decision_is_the_first_token_of_the_first_call_or_an_answers_first(tiny_model_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_model_dir))
    assert decision_index("calculator(3+4)", tok, ["calculator"], TEXT) == 0
    assert decision_index("The answer is 7.", tok, ["calculator"], TEXT) == 0
    text = "So we add: calculator(3+4)"
    at = decision_index(text, tok, ["calculator"], TEXT)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids[at:]).lstrip().startswith("calculator(") and not tok.decode(ids[:at]).rstrip().endswith("calculator")
    native = decision_index("Let me add. " + CALL, tok, ["calculator"], CallFormat("hermes"))
    assert tok.decode(tok("Let me add. " + CALL, add_special_tokens=False)["input_ids"][native:]).lstrip().startswith("<tool_call>")


def test_weights_sit_at_each_rows_decision_and_one_elsewhere() -> None:
    labels = torch.zeros(3, 5, dtype=torch.long)
    weights = decision_weights(labels, torch.tensor([2, -1, 0]), 8.0)
    assert weights.tolist() == [[1, 1, 8, 1, 1], [1] * 5, [8, 1, 1, 1, 1]]


def test_weight_one_is_the_models_own_loss_and_a_weight_moves_only_its_token() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 11), torch.randint(0, 11, (6,))
    plain = torch.nn.functional.cross_entropy(logits, targets, reduction="sum") / 6
    assert torch.allclose(weighted_token_loss(logits, targets, torch.ones(6), torch.tensor(6)), plain)
    terms = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    weighted = weighted_token_loss(logits, targets, torch.tensor([5.0, 1, 1, 1, 1, 1]))
    assert torch.allclose(weighted, (plain * 6 + 4 * terms[0]) / 6)


ROWS = [
    {"id": "c", "task": "math", "question": "What is 3 + 4?", "output": "calculator(3+4)"},
    {"id": "o", "task": "math", "question": "What is 2 + 2?", "output": "2 plus 2 is 4. The answer is 4."},
]


def test_sft_features_carry_the_decision_in_input_ids_and_the_collator_weighs_it(tiny_model_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_model_dir))
    plain = build_sft_features(ROWS, tok)
    features = build_sft_features(ROWS, tok, calls=TEXT)
    assert "decision" not in plain[0] and [f["decision"] for f in features] == [f["labels"].index(next(x for x in f["labels"] if x != -100)) for f in features]
    batch = SFTCollator(tok.pad_token_id, decision_weight=4.0)(features)
    assert batch["weights"].sum().item() == batch["weights"].numel() + 2 * 3.0
    assert "weights" not in SFTCollator(tok.pad_token_id)(features)


def _train(tiny_model_dir: Path, tmp_path: Path, name: str, weight: float) -> dict:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r | {"id": f"{r['id']}{i}"}) + "\n" for i in range(4) for r in ROWS))
    config = SFTConfig(model=str(tiny_model_dir), data=str(data), output_dir=str(tmp_path / name), max_steps=3, per_device_train_batch_size=4,
                       save_steps=10, logging_steps=1, learning_rate=1e-3, seed=3, decision_weight=weight)  # fmt: skip
    train_sft(config)
    return {e["step"]: e["loss"] for e in json.loads((tmp_path / name / "train_log.json").read_text()) if "loss" in e}


def test_stage_one_with_a_decision_weight_trains_on_a_heavier_decision(tiny_model_dir: Path, tmp_path: Path) -> None:
    plain, again, weighted = (_train(tiny_model_dir, tmp_path, n, w) for n, w in (("a", 1.0), ("b", 1.0), ("c", 20.0)))
    assert plain == again  # weight 1 takes the unweighted path: the same run
    assert weighted[1] > plain[1]  # the untrained decision token's loss counts 20 times
    with pytest.raises(ValueError, match="decision_weight: must be a finite number > 0"):
        SFTConfig(model=str(tiny_model_dir), decision_weight=0).validate()
