"""No command destroys a file it did not write: output paths go through one owner
(:func:`trice.utils.outputs.claim_output`), so a careless ``--output`` costs an error line, never data.

* an existing file that is not trice's output of the same input is refused, byte for byte
  untouched, unless ``--overwrite`` is given; the output may never be the input;
* a torn last line of trice's own partial output is cut only once work resumes, so a command that
  fails first (an unloadable model) leaves the file as it was;
* FIFOs, devices and symbolic links are refused; an atomic write keeps the file's mode.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from trice.cli import main
from trice.utils.io import JsonlAppender, OutputError, write_json, write_jsonl
from trice.utils.outputs import claim_output

NO_MODEL = "/nonexistent/model-dir"  # generate fails loading it, after the output was claimed


def _example(i: int) -> dict:
    return {"id": f"e{i}", "dataset": "svamp", "task": "math", "question": f"What is {i} + 1?", "answers": [str(i + 1)]}


def _evaluate_row(i: int) -> dict:
    return {"id": f"r{i}", "dataset": "gsm8k", "answers": ["72"], "response": f"calculator(48+{24 + i % 2})"}


def _label_row(i: int) -> dict:
    return {"id": f"r{i}", "dataset": "gsm8k", "task": "math", "question": f"question {i}", "answers": ["72"],
            "tool_call": "calculator(48+24)", "response": "The answer is 72.", "correct": i % 2 == 0}  # fmt: skip


def _score_row(i: int) -> dict:
    return {"id": f"r{i}", "answers": ["72"], "responses": ["calculator(48+24)", "The answer is 72.", f"It is {i}."]}


ROWS = {"evaluate": _evaluate_row, "label": _label_row, "score": _score_row, "generate": _example}
FOREIGN = {
    "pretty-printed JSON": b'{\n  "name": "mine",\n  "values": [1, 2, 3]\n}\n',
    "JSONL of other ids with a comment": b'{"id": "x1", "v": 1}\n# a comment\n{"id": "x2", "v": 2}\n',
    "last line without newline": b'{"id": "x1", "v": 1}\n{"id": "x2", "v": 2}',
    "CSV": b"id,value\n1,2\n",
}


def _run(command: str, src: Path, out: Path, *extra: str) -> int:
    model = ["--model", NO_MODEL] if command == "generate" else []
    return main([command, "--input", str(src), "--output", str(out), *model, *extra])


def _error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err), err
    return err[-1]


@pytest.mark.parametrize("content", list(FOREIGN))
@pytest.mark.parametrize("command", list(ROWS))
def test_a_file_trice_did_not_write_is_refused_untouched(tmp_path, capsys, command, content) -> None:
    src, out = tmp_path / "input.jsonl", tmp_path / "mine.txt"
    write_jsonl(src, [ROWS[command](i) for i in range(3)])
    out.write_bytes(FOREIGN[content])
    assert _run(command, src, out) == 2
    line = _error_line(capsys)
    assert line.startswith(f"trice {command}: error: {out}: exists and is not trice's output of {src}") and "--overwrite" in line
    assert out.read_bytes() == FOREIGN[content]


@pytest.mark.parametrize("command", list(ROWS))
def test_the_output_may_never_be_the_input(tmp_path, capsys, command) -> None:
    src = tmp_path / "input.jsonl"
    write_jsonl(src, [ROWS[command](i) for i in range(4)])
    before = src.read_bytes()
    for spelling in (src, tmp_path / "." / "input.jsonl"):
        assert _run(command, src, spelling) == 2
        assert "is also this command's input" in _error_line(capsys)
        assert _run(command, src, spelling, "--overwrite") == 2  # not even on request
        assert "is also this command's input" in _error_line(capsys)
    link = tmp_path / "hard.jsonl"
    os.link(src, link)
    assert _run(command, src, link) == 2
    assert src.read_bytes() == before


@pytest.mark.parametrize("command", ["evaluate", "label", "score"])
def test_overwrite_replaces_a_foreign_file_and_a_rerun_replaces_its_own(tmp_path, capsys, command) -> None:
    src, out = tmp_path / "input.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, [ROWS[command](i) for i in range(3)])
    out.write_bytes(FOREIGN["pretty-printed JSON"])
    assert _run(command, src, out, "--overwrite") == 0
    first = out.read_bytes()
    assert first != FOREIGN["pretty-printed JSON"]
    assert _run(command, src, out) == 0  # its own output of this input: replaced without asking
    assert out.read_bytes() == first
    capsys.readouterr()


def test_generate_leaves_its_own_torn_output_alone_when_it_fails_before_any_work(tmp_path, capsys) -> None:
    src, out = tmp_path / "examples.jsonl", tmp_path / "responses.jsonl"
    write_jsonl(src, [_example(i) for i in range(4)])
    torn = b"".join(json.dumps(_example(i) | {"response": "x"}).encode() + b"\n" for i in range(2)) + b'{"id": "e2", "resp'
    out.write_bytes(torn)
    assert _run("generate", src, out) == 2  # the model cannot be loaded
    assert NO_MODEL in _error_line(capsys)
    assert out.read_bytes() == torn  # the torn line is cut when work resumes, not before


def test_generate_with_everything_done_loads_no_model_and_changes_nothing(tmp_path, capsys) -> None:
    src, out = tmp_path / "examples.jsonl", tmp_path / "responses.jsonl"
    write_jsonl(src, [_example(i) for i in range(2)])
    write_jsonl(out, [_example(i) | {"response": f"r{i}"} for i in range(2)])
    before = out.read_bytes()
    assert _run("generate", src, out) == 0
    assert out.read_bytes() == before
    capsys.readouterr()


def test_appender_cuts_back_to_what_the_claim_kept(tmp_path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_bytes(b'{"id": "a", "response": "1"}\n{"id": "b", "resp')
    claimed = claim_output(out, ids={"a", "b"}, fields=("response",))
    assert list(claimed.rows) == ["a"] and claimed.keep_bytes == len(b'{"id": "a", "response": "1"}\n')
    assert out.read_bytes().endswith(b'"resp')  # claiming changed nothing
    with JsonlAppender(out, claimed.keep_bytes) as sink:
        sink.write({"id": "b", "response": "2"})
    assert out.read_bytes() == b'{"id": "a", "response": "1"}\n{"id": "b", "response": "2"}\n'


@pytest.mark.parametrize("kind", ["fifo", "char-device", "symlink", "directory"])
def test_non_regular_outputs_are_refused(tmp_path, capsys, kind) -> None:
    src = tmp_path / "input.jsonl"
    write_jsonl(src, [_evaluate_row(0)])
    target = tmp_path / "target.jsonl"
    target.write_text("precious\n")
    out = {"char-device": Path("/dev/null"), "directory": tmp_path}.get(kind, tmp_path / "out")
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "symlink":
        out.symlink_to(target)
    assert _run("evaluate", src, out) == 2
    line = _error_line(capsys)
    expected = {"fifo": "is a FIFO", "char-device": "is a character device", "symlink": "is a symbolic link", "directory": "is a directory"}
    assert line.startswith(f"trice evaluate: error: {out}: {expected[kind]}"), line
    assert target.read_text() == "precious\n"
    if kind == "fifo":
        assert stat.S_ISFIFO(out.lstat().st_mode)
    if kind == "symlink":
        assert out.is_symlink()


def test_atomic_writes_keep_the_mode_and_new_files_follow_the_umask(tmp_path) -> None:
    kept, new = tmp_path / "kept.json", tmp_path / "new.json"
    kept.write_text("{}")
    kept.chmod(0o644)
    write_json(kept, {"a": 1})
    assert stat.S_IMODE(kept.stat().st_mode) == 0o644
    kept.chmod(0o600)
    write_json(kept, {"a": 2})
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    old = os.umask(0o027)
    try:
        write_json(new, {"b": 1})
        with open(tmp_path / "by-open", "w"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(new.stat().st_mode) == stat.S_IMODE((tmp_path / "by-open").stat().st_mode) == 0o640


def test_an_unwritable_directory_is_named_not_a_temp_file(tmp_path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError) as info:
            write_json(locked / "o.json", {})
    finally:
        locked.chmod(0o700)
    assert str(info.value) == f"{locked / 'o.json'}: cannot be written (Permission denied)"


def test_candidates_refuses_its_input_and_a_foreign_output(tmp_path, capsys) -> None:
    src = tmp_path / "d_tool.jsonl"
    write_jsonl(src, [_example(i) | {"output": "calculator(1+1)"} for i in range(2)])
    before = src.read_bytes()
    foreign = tmp_path / "notes.jsonl"
    foreign.write_bytes(FOREIGN["JSONL of other ids with a comment"])
    for out in (src, foreign):
        config = tmp_path / "candidates.yaml"
        config.write_text(f"input: {src}\noutput: {out}\nsources: [{{name: gold, kind: gold}}]\n")
        assert main(["candidates", "--config", str(config)]) == 2
        assert _error_line(capsys).startswith(f"trice candidates: error: {out}: ")
    assert src.read_bytes() == before and foreign.read_bytes() == FOREIGN["JSONL of other ids with a comment"]
