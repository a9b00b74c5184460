"""A run never loses finished work: a changed stage's directory is moved aside, not deleted; the
same run reached under another spelling of its directory is the same run (and `trice migrate-run`
rewrites stages an older trice hashed with the run directory's paths as spelled, so they are not
redone); trice writes into no directory that is not a run of its own, nor into one an older trice made; a stage whose rows failed stays incomplete; ``--status`` tells every
stage a change would redo; a stage is skipped when unchanged, resumed in place after a kill, and run
by one process at a time."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from trice.pipeline import stage_specs
from trice.cli import main

from tests.helpers.fake_servers import openai_reply, serve  # noqa: F401 (serve: a fixture)
from tests.helpers.retrieval import colbert_ok, json_reply
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import stage_status
from trice.pipeline.migrate_run import MIGRATED, migrate_stage
from trice.pipeline.stage_dirs import (
    RUN_FORMAT, RUN_MARKER, OlderRun, claim_run_dir, moved_aside, run_stage, stage_hash, stage_running, stage_verdict,
)  # fmt: skip
from trice.pipeline.failures import StageBusy, StageIncomplete, ToolOutages, raise_failed_rows

ROOT = Path(__file__).resolve().parents[2]
OLD_STYLE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "old_style_stage.json").read_text())


def _write(d: Path, text: str) -> None:
    (d / "adapter.bin").write_text(text)


def test_a_changed_stage_is_moved_aside_with_a_warning_never_deleted(tmp_path, caplog) -> None:
    stage = tmp_path / "run" / "train-x"
    run_stage(stage, "train-x", {"learning_rate": 0.1}, [], lambda d: _write(d, "first"))
    with caplog.at_level(logging.WARNING, logger="trice.pipeline.stage_dirs"):
        assert run_stage(stage, "train-x", {"learning_rate": 0.2}, [], lambda d: _write(d, "second"))
    (old,) = moved_aside(tmp_path / "run")
    assert (Path(old) / "adapter.bin").read_text() == "first"  # the old adapter is still there
    assert json.loads((Path(old) / "stage.json").read_text())["config"] == {"learning_rate": 0.1}
    assert (stage / "adapter.bin").read_text() == "second"
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "config or inputs changed" in warning.getMessage() and old in warning.getMessage()

    assert run_stage(stage, "train-x", {"learning_rate": 0.2}, [], lambda d: _write(d, "third"), force=True)
    assert len(moved_aside(tmp_path / "run")) == 2  # forced: moved aside too


def test_kept_entries_move_back_into_the_fresh_directory(tmp_path) -> None:
    stage = tmp_path / "run" / "candidates"
    run_stage(stage, "candidates", {"k": 1}, [], lambda d: ((d / "parts").mkdir(), (d / "parts" / "a").write_text("kept")))
    seen = []
    run_stage(stage, "candidates", {"k": 2}, [], lambda d: seen.append(sorted(p.name for p in d.iterdir())), keep=["parts"])
    assert seen == [["parts", "stage.json"]] and (stage / "parts" / "a").read_text() == "kept"


def _old_style_run(root: Path) -> tuple[Path, dict]:
    """The fixture's finished stage laid out as trice wrote it under ``root/runs/old-run``."""
    run = root / OLD_STYLE["recipe_run_dir"]
    (run / "label").mkdir(parents=True)
    (run / "label" / OLD_STYLE["input_name"]).write_text(OLD_STYLE["input_text"])
    (run / "recipe.json").write_text(json.dumps({"run_dir": OLD_STYLE["recipe_run_dir"]}))
    stage = run / "train-sft-0"
    stage.mkdir()
    (stage / "stage.json").write_text(json.dumps(OLD_STYLE["stage_json"]))
    _write(stage, "trained")
    return run, OLD_STYLE["stage_json"]["config"]


def _respell(config: dict, old: str, new: str) -> dict:
    return {k: v.replace(old, new, 1) if isinstance(v, str) else v for k, v in config.items()}


