"""`trice run`'s extra rows and columns: one training for identical stage-I sets, the few-shot
baseline, unseen test sets (the paper's Tables 3 and 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import trice.responses.few_shot
import trice.stage1.train_sft
from trice.pipeline import stage_specs
from trice.core.prompts import FEW_SHOT_PRESETS
from trice.cli import main
from trice.utils.config import ConfigError
from trice.responses.generate import GenerateConfig
from trice.utils.io import DataError, read_json, write_json
from trice.pipeline.plan import plan_recipe
from trice.pipeline.runner import stage_status
from trice.core.layout import SAME_AS
from trice.pipeline.shared_training import pointer_stale, trained_dir
from trice.pipeline.stage_dirs import claim_run_dir, run_stage

from .test_pipeline import recipe

ROOT = Path(__file__).resolve().parents[2]
UNSEEN = [
    {"id": "u1", "dataset": "mini", "task": "math", "question": "Tom has 3 apples and buys 4 more. How many apples?", "answers": ["7"]},
    {"id": "u2", "dataset": "mini", "task": "math", "question": "A box holds 6 eggs. How many eggs in 5 boxes?", "answers": ["30"]},
]


def _write_unseen(path: Path, rows: list[dict] = UNSEEN) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _recipe(tmp_path: Path, model: str, data_dir: Path, **overrides) -> Path:
    """test_pipeline's tiny recipe with the few-shot row among its settings."""
    return recipe(tmp_path, model, data_dir, settings=["zero-shot", "few-shot", "sft-0", "sft-100", "trice-i"], **overrides)


