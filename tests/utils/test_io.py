"""Located errors for broken jsonl inputs, bad lines skipped and counted, atomic and resumable outputs."""

from __future__ import annotations

import pytest

from trice.utils.io import DataError, JsonlAppender, load_partial, read_jsonl, write_jsonl

FIELDS = {"id": str, "answers": (list, str)}


def test_read_jsonl_errors_name_file_line_field(tmp_path) -> None:
    p = tmp_path / "a.jsonl"
    cases = {
        b'{"id": "1", "answers": ["2"]}\n{"id": 2, "answers": ["2"]}\n': ":2: field 'id': expected string",
        b'{"id": "1", "answers": ["2"]}\n{"id": "2"\n': ":2: malformed JSON",
        b'{"id": "1"}\n': ":1: field 'answers': missing",
        b'{"id": "1", "answers": ["2"]}\n{"id": "1", "answers": ["3"]}\n': ":2: field 'id': duplicate",
        b'{"id": "1", "answers": ["\xff"]}\n': ":1: not UTF-8",
        b"[1, 2]\n": ":1: expected a JSON object",
        b"": "empty file",
    }
    for content, message in cases.items():
        p.write_bytes(content)
        with pytest.raises(DataError) as info:
            read_jsonl(p, FIELDS, unique="id")
        assert str(p) in str(info.value) and message in str(info.value), str(info.value)
    with pytest.raises(DataError, match="no such file"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_skip_bad_lines_counts_them(tmp_path) -> None:
    from trice.utils.io import ReadReport, iter_jsonl

    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"id": "1", "answers": ["2"]}\nnot json\n{"id": "3", "answers": ["2"]}\n')
    report = ReadReport()
    rows = list(iter_jsonl(p, FIELDS, skip_bad=True, report=report))
    assert [r["id"] for r in rows] == ["1", "3"] and report.kept == 2 and len(report.skipped) == 1


def test_write_jsonl_is_atomic_on_failure(tmp_path) -> None:
    p = tmp_path / "out.jsonl"
    write_jsonl(p, [{"id": "old"}])

    def rows():
        yield {"id": "new"}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(p, rows())
    assert read_jsonl(p) == [{"id": "old"}]
    assert [f.name for f in tmp_path.iterdir()] == ["out.jsonl"]


def test_load_partial_drops_torn_last_line(tmp_path) -> None:
    p = tmp_path / "gen.jsonl"
    with JsonlAppender(p) as out:
        out.write({"id": "a", "response": "1"})
        out.write({"id": "b", "response": "2"})
    with p.open("a") as fh:
        fh.write('{"id": "c", "resp')  # a kill mid-line
    done = load_partial(p)
    assert list(done) == ["a", "b"]
    with JsonlAppender(p) as out:
        out.write({"id": "c", "response": "3"})
    assert [r["id"] for r in read_jsonl(p)] == ["a", "b", "c"]
