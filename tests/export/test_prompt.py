"""An export describes itself: an adapter trained to call the calculator, exported merged and
unmerged, loaded with plain transformers / peft and prompted through ``apply_chat_template`` with the
question alone, makes the same call as ``trice generate``; its card (huggingface_hub's ModelCard)
names a loadable base, the licence, the prompt, the call and how to run it, the run's results and
the training; an embedded base is named by its Hub original, never by a cache path, also when
TRICE_CACHE_DIR moved between training and export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trice.cli import main
from trice.export.prompt import TrainedPrompt, chat_template, trained_prompt
from trice.generation.models import EMBEDDED, ORIGINALS
from trice.core.prompts import task_prompt
from trice.core.tools import parse_call
from trice.utils.io import read_jsonl, write_json, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]
ALIAS = "smollm2-135m-instruct"
QUESTIONS = [
    ("Natalia sold 48 clips and then half as many. How many?", "48+48/2"),
    ("Weng earns 12 an hour for 50 minutes. How much?", "12/60*50"),
    ("Betty has 5 boxes of 12 pencils and gives 17 away. How many are left?", "5*12-17"),
    ("What is 7 times 8 plus 1?", "7*8+1"),
]
TRAIN_FLAGS = [
    "--max_steps",
    "80",
    "--learning_rate",
    "3e-3",
    "--per_device_train_batch_size",
    "4",
    "--save_steps",
    "80",
    "--logging_steps",
    "20",
    "--lora_r",
    "16",
    "--lora_alpha",
    "32",
    "--target_modules",
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
]


def _d_tool(path: Path) -> Path:
    return write_jsonl(
        path,
        [
            {"id": f"q{i}", "dataset": "gsm8k", "task": "math", "question": q, "answers": ["1"], "output": f"calculator({expr})", "used_tool": True}
            for i, (q, expr) in enumerate(QUESTIONS)
        ],
    )


def _trice_responses(model: str, adapter: Path, tmp: Path) -> dict[str, str]:
    rows = [{"id": f"q{i}", "dataset": "gsm8k", "task": "math", "question": q, "answers": ["1"]} for i, (q, _) in enumerate(QUESTIONS)]
    write_jsonl(tmp / "test.jsonl", rows)
    assert (
        main(
            [
                "generate",
                "--input",
                str(tmp / "test.jsonl"),
                "--output",
                str(tmp / "trice.jsonl"),
                "--model",
                model,
                "--adapter",
                str(adapter),
                "--max_new_tokens",
                "16",
            ]
        )
        == 0
    )
    return {row["question"]: row["response"] for row in read_jsonl(tmp / "trice.jsonl")}


def _plain_responses(export: Path, merged: bool) -> dict[str, str]:
    """What a user of transformers/peft alone gets: the question as the user turn, the export's chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if merged:
        model = AutoModelForCausalLM.from_pretrained(export)
    else:
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(export)
    tokenizer = AutoTokenizer.from_pretrained(export)
    out = {}
    for question, _ in QUESTIONS:
        inputs = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = model.generate(**inputs, max_new_tokens=16, do_sample=False)
        out[question] = tokenizer.decode(ids[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return out


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A demo-shaped run directory (``<run>/train-trice-i/adapter`` and a report) whose stage-I adapter learned the calls."""
    run = tmp_path_factory.mktemp("run")
    data = _d_tool(run / "label" / "trice.jsonl")
    assert main(["train-sft", "--data", str(data), "--output_dir", str(run / "train-trice-i"), "--model", str(tiny_model_dir), *TRAIN_FLAGS]) == 0
    write_json(
        run / "report" / "results.json",
        {
            "rows": {"trice-i": {"gsm8k": 0.25, "avg": 0.25, "tool_rate": 1.0}},
            "intervals": {"trice-i": {"gsm8k": [0.0, 0.75], "avg": [0.0, 0.75]}},
            "tool_rate_by_dataset": {"trice-i": {"gsm8k": 1.0}},
            "interval_method": "95% percentile bootstrap",
        },
    )
    responses = _trice_responses(str(tiny_model_dir), run / "train-trice-i" / "adapter", run)
    calls = {q: parse_call(r, ["calculator"]) for q, r in responses.items()}
    assert all(calls.values()), f"the adapter did not learn to call: {responses}"
    return run, responses


@pytest.mark.parametrize("merged", [True, False], ids=["merged", "unmerged"])
def test_the_export_makes_the_same_call_as_trice_through_its_chat_template(trained, tmp_path: Path, merged: bool) -> None:
    run, responses = trained
    out = tmp_path / "export"
    assert main(["export", "--adapter", str(run / "train-trice-i" / "adapter"), "--output_dir", str(out), *([] if merged else ["--no_merge"])]) == 0
    plain = _plain_responses(out, merged)
    for question, response in responses.items():
        assert parse_call(plain[question], ["calculator"]) == parse_call(response, ["calculator"]), (plain[question], response)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": QUESTIONS[0][0]}], add_generation_prompt=True, tokenize=False)
    assert rendered == task_prompt("math", QUESTIONS[0][0])  # exactly the alpaca prompt trice trained on
    record = json.loads((out / "trice_export.json").read_text())
    assert record["prompt"] == {"template": "alpaca", "call_format": "text", "tasks": ["math"]}


def test_the_card_is_a_model_card_that_says_how_to_use_the_model(trained, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    run, _ = trained
    out = tmp_path / "export"
    assert main(["export", "--adapter", str(run / "train-trice-i" / "adapter"), "--output_dir", str(out), "--no_merge", "--license", "apache-2.0"]) == 0
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "apache-2.0" and card.data.library_name == "peft" and "calculator" in card.data.tags
    assert card.data.eval_results[0].metric_value == 25.0 and card.data.eval_results[0].dataset_name == "gsm8k"
    text = card.text
    for needed in (
        "AutoPeftModelForCausalLM",
        "apply_chat_template",
        "### Instruction:\nGiven a math problem",
        "calculator(48+48/2)",
        'build_registry(["calculator"]).run_text(response)',
        "| gsm8k | 25.0 [0.0, 75.0] | 100% |",
        "learning_rate: `0.003`",
        "stage I: LoRA SFT",
        "@inproceedings{qiao-etal-2024-making",
        "adapter weights sha256",
    ):
        assert needed in text, needed


def test_a_model_of_several_tasks_takes_its_instruction_as_a_system_message(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = chat_template(TrainedPrompt(tasks=("math", "qa")), None)
    with pytest.raises(Exception, match=r"trained on several tasks \(math, qa\): give the task's instruction as a system message"):
        tokenizer.apply_chat_template([{"role": "user", "content": "Who?"}], tokenize=False)
    system = [{"role": "system", "content": task_prompt("qa", "x").split("### Instruction:\n")[1].split("\n")[0]}, {"role": "user", "content": "Who?"}]
    assert tokenizer.apply_chat_template(system, add_generation_prompt=True, tokenize=False) == task_prompt("qa", "Who?")
    assert trained_prompt(None, "chat", "qa").instruction.startswith("Given a question")
    with pytest.raises(ValueError, match="task: unknown 'cooking'"):
        trained_prompt(None, "", "cooking")


def _fake_hub_cache(root: Path, repo: str, model_dir: Path) -> Path:
    """A Hugging Face cache holding ``model_dir`` as ``repo``: how a machine that downloaded it once sees it offline."""
    snapshot = root / f"models--{repo.replace('/', '--')}" / "snapshots" / ("0" * 40)
    shutil.copytree(model_dir, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    return root


def test_an_embedded_base_is_named_by_its_hub_original_and_loads_with_autopeft(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Trained under one TRICE_CACHE_DIR, exported under another: the adapter names the first's cache
    path; the export names HuggingFaceTB/SmolLM2-135M-Instruct, which peft loads (here from a Hub cache, offline)."""
    assert set(ORIGINALS) == set(EMBEDDED)
    for cache in ("train-cache", "export-cache"):
        shutil.copytree(tiny_model_dir, tmp_path / cache / "models" / ALIAS)  # the alias as converted there
    monkeypatch.setenv("TRICE_CACHE_DIR", str(tmp_path / "train-cache"))
    data = _d_tool(tmp_path / "trice.jsonl")
    assert main(["train-sft", "--data", str(data), "--output_dir", str(tmp_path / "train"), "--model", ALIAS, "--max_steps", "2"]) == 0
    adapter = tmp_path / "train" / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tmp_path / "train-cache" / "models" / ALIAS)
    monkeypatch.setenv("TRICE_CACHE_DIR", str(tmp_path / "export-cache"))
    out = tmp_path / "export"
    assert main(["export", "--adapter", str(adapter), "--output_dir", str(out), "--no_merge"]) == 0
    hub = ORIGINALS[ALIAS][0]
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == hub
    record = json.loads((out / "trice_export.json").read_text())
    assert record["base_model"] == hub and record["embedded_alias"] == ALIAS
    leaked = [p.name for p in out.iterdir() if p.suffix in (".json", ".md", ".jinja") and str(tmp_path) in p.read_text()]
    assert leaked == [], [line for p in out.iterdir() if p.name in leaked for line in p.read_text().splitlines() if str(tmp_path) in line]
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in (out / "README.md").read_text() and "license: apache-2.0" in (out / "README.md").read_text()

    code = f"from peft import AutoPeftModelForCausalLM\nm = AutoPeftModelForCausalLM.from_pretrained({str(out)!r})\nprint(type(m).__name__, m.peft_config['default'].base_model_name_or_path)"
    env = os.environ | {"HF_HUB_CACHE": str(_fake_hub_cache(tmp_path / "hub", hub, tiny_model_dir)), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["PeftModelForCausalLM", hub]