def test_run_with_all_wrong_probe_trains_once_and_shows_few_shot_and_unseen(tmp_path, tiny_model_dir, data_dir, monkeypatch, one_thread) -> None:
    trainings, prompts = [], []
    real_train, real_prompt = trice.stage1.train_sft.train_sft, trice.responses.few_shot.FewShotBackend.prompt
    monkeypatch.setattr(trice.stage1.train_sft, "train_sft", lambda config: trainings.append(config.output_dir) or real_train(config))
    monkeypatch.setattr(trice.responses.few_shot.FewShotBackend, "prompt", lambda self, *a: prompts.append(real_prompt(self, *a)) or prompts[-1])
    path = _recipe(tmp_path, str(tiny_model_dir), data_dir, unseen={"mini": str(_write_unseen(tmp_path / "mini.jsonl"))})
    assert main(["run", str(path)]) == 0
    run = tmp_path / "run"

    assert read_json(run / "probe" / "summary.json")["accuracy"]["total"] == 0.0  # the tiny model is never right
    assert (run / "label" / "trice.jsonl").read_bytes() == (run / "label" / "sft-100.jsonl").read_bytes()
    assert sorted(Path(t).name for t in trainings) == ["train-sft-0", "train-trice-i"]  # sft-100 shares trice-i's
    assert read_json(run / "train-sft-100" / SAME_AS)["same_as"] == "train-trice-i"
    assert not (run / "train-sft-100" / "adapter").exists() and trained_dir(run, "sft-100") == run / "train-trice-i"
    assert read_json(run / "eval-sft-100" / "stage.json")["config"]["adapter"] == str(run / "train-trice-i" / "adapter")
    assert read_json(run / "eval-trice-i" / "reused.json")["from"] == "eval-sft-100"  # same weights: one eval pass

    # few-shot: the base model, each test prompt after the math preset; not mistaken for zero-shot's eval
    assert len(prompts) == 6 + 2 and all(p.startswith(FEW_SHOT_PRESETS["math"]) for p in prompts)
    assert not (run / "eval-few-shot" / "reused.json").exists()
    assert "adapter" not in read_json(run / "eval-few-shot" / "stage.json")["config"]  # at its default (None): the base model

    results = read_json(run / "report" / "results.json")
    settings = ["zero-shot", "few-shot", "sft-0", "sft-100", "trice-i"]
    assert list(results["rows"]) == settings and results["shared_training"] == {"sft-100": "trice-i"}
    assert results["rows"]["sft-100"] == results["rows"]["trice-i"]
    assert set(results["unseen"]) == set(settings) and all(r["mini"]["n"] == 2 for r in results["unseen"].values())
    assert all(set(row) == {"asdiv", "svamp", "gsm8k", "avg", "tool_rate"} for row in results["rows"].values())  # unseen not in avg
    report = (run / "report" / "report.md").read_text()
    assert "sft-100 and trice-i trained on identical sets: one training, shared adapter" in report
    assert "| setting | avg (seen) | unseen: mini (2) |" in report and "| few-shot |" in report
    for by_set in results["unseen"].values():  # each unseen cell with its interval, as the main table's
        low, high = by_set["mini"]["interval"]
        assert low <= by_set["mini"]["accuracy"] <= high and f"[{100 * low:.1f}, {100 * high:.1f}]" in report.split("## Unseen test sets")[1]
    for png in ("accuracy.png", "unseen_accuracy.png"):
        assert (run / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    stages = plan_recipe(path).stages
    assert [s for s in stages if "unseen" in s] == [f"eval-{s}-unseen-mini" for s in settings]
    marks = {s: (run / s / "stage.json").stat().st_mtime_ns for s in stages}
    assert main(["run", str(path)]) == 0  # nothing changed: every stage skipped, the pointer stage included
    assert {s: (run / s / "stage.json").stat().st_mtime_ns for s in stages} == marks and len(trainings) == 2


@pytest.fixture()
def fake_training(tmp_path, monkeypatch) -> tuple[object, list[str]]:
    """A plan of the demo recipe's stage-I settings with label files written by hand and a
    training that only writes an adapter file: the sharing decision alone, no model."""
    calls: list[str] = []

    def fake(config) -> None:
        calls.append(Path(config.output_dir).name)
        (Path(config.output_dir) / "adapter").mkdir(parents=True)
        (Path(config.output_dir) / "adapter" / "adapter_model.safetensors").write_bytes(Path(config.data).read_bytes())

    monkeypatch.setattr(trice.stage1.train_sft, "train_sft", fake)
    plan = plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": str(tmp_path / "run"), "settings": ["sft-0", "sft-100", "trice-i"]})
    claim_run_dir(plan.run_dir)  # a trice run directory, as run_plan makes it
    (plan.run_dir / "label").mkdir(parents=True)
    return plan, calls


def _labels(plan, **rows: list[dict]) -> None:
    for mode, body in rows.items():
        (plan.run_dir / "label" / f"{mode.replace('_', '-')}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in body))


def _train_all(plan) -> None:
    """The train stages as run_plan runs them: in plan order, a stale pointer forcing a start-over."""
    for name in [s for s in plan.stages if s.startswith("train-")]:
        config, inputs, fn = stage_specs.stage(plan, name)
        run_stage(plan.run_dir / name, name, config, inputs, fn, force=pointer_stale(plan.run_dir / name))


ROW = {"id": "q1", "question": "1+1?", "output": "calculator(1+1)"}


def test_sets_that_differ_train_twice(fake_training) -> None:
    plan, calls = fake_training
    run = plan.run_dir
    _labels(plan, sft_0=[ROW | {"output": "2"}], sft_100=[ROW], trice=[ROW | {"output": "The answer is 2"}])
    _train_all(plan)
    assert calls == ["train-trice-i", "train-sft-0", "train-sft-100"]  # stage I first; every set differs
    assert not any((run / f"train-{s}" / SAME_AS).exists() for s in ("sft-0", "sft-100", "trice-i"))
    assert trained_dir(run, "sft-100") == run / "train-sft-100"


def test_identical_sets_share_and_the_pointer_goes_stale_when_the_twin_retrains(fake_training) -> None:
    plan, calls = fake_training
    run = plan.run_dir
    _labels(plan, sft_0=[ROW | {"output": "2"}], sft_100=[ROW], trice=[ROW])
    _train_all(plan)
    assert calls == ["train-trice-i", "train-sft-0"]
    assert stage_specs.final_adapter(run, "sft-100") == run / "train-trice-i" / "adapter"
    assert stage_specs.stage_one_adapter(run, "stage-i") == run / "train-trice-i" / "adapter"
    # the label files are written by hand (no finished label stage), so --status shows the trainings
    # downstream of it as "would redo"; a stale pointer must read "changed" all the same
    assert not pointer_stale(run / "train-sft-100") and stage_status(plan)["train-sft-100"] == "would redo"

    _labels(plan, trice=[ROW, ROW | {"id": "q2"}])  # D_tool changed, sft-100's rows did not
    assert stage_status(plan)["train-sft-100"] == "changed" and pointer_stale(run / "train-sft-100")
    _train_all(plan)
    assert calls == ["train-trice-i", "train-sft-0", "train-trice-i", "train-sft-100"]
    assert not (run / "train-sft-100" / SAME_AS).exists() and trained_dir(run, "sft-100") == run / "train-sft-100"


def test_a_pointer_whose_twin_is_unfinished_is_stale(fake_training) -> None:
    plan, _ = fake_training
    run = plan.run_dir
    _labels(plan, sft_0=[ROW | {"output": "2"}], sft_100=[ROW], trice=[ROW])
    _train_all(plan)
    write_json(run / "train-trice-i" / "stage.json", read_json(run / "train-trice-i" / "stage.json") | {"complete": False})
    assert pointer_stale(run / "train-sft-100")  # its twin is being redone: the pointer is not trusted


def test_few_shot_prompts_use_each_questions_own_task_preset() -> None:
    class Inner:
        def prompt(self, task: str, question: str):
            return [{"role": "system", "content": "s"}, {"role": "user", "content": question}] if task == "qa" else f"<{question}>"

        def generate(self, prompts, **kwargs):
            return list(prompts)

    backend = trice.responses.few_shot.FewShotBackend(GenerateConfig())
    backend._inner = Inner()
    assert backend.prompt("math", "2+2?") == FEW_SHOT_PRESETS["math"] + "<2+2?>"
    chat = backend.prompt("qa", "who?")
    assert chat[0] == {"role": "system", "content": "s"} and chat[1]["content"] == FEW_SHOT_PRESETS["qa"] + "who?"
    assert backend.generate(["x"]) == ["x"]  # the rest is the wrapped backend's


def test_few_shot_and_unseen_leave_existing_stage_fingerprints_alone(tmp_path) -> None:
    demo = ROOT / "recipes" / "demo.yaml"
    plain = plan_recipe(demo, {"run_dir": str(tmp_path), "settings": ["zero-shot", "trice-i"]})
    more = plan_recipe(
        demo, {"run_dir": str(tmp_path), "settings": ["zero-shot", "few-shot", "trice-i"], "unseen": {"mini": str(_write_unseen(tmp_path / "m.jsonl"))}}
    )
    for name in plain.stages[:-1]:
        assert stage_specs.stage(more, name)[:2] == stage_specs.stage(plain, name)[:2], name
    zero, few = stage_specs.stage(more, "eval-zero-shot")[0], stage_specs.stage(more, "eval-few-shot")[0]
    assert few == zero | {"few_shot": {"math": FEW_SHOT_PRESETS["math"]}}
    assert stage_specs.stage(plain, "report")[0] == {"settings": ["zero-shot", "trice-i"]}
    assert plain.stages.index("train-trice-i") == 3


@pytest.mark.parametrize(
    "rows, unseen, error, message",
    [
        (UNSEEN[:1] + [{k: v for k, v in UNSEEN[1].items() if k != "answers"}], None, DataError, "m.jsonl:2: field 'answers': missing"),
        ([UNSEEN[0] | {"task": "chess"}], None, DataError, "m.jsonl:1: field 'task': unknown task 'chess'"),
        ([UNSEEN[0] | {"answers": []}], None, DataError, "m.jsonl:1: field 'answers': empty"),
        ([UNSEEN[0], UNSEEN[0]], None, DataError, "m.jsonl:2: field 'id': duplicate"),
        (UNSEEN, {"../x": "m.jsonl"}, ConfigError, "unseen: name '../x'"),
        (UNSEEN, {"x": "nope.jsonl"}, DataError, "nope.jsonl: no such file"),
    ],
)
def test_bad_unseen_sets_fail_at_plan_time_naming_file_line_and_field(tmp_path, monkeypatch, rows, unseen, error, message) -> None:
    monkeypatch.chdir(tmp_path)
    _write_unseen(tmp_path / "m.jsonl", rows)
    with pytest.raises(error) as info:
        plan_recipe(ROOT / "recipes" / "demo.yaml", {"run_dir": str(tmp_path), "unseen": unseen or {"mini": "m.jsonl"}})
    assert message in str(info.value)
