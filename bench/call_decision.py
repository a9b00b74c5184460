"""Where a trained policy decides to call its tool: P(the response's first token starts a call), per
D_tool question, split by what D_tool's label says (the untuned policy's own right answer, or a call).

Greedy decoding calls the tool wherever that probability is above one half, so a policy can rank
questions well (the questions it can answer alone get the lower probabilities: AUC above 0.5) and
still call on every one of them. This measures both: each group's mean probability, the share of
questions above one half (what greedy decoding calls), and the AUC of the probability for telling
call questions from own-answer ones. One forward of the prompt per question and adapter, only the
last position through the vocabulary head.

With ``--own-setting`` and ``--call-setting`` (two evaluated settings of the run: one that answers
alone, one that calls) it also asks how much a selective policy could gain on the test questions:
the oracle (call exactly where the own answer is wrong), and the frontier that each adapter's
P(call) allows (call on the share of questions it ranks highest, answer alone on the rest), each
with its 95% interval and its paired difference from always calling. The mixed answers are the two
settings' recorded ones: the frontier assumes the policy's own answers stay as good as the
own-answer setting's, which a policy trained to call need not keep.

    python bench/call_decision.py --run-dir runs/math-qwen --n 40 \\
        --adapter trice-i=runs/math-qwen/train-trice-i/adapter \\
        --adapter trice-all=runs/math-qwen/train-trice-all/adapter_best \\
        --own-setting zero-shot --call-setting trice-i

Text call format only (the call starts with the task tool's name and a parenthesis).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch
from tqdm.auto import tqdm

from trice.generation import models
from trice.core.layout import JUDGED, RunLayout
from trice.tasks import get_task
from trice.core.prompts import task_prompt
from trice.utils.io import read_json, read_jsonl, write_json
from trice.utils.stats import bootstrap_average, paired_difference

SHARES = tuple(i / 10 for i in range(11))  # the frontier's tool-use rates


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
    for row in tqdm(rows, desc="P(call)", unit="q", leave=False):
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


def by_dataset(values: Mapping[str, float], datasets: Mapping[str, str]) -> dict[str, list[float]]:
    """Per-question values grouped by test set, each in sorted-id order (so two settings pair up)."""
    out: dict[str, list[float]] = {}
    for i in sorted(values):
        out.setdefault(datasets[i], []).append(values[i])
    return out


def mixed_point(called: set[str], own: Mapping[str, bool], call: Mapping[str, bool], datasets: Mapping[str, str], seed: int) -> dict[str, Any]:
    """Accuracy (average over test sets) when the ``called`` questions take the call setting's answer
    and the rest the own setting's, with its paired difference from calling on every question."""
    mixed = by_dataset({i: float(call[i] if i in called else own[i]) for i in own}, datasets)
    accuracy = bootstrap_average(mixed, "equal", seed=seed)
    difference = paired_difference(mixed, by_dataset({i: float(c) for i, c in call.items()}, datasets), seed=seed)["avg"]
    return {"tool_share": len(called) / len(own), "accuracy": asdict(accuracy), "minus_always_call": asdict(difference)}


def frontier(probs: Mapping[str, float], own: Mapping[str, bool], call: Mapping[str, bool], datasets: Mapping[str, str], seed: int) -> dict[str, Any]:
    """What ranking questions by ``probs`` allows: calling on each share of :data:`SHARES` (the highest
    P(call) first), at one half (greedy decoding's cut), and the AUC of P(call) for telling the
    questions the own setting gets wrong from those it gets right."""
    order = sorted(probs, key=lambda i: (-probs[i], i))
    points = [mixed_point(set(order[: round(s * len(order))]), own, call, datasets, seed) for s in SHARES]
    greedy = mixed_point({i for i, p in probs.items() if p > 0.5}, own, call, datasets, seed)
    wrong = [p for i, p in probs.items() if not own[i]]
    right = [p for i, p in probs.items() if own[i]]
    return {"auc_own_wrong_over_right": pair_auc(wrong, right), "greedy": greedy, "by_tool_share": points}


def read_headroom(run: RunLayout, own_setting: str, call_setting: str) -> tuple[list[dict], dict[str, bool], dict[str, bool], dict[str, str]]:
    """The test questions (the own setting's judged rows) and both settings' per-question correctness."""
    rows = read_jsonl(run.eval_dir(own_setting) / JUDGED)
    call_rows = {r["id"]: r for r in read_jsonl(run.eval_dir(call_setting) / JUDGED)}
    if set(call_rows) != {r["id"] for r in rows}:
        raise ValueError(f"{own_setting} and {call_setting} were evaluated on different test questions")
    own = {r["id"]: bool(r["correct"]) for r in rows}
    call = {i: bool(r["correct"]) for i, r in call_rows.items()}
    return rows, own, call, {r["id"]: r["dataset"] for r in rows}


def summary_line(result: dict[str, Any]) -> str:
    parts = [
        f"{n}: P(call) own {m['own']['mean']:.2f} / call {m['call']['mean']:.2f}, greedy calls {m['own']['share_above_half']:.0%} / {m['call']['share_above_half']:.0%}, AUC {m['auc_call_over_own']:.2f}"
        for n, m in result["adapters"].items()
    ]
    if "oracle" in result:
        o = result["oracle"]
        parts.append(f"oracle {o['accuracy']['estimate']:.1%} at {o['tool_share']:.0%} tool ({o['minus_always_call']['difference']:+.1%} vs always calling)")
    return "call_decision: " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="A finished label stage's run directory (its recipe names model and template).")
    parser.add_argument("--adapter", action="append", required=True, help="NAME=PATH of a LoRA adapter to measure; repeatable.")
    parser.add_argument("--n", type=int, default=40, help="Questions per group (own answer, call).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="Also write the JSON here.")
    parser.add_argument("--own-setting", help="An evaluated setting that answers alone (zero-shot): with --call-setting, measure the test headroom.")
    parser.add_argument("--call-setting", help="An evaluated setting that calls the tool (trice-i, sft-100).")
    args = parser.parse_args()
    if (args.own_setting is None) != (args.call_setting is None):
        parser.error("--own-setting and --call-setting go together")
    run = RunLayout(Path(args.run_dir))
    recipe = read_json(run.recipe)
    groups = sample_groups(read_jsonl(run.label_rows("trice")), args.n, args.seed)
    result: dict[str, Any] = {"run_dir": args.run_dir, "model": recipe["model"], "n_per_group": args.n, "seed": args.seed, "adapters": {}}
    headroom = None if args.own_setting is None else read_headroom(run, args.own_setting, args.call_setting)
    if headroom is not None:
        test_rows, own, call, datasets = headroom
        result |= {"own_setting": args.own_setting, "call_setting": args.call_setting}
        result["oracle"] = mixed_point({i for i, right in own.items() if not right}, own, call, datasets, args.seed)
    for spec in args.adapter:
        name, _, path = spec.partition("=")
        model, tokenizer = models.load_model(recipe["model"], path)
        model.eval()
        probs = {g: call_probabilities(model, tokenizer, rows, recipe["template"]) for g, rows in groups.items()}
        result["adapters"][name] = {"path": path} | measure(probs)
        if headroom is not None:
            test_probs = dict(zip([r["id"] for r in test_rows], call_probabilities(model, tokenizer, test_rows, recipe["template"]), strict=True))
            result["adapters"][name]["test"] = frontier(test_probs, own, call, datasets, args.seed)
    if args.output:
        write_json(Path(args.output), result)
    print(json.dumps(result, indent=1))
    print(summary_line(result))


if __name__ == "__main__":
    main()