@pytest.mark.parametrize("spelling", ["as-made", "absolute", "from-elsewhere"])
def test_a_stage_finished_with_old_style_fingerprints_is_migrated_not_redone(tmp_path, monkeypatch, spelling) -> None:
    run, config = _old_style_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    if spelling == "absolute":
        run_dir = run.resolve()
    elif spelling == "from-elsewhere":  # another cwd: only the spelling recorded in recipe.json tells
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        run_dir = Path(os.path.relpath(run.resolve()))
    else:
        run_dir = Path(OLD_STYLE["recipe_run_dir"])
    with pytest.raises(OlderRun, match="made by an older trice, run `trice migrate-run"):
        claim_run_dir(run_dir)
    now = _respell(config, OLD_STYLE["recipe_run_dir"], str(run_dir))
    inputs = [run_dir / "label" / OLD_STYLE["input_name"]]
    assert stage_verdict(run_dir / "train-sft-0", now, inputs) == "changed"  # not recognised without the migration
    assert migrate_stage(run_dir / "train-sft-0", now, [], inputs) == MIGRATED
    assert stage_verdict(run_dir / "train-sft-0", now, inputs) == "up to date"
    assert not run_stage(run_dir / "train-sft-0", "train-sft-0", now, inputs, lambda d: pytest.fail("redone"))
    state = json.loads((run_dir / "train-sft-0" / "stage.json").read_text())
    assert state["hash"] == stage_hash(run_dir / "train-sft-0", now, inputs) != OLD_STYLE["stage_json"]["hash"]
    assert state["complete"] and (run_dir / "train-sft-0" / "adapter.bin").read_text() == "trained"
    assert moved_aside(run_dir) == []
    # migrated, so spelling-independent: the absolute spelling finds it up to date too
    absolute = run.resolve()
    assert not run_stage(absolute / "train-sft-0", "train-sft-0", _respell(config, OLD_STYLE["recipe_run_dir"], str(absolute)),
                         [absolute / "label" / OLD_STYLE["input_name"]], lambda d: pytest.fail("redone"))  # fmt: skip


