"""bench/results/ has one convention: a folder per benchmark, named after the script in bench/ that
writes it, holding that script's JSON beside its report and plots; nothing lies loose beside the
folders, and no committed result is without its script."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_every_result_is_a_folder_named_after_the_script_that_writes_it() -> None:
    entries = sorted((BENCH / "results").iterdir())
    assert [p.name for p in entries if not p.is_dir()] == []
    assert [p.name for p in entries if not (BENCH / f"{p.name}.py").is_file()] == []
    assert [p.name for p in entries if not any(p.rglob("*.json"))] == []
