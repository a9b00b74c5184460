"""Batched evaluation vs a one-example-at-a-time loop: same model, same questions, same judge.

Prints {"measure": ..., "ratio": batched examples/s over sequential examples/s, "agreement": share
of identical predictions, ...} and a one-line summary. Target: ratio >= 5 with agreement >= 0.99.
"""

from __future__ import annotations

import argparse
import json
import time

from trice.core.paths import resolve_data_dir
from trice.core.schema import sample
from trice.judge.evaluate import judge_rows
from trice.generation.decode import generate_responses
from trice.utils.io import write_json
from trice.generation.models import DEFAULT_MODEL, load_model
from trice.core.prompts import task_prompt


def main() -> None:
    from trice.data.math import load_math

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--adapter", default=None)
    parser.add_argument("--n", type=int, default=48, help="test questions (spread over ASDiv, SVAMP, GSM8K)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args()

    data_dir = resolve_data_dir(args.data_dir)
    per = args.n // 3
    examples = [e for ds in ("asdiv", "svamp", "gsm8k") for e in sample(load_math(data_dir, (ds,), "test"), per, 0)]
    model, tokenizer = load_model(args.model, args.adapter)
    prompts = [task_prompt(e.task, e.question, "alpaca", tokenizer) for e in examples]
    gen = dict(max_new_tokens=args.max_new_tokens, do_sample=False)

    generate_responses(model, tokenizer, prompts[:2], batch_size=2, desc="warm-up", **gen)
    # Interleave the two ways chunk by chunk, so load from other processes on the machine falls on
    # both alike instead of on whichever ran second.
    batched: list[str] = []
    sequential: list[str] = []
    batched_s = sequential_s = 0.0
    for start in range(0, len(prompts), args.batch_size):
        chunk = prompts[start : start + args.batch_size]
        t0 = time.perf_counter()
        batched += generate_responses(model, tokenizer, chunk, batch_size=args.batch_size, desc="batched", **gen)
        t1 = time.perf_counter()
        sequential += generate_responses(model, tokenizer, chunk, batch_size=1, desc="one at a time", **gen)
        t2 = time.perf_counter()
        batched_s += t1 - t0
        sequential_s += t2 - t1

    def predictions(responses: list[str]) -> list[str | None]:
        rows = [e.to_dict() | {"response": r} for e, r in zip(examples, responses)]
        return [r["prediction"] for r in judge_rows(rows, "math")]

    same = sum(a == b for a, b in zip(predictions(batched), predictions(sequential))) / len(examples)
    result = {
        "measure": "evaluation examples/s, batched over one-at-a-time",
        "ratio": round(sequential_s / batched_s, 2),
        "agreement": round(same, 4),
        "batched_examples_per_s": round(len(examples) / batched_s, 3),
        "sequential_examples_per_s": round(len(examples) / sequential_s, 3),
        "config": vars(args) | {"examples": len(examples)},
    }
    print(json.dumps(result))
    if args.output:
        write_json(args.output, result)
    print(
        f"batched evaluation: {result['ratio']}x the examples/s of one-at-a-time "
        f"(batch {args.batch_size}, {len(examples)} questions), {100 * same:.1f}% identical predictions"
    )


if __name__ == "__main__":
    main()
