"""The qa, lama and mlqa loaders on the real files and on small broken ones, and the data stage
for the new tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.data.loaders import LOADERS, loaders
from trice.data.lama import RELATION_QUESTIONS, cloze_question, load_trex, relation_question
from trice.data.mlqa import load_xquad, mlqa_input, translator_call, with_question, xquad_questions
from trice.data.qa import load_nq, load_triviaqa, load_webq, read_dpr_topics
from trice.data.schema import describe
from trice.utils.io import DataError
from trice.data.prepare import DataConfig, load_split, run_data
from trice.tools.base import parse_call


def _check_pool(data, dataset: str, task: str) -> None:
    examples = data.train + data.test
    ids = [e.id for e in examples]
    assert len(ids) == len(set(ids)), "ids must be unique"
    assert all(e.dataset == dataset and e.task == task for e in examples)
    assert all(e.answers and all(a.strip() for a in e.answers) for e in examples)
    assert all(e.question.strip() for e in examples)
    assert {e.split for e in data.train} <= {"train"} and {e.split for e in data.test} == {"test"}


# --- qa -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qa(data_dir: Path) -> dict:
    return {name: loader(data_dir) for name, loader in loaders("qa").items()}


def test_real_qa_counts_follow_the_manifest(qa: dict) -> None:
    assert (len(qa["webq"].train), len(qa["webq"].test)) == (2834 + 755 + 189, 2032)
    assert (len(qa["nq"].train), len(qa["nq"].test)) == (8757, 3610)
    assert (len(qa["triviaqa"].train), len(qa["triviaqa"].test)) == (8837, 11313)
    for name, data in qa.items():
        _check_pool(data, name, "qa")
        assert all(e.tool_call is None for e in data.train + data.test)  # labelling searches terms later


def test_real_qa_records(qa: dict) -> None:
    first = qa["webq"].train[0]
    assert (first.id, first.question, first.answers) == (
        "webq-wqr000001", "what character did natalie portman play in star wars?", ("Padmé Amidala",))
    assert qa["nq"].test[0].answers == ("14 December 1972 UTC", "December 1972")
    assert qa["nq"].train[0].id == "nq-train-0" and qa["nq"].train[0].answers == ("Linda Davis",)
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


# --- lama ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trex(data_dir: Path):
    return load_trex(data_dir)


def test_real_trex_counts_and_questions(trex, data_dir: Path) -> None:
    _check_pool(trex, "trex", "lama")
    assert len(trex.train) + len(trex.test) + trex.skipped == 22881  # every fact is used or counted
    assert trex.skipped < 0.1 * 22881
    for e in trex.train + trex.test:
        assert e.question.endswith(" ?") and "[MASK]" not in e.question
        assert not any(a.lower() in e.question.lower() for a in e.answers), e.id
        if e.tool_call is not None:
            call = parse_call(e.tool_call, ["QA"])
            assert call is not None and e.tool_call == f"QA({call.argument})" and call.argument.endswith("?")
    no_call = [e.id for e in trex.train + trex.test if e.tool_call is None]
    assert 0 < len(no_call) < 10  # subjects like "Sunn O)))" whose call would not parse back
    relations = {json.loads(line)["relation"] for line in
                 (data_dir / "lama_trex/lama_original_bertknn/relations.jsonl").read_text().splitlines() if line.strip()}
    assert relations <= set(RELATION_QUESTIONS)


def test_real_trex_example(trex) -> None:
    by_id = {e.id: e for e in trex.train + trex.test}
    peiper = by_id["trex-P19-6a9d91c1-eb9b-4142-8371-3c063ec40700"]
    assert peiper.question == "Allan Peiper (born 26 April 1960 in ?"
    assert peiper.answers == ("Alexandra", "Alexandra, Victoria")
    assert peiper.tool_call == "QA(Where was Allan Peiper born?)"


def test_real_trex_split_is_seeded(data_dir: Path, trex) -> None:
    assert load_trex(data_dir) == trex
    other = load_trex(data_dir, seed=1)
    assert {e.id for e in other.test} != {e.id for e in trex.test}
    assert abs(len(trex.test) / (len(trex.train) + len(trex.test)) - 0.3) < 0.02


def test_cloze_question_and_relation_question() -> None:
    assert cloze_question("Mongolia competed at the 1992 Winter Olympics in Albertville, [MASK].") == (
        "Mongolia competed at the 1992 Winter Olympics in Albertville, ?")
    assert cloze_question("[MASK] is a city in France.") is None  # nothing before the mask
    assert cloze_question("In the [MASK] of [MASK].") is None
    assert cloze_question("No mask here.") is None
    assert relation_question("P19", " Allan  Peiper ") == "Where was Allan Peiper born?"
    with pytest.raises(KeyError):
        relation_question("P9999", "x")


def _trex_dir(tmp_path: Path, facts: list[dict]) -> Path:
    root = tmp_path / "lama_trex" / "lama_original_bertknn"
    (root / "TREx").mkdir(parents=True)
    (root / "relations.jsonl").write_text("", encoding="utf-8")
    (root / "TREx" / "P19.jsonl").write_text("".join(json.dumps(f) + "\n" for f in facts), encoding="utf-8")
    return tmp_path


def _fact(uuid: str, sentence: str, relation: str = "P19", surface: str = "Paris") -> dict:
    return {"uuid": uuid, "sub_label": "Jo", "obj_label": "Paris", "predicate_id": relation,
            "evidences": [{"masked_sentence": sentence, "obj_surface": surface}]}


def test_trex_skips_unusable_facts_and_rejects_bad_ones(tmp_path: Path) -> None:
    facts = [
        _fact("a", "Jo was born in the city of [MASK]."),
        _fact("b", "[MASK] is where Jo was born."),  # nothing before the mask: skipped
        _fact("c", "Jo, who loved Paris, was born in [MASK]."),  # names the answer: skipped
    ]
    data = load_trex(_trex_dir(tmp_path, facts))
    assert [e.id for e in data.train + data.test] == ["trex-P19-a"] and data.skipped == 2
    bad = _trex_dir(tmp_path / "x", [_fact("a", "Jo was born in [MASK]."), _fact("b", "Jo lived in [MASK].", "P0")])
    with pytest.raises(DataError, match=r"P19.jsonl:2: field 'predicate_id': no question template"):
        load_trex(bad)
    dup = _trex_dir(tmp_path / "y", [_fact("a", "Jo was born in [MASK]."), _fact("a", "Jo lived in [MASK].")])
    with pytest.raises(DataError, match=r"P19.jsonl:2: field 'uuid': duplicate"):
        load_trex(dup)
    broken = _fact("a", "Jo was born in [MASK].")
    broken["evidences"][0].pop("obj_surface")
    with pytest.raises(DataError, match=r"P19.jsonl:1: field 'evidences\[1\].obj_surface': missing"):
        load_trex(_trex_dir(tmp_path / "z", [broken]))


# --- mlqa ---------------------------------------------------------------------------------------


def test_real_xquad_pairs_english_context_with_the_foreign_question(data_dir: Path) -> None:
    zh = load_xquad(data_dir, language="zh")
    _check_pool(zh, "xquad-zh", "mlqa")
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


# --- the data stage -----------------------------------------------------------------------------


def test_data_config_accepts_the_new_tasks() -> None:
    for task, datasets in (("qa", ["webq", "nq", "triviaqa"]), ("lama", ["trex"]), ("mlqa", ["xquad-zh", "xquad-de"])):
        DataConfig(task=task, datasets=datasets).validate()
    with pytest.raises(ValueError, match=r"datasets: unknown \['gsm8k'\] for task qa; known: webq, nq, triviaqa"):
        DataConfig(task="qa", datasets=["gsm8k"]).validate()
    with pytest.raises(ValueError, match="task: unknown 'chess'"):
        DataConfig(task="chess").validate()
    with pytest.raises(ValueError, match="datasets: none given"):
        DataConfig(task="lama", datasets=[]).validate()
    assert set(LOADERS) == {"math", "qa", "lama", "mlqa"}


def test_data_stage_writes_qa_files(tmp_path: Path, data_dir: Path) -> None:
    config = DataConfig(output_dir=str(tmp_path), task="qa", data_dir=str(data_dir),
                        datasets=["webq", "nq", "triviaqa"], n_train=4, n_test=3)
    splits = run_data(config)
    rows = [json.loads(line) for line in (tmp_path / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["dataset"] for r in rows] == ["webq"] * 3 + ["nq"] * 3 + ["triviaqa"] * 3
    assert splits["datasets"]["nq"]["test"] == 3610 and splits["datasets"]["nq"]["test_used"] == 3
    train, test, _ = load_split(config)
    assert len(train) == 12 and [e.id for e in test] == [r["id"] for r in rows]


def test_data_stage_lama_and_mlqa_describe(data_dir: Path) -> None:
    train, test, splits = load_split(DataConfig(task="mlqa", data_dir=str(data_dir), datasets=["xquad-zh"], n_test=5))
    assert len(test) == 5 and all(e.dataset == "xquad-zh" for e in train + test)
    assert splits["datasets"]["xquad-zh"]["with_tool_call"]["test"] == 1190 - splits["datasets"]["xquad-zh"]["train"]
    summary = describe({"trex": load_trex(data_dir)})["trex"]
    assert summary["with_tool_call"]["train"] == summary["train"] and summary["skipped"] > 0
