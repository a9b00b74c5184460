"""Projecting only the loss positions through the LM head changes no number: stage I's loss and
every trainable gradient, and stage II's per-token log-probabilities, equal the full-logits way
(tiny model, fp32, plain and LoRA-wrapped), while the head sees one row per target token."""

from __future__ import annotations

import pytest
import torch

from trice.generation.models import load_tokenizer
from trice.training.response_logits import loss_positions, response_only_inputs, unflatten
from trice.stage2.rlef_forward import grouped_response_logprobs
from trice.stage2.rlef_loss import token_logprobs
from trice.stage1.train_sft import IGNORE_INDEX, SFTCollator, SFTTrainer, build_sft_features

from tests.helpers.lora_model import train_mode_model

pytestmark = pytest.mark.usefixtures("one_thread")

ATOL = 1e-5
# Prompts of different lengths (three task instructions, short and long questions) and responses
# of different lengths, so the batch is right-padded and the loss positions start at different columns.
ROWS = [
    {"id": "a", "task": "math", "question": "What is 2 + 2?", "output": "calculator(2+2) The answer is 4."},
    {"id": "b", "task": "qa", "question": "Who wrote the play Hamlet, the tragedy set in Denmark?", "output": "Shakespeare."},
    {"id": "c", "task": "lama", "question": "Paris is the capital of", "output": "QA(Paris is the capital of?) France, a country in Europe."},
    {"id": "d", "task": "math", "question": "Natalia sold clips to 48 of her friends in April, and half as many in May. How many?", "output": "72."},
]


def _batch(tiny_model_dir) -> dict:
    tok = load_tokenizer(str(tiny_model_dir))
    batch = SFTCollator(tok.pad_token_id)(build_sft_features(ROWS, tok))
    starts = (batch["labels"] != IGNORE_INDEX).long().argmax(1)
    assert len(set(starts.tolist())) == len(ROWS) and bool((batch["attention_mask"] == 0).any())  # the case under test
    return batch


def _grads(model, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def _assert_same(model, loss_a, grads_a, loss_b, grads_b) -> None:
    torch.testing.assert_close(loss_a, loss_b, atol=ATOL, rtol=0)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert sorted(grads_a) == sorted(grads_b) == trainable
    for name in trainable:
        assert grads_a[name].abs().sum() > 0, name  # a gradient that is there, so the comparison means something
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=ATOL, rtol=1e-4, msg=name)


class HeadRows:
    """Counts the rows the LM head projects."""

    def __init__(self, model):
        self.rows: list[int] = []
        self.handle = model.get_output_embeddings().register_forward_hook(self._hook)

    def _hook(self, module, args, output) -> None:
        self.rows.append(args[0].reshape(-1, args[0].shape[-1]).shape[0])


def test_loss_positions_are_the_causal_shift_of_the_labels():
    labels = torch.tensor([[-100, -100, 5, 6, -100], [-100, 7, 8, 9, 3]])
    assert loss_positions(labels).tolist() == [[False, True, True, False, False], [True, True, True, True, False]]
    flat = torch.tensor([1.0, 2.0, 3.0])
    mask = torch.tensor([[False, True], [True, True]])
    assert unflatten(flat, mask).tolist() == [[0.0, 1.0], [2.0, 3.0]]


@pytest.mark.parametrize("lora", [False, True], ids=["plain", "lora"])
@pytest.mark.parametrize("num_items", [None, 53], ids=["mean", "num_items_in_batch"])
def test_response_only_loss_and_gradients_equal_the_full_forward(tiny_model_dir, lora, num_items):
    model = train_mode_model(tiny_model_dir, lora)
    batch = {k: v for k, v in _batch(tiny_model_dir).items() if k != "ids"}
    extra = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    full = model(**batch, **extra)
    heads = HeadRows(model)
    short = model(**response_only_inputs(batch), **extra)
    heads.handle.remove()
    targets = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert full.logits.shape[:2] == batch["input_ids"].shape
    assert heads.rows == [targets] and short.logits.shape == (targets, full.logits.shape[-1])
    _assert_same(model, full.loss, _grads(model, full.loss), short.loss, _grads(model, short.loss))


@pytest.mark.parametrize("lora", [False, True], ids=["plain", "lora"])
def test_sft_trainer_loss_equals_the_trainers_own(tiny_model_dir, tmp_path, lora):
    """The Trainer's normalisation (by num_items_in_batch over accumulated micro-batches) is kept."""
    from transformers import Trainer, TrainingArguments

    model = train_mode_model(tiny_model_dir, lora)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], gradient_accumulation_steps=3)
    trainer = SFTTrainer(model=model, args=args, data_collator=SFTCollator(0))
    batch = _batch(tiny_model_dir)
    n = torch.tensor(3 * int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()))  # as if two more micro-batches followed
    for num_items in (n, None):
        ours = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items)
        ours_grads = _grads(model, ours)
        theirs = Trainer.compute_loss(trainer, model, {k: v for k, v in batch.items() if k != "ids"}, num_items_in_batch=num_items)
        _assert_same(model, ours, ours_grads, theirs, _grads(model, theirs))


def _full_logprobs(model, prompt: torch.Tensor, responses: list[torch.Tensor]) -> torch.Tensor:
    """The reference: every sequence projected at every position, log-probs of the response tokens ``[k, R]``."""
    R = max(r.numel() for r in responses)
    rows, labels = [], []
    for r in responses:
        pad = R - r.numel()
        rows.append(torch.cat([prompt, r, torch.zeros(pad, dtype=torch.long)]))
        labels.append(torch.cat([torch.full_like(prompt, IGNORE_INDEX), r, torch.full((pad,), IGNORE_INDEX)]))
    ids, labels = torch.stack(rows), torch.stack(labels)
    logits = model(input_ids=ids, attention_mask=(labels != IGNORE_INDEX) | (torch.arange(ids.shape[1]) < prompt.numel())).logits
    logps, _ = token_logprobs(logits, labels)
    return logps[:, prompt.numel() - 1 :]


@pytest.mark.parametrize("lora", [False, True], ids=["plain", "lora"])
@pytest.mark.parametrize("method", ["naive", "shared_prefix"])
def test_rlef_forwards_equal_full_logits_and_project_only_real_tokens(tiny_model_dir, lora, method):
    model = train_mode_model(tiny_model_dir, lora)
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, 300, (17,), generator=g)
    lengths = [3, 9, 1, 6]
    responses = [torch.randint(0, 300, (n,), generator=g) for n in lengths]
    weights = torch.randn(len(lengths), max(lengths), generator=g)  # a loss touching every token differently

    reference = _full_logprobs(model, prompt, responses)
    ref_grads = _grads(model, (reference * weights).sum())
    heads = HeadRows(model)
    out = grouped_response_logprobs(model, prompt, responses, method=method)
    heads.handle.remove()
    # naive: one row per response token; shared_prefix: the prompt's last position, then the rest
    assert heads.rows == ([sum(lengths)] if method == "naive" else [1, sum(lengths) - len(lengths)])
    torch.testing.assert_close(out.token_logps, reference * out.token_mask, atol=ATOL, rtol=0)
    loss = (out.token_logps * weights).sum()
    _assert_same(model, loss, _grads(model, loss), (reference * out.token_mask * weights).sum().detach(), ref_grads)
