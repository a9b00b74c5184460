"""The qa judge, the paper's way and with evidence: a WikiSearch call is right when the model's
reading of a passage is (the paper's judge, the default), and with ``qa_require_evidence`` only
when a passage whose reading was right holds a gold answer itself -- otherwise the reading model
answered from what it already knew, and the call taught nothing."""

from __future__ import annotations

import pytest

import trice.judge.evaluate
from trice.judge.evaluate import judge_rows
from trice.tasks import get_task
from trice.core.tools import ToolRegistry

PASSAGES = {"about Paris": ["Paris | Paris is the capital of France.", "Lyon | A city."],
            "about cheese": ["Brie | A soft cheese.", "Comte | A hard cheese."]}  # fmt: skip


class Search:
    name = "WikiSearch"

    def run(self, argument: str) -> str:
        return PASSAGES[argument][0]

    def passages(self, argument: str) -> list[str]:
        return PASSAGES[argument]


class KnowsParis:
    """A reading model that answers Paris whatever it reads."""

    def read_many(self, items: list) -> list[str]:
        return ["Paris" for _ in items]


def test_evidence_says_whether_a_right_reading_read_the_answer() -> None:
    registry = ToolRegistry([Search()])
    grounded = get_task("qa").judge("WikiSearch(about Paris)", ["Paris"], registry, reader=lambda out: ["Paris"])
    assert grounded.correct and grounded.evidence is True
    known = get_task("qa").judge("WikiSearch(about cheese)", ["Paris"], registry, reader=lambda out: ["Paris"])
    assert known.correct and known.evidence is False  # the paper's judge still credits it
    assert get_task("qa").judge("Paris", ["Paris"], registry).evidence is None  # no call, nothing read


@pytest.mark.parametrize("require", [False, True])
def test_require_evidence_judges_unsupported_readings_wrong(monkeypatch, require: bool) -> None:
    monkeypatch.setattr(trice.judge.evaluate, "tool_registries", lambda tools=None: lambda task: ToolRegistry([Search()]))
    rows = [{"id": i, "dataset": "webq", "question": "Capital of France?", "answers": ["Paris"], "response": f"WikiSearch({q})"}
            for i, q in enumerate(["about Paris", "about cheese"])]  # fmt: skip
    judged = judge_rows(rows, "qa", KnowsParis(), require_evidence=require)
    assert [r["correct"] for r in judged] == [True, not require]
    assert [r.get("unsupported_reading", False) for r in judged] == [False, require]
