"""The T-REx evidence corpus of the QA tool: masked sentences restored, repeats kept once, the corpus
file written once per source content, located errors, and the real data's evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.retrieval import Passage
from trice.retrieval.trex import restored, trex_corpus_file, trex_passages


def _fact(uuid: str, subject: str, *evidences: tuple[str, str]) -> dict:
    return {
        "uuid": uuid,
        "sub_label": subject,
        "obj_label": "x",
        "predicate_id": "P19",
        "evidences": [{"masked_sentence": m, "obj_surface": o} for m, o in evidences],
    }


def test_trex_evidence_passages_restore_the_object(tmp_path: Path) -> None:
    assert restored("born in [MASK], Australia ([MASK])", "Alexandra") == "born in Alexandra, Australia (Alexandra)"
    root = tmp_path / "lama_trex" / "lama_original_bertknn" / "TREx"
    root.mkdir(parents=True)
    facts = [
        _fact("u1", "Allan  Peiper", ("Allan Peiper (born in [MASK], Australia).", "Alexandra"), ("Allan Peiper (born in [MASK], Australia).", "Alexandra")),
        _fact("u2", "Paul Mounsey", ("NahooToo is an album by [MASK] musician Paul Mounsey.", "Scottish")),
    ]
    (root / "P19.jsonl").write_text("".join(json.dumps(f) + "\n" for f in facts))
    passages = list(trex_passages(sorted(root.glob("P*.jsonl"))))
    assert passages == [
        Passage("trex:u1#1", "Allan Peiper", "Allan Peiper (born in Alexandra, Australia)."),  # the repeat is kept once
        Passage("trex:u2#1", "Paul Mounsey", "NahooToo is an album by Scottish musician Paul Mounsey."),
    ]
    out = trex_corpus_file(tmp_path, cache=tmp_path / "cache")
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["trex:u1#1", "trex:u2#1"]
    stamp = out.stat().st_mtime_ns
    assert trex_corpus_file(tmp_path, cache=tmp_path / "cache") == out and out.stat().st_mtime_ns == stamp  # written once
    (root / "P20.jsonl").write_text(json.dumps(_fact("u3", "X", ("[MASK] is", "Y"))) + "\n")
    assert trex_corpus_file(tmp_path, cache=tmp_path / "cache") != out  # new source content, new file
    (root / "P20.jsonl").write_text(json.dumps({"uuid": "u4", "sub_label": "X", "evidences": [{"masked_sentence": 3}]}) + "\n")
    with pytest.raises(Exception, match=r"P20.jsonl:1: field 'evidences\[1\]\.masked_sentence'"):
        list(trex_passages(sorted(root.glob("P*.jsonl"))))


def test_trex_evidence_of_the_real_data(data_dir: Path) -> None:
    files = sorted((data_dir / "lama_trex" / "lama_original_bertknn" / "TREx").glob("P*.jsonl"))
    passages = list(trex_passages(files))
    assert len(passages) > 80_000 and len({p.id for p in passages}) == len(passages)
    assert not any("[MASK]" in p.text for p in passages)
    assert any(p.text.startswith("Allan Peiper (born 26 April 1960 in Alexandra, Victoria, Australia)") for p in passages)
