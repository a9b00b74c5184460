"""bench/selective_math_qwen.py: what counts as meeting the issue's acceptance, the oracle, and that
each lever try changes what it says and reuses the main run for the rest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SPEC = importlib.util.spec_from_file_location("selective_math_qwen", BENCH / "selective_math_qwen.py")
bench = importlib.util.module_from_spec(SPEC)
sys.modules["selective_math_qwen"] = bench
SPEC.loader.exec_module(bench)


def _row(low_sft: float, low_i: float, right: float, wrong: float) -> dict:
    return {"paired": {"sft-100": {"low": low_sft}, "trice-i": {"low": low_i}},
            "decision": {"tool_use_zero_shot_right": right, "tool_use_zero_shot_wrong": wrong}}  # fmt: skip


@pytest.mark.parametrize(
    ("row", "met"),
    [(_row(0.01, 0.02, 0.5, 0.9), True), (_row(0.0, 0.02, 0.5, 0.9), False), (_row(0.01, -0.01, 0.5, 0.9), False), (_row(0.01, 0.02, 0.8, 0.9), False)],
    ids=["meets", "sft-100-bound-at-zero", "below-trice-i", "calls-alike"],
)
def test_meeting_the_acceptance_needs_both_bounds_above_zero_and_a_20_point_split(row: dict, met: bool) -> None:
    assert bench.meets(row) is met


def test_the_oracle_answers_alone_where_zero_shot_is_right_per_dataset_and_averages_them() -> None:
    zero_shot = {"a": {1: (True, False), 2: (False, False)}, "b": {3: (False, False), 4: (False, False)}}
    calling = {"a": {1: (False, True), 2: (True, True)}, "b": {3: (True, True), 4: (False, True)}}
    # own right on 1 (the call wrong there), own wrong on 3 (the call right on 2): break-even at (2/3) / (2/3 + 1)
    assert bench.oracle_row(zero_shot, calling) == {"avg": (1.0 + 0.5) / 2, "tool_rate": 3 / 4, "break_even_precision": pytest.approx(0.4)}


TRIES = sorted((BENCH / "tries").glob("selective_*.yaml"))


@pytest.mark.parametrize("try_yaml", TRIES, ids=[t.stem for t in TRIES])
def test_a_lever_try_changes_only_its_keys_and_has_a_run_dir_of_its_own(tmp_path, try_yaml: Path) -> None:
    assert bench.plan_recipe(try_yaml).run_dir != bench.plan_recipe(bench.RECIPE).run_dir
    plan = bench.plan_recipe(try_yaml, {"run_dir": str(tmp_path)})
    main = bench.plan_recipe(bench.RECIPE, {"run_dir": str(tmp_path)})
    assert plan.data == main.data and plan.probe == main.probe
    changed = {name for name in ("label", "train", "eval", "rlef", "dpo") if getattr(plan, name) != getattr(main, name)}
    assert changed and changed <= set(bench.load_yaml(try_yaml)) - {"base", "run_dir"}


def test_the_docs_table_is_the_committed_result() -> None:
    results = BENCH / "results" / "selective_math_qwen" / "results.json"
    if not results.is_file():
        pytest.skip("the selective-calling benchmark has recorded nothing yet")
    result = bench.read_json(results)
    docs = (BENCH.parent / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert bench.table(result) in docs
    if result["rows"]:  # the README's results lead with the same table
        assert bench.table(result) in (BENCH.parent / "README.md").read_text(encoding="utf-8")


def test_a_grpo_try_runs_its_own_training_where_the_main_run_has_none(tmp_path) -> None:
    """The online rows are tries of this benchmark: the main run has no GRPO training to copy, so the
    try trains in its own directory (and copies nothing the main run lacks); it starts from TRICE-I's
    committed adapter, so stage I is not among what it needs."""
    recipe = BENCH.parent / "trice" / "recipes" / "math_qwen_grpo.yaml"
    plan = bench.plan_recipe(recipe, {"run_dir": str(tmp_path / "try")})
    main = tmp_path / "main"
    main.mkdir()
    redone = bench.prepare_try(plan, main, ["eval-trice-grpo"])
    assert "train-trice-grpo" in redone and "train-trice-i" not in redone
    assert not any(plan.layout.stage(s).exists() for s in redone)


def test_a_row_evaluating_an_earlier_rows_weights_points_to_its_copy(tmp_path, monkeypatch) -> None:
    trained = {"trice-i": tmp_path / "a", "sft-100": tmp_path / "b"}
    for folder, weights in zip(trained.values(), (b"w1", b"w2"), strict=True):
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(weights)
        (folder / "adapter_config.json").write_text("{}")
    monkeypatch.setattr(bench, "final_adapter", lambda run_dir, setting: trained[setting])
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    rows = {name: {"run_dir": str(tmp_path), "setting": setting} for name, setting in
            (("sft-100", "sft-100"), ("trice-i", "trice-i"), ("trice-i (threshold)", "trice-i"))}  # fmt: skip
    bench.keep_adapters(rows, tmp_path / "out")
    assert rows["trice-i (threshold)"]["adapter"] == rows["trice-i"]["adapter"] == "out/adapters/trice-i"
    assert sorted(p.name for p in (tmp_path / "out" / "adapters").iterdir()) == ["sft-100", "trice-i"]
    # recorded again with the run directories gone but for a stage II row whose dev set chose its start
    # (TRICE-I's weights): it points to TRICE-I's committed copy, not a copy of its own
    trained = {"trice-grpo": trained["trice-i"]}
    monkeypatch.setattr(bench, "final_adapter", lambda run_dir, setting: trained.get(setting))
    rows["trice-grpo (eapo)"] = {"run_dir": str(tmp_path), "setting": "trice-grpo"}
    bench.keep_adapters(rows, tmp_path / "out")
    assert rows["trice-grpo (eapo)"]["adapter"] == "out/adapters/trice-i"
    assert sorted(p.name for p in (tmp_path / "out" / "adapters").iterdir()) == ["sft-100", "trice-i"]


def _recorded(tmp_path: Path) -> dict:
    """A results.json as the benchmark writes it, for rows whose run directories are gone."""
    answers = {
        "zero-shot": {"asdiv-a": {"a1": (True, False), "a2": (False, False)}, "svamp": {"s1": (False, False), "s2": (True, False)}},
        "sft-100": {"asdiv-a": {"a1": (False, True), "a2": (True, True)}, "svamp": {"s1": (True, True), "s2": (True, True)}},
        "trice-i": {"asdiv-a": {"a1": (True, False), "a2": (True, True)}, "svamp": {"s1": (False, True), "s2": (False, True)}},
    }
    rows = {
        name: {"run_dir": str(tmp_path / "gone"), "setting": name, "decision": {"tool_use_zero_shot_right": 0.5, "tool_use_zero_shot_wrong": 1.0},
               "summary": {"accuracy": {ds: sum(c for c, _ in a.values()) / len(a) for ds, a in by_ds.items()}, "tool_rate": 0.5}}
        for name, by_ds in answers.items()
    }  # fmt: skip
    return {"rows": rows, "per_question": bench.per_question(answers), "tries": [], "notes": ["kept"]}


def test_recording_after_the_run_directories_are_gone_keeps_every_row_and_its_answers(tmp_path) -> None:
    """Run directories are scratch: a new machine records from the committed per-question answers,
    and the paired differences come out of them as they did from the runs."""
    previous = _recorded(tmp_path)
    bench.write_json(tmp_path / "results.json", previous)
    result = bench.record(tmp_path / "gone", tmp_path, [])
    assert list(result["rows"]) == ["zero-shot", "sft-100", "trice-i"]
    assert result["per_question"] == previous["per_question"] and result["notes"] == ["kept"]
    assert result["rows"]["trice-i"]["avg"] == (1.0 + 0.0) / 2
    assert result["rows"]["trice-i"]["paired"]["sft-100"]["difference"] == pytest.approx(0.5 - 0.75)
    assert result["rows"]["trice-i"]["against_zero_shot"] == {"both_right": 1, "row_only": 1, "zero_shot_only": 1, "both_wrong": 1}


def test_a_row_recorded_without_answers_is_kept_as_recorded_but_a_baseline_must_have_them(tmp_path) -> None:
    previous = _recorded(tmp_path)
    old = previous["rows"]["trice-i (dw)"] = previous["rows"]["trice-i"] | {
        "avg": 0.1,
        "interval_avg": [0.0, 0.2],
        "paired": {"sft-100": {"low": -0.5}},
        "meets": False,
    }
    bench.write_json(tmp_path / "results.json", previous)
    assert bench.record(tmp_path / "gone", tmp_path, [])["rows"]["trice-i (dw)"] == old
    del previous["rows"]["trice-i (dw)"]
    previous["per_question"] = bench.per_question({k: v for k, v in bench.judged_from_record(previous["per_question"]).items() if k != "sft-100"})
    bench.write_json(tmp_path / "results.json", previous)
    before = (tmp_path / "results.json").read_bytes()
    with pytest.raises(SystemExit, match=r"results\.json: rows sft-100 were recorded without per-question answers"):
        bench.record(tmp_path / "gone", tmp_path, [])
    assert (tmp_path / "results.json").read_bytes() == before


def test_restored_answers_give_a_row_recorded_without_them_its_pairs_again(tmp_path) -> None:
    previous = _recorded(tmp_path)
    answers = bench.judged_from_record(previous["per_question"])
    previous["per_question"] = bench.per_question({k: v for k, v in answers.items() if k != "trice-i"})
    bench.write_json(tmp_path / "results.json", previous)
    result = bench.record(tmp_path / "gone", tmp_path, [], restored={"trice-i": answers["trice-i"]})
    assert result["per_question"] == bench.per_question(answers)
    assert result["rows"]["trice-i"]["paired"]["sft-100"]["difference"] == pytest.approx(0.5 - 0.75)


def test_recording_without_zero_shots_answers_stops_rather_than_emptying_the_results(tmp_path) -> None:
    previous = _recorded(tmp_path)
    answers = bench.judged_from_record(previous["per_question"])
    previous["per_question"] = bench.per_question({k: v for k, v in answers.items() if k != "zero-shot"})
    bench.write_json(tmp_path / "results.json", previous)
    with pytest.raises(SystemExit, match="zero-shot row was recorded without per-question answers"):
        bench.record(tmp_path / "gone", tmp_path, [])
    assert bench.read_json(tmp_path / "results.json")["rows"] == previous["rows"]


def test_an_online_rows_training_curves_are_kept_with_its_results(tmp_path) -> None:
    """The run directory is scratch, so a GRPO row carries its dev curve and its rollouts per step
    (reward, tool use, seconds, rollout tokens/s) into the results; a stage I row carries none."""
    run = bench.RunLayout(tmp_path)
    train = run.train_dir("trice-grpo")
    train.mkdir(parents=True)
    steps = [{"step": s, "accuracy": {"total": a}, "tool_rate": t} for s, a, t in ((0, 0.6, 1.0), (5, 0.65, 0.8))]
    bench.write_json(train / "selection.json", {"best_step": 5, "selected_from": "x", "steps": steps})
    log = [{"step": 1, "reward": 0.5, "tool_rate": 0.9, "kl": 0.0, "step_time": 60.0, "rollout_tokens_per_second": 30.0}, {"step": 1, "loss": 0.1}]
    bench.write_json(train / "train_log.json", log)
    kept = bench.stage_two_of(run, "trice-grpo")["stage_two"]
    assert kept["best_step"] == 5 and [c["tool_rate"] for c in kept["dev_curve"]] == [1.0, 0.8]
    assert kept["rollouts"] == [log[0]]
    assert bench.stage_two_of(run, "trice-i") == {} and bench.stage_two_of(run, "trice-all") == {}