def test_trice_run_refuses_a_directory_that_is_not_a_run(tmp_path, capsys) -> None:
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "important.csv").write_text("a,b\n1,2\n")
    (mine / "recipe.json").write_text('{"mine": true}')
    (mine / "data" / "stage.json").write_text('{"anything": 1}')  # parseable, but not a stage trice wrote
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"run_dir": "unused", "model": "no-such-model", "data": {"n_train": 2, "n_test": 2}}))
    for extra in ([], ["--status"]):
        assert main(["run", str(recipe), "--run-dir", str(mine), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"trice run: error: {mine}: exists and is not a trice run directory (no {RUN_MARKER}); trice would write "
                       "recipe.json and stage directories into it: name a new or empty run_dir (--run-dir)"]  # fmt: skip
    assert (mine / "data" / "important.csv").read_text() == "a,b\n1,2\n"
    assert (mine / "recipe.json").read_text() == '{"mine": true}'
    assert not (mine / RUN_MARKER).exists()


def test_a_new_run_dir_gets_the_marker_and_an_older_run_is_refused(tmp_path) -> None:
    claim_run_dir(tmp_path / "new")
    assert json.loads((tmp_path / "new" / RUN_MARKER).read_text()) == {"format": RUN_FORMAT}
    run, _ = _old_style_run(tmp_path)  # no marker: recognised by its recipe.json and stage.json
    for marked in (False, True):
        with pytest.raises(OlderRun, match=f"^{run}: made by an older trice, run `trice migrate-run {run}`"):
            claim_run_dir(run)
        assert not (run / RUN_MARKER).exists() or marked
        (run / RUN_MARKER).write_text(json.dumps({"format": RUN_FORMAT - 1}))


def test_failed_rows_leave_the_stage_incomplete_and_a_rerun_retries(tmp_path) -> None:
    stage = tmp_path / "run" / "eval-x"
    rows = [{"id": "a", "response": ""}, {"id": "b", "response": "", "error": "unavailable: down"}]

    def flaky(d: Path) -> None:
        (d / "responses.jsonl").write_text("...")
        raise_failed_rows(rows)

    with pytest.raises(StageIncomplete) as info:
        run_stage(stage, "eval-x", {"k": 1}, [], flaky)
    assert "1 of 2 rows failed (first: unavailable: down)" in str(info.value) and str(stage) in str(info.value)
    state = json.loads((stage / "stage.json").read_text())
    assert state["complete"] is False and state["failed_rows"] == 1
    assert stage_verdict(stage, {"k": 1}, []) == "incomplete: 1 failed rows"
    seen = []
    assert run_stage(stage, "eval-x", {"k": 1}, [], lambda d: seen.append((d / "responses.jsonl").read_text()))
    assert seen == ["..."]  # rerun in place: what succeeded is there to resume from
    assert stage_verdict(stage, {"k": 1}, []) == "up to date"


def test_accepted_outages_complete_a_stage_with_their_count(tmp_path) -> None:
    stage = tmp_path / "run" / "eval-x"

    def outage(d: Path) -> None:
        (d / "judged.jsonl").write_text("...")
        raise ToolOutages(2, 5, "q1: timeout: slow")

    with pytest.raises(StageIncomplete, match="2 of 5 rows met a tool outage .*--accept-outages"):
        run_stage(stage, "eval-x", {"k": 1}, [], outage)
    assert stage_verdict(stage, {"k": 1}, []) == "incomplete: 2 failed rows"
    assert run_stage(stage, "eval-x", {"k": 1}, [], outage, accept_outages=True)
    state = json.loads((stage / "stage.json").read_text())
    assert state["complete"] is True and state["tool_outages"] == 2 and "failed_rows" not in state
    assert (stage / "judged.jsonl").read_text() == "..."


def _finish_every_stage(plan) -> None:
    """Lay out every stage of ``plan`` as finished: its inputs exist and its stage.json is current."""
    specs = {name: stage_specs.stage(plan, name) for name in plan.stages}
    for _, inputs, _ in specs.values():
        for path in map(Path, inputs):
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(path.name)
            else:
                path.mkdir(parents=True, exist_ok=True)
    for name in plan.stages:
        config, inputs, _ = stage_specs.stage(plan, name)
        (plan.run_dir / name).mkdir(parents=True, exist_ok=True)
        marker = {"stage": name, "hash": stage_hash(plan.run_dir / name, config, inputs), "complete": True, "config": config}
        (plan.run_dir / name / "stage.json").write_text(json.dumps(marker))


def test_status_says_would_redo_for_every_stage_downstream_of_a_change(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    plan = plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": "runs/demo"})
    claim_run_dir(plan.run_dir)
    _finish_every_stage(plan)
    assert set(stage_status(plan).values()) == {"up to date"}
    absolute = plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": str(tmp_path / "runs" / "demo")})
    assert set(stage_status(absolute).values()) == {"up to date"}  # the same run, spelled otherwise

    changed = plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": "runs/demo", "train": {"learning_rate": 0.5}})
    status = stage_status(changed)
    assert sorted(s for s in changed.stages if status[s] == "changed") == ["train-sft-0", "train-sft-100", "train-trice-i"]
    redo = [s for s in changed.stages if status[s] == "would redo"]
    assert redo == ["candidates", "score", "train-trice-all", "eval-sft-0", "eval-sft-100", "eval-trice-i", "eval-trice-all", "report"]
    assert all(status[s] == "up to date" for s in ("data", "probe", "label", "dev", "eval-zero-shot"))


# --- recipes ---------------------------------------------------------------------------------------------


def _status(tmp_path: Path, text: str | bytes, capsys) -> tuple[int, list[str], Path]:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main(["run", str(path), "--status", "--run-dir", str(tmp_path / "run")])
    return code, capsys.readouterr().err.strip().splitlines(), path


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)


@pytest.mark.parametrize(
    "text, message",
    [
        ("# just a comment\n\n", "empty (nothing but comments or blank lines)"),
        ("", "empty (nothing but comments or blank lines)"),
        ("run_dir: runs/x\ntools:\n  QA:\n" + "".join("    " + line + "\n" for line in BOMB.splitlines()), "once its aliases are expanded"),
        ("run_dir: runs/x\nseed: 1\nseed: 2\n", ":3: invalid YAML (duplicate key 'seed' (first on line 2))"),
        (b"run_dir: runs/x\nmodel: caf\xe9\n", ":2: not UTF-8 (byte 26)"),
        ("tools: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than 64 levels"),
        ("tools: " + "[" * 70 + "]" * 70 + "\n", ":1: nested deeper than 64 levels"),
    ],
    ids=["comment-only", "empty", "alias-bomb", "duplicate-key", "not-utf8", "nested-100000", "nested-70"],
)
def test_bad_recipes_are_one_located_line(tmp_path, capsys, text, message) -> None:
    code, err, path = _status(tmp_path, text, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"trice run: error: {path}") and message in err[0], err[0]
    assert not (tmp_path / "run").exists()


def test_exponent_floats_are_floats(tmp_path, capsys) -> None:
    code, err, _ = _status(tmp_path, "run_dir: runs/x\ndata: {n_train: 10}\ntrain: {learning_rate: 1e-3}\nrlef: {learning_rate: 2E-4}\n", capsys)
    assert code == 0, err
    plan = plan_recipe(tmp_path / "recipe.yaml")
    assert plan.train.learning_rate == 0.001 and plan.rlef.learning_rate == 0.0002


def test_a_run_whose_endpoint_failed_stops_incomplete_and_a_rerun_retries(tmp_path, capsys, data_dir, serve) -> None:
    up = {"ok": False}
    server = serve(lambda hit, path, request: openai_reply(path, request, "The answer is 1.") if up["ok"] else (503, b"down", "text/plain"))
    endpoint = {"backend": "openai", "endpoint_url": server.url, "endpoint_max_retries": 0, "batch_size": 4, "max_new_tokens": 4}
    body = {"run_dir": str(tmp_path / "run"), "model": "fake-model", "settings": ["zero-shot"],
            "data": {"data_dir": str(data_dir), "datasets": ["svamp"], "n_train": 3, "n_test": 2}, "probe": endpoint, "eval": endpoint}  # fmt: skip
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(body))
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"trice run: error: {tmp_path / 'run' / 'probe'}: stage probe is incomplete: 3 of 3 rows failed (first: unavailable")
    assert not (tmp_path / "run" / "report").exists()  # no report built on failed rows
    assert main(["run", str(recipe), "--status"]) == 0
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status["probe"] == "incomplete: 3 failed rows" and status["label"] == "waiting"

    up["ok"] = True  # the server is back: the rerun retries the failed rows and finishes
    hits = server.hits
    assert main(["run", str(recipe)]) == 0
    capsys.readouterr()
    assert server.hits - hits == 3 + 2  # the 3 probe rows again, then the 2 test questions
    assert json.loads((tmp_path / "run" / "probe" / "stage.json").read_text())["complete"] is True
    assert moved_aside(tmp_path / "run") == []  # retried in place, nothing started over


