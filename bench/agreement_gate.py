"""Sizing an answer-alone gate on sample agreement, on dev, before it costs hours on test.

The selective-calling benchmark (bench/selective_math_qwen.py) found that TRICE-I's P(call) at the
first token barely tells the questions it can answer alone from the others (AUC 0.61), and pointed
to a signal outside the first token: whether several sampled own answers agree with the greedy one
(AUC 0.79 for the greedy answer's correctness on 96 math-Qwen questions). The gate: answer alone
(TRICE-I's greedy own answer) where at least ``m`` of ``k`` sampled own answers agree with it, call
elsewhere (``agree>=m``); and its self-consistency variant, answering alone with the majority value
of the k+1 own answers where at least m of them give it (``vote>=m``), which can also raise the own
answers' accuracy, the other side of the break-even. A vote gate already answers alone exactly where
the call's result disagrees with a confident own majority (where they agree, either way gives the
same answer), so the one signal left is the call's own doubt: ``k`` sampled calls, and the gates
``call-split>=d`` (the vote's answer where at least d of them disagree with the greedy call's
result) and ``vote>=m&call-split>=d`` (both at once). On test it costs k+1 own answers per question (~3 hours for 701 questions on 2 cores),
so its value is measured first on the main run's 100 dev questions (training-pool questions no
stage trains on), with the committed TRICE-I adapter answering each one four ways: greedily with
its call forced, greedily with calls forbidden, k samples with calls forbidden and k samples with
the call forced.

Reported per gate: the gate's dev accuracy with its 95% interval, tool use, how many questions it
answers alone and how many of those alone answers are right (its precision), and its paired
difference from always calling; beside them the agreement's AUC for the greedy own answer's
correctness, the sampled calls' agreement's AUC for the greedy call's, the precision below which
no gate can win on these questions (:func:`trice.judge.decision.break_even_precision`), and how
many questions any vote gate could win (the vote right, the call wrong) or lose (the reverse).

    trice run trice/recipes/selective_math_qwen.yaml --stages data,dev   # the dev questions, first
    python bench/agreement_gate.py [--adapter DIR] [--k 4] [--temperature 0.7]

Writes bench/results/agreement_gate/results.json; the responses go to ``--work-dir`` (resumable).
Prints the JSON and a one-line summary (the best gate of each kind on dev).
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


Answers = tuple[dict[str, dict], dict[str, dict], dict[str, list[str | None]], dict[str, list[str | None]]]


def answered(run_dir: Path, adapter: Path, work: Path, k: int, temperature: float) -> Answers:
    """Each dev question judged with the call forced and with calls forbidden (greedy, as the
    threshold rule's dev branches), and the predictions of its ``k`` sampled own answers and its
    ``k`` sampled calls (a call's prediction: the answer read from its result)."""
    plan = plan_recipe(RECIPE, {"run_dir": str(run_dir)})
    dev = load_examples(plan.layout.dev_examples)
    greedy = replace(plan.eval, adapter=str(adapter))
    ways = {
        "call": (dev, replace(greedy, decision="call")),
        "answer": (dev, replace(greedy, decision="answer")),
        "samples": (sample_examples(dev, k), replace(greedy, decision="answer", do_sample=True, temperature=temperature, seed=SEED)),
        "call-samples": (sample_examples(dev, k), replace(greedy, decision="call", do_sample=True, temperature=temperature, seed=SEED)),
    }
    judged = {}
    for way, (examples, config) in ways.items():
        rows = generate_for_examples(examples, work / way / RESPONSES, None, None, config, desc=f"dev {way}")
        judged[way] = judge_rows(rows, plan.judge_task, tools=plan.tools)
        write_jsonl(work / way / JUDGED, judged[way])
    samples: dict[str, dict[str, list[str | None]]] = {"samples": {}, "call-samples": {}}
    for way, by_question in samples.items():
        for row in judged[way]:
            by_question.setdefault(question_id(row["id"]), []).append(row["prediction"])
    call, alone = ({r["id"]: r for r in judged[way]} for way in ("call", "answer"))
    return call, alone, samples["samples"], samples["call-samples"]


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


def all_gates(call: dict[str, dict], alone_right: dict[str, bool], agree: dict[str, int], votes: dict[str, tuple[str | None, int]],
              vote_right: dict[str, bool], split: dict[str, int], k: int) -> Judged:  # fmt: skip
    """Always calling and every gate, per-question (correct, used_tool) per dataset: ``agree>=m``
    (m of 0..k; 0 answers alone everywhere, greedily), ``vote>=m`` (m of 1..k+1; 1 everywhere, by
    vote), ``call-split>=d`` and ``vote>=m&call-split>=d`` (d of 1..k, m a majority of the k+1)."""
    gates: Judged = {ALWAYS_CALL: {}}
    for i, row in call.items():
        gates[ALWAYS_CALL].setdefault(row["dataset"], {})[i] = (bool(row["correct"]), True)
    gates |= gate_rows(call, alone_right, agree, range(k + 1), "agree")
    gates |= gate_rows(call, vote_right, {i: v[1] for i, v in votes.items()}, range(1, k + 2), "vote")
    gates |= gate_rows(call, vote_right, split, range(1, k + 1), "call-split")
    for m in range((k + 1) // 2 + 1, k + 2):  # the vote a majority of the k+1 own answers
        gates |= gate_rows(call, vote_right, {i: split[i] if votes[i][1] >= m else -1 for i in call}, range(1, k + 1), f"vote>={m}&call-split")
    return gates


def measure(run_dir: Path, adapter: Path, work: Path, k: int, temperature: float) -> dict[str, Any]:
    call, alone, samples, call_samples = answered(run_dir, adapter, work, k, temperature)
    agree = {i: agreement(alone[i]["prediction"], samples[i]) for i in call}
    alone_right = {i: bool(alone[i]["correct"]) for i in call}
    votes = {i: majority(alone[i]["prediction"], samples[i]) for i in call}
    vote_right = {i: math_correct(votes[i][0], alone[i]["answers"]) for i in call}
    call_right = {i: bool(r["correct"]) for i, r in call.items()}
    call_agree = {i: agreement(call[i]["prediction"], call_samples[i]) for i in call}
    gates = all_gates(call, alone_right, agree, votes, vote_right, {i: k - a for i, a in call_agree.items()}, k)
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
        "alone_right": sum(alone_right.values()), "vote_right": sum(vote_right.values()), "call_right": sum(call_right.values()),
        "auc_agreement_alone_right": pair_auc([agree[i] for i in call if alone_right[i]], [agree[i] for i in call if not alone_right[i]]),
        "break_even_precision": break_even_precision(alone_right, call_right),
        "agreement_histogram": {str(n): sum(v == n for v in agree.values()) for n in range(k + 1)},
        "auc_call_agreement_call_right": pair_auc([call_agree[i] for i in call if call_right[i]], [call_agree[i] for i in call if not call_right[i]]),
        "call_agreement_histogram": {str(n): sum(v == n for v in call_agree.values()) for n in range(k + 1)},
        "vote_wins": sum(vote_right[i] and not call_right[i] for i in call), "vote_loses": sum(call_right[i] and not vote_right[i] for i in call),
        "gates": rows,
    }  # fmt: skip


def summary_line(result: dict[str, Any]) -> str:
    """The AUCs, the break-even, always calling and the gate of each kind with the best dev accuracy."""
    kinds: dict[str, str] = {}
    for name, gate in result["gates"].items():
        kind = name if name == ALWAYS_CALL else name.rsplit(">=", 1)[0]
        if kind not in kinds or gate["accuracy"] > result["gates"][kinds[kind]]["accuracy"]:
            kinds[kind] = name
    gates = "; ".join(
        f"{n}: {100 * g['accuracy']:.0f}% tool {100 * g['tool_use']:.0f}%" + _versus(g) for n, g in ((n, result["gates"][n]) for n in kinds.values())
    )
    aucs = (result["auc_agreement_alone_right"], result.get("auc_call_agreement_call_right"), result["break_even_precision"])
    own, calls, even = ("-" if v is None else f"{v:.2f}" for v in aucs)
    return f"agreement_gate (dev {result['dev_questions']}, k={result['k']}): AUC own {own}, calls {calls}, break-even precision {even}; best of each kind: {gates}"


def _versus(gate: dict[str, Any]) -> str:
    d = gate["vs_always_call"]
    return "" if d is None else f" vs call {100 * d['difference']:+.0f} [{100 * d['low']:+.0f}, {100 * d['high']:+.0f}]"


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
