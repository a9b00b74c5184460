"""One writer per output and per run directory: a second ``trice generate`` on one ``--output``, a
``generate`` aimed at a running stage's responses and a second ``trice run`` of the same run directory
(another recipe) are each refused with one line naming the process that writes, while the first
finishes alone; ``--status`` reads beside it; a file that repeats ids (two writers before the lock)
is rewritten with one row per id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from tests.helpers.fake_servers import openai_reply, serve  # noqa: F401 (serve: a fixture)
from trice.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "Traceback" not in "\n".join(err), err
    return err[-1]


def _held_server(serve):
    """An endpoint whose answers wait until ``release`` is set (a generation in progress)."""
    release = threading.Event()

    def answer(hit: int, path: str, request: dict):
        release.wait(120)
        return openai_reply(path, request, "The answer is 1.")

    return serve(answer), release


def _wait_for(server, proc: subprocess.Popen) -> None:
    for _ in range(1200):
        if server.hits or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert server.hits, f"the first writer never started: {proc.communicate(timeout=10)}"


def _popen(*argv: str) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "trice.cli", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _examples(path: Path, n: int) -> Path:
    rows = [{"id": f"e{i}", "dataset": "svamp", "task": "math", "question": f"What is {i} + 1?", "answers": [str(i + 1)]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_second_generate_on_one_output_is_refused_naming_the_first(tmp_path, capsys, serve) -> None:
    server, release = _held_server(serve)
    src, out = _examples(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    argv = ["generate", "--input", str(src), "--output", str(out), "--model", "m", "--backend", "openai", "--endpoint_url", server.url]
    first = _popen(*argv, "--endpoint_workers", "1")
    try:
        _wait_for(server, first)
        assert main(argv) == 2
        line = _one_error(capsys)
        assert line.startswith(f"trice generate: error: {out}: is being written by process {first.pid} on "), line
    finally:
        release.set()
        assert first.wait(timeout=120) == 0, first.communicate()
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == ["e0", "e1"]  # each id once


def test_an_output_with_repeated_ids_is_rewritten_with_one_row_per_id(tmp_path, capsys) -> None:
    src, out = _examples(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    rows = [json.loads(line) | {"response": "The answer is 1."} for line in src.read_text().splitlines()]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows + rows))  # two writers of an earlier version
    assert main(["generate", "--input", str(src), "--output", str(out), "--model", "/nonexistent/model"]) == 0  # all done: no model loads
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["e0", "e1"]
    capsys.readouterr()
    assert main(["evaluate", "--input", str(out), "--output", str(tmp_path / "judged.jsonl")]) == 0


def test_a_running_run_owns_its_directory_and_its_stages_outputs(tmp_path, capsys, data_dir, serve) -> None:
    server, release = _held_server(serve)
    endpoint = {"backend": "openai", "endpoint_url": server.url, "endpoint_max_retries": 0, "batch_size": 4, "max_new_tokens": 4}
    run = tmp_path / "run"
    body = {"run_dir": str(run), "model": "fake-model", "settings": ["zero-shot"],
            "data": {"data_dir": str(data_dir), "datasets": ["svamp"], "n_train": 2, "n_test": 2}, "probe": endpoint, "eval": endpoint}  # fmt: skip
    recipe, edited = tmp_path / "recipe.yaml", tmp_path / "edited.yaml"
    recipe.write_text(yaml.safe_dump(body))
    edited.write_text(yaml.safe_dump(body | {"probe": endpoint | {"max_new_tokens": 8}}))
    first = _popen("run", str(recipe))
    try:
        _wait_for(server, first)  # the probe is generating
        responses = run / "probe" / "responses.jsonl"
        generate = ["generate", "--input", str(run / "data" / "train.jsonl"), "--output", str(responses), "--model", "m",
                    "--backend", "openai", "--endpoint_url", server.url]  # fmt: skip
        assert main(generate) == 2
        assert f"{responses}: is being written by process {first.pid}" in _one_error(capsys)
        assert main(["run", str(edited)]) == 2  # would move aside the probe the first run is writing
        line = _one_error(capsys)
        assert line.startswith(f"trice run: error: {run}: this run directory is being run by process {first.pid} "), line
        assert main(["run", str(recipe), "--status"]) == 0
        status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert status["probe"] == "running" and status["run in progress"].startswith(f"process {first.pid} ")
    finally:
        release.set()
        assert first.wait(timeout=300) == 0, first.communicate()
    assert not (run / "old").exists()  # nothing was moved aside under the first run
    ids = [json.loads(line)["id"] for line in (run / "probe" / "responses.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 2
