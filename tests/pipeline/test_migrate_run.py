"""A run an older trice made is refused by `trice run` with one line naming `trice migrate-run`,
which rewrites its finished stages' records to the current fingerprint rule once: afterwards every
stage is up to date and nothing is redone, moved aside or deleted; migrating again changes nothing;
a stage it does not recognise is left as it is (trice.pipeline.migrate_run)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from trice.cli import main
from trice.data.prepare import DataConfig
from trice.pipeline import migrate_run as migration
from trice.pipeline import stage_specs
from trice.pipeline.earlier_rules import HASHED_AT_DEFAULT, first_rule, second_rule
from trice.pipeline.failures import StageBusy
from trice.pipeline.migrate_run import MIGRATED, UNRECOGNISED, migrate_run, migrate_stage
from trice.pipeline.plan import DevConfig, plan_recipe
from trice.pipeline.runner import run_plan, stage_status
from trice.pipeline.shared_training import pointer_stale
from trice.pipeline.stage_dirs import RUN_MARKER, OlderRun, lock_path, moved_aside, respelled, stage_hash, stage_verdict
from trice.responses.generate import GenerateConfig
from trice.stage1.config import SFTConfig
from trice.stage2.candidates import CandidatesConfig
from trice.stage2.dpo_config import DPOStageConfig
from trice.stage2.rlef_config import RLEFConfig
from trice.stage2.score import ScoreConfig
from trice.utils.config import fingerprint_fields, load_layered_yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = json.loads((DATA / "config_keys_at_default.json").read_text())["keys"]
FINISHED = json.loads((DATA / "finished_runs.json").read_text())["runs"]
CLASSES = (DataConfig, GenerateConfig, SFTConfig, CandidatesConfig, ScoreConfig, RLEFConfig, DPOStageConfig, DevConfig)
# Hashed at its default on purpose, so stages hashed without it were redone: stage II selection
# judges the start (step 0) too, and a selection.json without it may keep a checkpoint worse than the start.
REDONE = {"RLEFConfig": ["select_start"], "DPOStageConfig": ["select_start"]}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_frozen_table_gives_back_the_fields_finished_runs_were_hashed_with(cls) -> None:
    expected = sorted(EXPECTED[cls.__name__] + REDONE.get(cls.__name__, []))
    assert sorted(HASHED_AT_DEFAULT[cls.__name__]) == expected
    assert sorted(first_rule(cls())) == expected


def test_the_earlier_rules_hash_the_keys_that_change_no_result() -> None:
    logged = SFTConfig(learning_rate=1e-3, report_to="tensorboard", logging_steps=1)
    assert fingerprint_fields(logged) == {"learning_rate": 1e-3}
    assert second_rule(logged) == {"learning_rate": 1e-3, "report_to": "tensorboard", "logging_steps": 1}
    assert first_rule(logged)["report_to"] == "tensorboard" and first_rule(SFTConfig())["report_to"] == "none"


def _old_run(run: Path, recipe: str) -> None:
    """Lay out the fixture's finished run of ``recipe`` at ``run`` as an older trice left it: its
    files, each stage's stage.json with the hash that trice wrote, and a format-1 marker."""
    recorded = FINISHED[recipe]
    run.mkdir(parents=True)
    (run / RUN_MARKER).write_text(json.dumps({"format": 1, "spellings": []}))
    for rel, text in recorded["files"].items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    for name, stage in recorded["stages"].items():
        (run / name).mkdir(parents=True, exist_ok=True)
        marker = {"stage": name, "hash": stage["hash"], "complete": True, "config": respelled(stage["config"], str(run))}
        (run / name / "stage.json").write_text(json.dumps(marker))


def _records(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.name in ("stage.json", "same_as.json", RUN_MARKER)}


def _outputs(run: Path, recipe: str) -> dict[str, bytes]:
    """The bytes of every file the fixture's stages made (adapters, rows, summaries), the records
    the migration rewrites aside."""
    return {rel: (run / rel).read_bytes() for rel in FINISHED[recipe]["files"] if Path(rel).name != "same_as.json"}