def test_run_stage_keeps_named_entries_when_it_starts_over(tmp_path) -> None:
    stage = tmp_path / "stage"

    def make(d):
        (d / "out.txt").write_text("made")
        (d / "parts").mkdir(exist_ok=True)
        (d / "parts" / "a.jsonl").write_text("kept work")
        (d / "scratch").mkdir(exist_ok=True)

    run_stage(stage, "s", {"k": 1}, [], make, keep=["parts"])
    seen = []
    run_stage(stage, "s", {"k": 2}, [], lambda d: seen.append(sorted(p.name for p in d.iterdir())), keep=["parts"])
    assert seen == [["parts", "stage.json"]]  # the output and scratch went; the kept parts stayed
    assert (stage / "parts" / "a.jsonl").read_text() == "kept work"
    assert json.loads((stage / "stage.json").read_text())["config"] == {"k": 2}
    run_stage(stage, "s", {"k": 2}, [], lambda d: seen.append(sorted(p.name for p in d.iterdir())), force=True, keep=["parts"])
    assert seen[-1] == ["stage.json"]  # forced: nothing kept
    (stage / "parts").mkdir()
    run_stage(stage, "s", {"k": 3}, [], lambda d: seen.append(sorted(p.name for p in d.iterdir())))
    assert seen[-1] == ["stage.json"]  # nothing kept unless named


