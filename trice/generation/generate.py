"""Batched generation for probing, candidates and evaluation, resumable by example id.

Prompts are sorted by length and batched with left padding, so a batch wastes little compute on
padding and every sequence's new tokens start at the same column. The token prefix all prompts share
(the template's header; a few-shot source's worked examples) is encoded once and its KV cache reused
by every batch (:mod:`trice.generation.prefix_cache`). With ``stop_after_call`` a row stops at the end of its
first tool call and the text after it is cut (:mod:`trice.generation.stopping`). Results are appended one line
per finished example; a rerun after a kill skips the ids already written.

:func:`generate_for_examples` runs the backend that ``GenerateConfig.backend`` names (local
transformers, vLLM, an OpenAI-compatible server; see :mod:`trice.generation.backends`). A request an endpoint
could not answer is written with an empty response and its ``error`` (judged as no prediction) and is
tried again on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from trice.data.schema import EXAMPLE_FIELDS, Example
from trice.generation.config import GenerateConfig
from trice.tasks.inputs import check_row_task, read_input
from trice.utils.io import JsonlAppender, Partial, load_partial, write_jsonl
from trice.generation.prefix_cache import SharedPrefix
from trice.utils.outputs import claim_output
from trice.utils.patience import EndpointError
from trice.generation.stopping import STOP_MARKERS, StopRule, clean_response, task_stop_rule
from trice.tasks import PER_ROW

log = logging.getLogger(__name__)

__all__ = ["STOP_MARKERS", "GenerateConfig", "clean_response", "generate_batch", "generate_for_examples", "generate_responses"]


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
    **kwargs: Any,
) -> list[str]:
    """Responses for one batch of prompts (left padded), special tokens dropped.

    ``stops``: one rule per prompt; each row then stops generating once its rule says it is over
    (with beams, whose rows are not the prompts', only the cut applies) and its text is cut there.
    Without, responses are cut at :data:`STOP_MARKERS` only. ``prefix``: the encoded prefix every
    prompt starts with, continued from instead of encoded again.
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
    out = model.generate(**enc, pad_token_id=tokenizer.pad_token_id, **kwargs)
    texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    if stops is None:
        return [clean_response(t) for t in texts]
    return [rule.finish(t) for rule, t in zip(stops, texts)]


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
    **kwargs: Any,
) -> list[str | None]:
    """Responses for all prompts in input order (None for a prompt skipped as ``done``).

    Batches are formed from the length-sorted prompts of the *whole* list, so a batch holds the same
    prompts however many were done before. A batch whose prompts are all in ``done`` is skipped.
    Greedy decoding makes just the missing prompts of a batch (a response does not depend on its
    batch mates); sampling makes the batch whole again, each batch drawing from its own generator
    state (``seed`` and the batch's position), so sampled responses are the same whether a run went
    through at once or was resumed after a kill. ``on_batch(indices, responses)`` is called after
    each batch made (used to append results as they come). ``stops``: a :class:`StopRule` per prompt
    (see :func:`generate_batch`). ``share_prefix``: encode the token prefix of the whole list once
    (:mod:`trice.generation.prefix_cache`; off only to compare with the path that encodes it per row).
    """
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(ids[i]))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    done = set(done)
    whole = bool(kwargs.get("do_sample"))
    todo = [(b, idx if whole else [i for i in idx if i not in done]) for b, idx in enumerate(batches) if not done.issuperset(idx)]
    prefix = SharedPrefix.encode(model, ids, kwargs.get("num_beams", 1)) if share_prefix and todo else None
    responses: list[str | None] = [None] * len(prompts)
    with tqdm(total=len(prompts), initial=len(prompts) - sum(len(idx) for _, idx in todo), desc=desc, unit="ex") as bar:
        for b, idx in todo:
            if seed is not None:
                torch.manual_seed(seed * 1_000_003 + b)
            rules = None if stops is None else [stops[i] for i in idx]
            batch = generate_batch(model, tokenizer, [prompts[i] for i in idx], rules, prefix, **kwargs)
            for i, r in zip(idx, batch):
                responses[i] = r
            if on_batch is not None:
                on_batch(idx, batch)
            bar.update(len(idx))
    return responses


