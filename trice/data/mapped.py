"""Your own questions from a recipe, no Python: a JSONL, JSON or CSV file, or a Hugging Face hub
dataset, with a mapping of its columns onto trice's schema (as LLaMA-Factory's ``dataset_info.json``
maps a dataset's columns).

.. code-block:: yaml

    data:
      task: math
      train: my_train.jsonl                  # or .json (an array of records), .csv, or a hub name
      test: my_test.jsonl                    # unset: a seeded test_fraction split of train
      columns: {question: problem, answers: solution}

A mapped field is read from its column; a field not mapped, from the column of its own name.
``question`` and ``answers`` are required (``answers`` a list, or one string or number); ``id`` and
``tool_call`` are optional (an id not given is ``<dataset>-<split>-<record number>``); every row's
``task`` is ``data.task`` and its ``dataset`` the run's one dataset name (``data.datasets``'s one
entry, else the train source's name). Every record is checked when the recipe is planned; a bad one
is one line naming the file, the line (a hub dataset: the record number), the field and its column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from trice.core.records import check_unique, json_array_records, nonblank_lines
from trice.core.schema import Example, LoadedDataset, split_seeded
from trice.utils.io import DataError, read_jsonl

FILE_SUFFIXES = (".jsonl", ".json", ".csv")


class SourceUnavailable(DataError):
    """A hub dataset that could not be loaded now (offline, no such dataset or split, no access):
    planning a recipe warns and goes on, the data stage stops naming it."""


FIELDS = ("id", "question", "answers", "tool_call")
REQUIRED = ("question", "answers")


def is_file_source(source: str) -> bool:
    """Whether a ``train``/``test`` value names a file (by its suffix) rather than a hub dataset."""
    return Path(source).suffix.lower() in FILE_SUFFIXES


def source_name(source: str) -> str:
    """The dataset name a source gives its rows by default: a file's stem, a hub dataset's last part."""
    if is_file_source(source):
        return Path(source).stem
    return source.split(":")[0].rstrip("/").split("/")[-1]


def hub_split(source: str, default: str) -> tuple[str, str]:
    """(hub name, split) of ``org/name`` (the ``default`` split) or ``org/name:split``."""
    name, _, split = source.partition(":")
    return name, split or default


def _file_records(path: Path) -> Iterator[tuple[int, int, Any]]:
    """(record number, line, record) of a JSONL, JSON array or CSV file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(path, None, None, "no such file")
    if suffix == ".json":
        yield from json_array_records(path)
    elif suffix == ".jsonl":
        yield from ((n, line, row) for n, (line, row) in enumerate(zip(nonblank_lines(path), read_jsonl(path)), start=1))
    else:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            for number, row in enumerate(reader, start=1):
                yield number, reader.line_num, row


def _hub_records(source: str, subset: str | None, split: str) -> tuple[str, Iterator[tuple[int, int, Any]]]:
    """(where, records) of a hub dataset's split, loaded (and cached) by datasets; each record's
    number stands for its line."""
    import datasets  # only for hub sources: a file needs none of it

    name, split = hub_split(source, split)
    where = f"{name}[{split}]"
    try:
        loaded = datasets.load_dataset(name, subset or None, split=split)
    except Exception as err:  # noqa: BLE001 - offline, no such dataset or split, no access: all one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceUnavailable(where, None, None, f"cannot load ({type(err).__name__}: {reason[:200]})") from None
    return where, ((n, n, row) for n, row in enumerate(loaded, start=1))


def _value(record: Mapping[str, Any], field: str, columns: Mapping[str, str], where: str, line: int) -> Any:
    column = columns.get(field, field)
    named = f"{field}" if column == field else f"{field} (column '{column}')"
    if column not in record:
        if field in REQUIRED:
            raise DataError(where, line, named, f"missing; the record has {', '.join(map(str, record)) or 'no columns'}")
        return None
    return record[column]


def _answers(value: Any, where: str, line: int, named: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
        raise DataError(where, line, named, f"expected a string, a number or a non-empty list of them, got {json.dumps(value)[:80]}")
    answers = tuple(str(v).strip() for v in items)
    if not all(answers):
        raise DataError(where, line, named, "an empty answer: a question needs a gold answer to judge by")
    return answers


def _example(record: Any, columns: Mapping[str, str], where: str, line: int, number: int, task: str, dataset: str, split: str) -> Example:
    if not isinstance(record, Mapping):
        raise DataError(where, line, None, f"expected a record (an object), got {type(record).__name__}")
    named = {f: f if columns.get(f, f) == f else f"{f} (column '{columns[f]}')" for f in FIELDS}
    question = _value(record, "question", columns, where, line)
    if not isinstance(question, str) or not question.strip():
        raise DataError(where, line, named["question"], f"expected non-empty text, got {json.dumps(question)[:80]}")
    answers = _answers(_value(record, "answers", columns, where, line), where, line, named["answers"])
    raw_id = _value(record, "id", columns, where, line)
    if raw_id is not None and (not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or not str(raw_id).strip()):
        raise DataError(where, line, named["id"], f"expected a string or an integer, got {json.dumps(raw_id)[:80]}")
    call = _value(record, "tool_call", columns, where, line)
    if call is not None and not isinstance(call, str):
        raise DataError(where, line, named["tool_call"], f"expected text or null, got {json.dumps(call)[:80]}")
    example_id = str(raw_id).strip() if raw_id is not None else f"{dataset}-{split}-{number}"
    return Example(example_id, dataset, task, question.strip(), answers, call or None, split)


def read_examples(
    source: str, split: str, *, task: str, dataset: str, columns: Mapping[str, str], subset: str | None = None, ids: set[str] | None = None
) -> list[Example]:
    """Every record of ``source`` (a file path or a hub dataset) as an Example of ``split``; ``ids``:
    the ids taken so far (a repeat is an error at the record repeating it)."""
    if is_file_source(source):
        where, records = source, _file_records(Path(source))
    else:
        where, records = _hub_records(source, subset, split)
    seen = set() if ids is None else ids
    examples = []
    for number, line, record in records:
        example = _example(record, columns, where, line, number, task, dataset, split)
        check_unique(seen, example.id, Path(where), line, "id" if "id" not in columns else f"id (column '{columns['id']}')")
        examples.append(example)
    if not examples:
        raise DataError(where, None, None, "no records")
    return examples


def load_mapped(
    train: str, test: str, *, task: str, dataset: str, columns: Mapping[str, str], seed: int, test_fraction: float, subset: str | None = None
) -> LoadedDataset:
    """Both pools from the sources: the given train and test, or train split by a seeded hash."""
    ids: set[str] = set()
    pools = {
        split: read_examples(source, split, task=task, dataset=dataset, columns=columns, subset=subset, ids=ids)
        for split, source in (("train", train), ("test", test))
        if source
    }
    if not test:
        return split_seeded(pools["train"], seed, test_fraction)
    return LoadedDataset(pools["train"], pools["test"], split_method="the given train and test sets")
