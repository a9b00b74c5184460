"""RLEF step time and memory, naive vs shared query prefix: ``python bench/prefix_sharing.py``.

Real math questions (GSM8K, SVAMP, ASDiv train, seeded sample) in the alpaca prompt, k = 5
candidates each (the reference calculator call, the gold answer in words, a wrong calculator call, a
short worked answer and a wrong guess, each ending in EOS as in the released trainer), scored by
:func:`trice.stage2.reward.score_responses`. The model is the embedded SmolLM2-135M-Instruct with LoRA
(r 8, alpha 16, dropout 0.05, q_proj/v_proj), in train mode, fp32 on CPU.

Time: one training step = forward of the group + :class:`RLEFLoss` + backward, measured per group
after the warm-up groups, the two methods interleaved group by group (alternating which goes first)
so that load from other processes on the machine falls on both alike.

Threads: ``--threads`` (default 1) intra-op threads. On a small machine shared with other jobs,
2 threads on 2 busy cores make every op wait at OpenMP barriers for a descheduled thread (measured
here: an elementwise op on a [5, 13, 576] tensor took 8 ms with 2 threads, 4 us with 1), which
swamps the compute and punishes whichever method runs more ops, not more tokens.

Memory: each method runs the same groups in a fresh subprocess; after the model is loaded its
weights are read once (so that paging them in is not counted), the kernel's peak-RSS counter is
reset (``/proc/self/clear_refs``), and the reported figure is the peak RSS during the steps minus
the RSS at that reset: the extra resident memory a step needs (activations, logits, gradients,
allocator caches), not counting the model itself.

``tokens_per_step_mean`` counts the positions each method runs through the transformer, padding
included: ``k * (P + R)`` for naive, ``P + k * (R - 1)`` for shared (R the longest response). It
bounds the speed-up; the rest is what both pay alike (the vocabulary projection and log-softmax
over the response positions) and the smaller matrix products of the shared path's two forwards.

Prints one JSON object and then a one-line summary; ``--output`` also writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from trice.data.math import load_math
from trice.core.paths import resolve_data_dir
from trice.core.schema import Example, sample
from trice.generation.models import load_model
from trice.core.prompts import task_prompt
from trice.stage2.reward import score_responses
from trice.stage2.rlef_forward import grouped_response_logprobs
from trice.stage2.rlef_loss import RLEFLoss

MODEL = "smollm2-135m-instruct"
METHODS = ("naive", "shared_prefix")
DATASETS = ("gsm8k", "svamp", "asdiv")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def candidates(ex: Example) -> list[str]:
    """Five realistic responses, the first the gold one."""
    answer = ex.answers[0]
    numbers = _NUMBER.findall(ex.question) or ["1", "2"]
    x, y = numbers[0], numbers[-1]
    gold = ex.tool_call or f"calculator({x}+{y})"
    wrong_call = _NUMBER.sub(lambda m: str(int(float(m.group())) + 1), gold, count=1)
    try:
        wrong = str(round(float(answer) * 2 + 1, 2))
    except ValueError:
        wrong = "3"
    return [
        gold,
        f"The answer is {answer}.",
        wrong_call,
        f"We have {x} and {y}, so we combine them: the result is {answer}.",
        f"I am not completely sure, but I think the answer is {wrong}.",
    ]


def build_groups(tokenizer: Any, n: int, seed: int) -> list[dict]:
    examples = sample(load_math(resolve_data_dir(None), datasets=DATASETS, split="train"), n, seed)
    groups = []
    for ex in examples:
        responses = candidates(ex)
        _, scores, _ = score_responses("math", responses, ex.answers)
        prompt = tokenizer(task_prompt("math", ex.question), add_special_tokens=False, return_tensors="pt")["input_ids"][0]
        resp = [tokenizer(r + tokenizer.eos_token, add_special_tokens=False, return_tensors="pt")["input_ids"][0] for r in responses]
        groups.append({"id": ex.id, "prompt": prompt, "responses": resp, "rewards": torch.tensor(scores)})
    return groups


def lora_model() -> Any:
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_model(MODEL)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    model.train()
    return model, tokenizer


def step(model: Any, loss_fn: RLEFLoss, group: dict, method: str) -> float:
    """One forward + loss + backward; its wall time in seconds."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out = grouped_response_logprobs(model, group["prompt"], group["responses"], method=method)
    loss, _ = loss_fn(out.token_logps, out.token_mask, group["rewards"])
    loss.backward()
    return time.perf_counter() - start


