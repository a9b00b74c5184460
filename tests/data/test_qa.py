"""The qa loaders (WebQuestions, NQ, TriviaQA) on the real files and on small broken ones."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.helpers.pools import check_pool
from trice.data.loaders import loaders
from trice.data.qa import load_nq, load_triviaqa, load_webq, read_dpr_topics
from trice.utils.io import DataError


@pytest.fixture(scope="module")
def qa(data_dir: Path) -> dict:
    return {name: loader(data_dir) for name, loader in loaders("qa").items()}


def test_real_qa_counts_follow_the_manifest(qa: dict) -> None:
    assert (len(qa["webq"].train), len(qa["webq"].test)) == (2834 + 755 + 189, 2032)
    assert (len(qa["nq"].train), len(qa["nq"].test)) == (2523, 1087)  # NQ-open dev's 3,610, split 70/30
    assert (len(qa["nq-dpr"].train), len(qa["nq-dpr"].test)) == (8757, 3610)
    assert (len(qa["triviaqa"].train), len(qa["triviaqa"].test)) == (8837, 11313)
    for name, data in qa.items():
        check_pool(data, name, "qa")
        assert all(e.tool_call is None for e in data.train + data.test)  # labelling searches terms later


def test_real_qa_records(qa: dict) -> None:
    first = qa["webq"].train[0]
    assert (first.id, first.question, first.answers) == ("webq-wqr000001", "what character did natalie portman play in star wars?", ("Padmé Amidala",))
    assert qa["nq-dpr"].test[0].answers == ("14 December 1972 UTC", "December 1972")
    assert qa["nq-dpr"].train[0].id == "nq-train-0" and qa["nq-dpr"].train[0].answers == ("Linda Davis",)
    dev = {e.id: e for e in qa["nq"].train + qa["nq"].test}  # the same questions as nq-dpr's test, ids by line
    assert dev["nq-dev-0"].answers == ("14 December 1972 UTC", "December 1972") and len(dev) == 3610


def test_nq_train_and_test_see_the_same_corpus(qa: dict, data_dir: Path) -> None:
    """The WikiSearch corpus's NQ passages are the gold passages of NQ-open dev questions: drawn from
    that one pool, training and test questions are equally likely to have theirs in the corpus."""
    with gzip.open(data_dir / "wiki_corpus" / "nq_open_oracle" / "nq-open-oracle.jsonl.gz", "rt", encoding="utf-8") as f:
        covered = {json.loads(line)["question"].strip().lower() for line in f}
    share = {s: sum(e.question.strip().lower() in covered for e in getattr(qa["nq"], s)) / len(getattr(qa["nq"], s)) for s in ("train", "test")}
    assert 0.70 < share["train"] < 0.77 and 0.70 < share["test"] < 0.77
    assert not any(e.question.strip().lower() in covered for e in qa["nq-dpr"].train)
    # a CSV-quoted TriviaQA line: the doubled quote inside is one quote once read
    boxing = next(e for e in qa["triviaqa"].train if e.question == "Ezzard Charles was a world champion in which sport?")
    assert "Boxing" in boxing.answers and "Gentleman's sport" in boxing.answers


def test_real_qa_loads_are_deterministic(data_dir: Path, qa: dict) -> None:
    again = load_triviaqa(data_dir)
    assert [e.id for e in again.test] == [e.id for e in qa["triviaqa"].test]
    assert again.test == qa["triviaqa"].test


def test_dpr_topics_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "topics.txt"
    path.write_text("q1\t['a']\nq2\tnot a list\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"topics.txt:2: field 'answers': not a Python list literal"):
        list(read_dpr_topics(path))
    path.write_text("q1\t['a']\n\nq3\t[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"topics.txt:3: field 'answers': expected a list of strings"):
        list(read_dpr_topics(path))
    path.write_text("q1\t['a']\tthird\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"topics.txt:1: expected question<TAB>answers, got 3 fields"):
        list(read_dpr_topics(path))
    path.write_text('"say ""hi"""\t"[\'a\', ""b\'s""]"\n', encoding="utf-8")
    assert list(read_dpr_topics(path)) == [(1, 'say "hi"', ["a", "b's"])]


def test_qa_loaders_reject_bad_records(tmp_path: Path) -> None:
    root = tmp_path / "webquestions"
    root.mkdir()
    good = [{"qId": "q1", "qText": "who?", "answers": ["A"]}]
    for name in ("trainmodel", "val", "test"):
        (root / f"{name}.json").write_text(json.dumps(good if name == "trainmodel" else []), encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="devtest.json"):
        load_webq(tmp_path)
    (root / "devtest.json").write_text('[\n {"qId": "q2", "qText": "what?", "answers": [" "]}\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"devtest.json:2: field 'answers': no non-blank answer"):
        load_webq(tmp_path)
    (root / "devtest.json").write_text('[\n {"qId": "q1", "qText": "what?", "answers": ["B"]}\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"devtest.json:2: field 'qId': duplicate"):
        load_webq(tmp_path)
    nq = tmp_path / "nq_open"
    nq.mkdir()
    (tmp_path / "dpr_topics_anserini").mkdir()
    (tmp_path / "dpr_topics_anserini" / "topics.dpr.nq.dev.txt").write_text("q\t['a']\n", encoding="utf-8")
    (nq / "NQ-open.dev.jsonl").write_text('{"question": "q", "answer": ["a"]}\n\n{"question": "r", "answer": "b"}\n')
    with pytest.raises(DataError, match=r"NQ-open.dev.jsonl:3: field 'answer': expected list of string"):
        load_nq(tmp_path)