def test_run_stage_skips_when_unchanged_and_reruns_on_change(tmp_path) -> None:
    calls = []
    src = tmp_path / "in.txt"
    src.write_text("v1")

    def fn(d):
        calls.append(d)
        (d / "out.txt").write_text(src.read_text())

    stage = tmp_path / "stage"
    assert run_stage(stage, "s", {"k": 1}, [src], fn)
    assert not run_stage(stage, "s", {"k": 1}, [src], fn)  # unchanged: skipped
    src.write_text("v2")
    assert run_stage(stage, "s", {"k": 1}, [src], fn)  # input changed
    assert not run_stage(stage, "s", {"k": 1}, [src], fn)
    assert run_stage(stage, "s", {"k": 2}, [src], fn)  # config changed
    assert (stage / "out.txt").read_text() == "v2" and len(calls) == 3
    marker = json.loads((stage / "stage.json").read_text())
    assert marker["complete"] is True


def test_run_stage_resumes_a_killed_stage_in_place(tmp_path) -> None:
    stage = tmp_path / "stage"

    def killed(d):
        (d / "partial.jsonl").write_text('{"id": "a"}\n')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stage(stage, "s", {}, [], killed)
    seen = []
    run_stage(stage, "s", {}, [], lambda d: seen.append((d / "partial.jsonl").read_text()))
    assert seen == ['{"id": "a"}\n']  # the partial output survived for the stage to resume from


def test_a_stage_another_process_is_running_is_refused_not_shared(tmp_path) -> None:
    stage, started, release = tmp_path / "run" / "eval", tmp_path / "started", tmp_path / "release"
    holder = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from trice.pipeline.stage_dirs import run_stage

        def fn(d):
            Path({str(started)!r}).touch()
            while not Path({str(release)!r}).exists():
                time.sleep(0.05)
            (d / "out.txt").write_text("first")

        run_stage(Path({str(stage)!r}), "eval", {{"k": 1}}, [], fn)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder])
    try:
        for _ in range(600):
            if started.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert started.exists(), "the first process never started its stage"
        assert stage_running(stage)
        with pytest.raises(StageBusy) as info:
            run_stage(stage, "eval", {"k": 1}, [], lambda d: (d / "out.txt").write_text("second"))
        assert str(info.value).startswith(f"{stage}: stage eval is being run by process {proc.pid} on ")  # the holder, named
    finally:
        release.touch()
        assert proc.wait(timeout=60) == 0
    assert (stage / "out.txt").read_text() == "first"  # the refused process wrote nothing
    assert not stage_running(stage)
    assert not run_stage(stage, "eval", {"k": 1}, [], lambda d: None)  # finished by the first: skipped
    assert sorted(p.name for p in stage.parent.iterdir()) == [".eval.lock", "eval"]  # the lock lies outside the stage


def _search_recipe(tmp_path: Path, data_dir: Path, server, settings: list[str], n_test: int) -> Path:
    """A qa recipe whose policy and WikiSearch are both ``server`` (an OpenAI endpoint and a ColBERT
    search at /search), neither retrying, so that an outage reaches the stage at once."""
    endpoint = {"backend": "openai", "endpoint_url": server.url, "endpoint_max_retries": 0, "batch_size": 4, "max_new_tokens": 8}
    search = {"backend": "colbert", "url": server.root + "/search", "max_retries": 0, "circuit_threshold": 100}
    body = {"run_dir": str(tmp_path / "run"), "model": "fake-model", "settings": settings, "tools": {"WikiSearch": search},
            "data": {"data_dir": str(data_dir), "task": "qa", "datasets": ["webq"], "n_train": 2, "n_test": n_test}, "probe": endpoint, "eval": endpoint}  # fmt: skip
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(body))
    return recipe


