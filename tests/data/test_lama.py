"""The lama loader (T-REx) on the real files and on small broken ones, and its cloze and relation
questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.pools import check_pool
from trice.data.lama import RELATION_QUESTIONS, cloze_question, load_trex, relation_question
from trice.utils.io import DataError
from trice.core.tools import parse_call


@pytest.fixture(scope="module")
def trex(data_dir: Path):
    return load_trex(data_dir)


def test_real_trex_counts_and_questions(trex, data_dir: Path) -> None:
    check_pool(trex, "trex", "lama")
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
    relations = {
        json.loads(line)["relation"] for line in (data_dir / "lama_trex/lama_original_bertknn/relations.jsonl").read_text().splitlines() if line.strip()
    }
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
        "Mongolia competed at the 1992 Winter Olympics in Albertville, ?"
    )
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
    return {
        "uuid": uuid,
        "sub_label": "Jo",
        "obj_label": "Paris",
        "predicate_id": relation,
        "evidences": [{"masked_sentence": sentence, "obj_surface": surface}],
    }


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
