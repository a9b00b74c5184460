"""GRPO's rollouts: TRL's ``rollout_func``, so that a step's responses are generated the way trice
generates (TRL's own ``generate`` path samples every response to ``max_completion_length`` and
encodes each prompt once per response).

A step's generation batch (``prompts_per_step`` questions x ``num_generations``) is one
``generate`` call. Each question's prompt is encoded once and its KV cache copied to its group's rows
(the template's header, shared by every prompt, once for the batch: :mod:`trice.generation.prefix_cache`);
each row stops at the end of its first call (:class:`trice.generation.decode.StopWhenOver`) and is
cut there, ending with EOS as stage I's targets do (:func:`cut_completion`), so the policy is
updated on exactly the response that is judged. With ``tool_free: n`` the last n rows of each group
cannot open a call (:class:`ForbidCalls`), EAPO's tool-free rollouts. On a GPU with ``use_vllm``,
TRL's vLLM engine generates instead (its prefix cache shares the prompts) and the rows are cut alike.

Sampling draws from a seed of the run's and the step's, so a training resumed from a checkpoint
samples the same rollouts an uninterrupted one would.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList, StoppingCriteriaList

from trice.generation.decode import StopWhenOver
from trice.generation.prefix_cache import SharedPrefix
from trice.generation.stopping import StopRule
from trice.core.native import HERMES_OPEN, PYTHON_TAG

log = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z0-9_]")  # what may not come right before a text call's name (trice.core.tools)


def seam(text: str, rule: StopRule) -> str:
    """The end of ``text`` that a call opened by the next token could begin in, after one character
    standing for what precedes it (a word character or not, which decides whether a text call's
    name may start there): a prefix of a tool's name (or the whole name and spaces), of
    ``<tool_call>``, or, for llama3, the whole message while it is only spaces (its call is a
    message that opens with ``{``; after anything else no token can open one). Whether a token opens
    a call after ``text`` (which holds none) is whether it does after its seam, and a generation
    meets few seams, so :class:`CallOpenings` keeps the answer per seam."""
    if rule.calls.parser == "llama3":
        head = text.lstrip()
        opening = head.startswith(PYTHON_TAG) and not head[len(PYTHON_TAG) :].strip()
        return text if opening or PYTHON_TAG.startswith(head) else "x"
    heads, body = ([HERMES_OPEN], text) if rule.calls.native else (list(rule.tools), text.rstrip())
    best = ""
    for head in heads:
        if not rule.calls.native and body.endswith(head):
            found = text[len(body) - len(head) :]
        else:
            found = next((text[-k:] for k in range(len(head) - 1, 0, -1) if text.endswith(head[:k])), "")
        best = max(best, found, key=len)
    before = text[: len(text) - len(best)]
    return ("a" if before and _WORD.match(before[-1]) else "\0") + best


class CallOpenings:
    """Which tokens would open a call after a given text, per :class:`StopRule` (its tools, in its
    call format). A token can only open a call when it holds the opening's last character
    (:attr:`~trice.core.call_format.CallFormat.opening_ends_with`), so only those few tokens of the
    vocabulary are tried, after the text's :func:`seam`, and the answer per seam is kept. Token texts
    are decoded after an anchor token, so a tokenizer that drops a word's leading space when decoding
    it alone (SentencePiece) still shows it."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._texts: dict[str, dict[int, str]] = {}
        self._banned: dict[tuple[str, StopRule], list[int]] = {}

    def texts(self, last: str) -> dict[int, str]:
        """Token id -> its text, for the tokens holding ``last``."""
        if last not in self._texts:
            anchor = self.tokenizer("a", add_special_tokens=False)["input_ids"][-1]
            shown = len(self.tokenizer.decode([anchor]))
            ids = range(len(self.tokenizer))
            texts = [t[shown:] for t in self.tokenizer.batch_decode([[anchor, i] for i in ids], skip_special_tokens=True)]
            self._texts[last] = {i: t for i, t in zip(ids, texts) if last in t}
        return self._texts[last]

    def banned(self, text: str, rule: StopRule) -> list[int]:
        """The tokens that would open a call after ``text`` (none once it holds one already)."""
        if rule.calls.start(text, rule.tools) is not None:
            return []
        key = (seam(text, rule), rule)
        if key not in self._banned:
            candidates = self.texts(rule.calls.opening_ends_with)
            self._banned[key] = [i for i, t in candidates.items() if rule.calls.start(key[0] + t, rule.tools) is not None]
        return self._banned[key]


class ForbidCalls(LogitsProcessor):
    """No token that would open a call (:class:`CallOpenings`) in the rows flagged in ``forbid``."""

    def __init__(self, openings: CallOpenings, rules: Sequence[StopRule], forbid: Sequence[bool], prompt_length: int):
        self.openings, self.rules, self.prompt_length = openings, list(rules), prompt_length
        self.rows = [i for i, f in enumerate(forbid) if f]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in self.rows:
            text = self.openings.tokenizer.decode(input_ids[row, self.prompt_length :].tolist(), skip_special_tokens=True)
            banned = self.openings.banned(text, self.rules[row])
            if banned:
                scores[row, banned] = -float("inf")
        return scores


@torch.inference_mode()
def group_inputs(model: Any, prompt_ids: Sequence[Sequence[int]], group_size: int, pad_token_id: int) -> dict[str, Any]:
    """``generate`` inputs for ``group_size`` responses to each prompt, each prompt's KV computed
    once: the prompts (left padded, or after their shared prefix) go through the model but for their
    last token, and the cache is repeated per group row, so ``generate`` starts at that last token.
    Positions follow the attention mask's running sum, as ``generate`` numbers them."""
    prefix = SharedPrefix.encode(model, prompt_ids)
    if prefix is not None:
        enc = prefix.batch(prompt_ids, pad_token_id)
    else:
        width = max(map(len, prompt_ids))
        ids = [[pad_token_id] * (width - len(p)) + list(p) for p in prompt_ids]
        mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids]
        device = model.device
        enc = {"input_ids": torch.tensor(ids, device=device), "attention_mask": torch.tensor(mask, device=device), "cache": DynamicCache(config=model.config)}
    ids, mask, cache = enc["input_ids"], enc["attention_mask"], enc["cache"]
    done = cache.get_seq_length()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    if ids.shape[1] - 1 > done:
        model(input_ids=ids[:, done:-1], attention_mask=mask[:, :-1], position_ids=positions[:, done:-1], cache=cache, use_cache=True)
    cache.batch_repeat_interleave(group_size)
    return {"input_ids": ids.repeat_interleave(group_size, 0), "attention_mask": mask.repeat_interleave(group_size, 0), "cache": cache}