def test_tool_outages_keep_a_stage_incomplete_unless_accepted(tmp_path, capsys, data_dir, serve) -> None:
    up = {"search": False, "reading": True}

    def behaviour(hit, path, request):
        if path == "/search":
            return colbert_ok(hit, path, request) if up["search"] else json_reply({"error": "down"}, 503)
        if "Passage 0 | about" in json.dumps(request) and not up["reading"]:  # a second reading of a passage
            return 503, b"down", "text/plain"
        return openai_reply(path, request, "WikiSearch(Marie Curie)")

    recipe = _search_recipe(tmp_path, data_dir, serve(behaviour), ["zero-shot"], n_test=3)
    run = tmp_path / "run"

    assert main(["run", str(recipe)]) == 2  # the search server is down: judged wrong would measure the machine
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{run / 'probe'}: stage probe is incomplete: 2 of 2 rows met a tool outage (first: " in err
    assert "unavailable: WikiSearch" in err and "--accept-outages" in err
    assert json.loads((run / "probe" / "stage.json").read_text())["failed_rows"] == 2

    assert main(["run", str(recipe), "--accept-outages"]) == 0  # accepted: every stage finishes, the count kept
    capsys.readouterr()
    assert json.loads((run / "probe" / "stage.json").read_text())["tool_outages"] == 2
    state = json.loads((run / "eval-zero-shot" / "stage.json").read_text())
    assert state["complete"] is True and state["tool_outages"] == 3
    results = json.loads((run / "report" / "results.json").read_text())
    assert results["tool_outages"] == {"zero-shot": {"unavailable": 3}}

    up |= {"search": True, "reading": False}  # forced again: searches answer, but reading a passage fails
    assert main(["run", str(recipe), "--only", "eval-zero-shot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "stage eval-zero-shot is incomplete: 3 of 3 rows failed (first: " in err and "a reading of its tool output got no answer" in err

    up["reading"] = True  # a rerun reads again, and every call is judged on its merits
    assert main(["run", str(recipe), "--stages", "eval-zero-shot"]) == 0
    capsys.readouterr()
    state = json.loads((run / "eval-zero-shot" / "stage.json").read_text())
    assert state["complete"] is True and "tool_outages" not in state
    judged = [json.loads(line) for line in (run / "eval-zero-shot" / "judged.jsonl").read_text().splitlines()]
    assert len(judged) == 3 and all(row["used_tool"] and "tool_error" not in row for row in judged)


def test_a_label_whose_verifying_searches_met_outages_stays_incomplete(tmp_path, capsys, data_dir, serve) -> None:
    up = {"search": False}

    def behaviour(hit, path, request):
        if path == "/search":
            return colbert_ok(hit, path, request) if up["search"] else json_reply({"error": "down"}, 503)
        return openai_reply(path, request, "I do not know.")  # no call: the probe needs no tool

    recipe = _search_recipe(tmp_path, data_dir, serve(behaviour), ["trice-i"], n_test=2)

    assert main(["run", str(recipe), "--stages", "data,probe,label"]) == 2  # a question dropped for the machine's sake
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "stage label is incomplete: 2 of 2 rows met a tool outage (first: " in err and "unavailable: WikiSearch" in err
    assert (tmp_path / "run" / "label" / "trice.jsonl").is_file()  # written all the same

    up["search"] = True  # searched again: the questions are labelled (or dropped) on their merits
    assert main(["run", str(recipe), "--stages", "label"]) == 0
    assert json.loads((tmp_path / "run" / "label" / "stage.json").read_text())["complete"] is True
