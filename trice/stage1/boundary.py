"""Knowledge-boundary labels: which training questions the untuned model *knows*, from several of its
own answers instead of one.

TRICE's D_tool keeps the model's own response where its one greedy probe answer is right and a
tool call where it is wrong. One sample is a noisy "knows it" label: with Qwen2.5-Coder-0.5B on math,
15 of 43 greedy-right answers were wrong in the majority of 5 answers, so a lucky greedy answer
teaches "answer alone" on a question the model mostly gets wrong, and an unlucky one teaches a call
where its own answer would do. Knowledge-boundary alignment (arXiv 2604.19749) labels by the model's
own accuracy over several answers instead; here that accuracy is counted over the greedy answer and
``samples`` sampled ones (the ``probe-samples`` stage), and the label rule ``own_if: m`` keeps an own
answer only where at least m of the k+1 answers are right (:func:`boundary_rows`).

Which own answer is kept: the greedy one where it is right (what the paper's rule keeps), else the
first right sample, so a question the model knows but answered wrong greedily still teaches its own
right answer. Every other question gets a verified tool call, as a wrong greedy answer does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from trice.core.schema import Example

SAMPLE_MARK = "#s"  # a sampled copy's id: <question id>#s<j>, j = 1..k


@dataclass
class ProbeSamplesConfig:
    """The recipe's ``probe.samples`` keys: the sampled answers per training question besides the
    probe's greedy one (their own stage, so the greedy probe's fingerprint stays as it was)."""

    samples: int = field(default=0, metadata={"help": "Sampled answers per training question besides the greedy one (0: none; label.own_if reads them)."})
    sample_temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of those answers."})
    sample_top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass of those answers."})

    def validate(self) -> None:
        if self.samples < 0:
            raise ValueError(f"samples: must be >= 0, got {self.samples}")
        if not self.sample_temperature > 0:
            raise ValueError(f"sample_temperature: must be > 0, got {self.sample_temperature}")
        if not 0 < self.sample_top_p <= 1:
            raise ValueError(f"sample_top_p: must be in (0, 1], got {self.sample_top_p}")


SAMPLE_KEYS = tuple(f.name for f in fields(ProbeSamplesConfig))  # read out of the recipe's probe section


def sample_examples(examples: Sequence[Example], k: int) -> list[Example]:
    """``k`` copies of each example, ids ``<id>#s1`` .. ``<id>#sk``, a question's copies side by
    side (generation sorts prompts by length, so they share batches)."""
    return [replace(e, id=f"{e.id}{SAMPLE_MARK}{j}") for e in examples for j in range(1, k + 1)]


def question_id(sample_id: str) -> str:
    """The question a sampled copy's id belongs to."""
    return sample_id.rsplit(SAMPLE_MARK, 1)[0]


def own_accuracy(probe: Sequence[dict[str, Any]], samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per probed question, in the probe's order: whether its greedy answer and each sampled answer
    are right, ``right`` of ``answers`` in all, ``own_accuracy`` = right / answers, and
    ``own_response``: the own answer a boundary label keeps (the greedy one where right, else the
    first right sample; None where none is right)."""
    by_question: dict[str, list[dict[str, Any]]] = {}
    for row in samples:
        by_question.setdefault(question_id(row["id"]), []).append(row)
    out = []
    for row in probe:
        drawn = sorted(by_question.get(row["id"], []), key=lambda r: int(r["id"].rsplit(SAMPLE_MARK, 1)[1]))
        right_samples = [r for r in drawn if r["correct"]]
        kept = row.get("response") if row["correct"] else (right_samples[0]["response"] if right_samples else None)
        right = int(bool(row["correct"])) + len(right_samples)
        out.append(
            {
                "id": row["id"], "dataset": row["dataset"], "task": row["task"], "greedy_correct": bool(row["correct"]),
                "samples_correct": [bool(r["correct"]) for r in drawn], "right": right, "answers": 1 + len(drawn),
                "own_accuracy": right / (1 + len(drawn)), "own_response": kept,
            }
        )  # fmt: skip
    return out


def boundary_rows(probe: Sequence[dict[str, Any]], accuracy: Sequence[dict[str, Any]], own_if: int) -> list[dict[str, Any]]:
    """The probe's rows as the label rule reads them under ``own_if``: ``correct`` where at least
    ``own_if`` of the question's answers are right, with ``response`` the own answer to keep; a
    question missing from ``accuracy`` is a ValueError (the samples do not cover the probe)."""
    by_id = {a["id"]: a for a in accuracy}
    missing = [row["id"] for row in probe if row["id"] not in by_id]
    if missing:
        raise ValueError(f"own accuracy: {len(missing)} probed questions have no sampled answers (first: {missing[0]}); run the probe-samples stage again")
    out = []
    for row in probe:
        own = by_id[row["id"]]
        knows = own["right"] >= own_if and own["own_response"] is not None
        out.append(row | {"correct": knows, "response": own["own_response"] if knows else row.get("response")})
    return out


def boundary_stats(accuracy: Sequence[dict[str, Any]], own_if: int) -> dict[str, Any]:
    """What the rule did: how many questions had each count of right answers, and the questions whose
    label it turned (greedy right -> call, greedy wrong -> own answer)."""
    counts = Counter(a["right"] for a in accuracy)
    knows = {a["id"] for a in accuracy if a["right"] >= own_if and a["own_response"] is not None}
    return {
        "own_if": own_if,
        "answers_per_question": max((a["answers"] for a in accuracy), default=0),
        "questions_by_right_answers": {str(n): counts[n] for n in sorted(counts)},
        "greedy_right_now_call": sum(a["greedy_correct"] and a["id"] not in knows for a in accuracy),
        "greedy_wrong_now_own": sum(not a["greedy_correct"] and a["id"] in knows for a in accuracy),
        "mean_own_accuracy": sum(a["own_accuracy"] for a in accuracy) / len(accuracy) if accuracy else 0.0,
    }
