"""Stage I step time, every position through the LM head vs only the response's: ``python bench/response_logits.py``.

Rows: real math training questions (GSM8K, SVAMP, ASDiv train, seeded sample) in the alpaca
prompt, shaped like D_tool: the reference calculator call where the data has one, else the gold
answer in words; tokenized and padded by stage I's own :func:`trice.stage1.train_sft.build_sft_features`
and :class:`trice.stage1.train_sft.SFTCollator`. The model is stage I's (:func:`trice.training.lora.build_model`
with :class:`trice.stage1.config.SFTConfig`'s defaults: LoRA r 8, alpha 16, dropout 0.05 on
q_proj/v_proj), in train mode, fp32 on CPU.

A step is the model's forward with the labels (its own loss) and the backward, no optimizer:
``full`` feeds the batch as stage I did before, ``response_only`` through
:func:`trice.training.response_logits.response_only_inputs`. The two run the same batches, interleaved batch
by batch (alternating which goes first, so load from other jobs falls on both alike), each after
``torch.manual_seed`` of the same value, so LoRA dropout draws the same masks and the two losses
must agree (``max_abs_loss_diff``). The first ``--warmup`` batches are not timed. ``ratio`` is the
full time over the response-only time, summed over the timed batches.

``--model`` takes several models (an embedded alias or a directory), measured one after the other.
Prints one JSON object and then a one-line summary; ``--output`` also writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from trice.data.math import load_math
from trice.core.paths import resolve_data_dir
from trice.core.schema import sample
from trice.generation.models import load_tokenizer
from trice.training.response_logits import response_only_inputs
from trice.stage1.config import SFTConfig
from trice.stage1.train_sft import IGNORE_INDEX, SFTCollator, build_sft_features
from trice.training.lora import build_model

VARIANTS = ("full", "response_only")
DATASETS = ("gsm8k", "svamp", "asdiv")


def math_rows(n: int, seed: int) -> list[dict]:
    """D_tool-like rows: a calculator call where the data annotates one, else the answer in words."""
    examples = sample(load_math(resolve_data_dir(None), datasets=DATASETS, split="train"), n, seed)
    return [{"id": ex.id, "task": "math", "question": ex.question, "output": ex.tool_call or f"The answer is {ex.answers[0]}."} for ex in examples]


def step(model: Any, batch: dict, variant: str, seed: int) -> tuple[float, float]:
    """One forward + backward: ``(seconds, loss)``."""
    inputs = response_only_inputs(batch) if variant == "response_only" else batch
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same LoRA dropout masks for both variants
    start = time.perf_counter()
    loss = model(**inputs).loss
    loss.backward()
    return time.perf_counter() - start, loss.item()


def measure(model_name: str, args: argparse.Namespace) -> dict:
    config = SFTConfig(model=model_name, seed=args.seed)
    tokenizer = load_tokenizer(model_name)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    features = build_sft_features(math_rows((args.warmup + args.batches) * args.batch_size, args.seed), tokenizer)
    collate = SFTCollator(pad_id)
    batches = []
    for i in range(0, len(features), args.batch_size):
        batches.append({k: v for k, v in collate(features[i : i + args.batch_size]).items() if k != "ids"})
    model = build_model(config)
    model.train()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    loss_diff = 0.0
    for i, batch in enumerate(batches):
        order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]
        losses = {}
        for variant in order:
            seconds, losses[variant] = step(model, batch, variant, args.seed + i)
            if i >= args.warmup:
                times[variant].append(seconds)
        loss_diff = max(loss_diff, abs(losses["full"] - losses["response_only"]))
        print(f"{model_name}: batch {i + 1}/{len(batches)} " + " ".join(f"{v} {times[v][-1]:.2f}s" for v in VARIANTS if times[v]), file=sys.stderr)
    timed = batches[args.warmup :]
    positions = sum(b["input_ids"].numel() for b in timed)
    targets = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in timed)
    head = model.get_output_embeddings().weight
    return {
        "model": model_name,
        "ratio": round(sum(times["full"]) / sum(times["response_only"]), 3),
        "median_batch_ratio": round(statistics.median(a / b for a, b in zip(times["full"], times["response_only"])), 3),
        "full_s_mean": round(statistics.mean(times["full"]), 3),
        "response_only_s_mean": round(statistics.mean(times["response_only"]), 3),
        "step_s": {v: [round(t, 3) for t in ts] for v, ts in times.items()},
        "max_abs_loss_diff": loss_diff,
        "head_rows_share": round(targets / positions, 3),
        "head_params_share": round(head.numel() / sum(p.numel() for p in model.parameters()), 3),
        "vocab": head.shape[0],
        "prompt_tokens_mean": round(statistics.mean(f["labels"].count(IGNORE_INDEX) for f in features), 1),
        "response_tokens_mean": round(statistics.mean(len(f["labels"]) - f["labels"].count(IGNORE_INDEX) for f in features), 1),
        "padded_positions_per_batch_mean": round(positions / len(timed), 1),
        "example_ids": [f["id"] for f in features],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["smollm2-135m-instruct"], help="embedded aliases or model directories")
    parser.add_argument("--batches", type=int, default=4, help="timed batches per model")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches first")
    parser.add_argument("--batch-size", type=int, default=SFTConfig.per_device_train_batch_size, help="rows per batch (stage I's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (bench/prefix_sharing.py says why 1 on a shared machine)")
    parser.add_argument("--note", default="", help="free text stored in the JSON, e.g. whether other jobs shared the machine")
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/response_logits/results.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    results = [measure(name, args) for name in args.model]
    report = {
        "measure": "stage I step time (forward + backward, LoRA) full / response-only logits",
        "models": results,
        "config": {
            "batches": args.batches,
            "warmup": args.warmup,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "datasets": list(DATASETS),
            "template": "alpaca",
            "dtype": "float32",
            "device": "cpu",
            "threads": torch.get_num_threads(),
            "step": "model(**batch).loss (its own cross-entropy) + backward, no optimizer",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "note": args.note,
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(
        "; ".join(
            f"{Path(r['model']).name}: response-only logits {r['ratio']}x faster ({r['response_only_s_mean']}s vs {r['full_s_mean']}s per step, "
            f"{r['head_rows_share']:.0%} of positions projected, max loss diff {r['max_abs_loss_diff']:.1e})"
            for r in results
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
