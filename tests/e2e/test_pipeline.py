"""`trice run`: every stage on real data with the tiny model; reruns skip; bad recipes fail early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from trice.cli import main
from trice.utils.config import ConfigError
from trice.utils.io import read_json
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import run_plan

STAGES = ["data", "probe", "label", "train-sft-0", "train-sft-100", "train-trice-i", "eval-zero-shot", "eval-sft-0", "eval-sft-100", "eval-trice-i", "report"]


def recipe(tmp_path: Path, model: str, data_dir: Path, **overrides) -> Path:
    body = {
        "run_dir": str(tmp_path / "run"),
        "model": model,
        "seed": 0,
        "settings": ["zero-shot", "sft-0", "sft-100", "trice-i"],
        "data": {"data_dir": str(data_dir), "n_train": 3, "n_test": 2},
        "probe": {"batch_size": 4, "max_new_tokens": 4},
        "train": {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3},
        "eval": {"batch_size": 4, "max_new_tokens": 4},
    } | overrides
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_pipeline_end_to_end_and_rerun_skips(tmp_path, tiny_model_dir, data_dir, capsys) -> None:
    path = recipe(tmp_path, str(tiny_model_dir), data_dir)
    assert main(["run", str(path)]) == 0
    run = tmp_path / "run"
    assert [s for s in STAGES if read_json(run / s / "stage.json")["complete"]] == STAGES
    results = read_json(run / "report" / "results.json")
    assert list(results["rows"]) == ["zero-shot", "sft-0", "sft-100", "trice-i"]
    for row in results["rows"].values():
        assert set(row) == {"asdiv", "svamp", "gsm8k", "avg", "tool_rate"}
        assert all(0.0 <= v <= 1.0 for v in row.values())
    assert results["config"]["splits"]["datasets"]["svamp"]["split"].startswith("seeded")
    report = (run / "report" / "report.md").read_text()
    assert "| setting | asdiv | svamp | gsm8k | avg | tool use |" in report
    for png in ("accuracy.png", "tool_rate.png", "train_loss.png"):
        assert (run / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    judged = [json.loads(line) for line in (run / "eval-sft-0" / "judged.jsonl").read_text().splitlines()]
    assert len(judged) == 6 and {"prediction", "correct", "used_tool"} <= set(judged[0])

    marks = {s: (run / s / "stage.json").stat().st_mtime_ns for s in STAGES}
    capsys.readouterr()
    assert main(["run", str(path)]) == 0  # nothing changed: every stage skipped
    assert {s: (run / s / "stage.json").stat().st_mtime_ns for s in STAGES} == marks

    plan = plan_recipe(path)
    run_plan(plan, only="report")  # --only forces one stage
    assert (run / "report" / "stage.json").stat().st_mtime_ns != marks["report"]
    assert (run / "eval-sft-0" / "stage.json").stat().st_mtime_ns == marks["eval-sft-0"]


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"learning_rate": 1.0}, "unknown key 'learning_rate'"),
        ({"train": {"lora_r": "8"}}, "train: key 'lora_r': expected int"),
        ({"train": {"lora_rr": 8}}, "train: unknown key 'lora_rr'"),
        ({"eval": {"adapter": "x"}}, "eval: key 'adapter' is set by the pipeline"),
        ({"settings": ["zero-shot", "trice-iii"]}, "settings: unknown ['trice-iii']"),
        ({"data": {"datasets": ["mnist"]}}, "datasets: unknown ['mnist']"),
    ],
)
def test_bad_recipe_fails_before_any_model_loads(tmp_path, data_dir, overrides, message, monkeypatch) -> None:
    import trice.generation.models

    monkeypatch.setattr(trice.generation.models, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    path = recipe(tmp_path, "no-such-model", data_dir, **overrides)
    with pytest.raises(ConfigError) as info:
        plan_recipe(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_recipe_and_bad_stage_are_clear(tmp_path, data_dir, capsys) -> None:
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err
    path = recipe(tmp_path, "m", data_dir)
    assert main(["run", str(path), "--only", "traine"]) == 2
    assert "no stage 'traine'" in capsys.readouterr().err


STAGE_TWO = ["trice-ii", "trice-all", "trice-all-dpo"]


def test_stage_two_settings_run_end_to_end_from_one_recipe(tmp_path, tiny_model_dir, data_dir) -> None:
    """dev -> candidates -> score -> RLEF/DPO (checkpoint chosen on dev) -> eval -> report rows."""
    small = {"max_new_tokens": 4, "batch_size": 4}
    sources = [
        {"name": "gold", "kind": "gold"},
        {"name": "base", "kind": "responses", "path": "probe"},
        {"name": "tool-always", "kind": "model", "few_shot": "math", **small},
        {"name": "early", "kind": "model", "adapter": "stage-i-early", **small},
        {"name": "last", "kind": "model", "adapter": "stage-i", "do_sample": True, **small},
    ]
    stage_two = {"max_steps": 2, "save_steps": 1, "learning_rate": 1e-3, "dev_max_new_tokens": 4, "dev_batch_size": 4}
    path = recipe(
        tmp_path,
        str(tiny_model_dir),
        data_dir,
        settings=["zero-shot", "trice-i", *STAGE_TWO],
        dev={"n_per_dataset": 1},
        candidates={"sources": sources},
        rlef=stage_two | {"gradient_accumulation_steps": 2},
        trice_ii={"learning_rate": 1e-2},
        dpo=stage_two | {"per_device_train_batch_size": 2},
    )
    plan = plan_recipe(path)
    assert plan.stages == [
        "data",
        "probe",
        "label",
        "train-trice-i",
        "dev",
        "candidates",
        "score",
        *[f"train-{s}" for s in STAGE_TWO],
        "eval-zero-shot",
        "eval-trice-i",
        *[f"eval-{s}" for s in STAGE_TWO],
        "report",
    ]
    assert plan.trice_ii.learning_rate == 1e-2 and plan.rlef.learning_rate == 1e-3 and plan.trice_ii.max_steps == 2
    run_plan(plan)
    run = tmp_path / "run"

    dev_ids = {json.loads(line)["id"] for line in (run / "dev" / "dev.jsonl").read_text().splitlines()}
    train_ids = {json.loads(line)["id"] for line in (run / "data" / "train.jsonl").read_text().splitlines()}
    assert len(dev_ids) == 3 and dev_ids.isdisjoint(train_ids)
    candidates = [json.loads(line) for line in (run / "candidates" / "candidates.jsonl").read_text().splitlines()]
    assert candidates and all(c["sources"] == [s["name"] for s in sources] for c in candidates)
    early = json.loads((run / "candidates" / "candidates.jsonl.parts" / "early.source.json").read_text())["adapter"]
    assert early == str(run / "train-trice-i" / "checkpoints" / "checkpoint-1")
    probe = {r["id"]: r["response"] for r in map(json.loads, (run / "probe" / "responses.jsonl").read_text().splitlines())}
    assert all(c["responses"][1] == probe[c["id"]] for c in candidates)  # the base source reuses the probe
    scored = [json.loads(line) for line in (run / "score" / "scored.jsonl").read_text().splitlines()]
    assert all(len(r["scores"]) == 5 and r["scores"][0] == max(r["scores"]) for r in scored)
    for setting in STAGE_TWO:
        selection = read_json(run / f"train-{setting}" / "selection.json")
        assert [s["step"] for s in selection["steps"]] == [0, 1, 2] and selection["n_dev"] == 3  # 0: the start
        chosen = None if selection["best_adapter"] is None else str(run / f"train-{setting}" / "adapter_best")  # None: the base model won
        assert read_json(run / f"eval-{setting}" / "stage.json")["config"].get("adapter") == chosen  # absent: at its default, the base model
        assert chosen is not None or setting == "trice-ii"  # TRICE-ALL starts from an adapter, stage I's
    assert read_json(run / "train-trice-all" / "rlef_config.json")["init_adapter"] == str(run / "train-trice-i" / "adapter")
    assert read_json(run / "train-trice-ii" / "rlef_config.json")["init_adapter"] is None

    results = read_json(run / "report" / "results.json")
    assert list(results["rows"]) == ["zero-shot", "trice-i", *STAGE_TWO]
    assert set(results["stage_two"]["selection"]) == set(STAGE_TWO)
    report = (run / "report" / "report.md").read_text()
    assert "## Stage II" in report and "| setting | zero-shot right | zero-shot wrong |" in report  # the Figure 4 split
    assert set(results["figure4"]) == {"zero-shot", "trice-i", *STAGE_TWO}
    for setting, selection in results["stage_two"]["selection"].items():
        assert selection["curve"][0]["step"] == 0 and f"**{setting}**: best dev step {selection['best_step']} " in report
    for png in ("tool_rate.png", "tool_use_by_zero_shot.png", "stage2_loss.png", *[f"dev_curve-{s}.png" for s in STAGE_TWO]):
        assert (run / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    marks = {s: (run / s / "stage.json").stat().st_mtime_ns for s in plan.stages}
    run_plan(plan_recipe(path))  # nothing changed: every stage skipped, stage II included
    assert {s: (run / s / "stage.json").stat().st_mtime_ns for s in plan.stages} == marks


def test_stage_two_needs_stage_one(tmp_path, data_dir) -> None:
    path = recipe(tmp_path, "m", data_dir, settings=["zero-shot", "trice-all"])
    with pytest.raises(ConfigError, match="stage II settings need trice-i"):
        plan_recipe(path)


def test_a_setting_whose_dev_set_chose_the_base_model_is_evaluated_on_it(tmp_path) -> None:
    """TRICE-II's start is the base model: where it beats every checkpoint on dev there is no
    adapter_best, and the eval stage runs the base model, as zero-shot does (not the last adapter)."""
    from trice.pipeline import stage_specs
    from trice.utils.io import write_json

    recipe_path = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"
    plan = plan_recipe(recipe_path, {"run_dir": str(tmp_path), "settings": ["zero-shot", "trice-i", "trice-ii"]})
    train = tmp_path / "train-trice-ii"
    (train / "adapter").mkdir(parents=True)
    write_json(train / "selection.json", {"best_step": 0, "best_adapter": None, "selected_from": None})
    config, inputs, _ = stage_specs.stage(plan, "eval-trice-ii")
    assert "adapter" not in config and inputs == [tmp_path / "data" / "test.jsonl"]  # at its default (None): the base model
    assert config == stage_specs.stage(plan, "eval-zero-shot")[0]

    (train / "adapter_best").mkdir()
    write_json(train / "selection.json", {"best_step": 2, "best_adapter": str(train / "adapter_best"), "selected_from": "checkpoint-2"})
    assert stage_specs.stage(plan, "eval-trice-ii")[0]["adapter"] == str(train / "adapter_best")


@pytest.mark.parametrize("task, tool", [("qa", "WikiSearch"), ("lama", "QA"), ("mlqa", "translator")])
def test_split_bench_recipes_are_the_mix_recipe_on_one_task(task: str, tool: str) -> None:
    """The SPLIT recipes extend mix_bench.yaml: the same seed, sample sizes and stage I/II
    hyperparameters (what bench/eight_sets.py relies on), one task, and only that task's tool."""
    root = Path(__file__).resolve().parents[2] / "recipes"
    mix, split = plan_recipe(root / "mix_bench.yaml"), plan_recipe(root / f"split_bench_{task}.yaml")
    assert split.data.task_names == [task] and split.data.datasets == mix.data.tasks[task]
    assert (split.data.seed, split.data.n_train, split.data.n_test, split.data.test_fraction) == (
        mix.data.seed,
        mix.data.n_train,
        mix.data.n_test,
        mix.data.test_fraction,
    )
    assert list(split.recipe.tools) == [tool] and split.recipe.tools[tool] == mix.recipe.tools[tool]
    assert split.rlef.tools == {tool: mix.recipe.tools[tool]}
    for section in ("candidates", "score", "eval", "probe"):
        assert getattr(split.recipe, section) == getattr(mix.recipe, section), section
    assert {k: v for k, v in split.recipe.train.items() if k != "save_steps"} == {k: v for k, v in mix.recipe.train.items() if k != "save_steps"}
    assert split.run_dir == Path(f"runs/split-bench-{task}") and "zero-shot" not in split.recipe.settings


def test_run_keeps_the_candidates_parts_when_that_stage_starts_over(tmp_path, monkeypatch) -> None:
    import trice.pipeline.runner

    kept = {}
    monkeypatch.setattr(trice.pipeline.runner, "run_stage", lambda stage_dir, name, *a, keep=(), **kw: kept.__setitem__(name, tuple(keep)))
    plan = plan_recipe(Path(__file__).resolve().parents[2] / "recipes" / "math_bench.yaml", {"run_dir": str(tmp_path / "run")})
    run_plan(plan)
    from trice.pipeline import stage_specs
    from trice.stage2.candidates import parts_dir

    written = parts_dir(stage_specs.stage(plan, "candidates")[0]["output"])  # where the stage appends its parts
    assert written.parent == plan.run_dir / "candidates" and kept["candidates"] == (written.name,)
    assert {n for n, k in kept.items() if k} == {"candidates"}
