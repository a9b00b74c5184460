"""WebQuestions, NQ-open and TriviaQA as :class:`Example` records (task ``"qa"``).

The pools follow the data's MANIFEST:

* WebQuestions (brmson's cleaned copy): train = ``trainmodel`` + ``val`` + ``devtest``, test = ``test``.
* NQ-open (``nq``): the official ``NQ-open.dev.jsonl`` split into train and test by hashed id. The
  offline WikiSearch corpus holds the gold passage of 73.5% of these questions (its
  ``nq_open_oracle`` part comes from them), so training and test questions see the same corpus.
* NQ-open (``nq-dpr``): DPR's ``topics.dpr.nq.dev.txt`` (drawn from NQ-open's train split, whose own
  file is not here) as training pool and ``NQ-open.dev.jsonl`` as test, the split of the committed
  MIX and SPLIT benchmarks. The corpus then holds the gold passage of 73.5% of the test questions and
  of none of the training questions: stage I learns WikiSearch on questions its corpus cannot answer.
* TriviaQA (unfiltered, as DPR ships it): training pool ``topics.dpr.trivia.dev.txt``, test
  ``topics.dpr.trivia.test.txt``.

No example carries a reference tool call: a ``WikiSearch(term)`` call is only worth training on
once executing it surfaces a gold answer, which the labelling stage checks with the real retriever.
Ids are the dataset's own (WebQuestions ``qId``) or the 0-based record number in its file
(``nq-test-17``), so they are stable for the shipped files.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from trice.core.paths import require_file
from trice.core.records import check_unique, json_array_records, nonblank_lines
from trice.core.schema import Example, LoadedDataset, split_seeded
from trice.utils.io import DataError, check_fields, read_jsonl

TASK = "qa"
WEBQ_TRAIN_FILES = ("trainmodel", "val", "devtest")
WEBQ_FIELDS = {"qId": str, "qText": str, "answers": (list, str)}
NQ_FIELDS = {"question": str, "answer": (list, str)}


def clean_answers(answers: list[str], path: Path, line: int | None, field: str) -> tuple[str, ...]:
    """The non-blank answers, stripped and de-duplicated in order; a record without one is bad data
    (the metric could never count it right)."""
    kept = tuple(dict.fromkeys(a.strip() for a in answers if a.strip()))
    if not kept:
        raise DataError(path, line, field, "no non-blank answer")
    return kept


def _question(text: str, path: Path, line: int | None, field: str) -> str:
    question = " ".join(text.split())
    if not question:
        raise DataError(path, line, field, "empty question")
    return question


# ---------------------------------------------------------------------------------------------
# WebQuestions


def _webq_file(path: Path, split: str, seen: set[str]) -> list[Example]:
    examples = []
    for _, line, record in json_array_records(path):
        check_fields(record, WEBQ_FIELDS, path, line)
        check_unique(seen, record["qId"], path, line, "qId")
        examples.append(
            Example(
                id=f"webq-{record['qId']}",
                dataset="webq",
                task=TASK,
                question=_question(record["qText"], path, line, "qText"),
                answers=clean_answers(record["answers"], path, line, "answers"),
                split=split,
            )
        )
    return examples


def load_webq(data_dir: str | Path, *, seed: int = 0, test_fraction: float = 0.3) -> LoadedDataset:
    """WebQuestions' shipped split (``seed`` and ``test_fraction`` do not apply)."""
    root = Path(data_dir) / "webquestions"
    seen: set[str] = set()  # qIds are unique across all four files: a repeat means a broken copy
    train = [e for name in WEBQ_TRAIN_FILES for e in _webq_file(require_file(root / f"{name}.json", "WebQuestions"), "train", seen)]
    test = _webq_file(require_file(root / "test.json", "WebQuestions"), "test", seen)
    return LoadedDataset(train=train, test=test, split_method="official (train = trainmodel+val+devtest)")


# ---------------------------------------------------------------------------------------------
# DPR topic files (NQ training pool, TriviaQA) and NQ-open