def cut_completion(ids: Sequence[int], rule: StopRule, tokenizer: Any, ends: Sequence[int]) -> tuple[list[int], str]:
    """One generated row's completion ids and its response (the text the judge reads). A row that
    ended by itself (one of ``ends``) or ran to the token limit is kept as it is; a row its rule
    ends earlier (its call's end, a prompt marker) is cut to the fewest tokens whose text holds the
    response, plus EOS: the response is over, and the policy learns to end it there."""
    ids = list(ids)
    end = next((k for k, t in enumerate(ids) if t in ends), None)
    if end is not None:
        ids = ids[: end + 1]
    elif tokenizer.pad_token_id is not None:
        while ids and ids[-1] == tokenizer.pad_token_id:  # generate pads a row that ended before the batch's longest
            ids.pop()
    body = ids if end is None else ids[:-1]
    text = tokenizer.decode(body, skip_special_tokens=True)
    response = rule.finish(text)
    if not rule.over(text):
        return ids, response
    k = next(k for k in range(len(body) + 1) if rule.finish(tokenizer.decode(body[:k], skip_special_tokens=True)) == response)
    return body[:k] + [tokenizer.eos_token_id], response


class Rollouts:
    """TRL's ``rollout_func``: ``rollouts(prompts, trainer)`` for a generation batch whose prompts
    come ``group_size`` times in a row each (TRL's sampler). ``rules``: each prompt's
    :class:`StopRule`; ``ids``: each prompt's token ids as trice tokenizes prompts; ``tool_free``:
    rows per group generated with calls forbidden. Returns TRL's ``prompt_ids``, ``completion_ids``
    and ``logprobs`` (None: the policy's own are computed by TRL), and, for the reward, each row's
    ``response`` and ``tool_free``."""

    def __init__(self, tokenizer: Any, rules: dict[str, StopRule], ids: dict[str, list[int]], group_size: int, tool_free: int, seed: int):
        self.tokenizer, self.rules, self.ids = tokenizer, rules, ids
        self.group_size, self.tool_free, self.seed = group_size, tool_free, seed
        self.openings = CallOpenings(tokenizer)

    def __call__(self, prompts: Sequence[str], trainer: Any) -> dict[str, Any]:
        g = self.group_size
        unique = list(prompts[::g])
        if list(prompts) != [p for p in unique for _ in range(g)]:
            raise ValueError(f"rollouts: the prompts do not come {g} times in a row each (TRL's sampler repeats each question num_generations times)")
        rules = [self.rules[p] for p in prompts]
        free = [i % g >= g - self.tool_free for i in range(len(prompts))]
        prompt_ids = [self.ids[p] for p in unique]
        start = time.perf_counter()
        if trainer.use_vllm:
            _, raw, _, _ = trainer.vllm_generation.generate(prompts=[self.ids[p] for p in prompts], images=None, num_generations=g)
        else:
            raw = self.generate(trainer, prompt_ids, rules, free)
        ends = {self.tokenizer.eos_token_id, *trainer.eos_token_ids}
        cut = [cut_completion(ids, rule, self.tokenizer, tuple(ends)) for ids, rule in zip(raw, rules)]
        seconds = time.perf_counter() - start
        kept = sum(len(c[0]) for c in cut)  # the completion tokens the update trains on
        trainer._log_metric(
            "rollout_tokens_per_second", kept / seconds if seconds > 0 else 0.0
        )  # TRL's metric log, which it hands reward functions as log_metric
        leaked = [i for i, (c, rule) in enumerate(zip(cut, rules)) if free[i] and rule.calls.start(c[1], rule.tools) is not None]
        if leaked:
            log.warning("%d tool-free rollouts hold a call all the same (first: %r)", len(leaked), cut[leaked[0]][1][:120])
        return {
            "prompt_ids": [self.ids[p] for p in prompts], "completion_ids": [c[0] for c in cut], "logprobs": None,
            "response": [c[1] for c in cut], "tool_free": free,
        }  # fmt: skip

    def generate(self, trainer: Any, prompt_ids: list[list[int]], rules: list[StopRule], free: list[bool]) -> list[list[int]]:
        """The batch's new token ids per row, from the policy in eval mode (no dropout), each group's
        prompt encoded once; sampled from a generator state of the seed and the step."""
        model = trainer.accelerator.unwrap_model(trainer.model)
        args = trainer.args
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(), torch.inference_mode():
                torch.manual_seed(self.seed * 1_000_003 + trainer.state.global_step)
                enc = group_inputs(model, prompt_ids, self.group_size, self.tokenizer.pad_token_id)
                width = enc["input_ids"].shape[1]
                out = model.generate(
                    **enc, do_sample=True, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k or None,
                    max_new_tokens=args.max_completion_length, pad_token_id=self.tokenizer.pad_token_id, use_cache=True,
                    stopping_criteria=StoppingCriteriaList([StopWhenOver(self.tokenizer, rules, width)]),
                    logits_processor=LogitsProcessorList([ForbidCalls(self.openings, rules, free, width)] if any(free) else []),
                )  # fmt: skip
        finally:
            model.train(was_training)
        return out[:, width:].tolist()
