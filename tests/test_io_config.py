"""Located errors for broken inputs, atomic and resumable outputs, typed config loading, stage skipping."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field

import pytest

from trice.utils.config import ConfigError, build_config, load_layered_yaml, load_yaml, merge_over
from trice.utils.io import DataError, JsonlAppender, load_partial, read_jsonl, write_jsonl
from trice.pipeline.stages import StageBusy, run_stage, stage_running

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


@dataclass
class _Cfg:
    name: str = field(default="x", metadata={"help": "a name"})
    steps: int = field(default=1, metadata={"help": "steps"})
    rate: float = field(default=0.1, metadata={"help": "rate"})
    tags: list[str] = field(default_factory=list, metadata={"help": "tags"})
    path: str | None = field(default=None, metadata={"help": "optional"})


def test_build_config_checks_keys_and_types() -> None:
    cfg = build_config(_Cfg, {"steps": 3, "rate": 1, "tags": ["a"], "path": None}, "r.yaml")
    assert cfg.steps == 3 and cfg.rate == 1 and cfg.tags == ["a"]
    with pytest.raises(ConfigError, match="r.yaml: unknown key 'stepz'"):
        build_config(_Cfg, {"stepz": 3}, "r.yaml")
    with pytest.raises(ConfigError, match="r.yaml: key 'steps': expected int"):
        build_config(_Cfg, {"steps": "3"}, "r.yaml")
    with pytest.raises(ConfigError, match="key 'tags'"):
        build_config(_Cfg, {"tags": [1]}, "r.yaml")
    with pytest.raises(ConfigError, match="key 'steps'"):
        build_config(_Cfg, {"steps": True}, "r.yaml")


def test_load_yaml_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_yaml(bad)


def test_merge_over_merges_mappings_replaces_the_rest_and_null_removes() -> None:
    base = {"a": 1, "s": {"x": 1, "y": [1, 2], "t": {"k": 1, "j": 2}}, "l": [1], "gone": {"z": 1}}
    child = {"s": {"y": [3], "t": {"j": None, "m": 3}}, "l": [2, 3], "gone": None, "new": 4}
    assert merge_over(base, child) == {"a": 1, "s": {"x": 1, "y": [3], "t": {"k": 1, "m": 3}}, "l": [2, 3], "new": 4}
    assert base["s"]["t"] == {"k": 1, "j": 2}  # the base is not changed in place


def test_load_layered_yaml_chains_bases_relative_to_each_file(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("seed: 0\ndata: {task: math, n_train: 10}\ntools: {QA: {k: 2}, WikiSearch: {}}\n")
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\ndata: {n_train: 20}\n")
    (tmp_path / "sub" / "leaf.yaml").write_text("base: mid.yaml\nrun_dir: r\ntools: {QA: null}\n")
    assert load_layered_yaml(tmp_path / "sub" / "leaf.yaml") == {
        "seed": 0, "data": {"task": "math", "n_train": 20}, "tools": {"WikiSearch": {}}, "run_dir": "r",
    }


def test_load_layered_yaml_errors_name_the_file_and_key(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"b.yaml: base: the chain of bases loops"):
        load_layered_yaml(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"c.yaml: base: no such file .*missing.yaml"):
        load_layered_yaml(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: [x]\n")
    with pytest.raises(ConfigError, match=r"d.yaml: base: expected the path of a YAML file"):
        load_layered_yaml(tmp_path / "d.yaml")


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
        from trice.pipeline.stages import run_stage

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
        assert str(stage) in str(info.value) and "another process" in str(info.value)
    finally:
        release.touch()
        assert proc.wait(timeout=60) == 0
    assert (stage / "out.txt").read_text() == "first"  # the refused process wrote nothing
    assert not stage_running(stage)
    assert not run_stage(stage, "eval", {"k": 1}, [], lambda d: None)  # finished by the first: skipped
    assert sorted(p.name for p in stage.parent.iterdir()) == [".eval.lock", "eval"]  # the lock lies outside the stage