@pytest.mark.parametrize("recipe", sorted(FINISHED))
def test_an_old_run_is_refused_then_migrated_and_stays_finished(tmp_path, capsys, recipe: str) -> None:
    run = tmp_path / "run"
    _old_run(run, recipe)
    outputs = _outputs(run, recipe)
    assert main(["run", recipe, "--run-dir", str(run), "--status"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"trice run: error: {run}: made by an older trice, run `trice migrate-run {run}` (once: it rewrites the stage records "
        "to this trice's fingerprints, redoing and deleting nothing)"
    ]

    assert main(["migrate-run", str(run), "--recipe", recipe]) == 0
    verdicts = json.loads(capsys.readouterr().out)["stages"]
    plan = plan_recipe(ROOT / "recipes" / recipe, {"run_dir": str(run)})
    assert sorted(verdicts) == sorted(plan.stages) == sorted(FINISHED[recipe]["stages"])
    assert set(verdicts.values()) <= {"current", MIGRATED}
    assert {n for n, v in verdicts.items() if v == MIGRATED} >= {"data", "probe", "train-trice-i", "candidates", "eval-zero-shot"}
    now = {name: stage_hash(run / name, *stage_specs.stage(plan, name)[:2]) for name in plan.stages}
    assert {name: json.loads((run / name / "stage.json").read_text())["hash"] for name in plan.stages} == now
    assert set(stage_status(plan).values()) == {"up to date"}
    assert not any(pointer_stale(run / name) for name in plan.stages)

    migrated = _records(run)
    assert main(["migrate-run", str(run), "--recipe", recipe]) == 0  # idempotent
    assert set(json.loads(capsys.readouterr().out)["stages"].values()) == {"current"} and _records(run) == migrated
    run_plan(plan)  # a stage not skipped would be moved aside and run (and fail: there is no model here)
    assert moved_aside(run) == [] and _outputs(run, recipe) == outputs


def test_a_migration_cut_short_is_finished_by_running_it_again(tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    _old_run(run, "math_bench.yaml")
    plan = plan_recipe(ROOT / "recipes" / "math_bench.yaml", {"run_dir": str(run)})

    def killed(run_dir: Path) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(migration, "rekey_pointers", killed)
    with pytest.raises(KeyboardInterrupt):
        migrate_run(plan)
    with pytest.raises(OlderRun):  # the marker is written last
        stage_status(plan)
    monkeypatch.undo()
    result = migrate_run(plan)
    assert set(result["stages"].values()) == {"current"} and result["pointers rekeyed"] == ["train-sft-100"]
    assert set(stage_status(plan).values()) == {"up to date"}


def test_a_moved_run_keeps_its_shared_training(tmp_path, monkeypatch) -> None:
    """Made with the run directory spelled relative to the working directory, then moved and migrated
    from elsewhere: the shared training's pointer still holds."""
    monkeypatch.chdir(tmp_path)
    _old_run(Path("runs") / "x", "math_bench.yaml")
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "x"
    (tmp_path / "runs" / "x").rename(moved)
    monkeypatch.chdir(tmp_path / "elsewhere")
    plan = plan_recipe(ROOT / "recipes" / "math_bench.yaml", {"run_dir": "x"})
    assert migrate_run(plan)["pointers rekeyed"] == ["train-sft-100"]
    assert not pointer_stale(moved / "train-sft-100")
    assert set(stage_status(plan).values()) == {"up to date"}
    absolute = plan_recipe(ROOT / "recipes" / "math_bench.yaml", {"run_dir": str(moved)})
    assert set(stage_status(absolute).values()) == {"up to date"}


def test_a_changed_config_is_still_redone_after_the_migration(tmp_path) -> None:
    run = tmp_path / "run"
    _old_run(run, "math_bench.yaml")
    migrate_run(plan_recipe(ROOT / "recipes" / "math_bench.yaml", {"run_dir": str(run)}))
    raw = load_layered_yaml(ROOT / "recipes" / "math_bench.yaml")
    changes = {"run_dir": str(run), "train": raw["train"] | {"learning_rate": 0.5}, "probe": raw["probe"] | {"stop_after_call": True}}
    status = stage_status(plan := plan_recipe(ROOT / "recipes" / "math_bench.yaml", changes))
    assert sorted(s for s in plan.stages if status[s] == "changed") == ["probe", "train-sft-0", "train-sft-100", "train-trice-i"]
    assert status["data"] == "up to date" and status["label"] == "would redo"


def test_a_stage_it_does_not_recognise_is_left_as_it_is(tmp_path) -> None:
    run = tmp_path / "run"
    _old_run(run, "demo.yaml")
    state = json.loads((run / "probe" / "stage.json").read_text())
    (run / "probe" / "stage.json").write_text(json.dumps(state | {"hash": "0" * 64}))
    before = (run / "probe" / "stage.json").read_bytes()
    plan = plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": str(run)})
    assert migrate_run(plan)["stages"]["probe"] == UNRECOGNISED
    assert (run / "probe" / "stage.json").read_bytes() == before
    assert stage_status(plan)["probe"] == "changed"


def test_a_training_hashed_with_its_logging_keys_is_migrated(tmp_path) -> None:
    """A training finished when report_to entered the hash (the second rule) keeps its adapter."""
    run = tmp_path / "run"
    raw = load_layered_yaml(ROOT / "recipes" / "demo.yaml")
    plan = plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": str(run), "train": raw["train"] | {"report_to": "tensorboard"}})
    rows = plan.layout.label_rows("sft-0")
    rows.parent.mkdir(parents=True)
    rows.write_text('{"id": "a"}\n')
    (run / RUN_MARKER).write_text(json.dumps({"format": 1}))
    config, inputs, _ = stage_specs.stage(plan, "train-sft-0")
    earlier = stage_specs.stage(replace(plan, fields_of=second_rule), "train-sft-0")[0]
    assert earlier["report_to"] == "tensorboard" and "report_to" not in config
    (run / "train-sft-0").mkdir()
    marker = {"stage": "train-sft-0", "hash": stage_hash(run / "train-sft-0", earlier, inputs), "complete": True, "config": {}}
    (run / "train-sft-0" / "stage.json").write_text(json.dumps(marker))
    assert migrate_run(plan)["stages"]["train-sft-0"] == MIGRATED
    assert stage_verdict(run / "train-sft-0", config, inputs) == "up to date"
    assert json.loads((run / "train-sft-0" / "stage.json").read_text())["hash"] == stage_hash(run / "train-sft-0", config, inputs)


def test_a_stage_another_process_runs_is_not_migrated(tmp_path) -> None:
    stage = tmp_path / "run" / "probe"
    stage.mkdir(parents=True)
    (stage / "stage.json").write_text(json.dumps({"stage": "probe", "hash": "x", "complete": False, "config": {}}))
    lock = lock_path(stage)
    code = f"from trice.utils.locks import acquire; import time; acquire({str(lock)!r}); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StageBusy, match="being run by process"):
            migrate_stage(stage, {}, [], [])
    finally:
        holder.kill()
        holder.wait()