def read_dpr_topics(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, question, answers)`` per line of a DPR topics file: ``question<TAB>['a', 'b']``.

    Some TriviaQA lines quote their fields CSV-style (a doubled ``""`` inside), so the line is split
    by :mod:`csv` and the answer list is read with :func:`ast.literal_eval`, which parses Python
    literals and runs nothing.
    """
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        try:
            for fields in reader:
                line = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if len(fields) != 2:
                    raise DataError(path, line, None, f"expected question<TAB>answers, got {len(fields)} fields")
                try:
                    answers = ast.literal_eval(fields[1])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    raise DataError(path, line, "answers", f"not a Python list literal: {fields[1][:60]!r}") from None
                if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                    raise DataError(path, line, "answers", f"expected a list of strings, got {fields[1][:60]!r}")
                yield line, fields[0], answers
        except csv.Error as err:
            raise DataError(path, reader.line_num, None, f"malformed line ({err})") from None
        except UnicodeDecodeError as err:
            raise DataError(path, None, None, f"not UTF-8 (byte {err.start})") from None


def _dpr_file(path: Path, dataset: str, split: str, id_prefix: str | None = None) -> list[Example]:
    examples = []
    for index, (line, question, answers) in enumerate(read_dpr_topics(path)):
        examples.append(
            Example(
                id=f"{id_prefix or dataset}-{split}-{index}",
                dataset=dataset,
                task=TASK,
                question=_question(question, path, line, "question"),
                answers=clean_answers(answers, path, line, "answers"),
                split=split,
            )
        )
    if not examples:
        raise DataError(path, None, None, "empty file: no questions")
    return examples


def _nq_open_file(path: Path, split: str, dataset: str) -> list[Example]:
    rows = read_jsonl(path, NQ_FIELDS)
    return [
        Example(
            id=f"nq-{split}-{index}",
            dataset=dataset,
            task=TASK,
            question=_question(row["question"], path, line, "question"),
            answers=clean_answers(row["answer"], path, line, "answer"),
            split=split,
        )
        for index, (line, row) in enumerate(zip(nonblank_lines(path), rows))
    ]


def load_nq(data_dir: str | Path, *, seed: int = 0, test_fraction: float = 0.3) -> LoadedDataset:
    """NQ-open dev, split into train and test by hashed id: both sides drawn from the questions whose
    gold passages the offline WikiSearch corpus holds (for 73.5% of them)."""
    pool = require_file(Path(data_dir) / "nq_open" / "NQ-open.dev.jsonl", "NQ-open")
    data = split_seeded(_nq_open_file(pool, "dev", "nq"), seed, test_fraction)
    return replace(data, split_method=f"NQ-open dev, {data.split_method}")


def load_nq_dpr(data_dir: str | Path, *, seed: int = 0, test_fraction: float = 0.3) -> LoadedDataset:
    """NQ-open with DPR's NQ dev topics (from NQ-open train) as training pool and NQ-open dev as test."""
    root = Path(data_dir)
    train = require_file(root / "dpr_topics_anserini" / "topics.dpr.nq.dev.txt", "NQ training pool")
    test = require_file(root / "nq_open" / "NQ-open.dev.jsonl", "NQ-open test")
    return LoadedDataset(
        # ids as the committed benchmarks drew them ("nq-train-7"), so their subsamples are the same questions
        train=_dpr_file(train, "nq-dpr", "train", id_prefix="nq"),
        test=_nq_open_file(test, "test", "nq-dpr"),
        split_method="train pool = DPR nq.dev topics (from NQ-open train), test = NQ-open dev",
    )


def load_triviaqa(data_dir: str | Path, *, seed: int = 0, test_fraction: float = 0.3) -> LoadedDataset:
    """TriviaQA (unfiltered): DPR's dev topics as training pool, its test topics as test."""
    root = Path(data_dir) / "dpr_topics_anserini"
    train = require_file(root / "topics.dpr.trivia.dev.txt", "TriviaQA training pool")
    test = require_file(root / "topics.dpr.trivia.test.txt", "TriviaQA test")
    return LoadedDataset(
        train=_dpr_file(train, "triviaqa", "train"),
        test=_dpr_file(test, "triviaqa", "test"),
        split_method="train pool = DPR trivia dev topics, test = DPR trivia test topics",
    )


QA_LOADERS = {"webq": load_webq, "nq": load_nq, "nq-dpr": load_nq_dpr, "triviaqa": load_triviaqa}
