"""The mlqa loader (XQuAD) on the real files and on small broken ones, and the mlqa input helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.pools import check_pool
from trice.data.mlqa import load_xquad, mlqa_input, translator_call, with_question, xquad_questions
from trice.utils.io import DataError


def test_real_xquad_pairs_english_context_with_the_foreign_question(data_dir: Path) -> None:
    zh = load_xquad(data_dir, language="zh")
    check_pool(zh, "xquad-zh", "mlqa")
    assert len(zh.train) + len(zh.test) == 1190 and len(zh.test) >= 300
    first = {e.id: e for e in zh.train + zh.test}["xquad-zh-56beb4343aeaaa14008c925b"]
    assert first.question.startswith("Context: The Panthers defense gave up just 308 points")
    assert first.question.endswith("\nQuestion: 黑豹队的防守丢了多少分？")
    assert first.answers == ("308",) and first.tool_call == "translator(黑豹队的防守丢了多少分？)"
    assert all(e.tool_call is not None for e in zh.train + zh.test)
    english = xquad_questions(data_dir, "en")  # the aligned references bench/translator.py scores against
    assert len(english) == 1190 and english["56beb4343aeaaa14008c925b"] == "How many points did the Panthers defense surrender?"


def test_real_xquad_split_is_by_question_across_languages(data_dir: Path) -> None:
    zh, de = load_xquad(data_dir, language="zh"), load_xquad(data_dir, language="de")
    assert {e.id.split("-")[-1] for e in zh.test} == {e.id.split("-")[-1] for e in de.test}
    assert load_xquad(data_dir, language="zh") == zh
    assert {e.id for e in load_xquad(data_dir, language="zh", seed=3).test} != {e.id for e in zh.test}
    with pytest.raises(ValueError, match="unknown XQuAD language 'fr'"):
        load_xquad(data_dir, language="fr")


def test_xquad_errors_are_located(tmp_path: Path) -> None:
    root = tmp_path / "xquad"
    root.mkdir()
    qa = {"id": "q1", "question": "Who?", "answers": [{"text": "Jo", "answer_start": 0}]}
    doc = {"data": [{"paragraphs": [{"context": "Jo did it.", "qas": [qa]}]}]}
    (root / "xquad.en.json").write_text(json.dumps(doc), encoding="utf-8")
    zh = {"data": [{"paragraphs": [{"context": "...", "qas": [dict(qa, id="q2", question="谁？")]}]}]}
    (root / "xquad.zh.json").write_text(json.dumps(zh), encoding="utf-8")
    with pytest.raises(DataError, match=r"xquad.zh.json: field 'data\[0\].paragraphs\[0\].qas\[0\].id': 'q2' has no English"):
        load_xquad(tmp_path)
    zh["data"][0]["paragraphs"][0]["qas"][0].pop("question")
    (root / "xquad.zh.json").write_text(json.dumps(zh), encoding="utf-8")
    with pytest.raises(DataError, match=r"field 'data\[0\].paragraphs\[0\].qas\[0\].question': missing"):
        load_xquad(tmp_path)


def test_mlqa_input_helpers() -> None:
    text = mlqa_input("Jo  did\nit.", "谁 做的？")
    assert text == "Context: Jo did it.\nQuestion: 谁 做的？"
    assert with_question(text, "Who did it?") == "Context: Jo did it.\nQuestion: Who did it?"
    with pytest.raises(ValueError, match="not an MLQA input"):
        with_question("Who?", "x")
    assert translator_call("谁（在哪里）？") == "translator(谁（在哪里）？)"
    assert translator_call("who (really?") is None  # would not parse back to the same question
