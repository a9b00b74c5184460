"""Batched generation for probing, candidates and evaluation, resumable by example id.

Prompts are sorted by length and batched with left padding, so a batch wastes little compute on
padding and every sequence's new tokens start at the same column. Results are appended one line per
finished example; a rerun after a kill skips the ids already written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from trice.data.schema import Example, load_examples
from trice.io import JsonlAppender, load_partial
from trice.models import DEFAULT_MODEL
from trice.prompts import task_prompt

log = logging.getLogger(__name__)

# Where a base model trained on no particular template keeps going after its answer: cut there.
STOP_MARKERS = ("\n### Instruction", "\n### Input", "\n### Response", "\n\n\n")


@dataclass
class GenerateConfig:
    """How to generate responses for a file of examples (the ``trice generate`` flags)."""

    input: str = field(default="", metadata={"help": "JSONL of examples (id, dataset, task, question, answers)."})
    output: str = field(default="", metadata={"help": "JSONL to append responses to; ids already there are skipped."})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Hub name, local directory or embedded alias."})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter directory to apply to the model."})
    template: str = field(default="alpaca", metadata={"help": "Prompt template: alpaca (the paper's) or chat."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate() call."})
    max_new_tokens: int = field(default=128, metadata={"help": "New tokens per response (the paper: 128)."})
    do_sample: bool = field(default=False, metadata={"help": "Sample instead of greedy decoding."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (with --do_sample)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (with --do_sample)."})
    num_beams: int = field(default=1, metadata={"help": "Beam width (the paper: 4; 1 is greedy and much faster)."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Repetition penalty (the paper: 1.3)."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling."})

    def validate(self) -> None:
        for name in ("batch_size", "max_new_tokens", "num_beams"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.do_sample and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")

    def generation_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self.max_new_tokens,
            do_sample=self.do_sample,
            num_beams=self.num_beams,
            repetition_penalty=self.repetition_penalty,
        )
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


def clean_response(text: str) -> str:
    """Cut a response at the first marker where the model starts a new prompt of its own."""
    cut = min((i for i in (text.find(m) for m in STOP_MARKERS) if i >= 0), default=len(text))
    return text[:cut].strip()


@torch.inference_mode()
def generate_batch(model: Any, tokenizer: Any, prompts: Sequence[str], **kwargs: Any) -> list[str]:
    """Responses for one batch of prompts (left padded), special tokens dropped."""
    tokenizer.padding_side = "left"
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    enc = {k: v.to(model.device) for k, v in enc.items()}
    out = model.generate(**enc, pad_token_id=tokenizer.pad_token_id, **kwargs)
    new = out[:, enc["input_ids"].shape[1] :]
    return [clean_response(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True)]


def generate_responses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    batch_size: int = 16,
    desc: str = "generate",
    on_batch: Any = None,
    **kwargs: Any,
) -> list[str]:
    """Responses for all prompts in input order; batches are formed from length-sorted prompts.

    ``on_batch(indices, responses)`` is called after each batch (used to append results as they come).
    """
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    responses: list[str | None] = [None] * len(prompts)
    with tqdm(total=len(prompts), desc=desc, unit="ex") as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = generate_batch(model, tokenizer, [prompts[i] for i in idx], **kwargs)
            for i, r in zip(idx, batch):
                responses[i] = r
            if on_batch is not None:
                on_batch(idx, batch)
            bar.update(len(idx))
    return responses  # type: ignore[return-value]


def generate_for_examples(
    examples: Sequence[Example], output: str | Path, model: Any, tokenizer: Any, config: GenerateConfig, desc: str = "generate"
) -> list[dict]:
    """Generate a response per example, appending to ``output``; done ids are skipped on rerun.

    Returns all rows (old and new) in the order of ``examples``.
    """
    done = load_partial(output)
    todo = [e for e in examples if e.id not in done]
    if done:
        log.info("%s: %d of %d already done, resuming", output, len(examples) - len(todo), len(examples))
    if todo:
        torch.manual_seed(config.seed)
        prompts = [task_prompt(e.task, e.question, config.template, tokenizer) for e in todo]
        with JsonlAppender(output) as sink:

            def write(indices: list[int], responses: list[str]) -> None:
                for i, r in zip(indices, responses):
                    row = todo[i].to_dict() | {"response": r}
                    done[row["id"]] = row
                    sink.write(row)

            generate_responses(
                model, tokenizer, prompts, config.batch_size, desc=desc, on_batch=write, **config.generation_kwargs()
            )
    return [done[e.id] for e in examples]


def run_generate(config: GenerateConfig) -> list[dict]:
    """``trice generate``: load the model once, generate for the input file."""
    from trice.models import load_model

    config.validate()
    examples = load_examples(config.input)
    model, tokenizer = load_model(config.model, config.adapter)
    return generate_for_examples(examples, config.output, model, tokenizer, config)
