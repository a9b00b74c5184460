"""What each pipeline stage reads, which config fingerprints it, and the function that runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from trice.config import to_dict
from trice.data.schema import load_examples
from trice.evaluate import judge_rows, summarize, tool_rate_by_dataset
from trice.generate import GenerateConfig, generate_for_examples
from trice.io import write_json, write_jsonl
from trice.label import label_rows
from trice.prepare import run_data

StageSpec = tuple[Any, list[Path], Callable[[Path], Any]]


def _generate_and_judge(stage_dir: Path, examples_path: Path, config: GenerateConfig, task: str, desc: str) -> None:
    """Generate (resumably) for every example, judge the responses, write judged.jsonl and summary.json."""
    from trice.models import load_model

    model, tokenizer = load_model(config.model, config.adapter)
    rows = generate_for_examples(load_examples(examples_path), stage_dir / "responses.jsonl", model, tokenizer, config, desc)
    judged = judge_rows(rows, task)
    write_jsonl(stage_dir / "judged.jsonl", judged)
    write_json(stage_dir / "summary.json", summarize(judged) | {"tool_rate_by_dataset": tool_rate_by_dataset(judged)})


def stage(plan: Any, name: str) -> StageSpec:
    """(config to fingerprint, input paths, function of the stage directory) for stage ``name``."""
    from trice.pipeline import SETTINGS

    run = plan.run_dir
    task = plan.data.task
    if name == "data":
        return to_dict(plan.data), [], lambda d: run_data(plan.data)
    if name == "probe":
        train = run / "data" / "train.jsonl"
        return to_dict(plan.probe), [train], lambda d: _generate_and_judge(d, train, plan.probe, task, "probe train")
    if name == "label":
        judged = run / "probe" / "judged.jsonl"
        modes = sorted({m for s in plan.recipe.settings if (m := SETTINGS[s]) is not None})

        def label(d: Path) -> None:
            from trice.io import read_jsonl

            rows = read_jsonl(judged)
            for mode in modes:
                out, stats = label_rows(rows, mode)
                write_jsonl(d / f"{mode}.jsonl", out)
                write_json(d / f"{mode}.stats.json", stats)

        return {"modes": modes}, [judged], label
    if name.startswith("train-"):
        setting = name.removeprefix("train-")
        data = run / "label" / f"{SETTINGS[setting]}.jsonl"
        config = replace(plan.train, data=str(data), output_dir=str(run / name))

        def train(d: Path) -> None:
            from trice.train_sft import train_sft

            train_sft(config)

        return to_dict(config), [data], train
    if name.startswith("eval-"):
        setting = name.removeprefix("eval-")
        test = run / "data" / "test.jsonl"
        adapter = run / f"train-{setting}" / "adapter" if SETTINGS[setting] is not None else None
        config = replace(plan.eval, adapter=None if adapter is None else str(adapter))
        inputs = [test] + ([adapter] if adapter is not None else [])
        return to_dict(config), inputs, lambda d: _generate_and_judge(d, test, config, task, f"eval {setting}")
    if name == "report":
        from trice.report import write_report

        inputs = [run / f"eval-{s}" / "summary.json" for s in plan.recipe.settings]
        return {"settings": plan.recipe.settings}, inputs, lambda d: write_report(plan, d)
    raise KeyError(name)
