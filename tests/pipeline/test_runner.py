"""trice.pipeline.runner: which stages a run runs, and which it forces (--only, --from, --stages);
a model the run would load that is not installed stops it before any stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trice.cli import main
from trice.generation import models
from trice.pipeline import runner
from trice.pipeline.plan import Plan, plan_recipe
from trice.utils.config import ConfigError

RECIPES = Path(__file__).resolve().parents[2] / "trice" / "recipes"


@pytest.fixture
def plan(tmp_path) -> Plan:
    return plan_recipe(RECIPES / "math_bench.yaml", {"run_dir": str(tmp_path / "run")})


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, bool]]:
    """Each stage run_plan runs, with whether it forced it; inputs named by the stage are made here."""
    seen: list[tuple[str, bool]] = []

    def fake_stage(plan: Plan, name: str) -> tuple[dict, list[Path], None]:
        made = plan.run_dir.parent / "inputs" / f"{name}.input"
        made.parent.mkdir(parents=True, exist_ok=True)
        made.write_text(name)
        return {}, [made], None

    monkeypatch.setattr(runner.stage_specs, "stage", fake_stage)
    monkeypatch.setattr(runner, "run_stage", lambda stage_dir, name, *a, force, keep, **_: seen.append((name, force)))
    return seen


def test_stages_run_the_named_ones_in_the_recipes_order_unforced(plan: Plan, calls) -> None:
    runner.run_plan(plan, stages=["eval-trice-i", "train-trice-all"])
    assert calls == [("train-trice-all", False), ("eval-trice-i", False)]


def test_only_and_from_force(plan: Plan, calls) -> None:
    runner.run_plan(plan, only="eval-trice-i")
    assert calls == [("eval-trice-i", True)]
    calls.clear()
    runner.run_plan(plan, start="report")
    assert calls[-1] == ("report", True) and all(not forced for name, forced in calls[:-1])


@pytest.mark.parametrize("kwargs", [{"stages": ["train-trice-al"]}, {"stages": []}, {"only": "report", "stages": ["report"]}])
def test_bad_stage_choices_are_refused_before_anything_runs(plan: Plan, calls, kwargs) -> None:
    with pytest.raises(ConfigError, match="--"):
        runner.run_plan(plan, **kwargs)
    assert calls == []


def test_a_chosen_stage_whose_input_is_not_made_names_the_stage_that_makes_it(plan: Plan, monkeypatch) -> None:
    monkeypatch.setattr(runner, "run_stage", lambda *a, **k: pytest.fail("must not run"))
    with pytest.raises(ConfigError, match=r"eval-trice-all needs .*not made yet: run data, train-trice-all first"):
        runner.run_plan(plan, stages=["eval-trice-all"])


def test_a_model_whose_package_is_missing_stops_the_run_before_any_stage(tmp_path, calls, monkeypatch) -> None:
    missing = models.EmbeddedModel(package="fake-mt", module="trice_no_such_module", gguf="x.gguf", install="pip install fake-mt")
    monkeypatch.setitem(models.EMBEDDED, "fake-mt", missing)
    plan = plan_recipe(RECIPES / "math_bench.yaml", {"run_dir": str(tmp_path / "run"), "model": "fake-mt"})
    with pytest.raises(ConfigError, match=r"^model: model 'fake-mt' needs the package fake-mt: run `pip install fake-mt`"):
        runner.run_plan(plan)
    assert calls == [] and not (tmp_path / "run").exists()


def test_a_finished_run_needs_no_model_installed_but_a_forced_stage_does(tmp_path, calls, monkeypatch) -> None:
    missing = models.EmbeddedModel(package="fake-mt", module="trice_no_such_module", gguf="x.gguf", install="pip install fake-mt")
    monkeypatch.setitem(models.EMBEDDED, "fake-mt", missing)
    plan = plan_recipe(RECIPES / "math_bench.yaml", {"run_dir": str(tmp_path / "run"), "model": "fake-mt"})
    monkeypatch.setattr(runner, "stage_status", lambda p: dict.fromkeys(p.stages, "up to date"))
    runner.run_plan(plan)
    assert [name for name, forced in calls] == plan.stages and not any(forced for _, forced in calls)
    calls.clear()
    with pytest.raises(ConfigError, match="fake-mt"):
        runner.run_plan(plan, only="report")
    assert calls == []


def test_status_lists_the_models_not_installed_and_a_run_prints_them_as_one_line(tmp_path, monkeypatch, capsys) -> None:
    missing = models.EmbeddedModel(package="fake-mt", module="trice_no_such_module", gguf="x.gguf", install="pip install fake-mt")
    monkeypatch.setitem(models.EMBEDDED, "fake-mt", missing)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"base: {RECIPES / 'mlqa.yaml'}\nrun_dir: {tmp_path / 'run'}\ntools:\n  translator: {{model: fake-mt}}\n")
    assert main(["run", str(recipe), "--status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["models not installed"] == ["tools: translator: model 'fake-mt' needs the package fake-mt: run `pip install fake-mt`"]
    assert main(["run", str(recipe)]) == 2
    assert "trice run: error: tools: translator: model 'fake-mt' needs the package fake-mt" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_models_a_run_checks_include_its_tools_and_candidate_sources(tmp_path) -> None:
    plan = plan_recipe(RECIPES / "mix_qwen.yaml", {"run_dir": str(tmp_path / "run")})
    needed = plan.local_models()
    assert needed[0] == ("model", "qwen2.5-coder-0.5b-instruct")
    assert ("candidates: teacher", "qwen2.5-coder-1.5b-instruct") in needed
    assert ("tools: translator", "gemma3-270m") in needed and ("tools: QA", "smollm2-135m-instruct") in needed
    assert len(needed) == len(set(needed))


def test_a_dense_qa_retriever_whose_packages_are_missing_stops_the_run(tmp_path, calls, monkeypatch) -> None:
    monkeypatch.setattr(runner, "tool_missing_packages", lambda tool, options: [f"lacks {options['retriever']['backend']}"] if tool == "QA" else [])
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"base: {RECIPES / 'lama.yaml'}\nrun_dir: {tmp_path / 'run'}\ntools:\n  QA: {{retriever: {{backend: dense}}}}\n")
    plan = plan_recipe(recipe)
    assert runner.missing_models(plan) == ["tools: QA: lacks dense"]
    with pytest.raises(ConfigError, match="^tools: QA: lacks dense$"):
        runner.run_plan(plan)
    assert calls == []


def test_a_report_so_far_covers_the_finished_evaluations_and_runs_nothing(plan: Plan, calls, monkeypatch) -> None:
    status = dict.fromkeys(plan.stages, "to do") | {"eval-zero-shot": "up to date", "eval-sft-0": "up to date", "eval-trice-i": "running"}
    monkeypatch.setattr(runner, "stage_status", lambda p: status)
    written: list[tuple[Path, list[str]]] = []
    monkeypatch.setattr(runner, "write_report", lambda p, out, settings: written.append((out, settings)))
    assert runner.report_so_far(plan) == plan.run_dir / "report-so-far"
    assert written == [(plan.run_dir / "report-so-far", ["zero-shot", "sft-0"])] and calls == []
    status.update({"eval-zero-shot": "partial", "eval-sft-0": "changed"})
    with pytest.raises(ConfigError, match="no test evaluation has finished yet .*eval-zero-shot: partial"):
        runner.report_so_far(plan)