def stop_rules(config: GenerateConfig, examples: Sequence[Example]) -> list[StopRule] | None:
    """The per-example :class:`StopRule` of ``config`` (None: ``stop_after_call`` is off)."""
    return [task_stop_rule(e.task) for e in examples] if config.stop_after_call else None


def result_row(example: Example, result: str | EndpointError) -> dict:
    """The output row of one example: its response, or for a failed request an empty one and the error."""
    if isinstance(result, EndpointError):
        return example.to_dict() | {"response": "", "error": f"{result.kind}: {result}"}
    return example.to_dict() | {"response": result}


def generate_for_examples(
    examples: Sequence[Example],
    output: str | Path,
    model: Any | None,
    tokenizer: Any | None,
    config: GenerateConfig,
    desc: str = "generate",
    backend: Any | None = None,
    claimed: Partial | None = None,
) -> list[dict]:
    """Generate a response per example, appending to ``output``; done ids are skipped on rerun.

    ``model``/``tokenizer`` are an already loaded transformers model for the transformers backend;
    pass None and ``config.backend`` is loaded here, only when some example is left to do. A loaded
    ``backend`` (:func:`trice.generation.backends.load_backend`) may be passed instead, to reuse it across calls.
    The backend sees every example's prompt and which are done, so the local backend forms the
    same batches (and per-batch seeds) as an uninterrupted run (:func:`generate_responses`).
    Rows whose request failed (an endpoint's ``error``) do not count as done: they are tried again,
    and the file is then rewritten with one row per id.

    ``claimed``: what :func:`trice.utils.outputs.claim_output` found in a user-named ``output`` (None: a
    stage's own file, read as it is). A torn last line is cut only once work resumes.

    Returns all rows (old and new) in the order of ``examples``.
    """
    partial = load_partial(output) if claimed is None else claimed.rows
    failed = {key for key, row in partial.items() if row.get("error")}
    done = {key: row for key, row in partial.items() if key not in failed}
    finished = {i for i, e in enumerate(examples) if e.id in done}
    if done:
        log.info("%s: %d of %d already done, resuming", output, len(finished), len(examples))
    if len(finished) < len(examples):
        from trice.generation.backends import load_backend

        backend = backend if backend is not None else load_backend(config, model, tokenizer)
        prompts = [backend.prompt(e.task, e.question) for e in examples]
        errors: list[str] = []
        with JsonlAppender(output, None if claimed is None else claimed.keep_bytes) as sink:

            def write(indices: list[int], results: list[str | EndpointError]) -> None:
                for i, result in zip(indices, results):
                    if i in finished:  # a sampled batch made whole again: this row is already written
                        continue
                    row = result_row(examples[i], result)
                    if "error" in row:
                        errors.append(row["error"])
                    done[row["id"]] = row
                    sink.write(row)

            backend.generate(prompts, desc=desc, on_batch=write, done=finished, stops=stop_rules(config, examples))
        if failed & {e.id for e in examples}:  # retried ids now have two rows: keep the newest only
            write_jsonl(output, list(load_partial(output).values()))
        if errors:
            log.warning(
                "%s: %d of %d requests failed (first: %s); rerun to try them again",
                output, len(errors), len(examples) - len(finished), errors[0],
            )  # fmt: skip
    return [done[e.id] for e in examples]


def run_generate(config: GenerateConfig) -> list[dict]:
    """``trice generate``: load the configured backend once (only if work is left), generate for the input file."""
    config.validate()
    check = lambda row, path, line: check_row_task(row, PER_ROW, path, line)  # noqa: E731  (before any model loads)
    examples = [Example.from_dict(row, config.input) for row in read_input(config.input, EXAMPLE_FIELDS, check=check)]
    claimed = claim_output(
        config.output, inputs=[config.input], ids={e.id for e in examples}, fields=("response",), overwrite=config.overwrite
    )
    return generate_for_examples(examples, config.output, None, None, config, claimed=claimed)
