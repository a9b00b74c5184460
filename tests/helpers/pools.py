"""The checks every loaded dataset pool must pass, shared by the loaders' tests."""

from __future__ import annotations


def check_pool(data, dataset: str, task: str) -> None:
    examples = data.train + data.test
    ids = [e.id for e in examples]
    assert len(ids) == len(set(ids)), "ids must be unique"
    assert all(e.dataset == dataset and e.task == task for e in examples)
    assert all(e.answers and all(a.strip() for a in e.answers) for e in examples)
    assert all(e.question.strip() for e in examples)
    assert {e.split for e in data.train} <= {"train"} and {e.split for e in data.test} == {"test"}
