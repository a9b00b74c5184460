"""Batched decoding with a local transformers model: prompts in, cleaned responses out.

Prompts are sorted by length and batched with left padding, so a batch wastes little compute on
padding and every sequence's new tokens start at the same column. The token prefix all prompts share
(the template's header; a few-shot source's worked examples) is encoded once and its KV cache reused
by every batch (:mod:`trice.generation.prefix_cache`). Given a :class:`~trice.generation.stopping.StopRule`
per prompt, a row stops once its response is over and is cut there.

It knows no task, file or backend: the backends (:mod:`trice.responses.backends`), the QA tool's
reader and stage II's candidate sources call it with their own prompts and rules.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from trice.generation.decision import CallOpening, FirstTokenDecision, Generated
from trice.generation.prefix_cache import SharedPrefix
from trice.generation.stopping import StopRule, clean_response


class StopWhenOver(StoppingCriteria):
    """Per row of a batch: done once the row's new text is over by its :class:`StopRule`.

    ``generate`` then gives a finished row only padding and ends the batch when every row is done,
    so a batch costs as many steps as its longest response, not ``max_new_tokens``. Rows found done
    are not decoded again.
    """

    def __init__(self, tokenizer: Any, rules: Sequence[StopRule], prompt_length: int):
        self.tokenizer = tokenizer
        self.rules = list(rules)
        self.prompt_length = prompt_length
        self.done: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kwargs: Any) -> torch.BoolTensor:
        if self.done is None:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        rows = (~self.done).nonzero().flatten()
        new_tokens = input_ids[rows, self.prompt_length :].tolist()  # one copy off the device per step
        for row, ids in zip(rows.tolist(), new_tokens):
            if self.rules[row].over(self.tokenizer.decode(ids, skip_special_tokens=True)):
                self.done[row] = True
        return self.done.clone()


@torch.inference_mode()
def generate_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    stops: Sequence[StopRule] | None = None,
    prefix: SharedPrefix | None = None,
    openings: Sequence[tuple[int, ...]] | None = None,
    decision: tuple[str, float] = ("greedy", 0.5),
    **kwargs: Any,
) -> list[str]:
    """Responses for one batch of prompts (left padded), special tokens dropped.

    ``stops``: one rule per prompt; each row then stops generating once its rule says it is over
    (with beams, whose rows are not the prompts', only the cut applies) and its text is cut there.
    Without, responses are cut at :data:`STOP_MARKERS` only. ``prefix``: the encoded prefix every
    prompt starts with, continued from instead of encoded again. ``openings``: per prompt, the token
    ids that open its call; each response then carries the P(call) of its first token and is decided
    by ``decision`` = (rule, tau) (:class:`trice.generation.decision.FirstTokenDecision`; no beams).
    """
    tokenizer.padding_side = "left"
    if prefix is None:
        enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
    else:
        enc = prefix.batch([tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts], tokenizer.pad_token_id)
    width = enc["input_ids"].shape[1]
    if stops is not None and kwargs.get("num_beams", 1) == 1:
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopWhenOver(tokenizer, stops, width)])
    first = FirstTokenDecision(openings, width, *decision) if openings is not None and kwargs.get("num_beams", 1) == 1 else None
    if first is not None:
        kwargs["logits_processor"] = LogitsProcessorList([first])
    out = model.generate(**enc, pad_token_id=tokenizer.pad_token_id, **kwargs)
    texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    cut = [clean_response(t) for t in texts] if stops is None else [rule.finish(t) for rule, t in zip(stops, texts)]
    return cut if first is None else [Generated.of(t, p) for t, p in zip(cut, first.p_call)]


def _opening_ids(tokenizer: Any, openings: Sequence[CallOpening]) -> list[tuple[int, ...]]:
    """Each prompt's call-opening token ids, tokenized once per distinct opening."""
    known = {o: o.token_ids(tokenizer) for o in set(openings)}
    return [known[o] for o in openings]


def generate_responses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    batch_size: int = 16,
    desc: str = "generate",
    on_batch: Any = None,
    done: Collection[int] = (),
    seed: int | None = None,
    stops: Sequence[StopRule] | None = None,
    share_prefix: bool = True,
    openings: Sequence[CallOpening] | None = None,
    decision: tuple[str, float] = ("greedy", 0.5),
    **kwargs: Any,
) -> list[str | None]:
    """Responses for all prompts in input order (None for a prompt skipped as ``done``).

    Batches are formed from the length-sorted prompts of the *whole* list, so a batch holds the same
    prompts however many were done before. A batch whose prompts are all in ``done`` is skipped.
    Greedy decoding makes just the missing prompts of a batch (a response does not depend on its
    batch mates); sampling makes the batch whole again, each batch drawing from its own generator
    state (``seed`` and the batch's position), so sampled responses are the same whether a run went
    through at once or was resumed after a kill. ``on_batch(indices, responses)`` is called after
    each batch made (so results are appended as they come). ``stops``: a :class:`StopRule` per prompt
    (see :func:`generate_batch`). ``share_prefix``: encode the token prefix of the whole list once
    (:mod:`trice.generation.prefix_cache`; off only to compare with the path that encodes it per row).
    ``openings``: a :class:`~trice.generation.decision.CallOpening` per prompt, read and decided at
    each response's first token by ``decision`` (see :func:`generate_batch`).
    """
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(ids[i]))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    done = set(done)
    whole = bool(kwargs.get("do_sample"))
    todo = [(b, idx if whole else [i for i in idx if i not in done]) for b, idx in enumerate(batches) if not done.issuperset(idx)]
    prefix = SharedPrefix.encode(model, ids, kwargs.get("num_beams", 1)) if share_prefix and todo else None
    opening_ids = None if openings is None else _opening_ids(tokenizer, openings)
    responses: list[str | None] = [None] * len(prompts)
    with tqdm(total=len(prompts), initial=len(prompts) - sum(len(idx) for _, idx in todo), desc=desc, unit="ex") as bar:
        for b, idx in todo:
            if seed is not None:
                torch.manual_seed(seed * 1_000_003 + b)
            rules = None if stops is None else [stops[i] for i in idx]
            opens = None if opening_ids is None else [opening_ids[i] for i in idx]
            batch = generate_batch(model, tokenizer, [prompts[i] for i in idx], rules, prefix, opens, decision, **kwargs)
            for i, r in zip(idx, batch):
                responses[i] = r
            if on_batch is not None:
                on_batch(idx, batch)
            bar.update(len(idx))
    return responses
