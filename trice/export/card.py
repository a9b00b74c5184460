"""The model card of an export (``README.md``), built with ``huggingface_hub.ModelCard``.

The card says what a reader needs to use the model without trice's source: the base model by its
Hub name (``base_model``, so the Hub links the two), the licence, the exact prompt (which the
export's chat template renders), the tool-call syntax and how to execute a call, the run's test
results with their 95% intervals where the run directory beside the adapter has them, the training
settings, and the paper to cite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trice.export.prompt import TrainedPrompt
from trice.core.templates import format_prompt
from trice.core.layout import REPORT, RESULTS
from trice.tasks import TASKS, get_task
from trice.core.native import tool_schema
from trice.utils.io import DataError, read_json

CITATION = """@inproceedings{qiao-etal-2024-making,
    title = "Making Language Models Better Tool Learners with Execution Feedback",
    author = "Qiao, Shuofei and Gui, Honghao and Lv, Chengfei and Jia, Qianghuai and Chen, Huajun and Zhang, Ningyu",
    booktitle = "Proceedings of the 2024 Conference of the North American Chapter of the Association for Computational Linguistics: Human Language Technologies (Volume 1: Long Papers)",
    year = "2024",
    address = "Mexico City, Mexico",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2024.naacl-long.195",
    doi = "10.18653/v1/2024.naacl-long.195",
    pages = "3550--3568",
}"""
EXAMPLE_QUESTIONS = {
    "math": (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell altogether?",
        "48+48/2",
    ),
    "qa": ("What is Nina Dobrev's nationality?", "Nina Dobrev nationality"),
    "lama": ("Ludwig van Beethoven, the composer, was born in ?", "Where was Ludwig van Beethoven born?"),
    "mlqa": ("Context: The museum opened in 1902 and holds 3,000 paintings.\nQuestion: 博物馆有多少幅画？", "博物馆有多少幅画？"),
}
TRAINERS = {
    "sft_config.json": "stage I: LoRA SFT on D_tool (behaviour cloning)",
    "rlef_config.json": "stage II: RLEF, rank loss + SFT on execution-scored candidates",
    "dpo_config.json": "stage II: DPO on execution-scored candidate pairs",
}
SETTINGS_SHOWN = (
    "model",
    "template",
    "call_format",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "alpha",
    "beta",
    "seed",
)


def run_results(adapter: Path | None) -> tuple[str, dict[str, Any]] | None:
    """(setting, results.json) of the run an adapter was trained in (``<run>/train-<setting>/adapter``), when its report exists."""
    if adapter is None:
        return None
    train_dir = adapter.parent.parent.parent if adapter.parent.name == "checkpoints" else adapter.parent
    results = train_dir.parent / REPORT / RESULTS
    if not train_dir.name.startswith("train-") or not results.is_file():
        return None
    try:
        data = read_json(results)
    except DataError:
        return None
    setting = train_dir.name[len("train-") :]
    return (setting, data) if setting in data.get("rows", {}) else None


def _results_section(found: tuple[str, dict[str, Any]] | None) -> list[str]:
    if found is None:
        return ["No test results: the adapter was not exported from a run directory with a report (`trice run`)."]
    setting, data = found
    row, intervals = data["rows"][setting], data.get("intervals", {}).get(setting, {})
    lines = [
        f"Test accuracy (%) of the `{setting}` row of the run's report, with 95% intervals ({data.get('interval_method', 'see the report')}):",
        "",
        "| test set | accuracy | tool use |",
        "|---|---|---|",
    ]
    by_dataset = data.get("tool_rate_by_dataset", {}).get(setting, {})
    for name, value in row.items():
        if name == "tool_rate":
            continue
        cell = f"{100 * value:.1f}" + (f" [{100 * intervals[name][0]:.1f}, {100 * intervals[name][1]:.1f}]" if name in intervals else "")
        tool = by_dataset.get(name, row["tool_rate"] if name == "avg" else None)
        lines.append(f"| {name} | {cell} | {'' if tool is None else f'{100 * tool:.0f}%'} |")
    return lines


def _known(prompt: TrainedPrompt) -> tuple[str, ...]:
    """The prompt's tasks this process knows (a plug-in's is known once its recipe registered it); math when none is."""
    return tuple(t for t in prompt.tasks if t in TASKS) or ("math",)


def _tools_section(prompt: TrainedPrompt) -> list[str]:
    lines = []
    for task in _known(prompt):
        tool = get_task(task).tool
        question, argument = EXAMPLE_QUESTIONS.get(task, ("...", "..."))
        if prompt.native:
            schema = tool_schema(tool)
            lines += [
                f"- `{task}`: the model calls `{tool}` as its chat template writes tool calls; pass "
                f"`tools=[{json.dumps(schema, ensure_ascii=False)}]` to `apply_chat_template`."
            ]
        else:
            lines += [f"- `{task}`: the model answers, or writes one call `{tool}({argument})` and stops (EOS) after it."]
    lines += [
        "",
        "Run the call (bounded, never `eval`) and read its output; with trice installed (`pip install trice-tools`):",
        "",
        "```python",
        "from trice.tools.factories import build_registry",
        "",
        f"result = build_registry({json.dumps(sorted({get_task(t).tool for t in _known(prompt)}))}).run_text(response)",
        "print(result.output if result is not None and result.ok else result)",
        "```",
        "",
        "For math the calculator's output is the answer; for qa a passage and for mlqa a translation are read by the model "
        "again (TRICE's second reading; see the paper).",
    ]
    return lines


def _usage(repo: str, merged: bool, prompt: TrainedPrompt) -> list[str]:
    loader = "AutoModelForCausalLM" if merged else "AutoPeftModelForCausalLM"
    package = "transformers" if merged else "peft"
    task = _known(prompt)[0]
    tools = f", tools=[{json.dumps(tool_schema(get_task(task).tool))}]" if prompt.native else ""
    return [
        "```python",
        f"from {package} import {loader}",
        "from transformers import AutoTokenizer",
        "",
        f'model = {loader}.from_pretrained("{repo}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{repo}")',
        f'messages = [{{"role": "user", "content": {json.dumps(EXAMPLE_QUESTIONS.get(task, ("What is 12*7?",))[0], ensure_ascii=False)}}}]',
        f'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True{tools})',
        "output = model.generate(**inputs, max_new_tokens=64, do_sample=False)",
        'response = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)',
        "```",
    ]


def _prompt_section(prompt: TrainedPrompt) -> list[str]:
    if prompt.template == "chat":
        shown = "the base model's chat template, the instruction and the question in the user turn"
        example = None
    else:
        shown = "the TRICE paper's alpaca prompt"
        example = format_prompt(prompt.instruction or "<the task's instruction>", EXAMPLE_QUESTIONS.get(_known(prompt)[0], ("...",))[0])
    default = (
        f"The instruction is `{prompt.instruction}` unless a system message gives another."
        if prompt.instruction
        else "The model learned several tasks: give the task's instruction as the system message."
    )
    lines = [
        f"Trained on {shown}; the export's chat template renders exactly that prompt from a user turn holding the question "
        "(`apply_chat_template(..., add_generation_prompt=True)`). " + default
    ]
    return lines + (["", "```text", example, "```"] if example else [])


# fmt: off
# The card's lines stay packed as the card reads: one line of source per section of the card.
def card_text(*, name: str, base: str, alias: str | None, merged: bool, license: str | None, repo: str,
              prompt: TrainedPrompt, adapter: Path | None, adapter_sha: str | None) -> str:
    """The card (front matter and body) as ``README.md`` holds it."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    found = run_results(adapter)
    hub_like = "/" in base and not Path(base).expanduser().exists()
    evals = [EvalResult(task_type="text-generation", dataset_type=ds, dataset_name=ds, metric_type="accuracy", metric_value=round(100 * acc, 1))
             for ds, acc in (found[1]["rows"][found[0]].items() if found else []) if ds not in ("avg", "tool_rate")]
    data = ModelCardData(
        base_model=base if hub_like else None, license=license or None, library_name="transformers" if merged else "peft",
        pipeline_tag="text-generation", tags=["trice", "tool-use", "lora", *sorted({get_task(t).tool for t in prompt.tasks if t in TASKS})],
        model_name=name, eval_results=evals or None, base_model_relation="finetune" if hub_like else None,
    )
    how = "with the LoRA adapter merged into its weights" if merged else "as a PEFT LoRA adapter"
    embedded = (f" trice trained it on the embedded `{alias}`: these weights quantized to GGUF and dequantized again, so the "
                f"{'merged weights are that model' if merged else 'adapter applied to the Hub weights differs slightly from training'}.") if alias else ""
    record = prompt.record
    settings = [f"- {key}: `{json.dumps(record[key])}`" for key in SETTINGS_SHOWN if key in record]
    body = [f"# {name}", "", f"`{base}` fine-tuned with TRICE (tool learning from execution feedback), {how}.{embedded}", "",
            "## Use", "", *_usage(repo, merged, prompt), "", "## Prompt", "", *_prompt_section(prompt), "",
            "## Tool calls", "", *_tools_section(prompt), "", "## Results", "", *_results_section(found), "",
            "## Training", "", TRAINERS.get(prompt.record_name, "trained elsewhere (no trice training record)") + ":", "", *settings,
            *([f"- adapter weights sha256: `{adapter_sha}`"] if adapter_sha else []), "",
            "## Citation", "", "```bibtex", CITATION, "```"]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"))
# fmt: on
