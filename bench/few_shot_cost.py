"""What the few-shot row costs: a zero-shot and a few-shot evaluation of the same base model on the
same test questions, the few-shot prompts led by the candidates' math preset as the pipeline's
``few-shot`` eval stage leads them (:mod:`trice.responses.few_shot`).

Prints {"ratio": few-shot seconds over zero-shot seconds, "prompt_tokens": mean per prompt, accuracy
and tool-use rate of each, ...} and a one-line summary; writes bench/results/few_shot_cost/results.json. The
two ways run interleaved chunk by chunk, so load from other processes falls on both alike.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from trice.core.prompts import PER_TASK, few_shot_prefix
from trice.data.math import load_math
from trice.core.paths import resolve_data_dir
from trice.core.schema import sample
from trice.judge.evaluate import judge_rows, summarize
from trice.generation.decode import generate_responses
from trice.utils.io import write_json
from trice.generation.models import DEFAULT_MODEL, load_model
from trice.core.prompts import task_prompt

OUT = Path(__file__).parent / "results" / "few_shot_cost" / "results.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--n", type=int, default=64, help="test questions (spread over ASDiv, SVAMP, GSM8K)")
    parser.add_argument("--batch-size", type=int, default=32, help="the demo eval batch size (two batches, interleaved)")
    parser.add_argument("--max-new-tokens", type=int, default=96, help="the demo's eval max_new_tokens")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--shared-machine", action="store_true", help="say in the JSON that other jobs shared the machine")
    args = parser.parse_args()

    examples = [e for ds in ("asdiv", "svamp", "gsm8k") for e in sample(load_math(resolve_data_dir(args.data_dir), (ds,), "test"), args.n // 3, 0)]
    model, tokenizer = load_model(args.model)
    zero = [task_prompt(e.task, e.question, "alpaca", tokenizer) for e in examples]
    ways = {"zero-shot": zero, "few-shot": [few_shot_prefix(PER_TASK, e.task) + p for e, p in zip(examples, zero)]}
    gen = dict(max_new_tokens=args.max_new_tokens, do_sample=False)
    responses: dict[str, list[str]] = {w: [] for w in ways}
    seconds = dict.fromkeys(ways, 0.0)
    for start in range(0, len(examples), args.batch_size):
        for way, prompts in ways.items():
            t0 = time.perf_counter()
            responses[way] += generate_responses(model, tokenizer, prompts[start : start + args.batch_size], args.batch_size, desc=way, **gen)
            seconds[way] += time.perf_counter() - t0

    summaries = {w: summarize(judge_rows([e.to_dict() | {"response": r} for e, r in zip(examples, rs)], "math")) for w, rs in responses.items()}
    result = {
        "measure": "seconds to generate the same test questions zero-shot and few-shot (3 worked math examples first)",
        "model": args.model,
        "n": len(examples),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "prompt_tokens": {w: round(sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in ps) / len(ps), 1) for w, ps in ways.items()},
        "seconds": {w: round(s, 1) for w, s in seconds.items()},
        "ratio": round(seconds["few-shot"] / seconds["zero-shot"], 2),
        "accuracy": {w: s["accuracy"]["total"] for w, s in summaries.items()},
        "tool_rate": {w: s["tool_rate"] for w, s in summaries.items()},
        "machine": "2 CPU cores shared with other jobs" if args.shared_machine else "not shared",
    }
    write_json(OUT, result)
    print(json.dumps(result))
    print(
        f"few-shot eval costs {result['ratio']}x zero-shot ({result['prompt_tokens']['few-shot']:.0f} vs "
        f"{result['prompt_tokens']['zero-shot']:.0f} prompt tokens); accuracy {result['accuracy']}, tool use {result['tool_rate']}"
    )


if __name__ == "__main__":
    main()