@torch.no_grad()
def max_score_difference(model: Any, groups: list[dict]) -> float:
    """Largest |naive - shared| score over the groups, in eval mode (no dropout): a correctness check."""
    model.eval()
    diff = 0.0
    for g in groups:
        a, b = (grouped_response_logprobs(model, g["prompt"], g["responses"], method=m).scores for m in METHODS)
        diff = max(diff, (a - b).abs().max().item())
    model.train()
    return diff


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(method: str, args: argparse.Namespace) -> dict:
    """Peak extra RSS of ``method``'s steps in this (fresh) process, in MB."""
    torch.manual_seed(args.seed)
    model, tokenizer = lora_model()
    groups = build_groups(tokenizer, args.warmup + args.groups, args.seed)
    loss_fn = RLEFLoss(alpha=args.alpha)
    with torch.no_grad():  # page in weights that loading left mapped but unread: they are not step memory
        for p in model.parameters():
            p.sum()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    base = _status_kb("VmRSS")
    for g in groups:
        step(model, loss_fn, g, method)
    return {"method": method, "peak_extra_rss_mb": (_status_kb("VmHWM") - base) / 1024, "base_rss_mb": base / 1024}


def measure_memory(method: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--memory-child",
        method,
        "--groups",
        str(args.groups),
        "--warmup",
        str(args.warmup),
        "--seed",
        str(args.seed),
        "--alpha",
        str(args.alpha),
        "--threads",
        str(args.threads),
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_time(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    model, tokenizer = lora_model()
    groups = build_groups(tokenizer, args.warmup + args.groups, args.seed)
    loss_fn = RLEFLoss(alpha=args.alpha)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for i, g in enumerate(groups):
        order = METHODS if i % 2 == 0 else METHODS[::-1]
        for method in order:
            seconds = step(model, loss_fn, g, method)
            if i >= args.warmup:
                times[method].append(seconds)
    timed = groups[args.warmup :]
    k_p_r = [(len(g["responses"]), g["prompt"].numel(), max(r.numel() for r in g["responses"])) for g in timed]
    return {
        "tokens": {"naive": statistics.mean(k * (p + r) for k, p, r in k_p_r), "shared_prefix": statistics.mean(p + k * (r - 1) for k, p, r in k_p_r)},
        "times": times,
        "max_abs_score_diff": max_score_difference(model, groups),
        "prompt_tokens_mean": statistics.mean(g["prompt"].numel() for g in timed),
        "response_tokens_mean": statistics.mean(r.numel() for g in timed for r in g["responses"]),
        "ids": [g["id"] for g in timed],
        "rewards": [g["rewards"].tolist() for g in timed],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10, help="timed groups (questions) per method")
    parser.add_argument("--warmup", type=int, default=2, help="untimed groups first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (see the module docstring)")
    parser.add_argument("--output", type=Path, help="also write the JSON here (bench/results/prefix_sharing/results.json)")
    parser.add_argument("--memory-child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args)))
        return 0

    timing = measure_time(args)
    memory = {m: measure_memory(m, args) for m in METHODS}
    naive_s = statistics.mean(timing["times"]["naive"])
    shared_s = statistics.mean(timing["times"]["shared_prefix"])
    per_group = [a / b for a, b in zip(timing["times"]["naive"], timing["times"]["shared_prefix"])]
    report = {
        "measure": "rlef step time naive/shared_prefix",
        "ratio": round(naive_s / shared_s, 3),
        "naive_s": round(naive_s, 4),
        "shared_s": round(shared_s, 4),
        "median_group_ratio": round(statistics.median(per_group), 3),
        "peak_mem_naive_mb": round(memory["naive"]["peak_extra_rss_mb"], 1),
        "peak_mem_shared_mb": round(memory["shared_prefix"]["peak_extra_rss_mb"], 1),
        "memory_measure": "peak RSS during the steps minus RSS after model load, fresh process per method (VmHWM reset via /proc/self/clear_refs)",
        "max_abs_score_diff": timing["max_abs_score_diff"],
        "step_s": {m: [round(t, 4) for t in ts] for m, ts in timing["times"].items()},
        "config": {
            "model": MODEL,
            "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "targets": ["q_proj", "v_proj"]},
            "dtype": "float32",
            "device": "cpu",
            "threads": torch.get_num_threads(),
            "k": 5,
            "groups": args.groups,
            "warmup": args.warmup,
            "seed": args.seed,
            "datasets": list(DATASETS),
            "example_ids": timing["ids"],
            "rewards": timing["rewards"],
            "prompt_tokens_mean": round(timing["prompt_tokens_mean"], 1),
            "response_tokens_mean": round(timing["response_tokens_mean"], 1),
            "tokens_per_step_mean": {m: round(t, 1) for m, t in timing["tokens"].items()},
            "step": "forward + RLEFLoss(alpha) + backward, no optimizer",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(
        f"shared_prefix {report['ratio']}x faster than naive ({shared_s:.3f}s vs {naive_s:.3f}s per step, "
        f"median per group {report['median_group_ratio']}x); extra peak RSS {report['peak_mem_shared_mb']} MB vs "
        f"{report['peak_mem_naive_mb']} MB; max score diff {report['max_abs_score_diff']:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
