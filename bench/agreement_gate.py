"""Sizing an answer-alone gate on sample agreement, on dev, before it costs hours on test.

The selective-calling benchmark (bench/selective_math_qwen.py) found that TRICE-I's P(call) at the
first token barely tells the questions it can answer alone from the others (AUC 0.61), and pointed
to a signal outside the first token: whether several sampled own answers agree with the greedy one
(AUC 0.79 for the greedy answer's correctness on 96 math-Qwen questions). The gate: answer alone
(TRICE-I's greedy own answer) where at least ``m`` of ``k`` sampled own answers agree with it, call
elsewhere (``agree>=m``); and its self-consistency variant, answering alone with the majority value
of the k+1 own answers where at least m of them give it (``vote>=m``), which can also raise the own
answers' accuracy, the other side of the break-even. On test it costs k+1 own answers per question (~3 hours for 701 questions on 2 cores),
so its value is measured first on the main run's 100 dev questions (training-pool questions no
stage trains on), with the committed TRICE-I adapter answering each one three ways: greedily with
its call forced, greedily with calls forbidden, and k samples with calls forbidden.

Reported per gate and m: the gate's dev accuracy with its 95% interval, tool use, how many questions it
answers alone and how many of those alone answers are right (its precision), and its paired
difference from always calling; beside them the agreement's AUC for the greedy own answer's
correctness, and the precision below which no gate can win on these questions
(:func:`trice.judge.decision.break_even_precision`).

    trice run trice/recipes/selective_math_qwen.yaml --stages data,dev   # the dev questions, first
    python bench/agreement_gate.py [--adapter DIR] [--k 4] [--temperature 0.7]

Writes bench/results/agreement_gate/results.json; the responses go to ``--work-dir`` (resumable).
Prints the JSON and a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from trice.core.layout import JUDGED, RESPONSES
from trice.core.schema import load_examples
from trice.judge.decision import break_even_precision, pair_auc
from trice.judge.evaluate import judge_rows
from trice.pipeline.intervals import Judged, interval_rows, paired_rows
from trice.pipeline.plan import plan_recipe
from trice.responses.generate import generate_for_examples
from trice.stage1.boundary import question_id, sample_examples
from trice.tasks.metrics import math_correct
from trice.utils.io import write_json, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "trice" / "recipes" / "selective_math_qwen.yaml"
ADAPTER = ROOT / "bench" / "results" / "selective_math_qwen" / "adapters" / "trice-i"
OUT = ROOT / "bench" / "results" / "agreement_gate"
SEED = 0
ALWAYS_CALL = "always call"


def answered(run_dir: Path, adapter: Path, work: Path, k: int, temperature: float) -> tuple[dict[str, dict], dict[str, dict], dict[str, list[str | None]]]:
    """Each dev question judged with the call forced and with calls forbidden (greedy, as the
    threshold rule's dev branches), and its ``k`` sampled own answers."""
    plan = plan_recipe(RECIPE, {"run_dir": str(run_dir)})
    dev = load_examples(plan.layout.dev_examples)
    greedy = replace(plan.eval, adapter=str(adapter))
    ways = {
        "call": (dev, replace(greedy, decision="call")),
        "answer": (dev, replace(greedy, decision="answer")),
        "samples": (sample_examples(dev, k), replace(greedy, decision="answer", do_sample=True, temperature=temperature, seed=SEED)),
    }
    judged = {}
    for way, (examples, config) in ways.items():
        rows = generate_for_examples(examples, work / way / RESPONSES, None, None, config, desc=f"dev {way}")
        judged[way] = judge_rows(rows, plan.judge_task, tools=plan.tools)
        write_jsonl(work / way / JUDGED, judged[way])
    samples: dict[str, list[str | None]] = {}
    for row in judged["samples"]:
        samples.setdefault(question_id(row["id"]), []).append(row["prediction"])
    call, alone = ({r["id"]: r for r in judged[way]} for way in ("call", "answer"))
    return call, alone, samples


def agreement(greedy: str | None, samples: list[str | None]) -> int:
    """How many samples give the greedy answer's value (math answers compare as numbers)."""
    return 0 if greedy is None else sum(math_correct(s, [greedy]) for s in samples)


def majority(greedy: str | None, samples: list[str | None]) -> tuple[str | None, int]:
    """The most frequent value among the greedy answer and the samples (ties go to the one met
    first, the greedy answer's) and how many of the k+1 answers give it: self-consistency's vote."""
    answers = [a for a in [greedy, *samples] if a is not None]
    counts = [(sum(math_correct(b, [a]) for b in answers), -n, a) for n, a in enumerate(answers)]
    if not counts:
        return None, 0
    count, _, value = max(counts)
    return value, count


def gate_rows(call: dict[str, dict], own_right: dict[str, bool], strength: dict[str, int], levels: range, name: str) -> Judged:
    """A gate at every level m (answer alone where ``strength`` is at least m, with the answer
    ``own_right`` judges; call elsewhere) as per-question (correct, used_tool) per dataset."""
    gates: Judged = {}
    for i, row in call.items():
        for m in levels:
            own = strength[i] >= m
            gates.setdefault(f"{name}>={m}", {}).setdefault(row["dataset"], {})[i] = (own_right[i] if own else bool(row["correct"]), not own)
    return gates


def measure(run_dir: Path, adapter: Path, work: Path, k: int, temperature: float) -> dict[str, Any]:
    call, alone, samples = answered(run_dir, adapter, work, k, temperature)
    agree = {i: agreement(alone[i]["prediction"], samples[i]) for i in call}
    alone_right = {i: bool(alone[i]["correct"]) for i in call}
    votes = {i: majority(alone[i]["prediction"], samples[i]) for i in call}
    vote_right = {i: math_correct(votes[i][0], alone[i]["answers"]) for i in call}
    gates: Judged = {ALWAYS_CALL: {}}
    for i, row in call.items():
        gates[ALWAYS_CALL].setdefault(row["dataset"], {})[i] = (bool(row["correct"]), True)
    gates |= gate_rows(call, alone_right, agree, range(k + 1), "agree")  # agree>=0: always alone, greedily
    gates |= gate_rows(call, vote_right, {i: v[1] for i, v in votes.items()}, range(1, k + 2), "vote")  # vote>=1: always alone, by vote
    intervals = interval_rows(gates, SEED)
    paired = paired_rows(gates, [(g, ALWAYS_CALL) for g in gates if g != ALWAYS_CALL], SEED)
    rows = {}
    for name, by_ds in gates.items():
        answers = [v for d in by_ds.values() for v in d.values()]
        own = [i for d in by_ds.values() for i, (_, used) in d.items() if not used]
        rows[name] = {
            "accuracy": sum(c for c, _ in answers) / len(answers),
            "interval": intervals[name]["avg"],
            "tool_use": 1 - len(own) / len(answers),
            "alone": len(own),
            "alone_precision": sum(c for c, used in answers if not used) / len(own) if own else None,
            "vs_always_call": paired.get(f"{name} vs {ALWAYS_CALL}", {}).get("avg"),
        }
    return {
        "adapter": str(adapter.relative_to(ROOT) if adapter.is_relative_to(ROOT) else adapter), "k": k, "temperature": temperature, "seed": SEED, "dev_questions": len(call),
        "alone_right": sum(alone_right.values()), "vote_right": sum(vote_right.values()), "call_right": sum(bool(r["correct"]) for r in call.values()),
        "auc_agreement_alone_right": pair_auc([agree[i] for i in call if alone_right[i]], [agree[i] for i in call if not alone_right[i]]),
        "break_even_precision": break_even_precision(alone_right, {i: bool(r["correct"]) for i, r in call.items()}),
        "agreement_histogram": {str(n): sum(v == n for v in agree.values()) for n in range(k + 1)},
        "gates": rows,
    }  # fmt: skip


def summary_line(result: dict[str, Any]) -> str:
    gates = "; ".join(
        f"{n}: {100 * g['accuracy']:.0f}% tool {100 * g['tool_use']:.0f}%"
        + (
            ""
            if g["vs_always_call"] is None
            else f" vs call {100 * g['vs_always_call']['difference']:+.0f} [{100 * g['vs_always_call']['low']:+.0f}, {100 * g['vs_always_call']['high']:+.0f}]"
        )
        for n, g in result["gates"].items()
    )
    auc, even = result["auc_agreement_alone_right"], result["break_even_precision"]
    measured = f"AUC {'-' if auc is None else f'{auc:.2f}'}, break-even precision {'-' if even is None else f'{even:.2f}'}"
    return f"agreement_gate (dev {result['dev_questions']}, k={result['k']}): {measured}; {gates}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default=str(ROOT / "runs" / "selective-math-qwen"), help="The selective run whose dev questions are used.")
    parser.add_argument("--adapter", default=str(ADAPTER), help="The LoRA adapter that answers (default: the committed TRICE-I).")
    parser.add_argument("--work-dir", default=str(ROOT / "runs" / "agreement-gate"), help="Where the responses go (resumable).")
    parser.add_argument("--k", type=int, default=4, help="Sampled own answers per dev question.")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = measure(Path(args.run_dir), Path(args.adapter).resolve(), Path(args.work_dir), args.k, args.temperature)
    write_json(Path(args.out) / "results.json", result)
    print(json.dumps(result, indent=1))
    print(summary_line(result))


if __name__ == "__main__":
    main()
