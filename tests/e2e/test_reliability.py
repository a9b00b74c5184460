"""Broken data, broken configs and killed runs, through the ``trice`` command as a user meets them.

* every broken input of ``evaluate``, ``label`` and ``score`` fails with exit status 2 and one
  stderr line naming the file, the line and the field -- no traceback, no output file;
* ``--skip_bad`` processes the good lines and reports how many were skipped;
* a bad recipe or ``--config`` YAML names the key or the path;
* ``trice generate`` killed with SIGKILL resumes: every id once, the same responses as an
  uninterrupted run, and only the missing ids generated again; a torn last line is regenerated.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import trice.stage2.score
from trice.cli import main
from trice.utils.io import read_json, read_jsonl, write_jsonl

REPO = Path(__file__).resolve().parents[2]


# --- inputs of the three data commands ------------------------------------------------------------


def _evaluate_row(i: int) -> dict:
    return {"id": f"r{i}", "dataset": "gsm8k", "answers": ["72"], "response": f"calculator(48+{24 + i % 2})"}


def _label_row(i: int) -> dict:
    return {
        "id": f"r{i}",
        "dataset": "gsm8k",
        "task": "math",
        "question": f"question {i}",
        "answers": ["72"],
        "tool_call": "calculator(48+24)",
        "response": "The answer is 72.",
        "correct": i % 2 == 0,
    }


def _score_row(i: int) -> dict:
    return {"id": f"r{i}", "answers": ["72"], "responses": ["calculator(48+24)", "The answer is 72.", f"It is {i}."]}


ROWS = {"evaluate": _evaluate_row, "label": _label_row, "score": _score_row}


def _line(row: dict) -> bytes:
    return (json.dumps(row) + "\n").encode()


def _without(row: dict, key: str) -> dict:
    return {k: v for k, v in row.items() if k != key}


# content -> what the one error line must say after "<file>:"; the bad line is always line 2
BROKEN = {
    "malformed-json": (lambda good: _line(good(0)) + b'{"id": "r1", "answers": ["7"]\n', ":2: malformed JSON"),
    "missing-field": (lambda good: _line(good(0)) + _line(_without(good(1), "answers")), ":2: field 'answers': missing"),
    "wrong-type": (lambda good: _line(good(0)) + _line(good(1) | {"answers": "72"}), ":2: field 'answers': expected list of string"),
    "empty-file": (lambda good: b"", ": empty file"),
    "duplicate-id": (lambda good: _line(good(0)) + _line(good(1) | {"id": "r0"}), ":2: field 'id': duplicate value \"r0\""),
    "not-utf8": (lambda good: _line(good(0)) + _line(good(1)).replace(b"72", b"7\xff2", 1), ":2: not UTF-8"),
}


def _run(command: str, src: Path, out: Path, *extra: str) -> int:
    return main([command, "--input", str(src), "--output", str(out), *extra])


@pytest.mark.parametrize("case", list(BROKEN))
@pytest.mark.parametrize("command", list(ROWS))
def test_broken_input_fails_with_one_located_line(tmp_path, capsys, command, case) -> None:
    make, where = BROKEN[case]
    src, out = tmp_path / "input.jsonl", tmp_path / "output.jsonl"
    src.write_bytes(make(ROWS[command]))
    assert _run(command, src, out) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"trice {command}: error: {src}{where}"), lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


def _mixed_file(good, path: Path) -> None:
    """Three good lines (r0, r2, r6) among four bad ones and a blank one."""
    path.write_bytes(
        _line(good(0))
        + b"not json at all\n"
        + _line(good(2))
        + b"\n"
        + _line(_without(good(3), "answers"))
        + _line(good(4) | {"id": "r0"})
        + _line(good(5)).replace(b"72", b"\xff", 1)
        + _line(good(6))
    )


@pytest.mark.parametrize("command", list(ROWS))
def test_skip_bad_processes_good_lines_and_counts_the_rest(tmp_path, capsys, caplog, command) -> None:
    src, out = tmp_path / "input.jsonl", tmp_path / "output.jsonl"
    _mixed_file(ROWS[command], src)
    with caplog.at_level(logging.WARNING):
        assert _run(command, src, out, "--skip_bad") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["skipped_lines"] == 4
    assert summary["probed" if command == "label" else "n"] == 3
    if command != "label":  # label's output keeps only the questions it could label
        assert [r["id"] for r in read_jsonl(out)] == ["r0", "r2", "r6"]
    else:
        assert read_json(str(out) + ".stats.json")["skipped_lines"] == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "skipped" in r.getMessage()]
    assert len(warnings) == 1  # one warning for the whole file, not one per line
    message = warnings[0].getMessage()
    assert f"{src}: skipped 4 bad line(s), kept 3" in message
    assert f"{src}:2: malformed JSON" in message and f"{src}:5: field 'answers': missing" in message


def test_skip_bad_keeps_the_evaluate_summary_stable(tmp_path, capsys) -> None:
    src, out = tmp_path / "input.jsonl", tmp_path / "output.jsonl"
    write_jsonl(src, [_evaluate_row(0), _evaluate_row(1)])
    assert _run("evaluate", src, out) == 0
    plain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(plain) == {"accuracy", "tool_rate", "n"}  # the stable contract, untouched without --skip_bad
    assert _run("evaluate", src, out, "--skip_bad") == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == plain | {"skipped_lines": 0}


@pytest.mark.parametrize("command", list(ROWS))
def test_skip_bad_with_nothing_usable_is_still_an_error(tmp_path, capsys, command) -> None:
    src, out = tmp_path / "input.jsonl", tmp_path / "output.jsonl"
    src.write_bytes(b"not json\n[1, 2]\n")
    assert _run(command, src, out, "--skip_bad") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{src}: no usable line (2 bad line(s) skipped)" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "row, where",
    [
        (_without(_label_row(0), "response"), ":1: field 'response': missing"),  # correct: its response is the output
        (_label_row(1) | {"tool_call": 5}, ":1: field 'tool_call': expected string or null"),
        (_label_row(1) | {"task": "chess"}, ":1: field 'task': unknown task 'chess'"),
    ],
)
def test_label_rows_it_cannot_use_are_located(tmp_path, capsys, row, where) -> None:
    src, out = tmp_path / "probe.jsonl", tmp_path / "train.jsonl"
    write_jsonl(src, [row])
    assert _run("label", src, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{src}{where}" in err[0]


def test_missing_input_and_unwritable_output_are_one_line(tmp_path, capsys) -> None:
    for command in ROWS:
        assert _run(command, tmp_path / "nope.jsonl", tmp_path / "o.jsonl") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{tmp_path / 'nope.jsonl'}: no such file" in err[0]
    src = tmp_path / "input.jsonl"
    write_jsonl(src, [_evaluate_row(0)])
    (tmp_path / "file").write_text("x")
    assert _run("evaluate", src, tmp_path / "file" / "o.jsonl") == 2  # output's parent is a file
    err = capsys.readouterr().err.strip().splitlines()  # checked before any judging: one line, no temp file named
    assert err == [f"trice evaluate: error: {tmp_path / 'file' / 'o.jsonl'}: cannot be created: {tmp_path / 'file'} is not a directory"]


# --- recipes and --config YAML ----------------------------------------------------------------------


def _recipe(tmp_path: Path, **overrides) -> Path:
    body = {"run_dir": str(tmp_path / "run"), "model": "no-such-model", "data": {"n_train": 2, "n_test": 2}} | overrides
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"learning_rate": 1.0}, "unknown key 'learning_rate'"),
        ({"seed": "zero"}, "key 'seed': expected int"),
        ({"probe": {"batch_size": "8"}}, "probe: key 'batch_size': expected int"),
        ({"eval": {"max_new_token": 8}}, "eval: unknown key 'max_new_token'"),
    ],
)
def test_trice_run_bad_recipe_names_the_key(tmp_path, capsys, monkeypatch, overrides, message) -> None:
    import trice.generation.models

    monkeypatch.setattr(trice.generation.models, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    path = _recipe(tmp_path, **overrides)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and message in err[0], err
    assert not (tmp_path / "run").exists()  # nothing ran


def test_trice_run_missing_data_dir_names_the_path(tmp_path, capsys, monkeypatch) -> None:
    import trice.generation.models

    monkeypatch.setattr(trice.generation.models, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    missing = tmp_path / "no-data"
    path = _recipe(tmp_path, data={"data_dir": str(missing)})
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"data directory {missing}" in err[0] and "does not exist" in err[0], err


@pytest.mark.parametrize(
    "body, message",
    [({"input": "a.jsonl", "outptu": "b.jsonl"}, "unknown key 'outptu'"), ({"skip_bad": "yes"}, "key 'skip_bad': expected bool"), (None, "no such file")],
)
def test_stage_config_yaml_names_the_key_or_path(tmp_path, capsys, body, message) -> None:
    config = tmp_path / "evaluate.yaml"
    if body is not None:
        config.write_text(yaml.safe_dump(body))
    assert main(["evaluate", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(config) in err[0] and message in err[0], err


# --- killed runs ------------------------------------------------------------------------------------


def _examples(n: int) -> list[dict]:
    qs = ["48 + 2?", "How many clips did Natalia sell in April and May altogether?", "1", "What is 7 * 6 + 1?", "ok"]
    return [{"id": f"e{i:03d}", "dataset": "svamp", "task": "math", "question": f"{qs[i % len(qs)]} ({i})", "answers": ["1"]} for i in range(n)]


GEN_ARGS = {"batch_size": 2, "max_new_tokens": 6}


def _generate_cmd(model: Path, src: Path, out: Path) -> list[str]:
    flags = [f"--{k}={v}" for k, v in GEN_ARGS.items()]
    return [sys.executable, "-m", "trice.cli", "generate", "--model", str(model), "--input", str(src), "--output", str(out), *flags]


def _env() -> dict[str, str]:
    return os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _whole_lines(data: bytes) -> list[bytes]:
    return data[: data.rfind(b"\n") + 1].splitlines()


def _kill_midway(cmd: list[str], out: Path, n: int, deadline_s: float = 300.0) -> bytes | None:
    """Start ``cmd``, SIGKILL it once ``out`` holds at least one and fewer than ``n`` whole lines.

    Returns the output's bytes at the kill, or None when the run finished before it could be killed.
    """
    log_path = out.with_suffix(".stderr")
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=log_file)
        start = time.monotonic()
        try:
            while proc.poll() is None and time.monotonic() - start < deadline_s:
                if out.exists() and 1 <= out.read_bytes().count(b"\n") < n:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return out.read_bytes()
                time.sleep(0.01)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if time.monotonic() - start >= deadline_s:
        pytest.fail(f"generation wrote no line within {deadline_s:.0f} s")
    assert proc.returncode == 0, log_path.read_text(errors="replace")
    return None


def test_generate_killed_with_sigkill_resumes_exactly(tmp_path, tiny_model_dir) -> None:
    from trice.core.schema import load_examples
    from trice.responses.generate import GenerateConfig, generate_for_examples
    from trice.generation.models import load_model

    # a bigger file each time the run finished before the poll could catch it mid-way
    for n in (12, 48, 160):
        src, out = tmp_path / f"examples-{n}.jsonl", tmp_path / f"responses-{n}.jsonl"
        write_jsonl(src, _examples(n))
        at_kill = _kill_midway(_generate_cmd(tiny_model_dir, src, out), out, n)
        if at_kill is not None:
            break
    else:
        pytest.skip("trice generate finished every time before it could be killed mid-way; nothing was tested")
    before = _whole_lines(at_kill)
    k = len(before)
    assert 1 <= k < n
    print(f"killed after {k} of {n} lines")

    rerun = subprocess.run(_generate_cmd(tiny_model_dir, src, out), cwd=REPO, env=_env(), capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode(errors="replace")
    assert f"{k} of {n} already done, resuming" in rerun.stderr.decode(errors="replace")
    after = out.read_bytes()
    lines = after.splitlines()
    assert after.endswith(b"\n") and lines[:k] == before  # what was written before the kill is kept as it was
    assert len(lines) == n  # so the rerun appended n - k lines: only the missing ids were generated
    rows = [json.loads(line) for line in lines]
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(e["id"] for e in _examples(n)) and len(set(ids)) == n  # every id exactly once

    # the same responses as an uninterrupted run (greedy decoding) into another file
    model, tokenizer = load_model(str(tiny_model_dir))
    config = GenerateConfig(model=str(tiny_model_dir), **GEN_ARGS)
    reference = generate_for_examples(load_examples(src), tmp_path / "uninterrupted.jsonl", model, tokenizer, config)
    assert {r["id"]: r["response"] for r in rows} == {r["id"]: r["response"] for r in reference}


def test_generate_drops_and_regenerates_a_torn_last_line(tmp_path, tiny_model_dir) -> None:
    from trice.core.schema import Example
    from trice.responses.generate import GenerateConfig, generate_for_examples
    from trice.generation.models import load_model

    model, tokenizer = load_model(str(tiny_model_dir))
    examples = [Example.from_dict(e) for e in _examples(6)]
    config = GenerateConfig(**GEN_ARGS)
    full = tmp_path / "full.jsonl"
    reference = generate_for_examples(examples, full, model, tokenizer, config)
    lines = full.read_bytes().splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed mid-way through line 4

    generated = []
    original = model.generate
    model.generate = lambda *a, **kw: generated.append(kw["input_ids"].shape[0]) or original(*a, **kw)
    try:
        rows = generate_for_examples(examples, partial, model, tokenizer, config)
    finally:
        model.generate = original
    assert sum(generated) == 3  # the torn example and the two never started
    assert rows == reference
    assert partial.read_bytes() == full.read_bytes()  # the torn fragment is gone, the file is whole


def test_score_cut_mid_line_resumes_to_the_uninterrupted_output(tmp_path, capsys, monkeypatch) -> None:
    src = tmp_path / "candidates.jsonl"
    write_jsonl(src, [_score_row(i) for i in range(8)])
    full, partial = tmp_path / "full.jsonl", tmp_path / "partial.jsonl"
    assert _run("score", src, full) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    lines = full.read_bytes().splitlines(keepends=True)
    partial.write_bytes(b"".join(lines[:5]) + lines[5][:40])  # a kill while line 6 was being written

    scored = []
    real = trice.stage2.score.score_rows
    monkeypatch.setattr(trice.stage2.score, "score_rows", lambda rows, *a, **k: scored.extend(r["id"] for r in rows) or real(rows, *a, **k))
    assert _run("score", src, partial) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == summary
    assert scored == ["r5", "r6", "r7"]  # only the torn and the missing ones
    assert partial.read_bytes() == full.read_bytes()
