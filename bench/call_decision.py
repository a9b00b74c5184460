"""Where a trained policy decides to call its tool: P(the response's first token starts a call), per
D_tool question, split by what D_tool's label says (the untuned policy's own right answer, or a call).

Greedy decoding calls the tool wherever that probability is above one half, so a policy can rank
questions well (the questions it can answer alone get the lower probabilities: AUC above 0.5) and
still call on every one of them. This measures both: each group's mean probability, the share of
questions above one half (what greedy decoding calls), and the AUC of the probability for telling
call questions from own-answer ones. One forward of the prompt per question and adapter, only the
last position through the vocabulary head.

    python bench/call_decision.py --run-dir runs/math-qwen --n 40 \\
        --adapter trice-i=runs/math-qwen/train-trice-i/adapter \\
        --adapter trice-all=runs/math-qwen/train-trice-all/adapter_best

Text call format only (the call starts with the task tool's name and a parenthesis).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import torch

from trice.generation import models
from trice.pipeline.layout import RunLayout
from trice.tasks import get_task
from trice.tasks.prompts import task_prompt
from trice.utils.io import read_json, read_jsonl, write_json


def pair_auc(high: list[float], low: list[float]) -> float:
    """P(a random ``high`` value exceeds a random ``low`` one), ties counting half (the Mann-Whitney AUC)."""
    wins = sum((a > b) + 0.5 * (a == b) for a in high for b in low)
    return wins / (len(high) * len(low))


def sample_groups(rows: list[dict], n: int, seed: int) -> dict[str, list[dict]]:
    """``n`` D_tool rows labelled with the policy's own answer and ``n`` labelled with a call, drawn by ``seed``."""
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    return {"own": [r for r in shuffled if not r["used_tool"]][:n], "call": [r for r in shuffled if r["used_tool"]][:n]}


def call_probabilities(model: Any, tokenizer: Any, rows: list[dict], template: str) -> list[float]:
    """P(first response token = the first token of ``<tool>(``) for each row's task prompt."""
    firsts: dict[str, int] = {}  # per task: the first token of its call, tokenised once
    out = []
    for row in rows:
        if row["task"] not in firsts:
            firsts[row["task"]] = tokenizer(get_task(row["task"]).tool + "(", add_special_tokens=False)["input_ids"][0]
        first = firsts[row["task"]]
        prompt = task_prompt(row["task"], row["question"], template, tokenizer)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=ids, logits_to_keep=1).logits[0, -1]
        out.append(torch.softmax(logits.float(), -1)[first].item())
    return out


def measure(probs: dict[str, list[float]]) -> dict[str, Any]:
    groups = {g: {"n": len(v), "mean": sum(v) / len(v), "share_above_half": sum(p > 0.5 for p in v) / len(v)} for g, v in probs.items()}
    return groups | {"auc_call_over_own": pair_auc(probs["call"], probs["own"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="A finished label stage's run directory (its recipe names model and template).")
    parser.add_argument("--adapter", action="append", required=True, help="NAME=PATH of a LoRA adapter to measure; repeatable.")
    parser.add_argument("--n", type=int, default=40, help="Questions per group (own answer, call).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="Also write the JSON here.")
    args = parser.parse_args()
    run = RunLayout(Path(args.run_dir))
    recipe = read_json(run.recipe)
    groups = sample_groups(read_jsonl(run.label_rows("trice")), args.n, args.seed)
    result: dict[str, Any] = {"run_dir": args.run_dir, "model": recipe["model"], "n_per_group": args.n, "seed": args.seed, "adapters": {}}
    for spec in args.adapter:
        name, _, path = spec.partition("=")
        model, tokenizer = models.load_model(recipe["model"], path)
        model.eval()
        probs = {g: call_probabilities(model, tokenizer, rows, recipe["template"]) for g, rows in groups.items()}
        result["adapters"][name] = {"path": path} | measure(probs)
    if args.output:
        write_json(Path(args.output), result)
    print(json.dumps(result, indent=1))
    print("call_decision: " + "; ".join(
        f"{n}: P(call) own {m['own']['mean']:.2f} / call {m['call']['mean']:.2f}, greedy calls {m['own']['share_above_half']:.0%} / {m['call']['share_above_half']:.0%}, AUC {m['auc_call_over_own']:.2f}"
        for n, m in result["adapters"].items()
    ))


if __name__ == "__main__":
    main()
