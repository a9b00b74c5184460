"""Shared-prefix and naive forwards give the same scores, loss and gradients (tiny model, fp32)."""

from __future__ import annotations

import pytest
import torch

from trice.stage2.rlef_forward import grouped_response_logprobs
from trice.stage2.rlef_loss import RLEFLoss, sequence_logprobs

from tests.helpers.lora_model import train_mode_model

ATOL = 1e-5


def _group(lengths: list[int], prompt_len: int = 19, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, 300, (prompt_len,), generator=g)
    responses = [torch.randint(0, 300, (n,), generator=g) for n in lengths]
    return prompt, responses


def _step(model, prompt, responses, rewards, method):
    model.zero_grad(set_to_none=True)
    out = grouped_response_logprobs(model, prompt, responses, length_penalty=1.0, method=method)
    loss, _ = RLEFLoss(alpha=1.0)(out.token_logps, out.token_mask, rewards)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    return out, loss.detach(), grads


@pytest.mark.parametrize("lora", [False, True], ids=["plain", "lora"])
@pytest.mark.parametrize("lengths", [[3, 7, 1, 5, 4], [6], [1, 1]], ids=["k5-padded", "k1", "one-token"])
def test_shared_prefix_equals_naive(tiny_model_dir, lora, lengths):
    model = train_mode_model(tiny_model_dir, lora)
    prompt, responses = _group(lengths)
    rewards = torch.tensor([20.0, 15.0, 10.0, 5.0, 0.0][: len(lengths)])
    naive, naive_loss, naive_grads = _step(model, prompt, responses, rewards, "naive")
    shared, shared_loss, shared_grads = _step(model, prompt, responses, rewards, "shared_prefix")

    assert shared.token_counts.tolist() == naive.token_counts.tolist() == lengths
    torch.testing.assert_close(shared.scores, naive.scores, atol=ATOL, rtol=0)
    torch.testing.assert_close(shared.token_logps, naive.token_logps, atol=ATOL, rtol=0)
    torch.testing.assert_close(shared_loss, naive_loss, atol=ATOL, rtol=0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sorted(naive_grads) == sorted(shared_grads) == sorted(trainable)
    if lora:
        assert all("lora_" in n for n in trainable)
    for name in trainable:
        torch.testing.assert_close(shared_grads[name], naive_grads[name], atol=ATOL, rtol=1e-4, msg=name)


def test_naive_scores_equal_a_full_forward_with_labels(tiny_model_dir):
    """Both paths score what a plain causal-LM forward over ``prompt + response`` scores."""
    model = train_mode_model(tiny_model_dir, lora=False).eval()
    prompt, responses = _group([4, 2, 6], seed=3)
    with torch.no_grad():
        out = grouped_response_logprobs(model, prompt, responses, method="shared_prefix")
        for i, resp in enumerate(responses):
            ids = torch.cat([prompt, resp]).unsqueeze(0)
            labels = ids.clone()
            labels[0, : prompt.numel()] = -100
            score, count = sequence_logprobs(model(input_ids=ids).logits, labels)
            assert count.item() == resp.numel()
            assert out.scores[i].item() == pytest.approx(score.item(), abs=ATOL)


def test_unknown_method_and_empty_response_are_refused(tiny_model_dir):
    model = train_mode_model(tiny_model_dir, lora=False)
    prompt, responses = _group([2])
    with pytest.raises(ValueError, match="unknown method"):
        grouped_response_logprobs(model, prompt, responses, method="fast")
    with pytest.raises(ValueError, match="non-empty"):
        grouped_response_logprobs(model, prompt, [torch.tensor([], dtype=torch.long)])
