"""bench/demo_native.py: a run's report recorded under its variant, the other variants and the notes
kept, so the committed result is what the script writes from its runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("demo_native", Path(__file__).resolve().parents[2] / "bench" / "demo_native.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)
COMMITTED = json.loads(bench.OUT.read_text(encoding="utf-8"))


def test_recording_a_variant_again_gives_back_the_committed_file() -> None:
    for variant in ("with_marker_rows", "without_marker_rows"):
        again = bench.record(COMMITTED, variant, COMMITTED[variant], COMMITTED["commit"], COMMITTED["machine"])
        assert again == COMMITTED and list(again) == list(COMMITTED)


def test_a_new_variant_joins_the_file_from_a_finished_run(tmp_path: Path, capsys) -> None:
    run, out = tmp_path / "run", tmp_path / "out" / "results.json"
    out.parent.mkdir()
    out.write_text(json.dumps(COMMITTED))
    (run / "report").mkdir(parents=True)
    (run / "report" / "results.json").write_text(json.dumps(COMMITTED["with_marker_rows"]))
    assert bench.main(["--variant", "again", "--run", str(run), "--out", str(out), "--machine", "a test"]) == 0
    written = json.loads(out.read_text())
    assert list(written) == [*COMMITTED, "again"] and written["again"] == COMMITTED["with_marker_rows"]
    assert written["notes"] == COMMITTED["notes"] and written["machine"] == "a test"
    assert "demo_native again: avg accuracy" in capsys.readouterr().err
