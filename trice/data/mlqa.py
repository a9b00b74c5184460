"""Cross-lingual QA as :class:`Example` records (task ``"mlqa"``), from XQuAD.

MLQA itself is not in the data directory; XQuAD stands in for it (see the data's MANIFEST): the
same SQuAD paragraphs and questions in several languages, aligned by question id. An example pairs
the **English** context with the question in another language, MLQA's cross-lingual setting, and
takes the English answers as gold. The input is TRICE's ``Context: ...\\nQuestion: ...``.

Datasets are ``xquad-<lang>`` for the languages in :data:`XQUAD_LANGUAGES` (the paper's setting is
Chinese, ``xquad-zh``). XQuAD ships no training split: questions are split by a hash of their
XQuAD id (:func:`trice.core.schema.split_seeded` keyed on it), so a question is on the same side in
every language and a model trained on several languages never sees a test question in another.

The reference tool call is ``translator(<the question>)``, as in the paper.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from trice.core.paths import require_file
from trice.core.schema import Example, LoadedDataset, reference_call, split_seeded
from trice.utils.io import DataError, check_fields, read_json

TASK = "mlqa"
TOOL = "translator"
XQUAD_LANGUAGES: dict[str, str] = {"zh": "Chinese", "vi": "Vietnamese", "de": "German", "es": "Spanish", "hi": "Hindi", "ar": "Arabic"}
QA_FIELDS = {"id": str, "question": str, "answers": (list, dict)}


def mlqa_input(context: str, question: str) -> str:
    """The model's input for one question, as in TRICE's MLQA prompts."""
    return f"Context: {' '.join(context.split())}\nQuestion: {' '.join(question.split())}"


def with_question(model_input: str, question: str) -> str:
    """An MLQA input with its question replaced (by the translator's English, for the model's second
    reading); ValueError when ``model_input`` has no ``\nQuestion: `` line."""
    head, sep, _ = model_input.rpartition("\nQuestion: ")
    if not sep:
        raise ValueError("not an MLQA input: no '\\nQuestion: ' line")
    return f"{head}{sep}{' '.join(question.split())}"


def translator_call(question: str) -> str | None:
    """``translator(<question>)``, or None when it would not parse back (see :func:`reference_call`)."""
    return reference_call(TOOL, question)


def _paragraphs(path: Path) -> list[tuple[str, str, list[tuple[str, dict[str, Any]]]]]:
    """``(context, where, [(where, qa), ...])`` per paragraph, ``where`` a JSON path for errors."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(path, None, "data", "expected a SQuAD-style object with a 'data' list")
    out = []
    for a, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(path, None, f"data[{a}].paragraphs", "expected a list")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise DataError(path, None, f"{where}.context", "expected a string")
            qas = paragraph.get("qas")
            if not isinstance(qas, list):
                raise DataError(path, None, f"{where}.qas", "expected a list")
            checked = []
            for q, qa in enumerate(qas):
                try:
                    check_fields(qa, QA_FIELDS, path, None)
                except DataError as err:
                    raise DataError(path, None, f"{where}.qas[{q}].{err.field or ''}".rstrip("."), err.problem) from None
                checked.append((f"{where}.qas[{q}]", qa))
            out.append((paragraph["context"], where, checked))
    return out


def _english(path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Question id -> (English context, English answers)."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for context, _, qas in _paragraphs(path):
        for where, qa in qas:
            texts = [a.get("text") for a in qa["answers"]]
            if not all(isinstance(t, str) for t in texts):
                raise DataError(path, None, f"{where}.answers", "every answer needs a string 'text'")
            answers = tuple(dict.fromkeys(" ".join(t.split()) for t in texts if t.strip()))
            if not answers:
                raise DataError(path, None, f"{where}.answers", "no non-blank answer")
            if qa["id"] in found:
                raise DataError(path, None, f"{where}.id", f"duplicate value {qa['id']!r}")
            found[qa["id"]] = (context, answers)
    return found


def xquad_questions(data_dir: str | Path, language: str) -> dict[str, str]:
    """XQuAD question id -> question in ``language`` (``en`` included): the aligned questions
    bench/translator.py scores translations with."""
    path = require_file(Path(data_dir) / "xquad" / f"xquad.{language}.json", f"XQuAD ({language})")
    return {qa["id"]: " ".join(qa["question"].split()) for _, _, qas in _paragraphs(path) for _, qa in qas}


def load_xquad(data_dir: str | Path, *, language: str = "zh", seed: int = 0, test_fraction: float = 0.3) -> LoadedDataset:
    """English context + ``language`` question for each of XQuAD's questions, split by question id."""
    if language not in XQUAD_LANGUAGES:
        raise ValueError(f"unknown XQuAD language {language!r}; choose from {', '.join(XQUAD_LANGUAGES)}")
    root = Path(data_dir) / "xquad"
    english = _english(require_file(root / "xquad.en.json", "XQuAD (English)"))
    path = require_file(root / f"xquad.{language}.json", f"XQuAD ({XQUAD_LANGUAGES[language]})")
    dataset = f"xquad-{language}"
    examples, xquad_id, seen = [], {}, set()
    for _, _, qas in _paragraphs(path):
        for where, qa in qas:
            qid, question = qa["id"], " ".join(qa["question"].split())
            if qid not in english:
                raise DataError(path, None, f"{where}.id", f"{qid!r} has no English question in {root / 'xquad.en.json'}")
            if qid in seen:
                raise DataError(path, None, f"{where}.id", f"duplicate value {qid!r}")
            if not question:
                raise DataError(path, None, f"{where}.question", "empty question")
            seen.add(qid)
            context, answers = english[qid]
            example = Example(
                id=f"{dataset}-{qid}", dataset=dataset, task=TASK, question=mlqa_input(context, question), answers=answers, tool_call=translator_call(question)
            )
            xquad_id[example.id] = qid
            examples.append(example)
    loaded = split_seeded(examples, seed, test_fraction, key=lambda e: xquad_id[e.id])
    return replace(loaded, split_method=f"{loaded.split_method}, keyed on the XQuAD question id")


MLQA_LOADERS = {f"xquad-{lang}": partial(load_xquad, language=lang) for lang in XQUAD_LANGUAGES}
