"""The teacher candidate source's generation, before and after stopping at the call and sharing the
few-shot prefix: ``python bench/teacher_generation.py``.

The setup is the teacher source's (:func:`trice.stage2.candidate_sources.teacher_source`): the math few-shot prefix
(three worked examples that always call the calculator) before each alpaca prompt, greedy, 32 new
tokens, batches of 8, fp32 on CPU. The questions are real math training questions (the D_tool pool:
GSM8K, SVAMP, ASDiv train, seeded sample). The model is the first of
``~/.cache/trice/models/qwen2.5-coder-1.5b-instruct``, ``.../qwen2.5-coder-0.5b-instruct`` and
the embedded SmolLM2-135M-Instruct that is there; the JSON names it.

* before: every row runs to 32 new tokens, each batch encodes the whole prompt per row, and the
  response is cut at the template's markers only (``stop_after_call`` off);
* after: each row stops at the end of its first calculator call (the batch when all rows have),
  the shared few-shot prefix is encoded once, and the text after the call is cut.

Both run on the same batches, interleaved batch by batch (alternating which goes first) so load
from other processes falls on both alike. The check: each after-response equals the before-response
cut after its call (:meth:`trice.generation.stopping.StopRule.finish`); the count of equal ones is reported
and the script fails if any differ. Prints one JSON object and a one-line summary.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
from pathlib import Path

import torch

from trice.stage2.candidate_sources import TEACHER_MODEL, teacher_source
from trice.core.prompts import few_shot_prefix
from trice.data.math import load_math
from trice.core.paths import resolve_data_dir
from trice.core.schema import sample
from trice.generation.decode import generate_responses
from trice.utils.io import write_json
from trice.core.paths import cache_dir
from trice.generation.models import DEFAULT_MODEL, load_model
from trice.generation.prefix_cache import shared_prefix_length
from trice.core.prompts import task_prompt
from trice.responses.generate import task_stop_rule

FALLBACKS = (TEACHER_MODEL, "qwen2.5-coder-0.5b-instruct")


def pick_model() -> str:
    """The first converted teacher directory there is, else the embedded default model."""
    for name in FALLBACKS:
        path = cache_dir() / "models" / name
        if (path / "config.json").is_file():
            return str(path)
    return DEFAULT_MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="model to use (default: the first of the teacher directories found)")
    parser.add_argument("--n", type=int, default=16, help="math training questions (spread over ASDiv, SVAMP, GSM8K)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 on a shared machine)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = teacher_source()
    batch_size, max_new_tokens = source["batch_size"], source["max_new_tokens"]

    data_dir = resolve_data_dir(args.data_dir)
    per = -(-args.n // 3)
    examples = [e for ds in ("asdiv", "svamp", "gsm8k") for e in sample(load_math(data_dir, (ds,), "train"), per, 0)][: args.n]
    model_name = args.model or pick_model()
    model, tokenizer = load_model(model_name)
    prompts = [few_shot_prefix(source["few_shot"], e.task) + task_prompt(e.task, e.question) for e in examples]
    rule = task_stop_rule("math")
    gen = dict(max_new_tokens=max_new_tokens, do_sample=False)
    generate_responses(model, tokenizer, prompts[:2], batch_size=2, desc="warm-up", **dict(gen, max_new_tokens=2))

    before: list[str] = []
    after: list[str] = []
    seconds = {"before": 0.0, "after": 0.0}
    for b, start in enumerate(range(0, len(prompts), batch_size)):
        chunk = prompts[start : start + batch_size]
        runs = {
            "before": functools.partial(generate_responses, model, tokenizer, chunk, batch_size, desc="before", share_prefix=False, **gen),
            "after": functools.partial(
                generate_responses, model, tokenizer, chunk, batch_size, desc="after", stops=[rule] * len(chunk), share_prefix=True, **gen
            ),
        }
        made = {}
        for name in ("before", "after") if b % 2 == 0 else ("after", "before"):
            t0 = time.perf_counter()
            made[name] = runs[name]()
            seconds[name] += time.perf_counter() - t0
        before += made["before"]
        after += made["after"]

    expected = [rule.finish(text) for text in before]
    identical = sum(a == e for a, e in zip(after, expected))
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    result = {
        "bench": "teacher_generation",
        "model": Path(model_name).name if Path(model_name).exists() else model_name,
        "setup": {
            "few_shot": source["few_shot"],
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "greedy": True,
            "dtype": "float32",
            "threads": args.threads,
            "questions": len(examples),
            "datasets": sorted({e.dataset for e in examples}),
        },
        "prompt_tokens_mean": round(sum(map(len, ids)) / len(ids), 1),
        "shared_prefix_tokens": shared_prefix_length(ids),
        "examples_per_s": {name: round(len(prompts) / s, 4) for name, s in seconds.items()},
        "speedup": round(seconds["before"] / seconds["after"], 2),
        "identical_up_to_the_cut": f"{identical}/{len(prompts)}",
        "calls_calculator": {"before": sum(rule.over(t) for t in before), "after": sum(rule.over(t) for t in after)},
        "response_chars_mean": {"before": round(sum(map(len, before)) / len(before), 1), "after": round(sum(map(len, after)) / len(after), 1)},
        "examples": [{"id": e.id, "before": b_, "after": a_} for e, b_, a_ in list(zip(examples, before, after))[:4]],
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s); the 2-core machine was shared with other engineers' jobs, so the ratio (same batches, interleaved) is the figure to read, not the absolute rates",
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))
    print(
        f"teacher generation ({result['model']}, {len(prompts)} math questions, few-shot, {max_new_tokens} new tokens): "
        f"{result['examples_per_s']['before']} -> {result['examples_per_s']['after']} examples/s "
        f"(x{result['speedup']}), identical up to the cut {result['identical_up_to_the_cut']}"
    )
    if args.output:
        write_json(args.output, result)
    if identical != len(prompts):
        raise SystemExit(f"{len(prompts) - identical} responses differ from the uncut ones up to the cut")


if __name__ == "__main__":
    main()
