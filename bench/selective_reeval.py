"""Evaluate the selective-calling benchmark's committed adapters on any test file.

Each row of bench/results/selective_math_qwen/results.json that trained an adapter keeps it under
``adapters/<row>/``; this runs each one on a JSONL in the bring-your-own-data schema (``id``,
``dataset``, ``task``, ``question``, ``answers``) with the row's own decoding (greedy, or its
dev-chosen threshold), judges the responses, and returns accuracy, tool use and mean P(call) per
row, each with its 95% interval. Resumable: responses go to ``<eval_dir>/<row>/responses.jsonl``.

    python bench/selective_math_qwen.py --evaluate-on my_test.jsonl [--eval-dir runs/selective-reeval]

On the benchmark's own test file (``runs/selective-math-qwen/data/test.jsonl``) the same run restores
the per-question answers of rows recorded without them: ``--restore-from runs/selective-reeval``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trice.core.call_format import THRESHOLD
from trice.core.schema import load_examples
from trice.judge.evaluate import judge_rows, summarize
from trice.responses.generate import GenerateConfig, generate_for_examples
from trice.utils.io import read_json, read_jsonl, write_jsonl
from trice.utils.stats import bootstrap_share

MODEL = "qwen2.5-coder-0.5b-instruct"
LOG = logging.getLogger("selective_reeval")
ROOT = Path(__file__).resolve().parents[1]


def row_config(row: dict[str, Any]) -> GenerateConfig:
    """The decoding the row was evaluated with: the recipe's, and its threshold where it chose one."""
    threshold = row["decision"].get("threshold")
    decision = {"decision": THRESHOLD, "decision_tau": threshold["tau"]} if threshold else {}
    return GenerateConfig(model=MODEL, adapter=str(ROOT / row["adapter"]), batch_size=32, max_new_tokens=160, stop_after_call=True, **decision)


def evaluate_committed(out: Path, test: Path, eval_dir: Path, only: list[str] | None = None) -> dict[str, Any]:
    """Accuracy, tool use and mean P(call) of every committed adapter (or the rows ``only`` names) on
    ``test``, with 95% intervals."""
    results = read_json(out / "results.json")
    unknown = sorted(set(only or []) - set(results["rows"]))
    if unknown:
        raise SystemExit(f"{out / 'results.json'}: no row {', '.join(unknown)} (rows: {', '.join(results['rows'])})")
    examples = load_examples(test)
    scores = {}
    for name, row in results["rows"].items():
        if "adapter" not in row or (only and name not in only):
            continue
        config = row_config(row)
        config.validate()
        where = eval_dir / name.replace(" ", "_")
        rows = generate_for_examples(examples, where / "responses.jsonl", None, None, config, desc=f"reeval {name}")
        judged = judge_rows(rows)
        write_jsonl(where / "judged.jsonl", judged)
        interval = bootstrap_share([float(r["correct"]) for r in judged], seed=0)
        read = [r["p_call"] for r in judged if r.get("p_call") is not None]
        scores[name] = summarize(judged) | {"interval": [interval.low, interval.high], "mean_p_call": sum(read) / len(read) if read else None}
    return scores


def restored_answers(out: Path, eval_dir: Path) -> dict[str, dict[str, dict[Any, tuple[bool, bool]]]]:
    """Each committed row's per-question (correct, used_tool) by dataset from :func:`evaluate_committed`'s
    run on the benchmark's own test file, for the rows that come out exactly as recorded (accuracy
    on every dataset and tool use): how a row recorded before its answers were kept gets them back
    from its committed adapter. A row that does not reproduce is left out, and logged."""
    restored = {}
    for name, row in read_json(out / "results.json")["rows"].items():
        path = eval_dir / name.replace(" ", "_") / "judged.jsonl"
        if "adapter" not in row or not path.is_file():
            continue
        judged = read_jsonl(path)
        by_ds: dict[str, dict[Any, tuple[bool, bool]]] = {}
        for r in judged:
            by_ds.setdefault(r["dataset"], {})[r["id"]] = (bool(r["correct"]), bool(r["used_tool"]))
        again, recorded = summarize(judged), row["summary"]
        same = all(abs(again["accuracy"][ds] - recorded["accuracy"].get(ds, -1.0)) < 1e-9 for ds in by_ds)
        if same and abs(again["tool_rate"] - recorded["tool_rate"]) < 1e-9:
            restored[name] = by_ds
        else:
            LOG.warning(
                "%s: evaluated again, %s at tool use %.4f, recorded %s at %.4f: not restored",
                name,
                again["accuracy"],
                again["tool_rate"],
                recorded["accuracy"],
                recorded["tool_rate"],
            )
    return restored
