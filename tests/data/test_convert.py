"""``trice messages`` (trice.data.convert): a D_tool to chat messages and back through the command,
the output claimed like every command's, the file loadable by ``datasets`` and rendered by the
real Qwen2.5-Coder chat template as TRL renders it, the rows made back read by ``trice train-sft``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tests.cli.test_args import heavy_modules_after
from trice.cli import main
from trice.data.messages import read_labels_as_messages
from trice.generation.models import load_tokenizer
from trice.stage1.train_sft import SFT_FIELDS, build_sft_features
from trice.tasks import PER_ROW
from trice.tasks.inputs import check_row_task, read_input
from trice.core.native import NativeToolCall, parse_native_call, tool_schema
from trice.utils.io import read_jsonl, write_jsonl
from tests.helpers.models import converted_qwen


def label(id: str, task: str, question: str, output: str, used_tool: bool, dataset: str, answers: list[str]) -> dict:
    """A row as trice label writes it."""
    return {"id": id, "dataset": dataset, "task": task, "question": question, "answers": answers,
            "output": output, "used_tool": used_tool, "source": "annotation" if used_tool else "self"}  # fmt: skip


ROWS = [
    label("m1", "math", "Natalia sold 48 clips, then half as many. How many?", "calculator(48+48/2)", True, "gsm8k", ["72"]),
    label("m2", "math", "What is 2 plus 3?", "2 plus 3 is 5. The answer is 5.", False, "svamp", ["5"]),
    label("q1", "qa", "Nina Dobrev nationality?", "WikiSearch(Nina Dobrev nationality)", True, "nq", ["Bulgarian", "Canadian"]),
    label("x1", "mlqa", "Kontext: Er wohnt in Köln. Frage: Wo?", "translator(Kontext: Er wohnt in Köln. Frage: Wo?)", True, "xquad", ["Köln"]),
]


def convert(*flags: str) -> int:
    return main(["messages", *flags])


@pytest.fixture
def d_tool(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "trice.jsonl", ROWS)


def test_a_d_tool_goes_to_messages_and_back(d_tool: Path, tmp_path: Path, capsys, tiny_model_dir: Path) -> None:
    messages, back = tmp_path / "dtool.messages.jsonl", tmp_path / "back.jsonl"
    assert convert("--input", str(d_tool), "--output", str(messages)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"output": str(messages), "rows": 4, "to": "messages"}
    assert read_jsonl(messages) == read_labels_as_messages(d_tool)
    assert [r["tools"] for r in read_jsonl(messages)] == [[tool_schema(t)] for t in ("calculator", "calculator", "WikiSearch", "translator")]

    assert convert("--input", str(messages), "--output", str(back), "--from_messages") == 0
    assert read_jsonl(back) == ROWS
    rows = read_input(back, SFT_FIELDS, check=lambda row, path, line: check_row_task(row, PER_ROW, path, line))  # as train-sft reads --data
    assert len(build_sft_features(rows, load_tokenizer(str(tiny_model_dir)))) == len(ROWS)


def test_messages_made_elsewhere_become_label_rows(tmp_path: Path) -> None:
    made = {"messages": [{"role": "system", "content": "You help."}, {"role": "user", "content": "What is 6 times 7?"},
                         {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "calculator", "arguments": '{"expression": "6*7"}'}}]},
                         {"role": "tool", "content": "42"}],
            "tools": [tool_schema("calculator")]}  # fmt: skip
    write_jsonl(tmp_path / "elsewhere.jsonl", [made, {**made, "messages": made["messages"][:2] + [{"role": "assistant", "content": "42"}]}])
    assert convert("--input", str(tmp_path / "elsewhere.jsonl"), "--output", str(tmp_path / "d.jsonl"), "--from_messages") == 0
    first, second = read_jsonl(tmp_path / "d.jsonl")
    assert first == {"id": "elsewhere-1", "task": "math", "question": "What is 6 times 7?", "output": "calculator(6*7)", "used_tool": True, "tool_output": "42"}
    assert (second["id"], second["output"], second["used_tool"]) == ("elsewhere-2", "42", False)


def test_the_output_is_claimed_as_every_commands_is(d_tool: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"note": "mine"}\n')
    assert convert("--input", str(d_tool), "--output", str(out)) == 2
    assert "is not trice's output" in capsys.readouterr().err and out.read_text() == '{"note": "mine"}\n'
    assert convert("--input", str(d_tool), "--output", str(out), "--overwrite") == 0
    written = out.read_bytes()
    assert convert("--input", str(d_tool), "--output", str(out)) == 0 and out.read_bytes() == written  # its own output: replaced alike
    assert convert("--input", str(d_tool), "--output", str(d_tool), "--overwrite") == 2
    assert "is also this command's input" in capsys.readouterr().err and read_jsonl(d_tool) == ROWS
    labels = tmp_path / "labels.jsonl"
    assert convert("--input", str(out), "--output", str(labels), "--from_messages") == 0
    assert convert("--input", str(d_tool), "--output", str(labels)) == 2  # label rows are not this direction's output
    assert read_jsonl(labels) == ROWS


def test_bad_rows_and_options_fail_located_or_are_skipped_and_counted(d_tool: Path, tmp_path: Path, capsys) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [*ROWS[:2], {**ROWS[2], "used_tool": "yes"}])
    assert convert("--input", str(bad), "--output", str(tmp_path / "o.jsonl")) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:3: field 'used_tool'" in err and not (tmp_path / "o.jsonl").exists()
    assert convert("--input", str(bad), "--output", str(tmp_path / "o.jsonl"), "--skip_bad") == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped_lines"] == 1
    assert [r["id"] for r in read_jsonl(tmp_path / "o.jsonl")] == ["m1", "m2"]

    assert convert("--input", str(d_tool), "--output", str(tmp_path / "p.jsonl"), "--task", "math") == 2
    assert "task: only rows of messages may lack a task" in capsys.readouterr().err
    assert convert("--input", str(d_tool), "--output", str(tmp_path / "p.jsonl"), "--from_messages", "--task", "maths") == 2
    assert "task: unknown 'maths'" in capsys.readouterr().err
    assert convert("--input", str(d_tool)) == 2
    assert "both --input and --output are required" in capsys.readouterr().err


def test_converting_imports_neither_torch_nor_transformers(d_tool: Path, tmp_path: Path) -> None:
    summary, heavy = heavy_modules_after(["messages", "--input", str(d_tool), "--output", "m.jsonl"], tmp_path)
    assert summary["rows"] == 4 and heavy == []


@pytest.fixture
def messages_dataset(d_tool: Path, tmp_path: Path):
    """The command's output as ``datasets.load_dataset("json", ...)`` reads it, as TRL and LLaMA-Factory do."""
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "dtool.messages.jsonl"
    assert convert("--input", str(d_tool), "--output", str(out)) == 0
    return datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf-cache"))


def test_datasets_loads_the_messages_file_with_each_rows_own_call(messages_dataset) -> None:
    assert len(messages_dataset) == len(ROWS) and {"messages", "tools"} <= set(messages_dataset.column_names)
    # a mixed-task file: no row may come back with another task's argument names (as nulls) in its call or tool
    for row, original in zip(messages_dataset, ROWS):
        (schema,) = row["tools"]
        assert schema["function"]["parameters"]["properties"] == tool_schema(schema["function"]["name"])["function"]["parameters"]["properties"]
        assistant = row["messages"][1]
        if original["used_tool"]:
            (call,) = assistant["tool_calls"]
            assert list(call["function"]["arguments"]) == list(schema["function"]["parameters"]["properties"])


def test_a_loaded_row_renders_through_the_qwen_template_as_trl_renders_it(messages_dataset) -> None:
    tokenizer = AutoTokenizer.from_pretrained(converted_qwen())
    for row, original in zip(messages_dataset, ROWS):
        text = tokenizer.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
        offered = text.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
        assert json.loads(offered) == tool_schema(row["tools"][0]["function"]["name"])  # the offered tool, as written
        answer = text.rsplit("<|im_start|>assistant\n", 1)[1]
        if original["used_tool"]:
            call = parse_native_call(answer, [original["output"].split("(")[0]], "hermes")
            assert isinstance(call, NativeToolCall) and f"{call.name}({call.argument})" == original["output"]
        else:
            assert answer.startswith(original["output"])


# SmolLM2-135M-Instruct's chat template, in its layout: every turn's content and nothing else, so a
# tool_calls turn renders empty and the tools are never shown.
NO_TOOLS_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Writes the calls, never the schemas.
CALLS_ONLY_TEMPLATE = NO_TOOLS_TEMPLATE.replace(
    "message['content'] + '<|im_end|>'",
    "message['content'] + ((message.tool_calls[0].function.name + (message.tool_calls[0].function.arguments | tojson)) if message.tool_calls else '') + '<|im_end|>'",
)


def test_a_template_that_drops_the_calls_is_refused(d_tool: Path, tmp_path: Path, tiny_model_dir: Path, capsys, caplog) -> None:
    """`trice messages --model M`: M's template is tried on the rows before anything is written."""
    from tests.helpers.chat_template import with_chat_template

    out = tmp_path / "m.jsonl"
    smol_like = with_chat_template(tiny_model_dir, tmp_path / "smol", NO_TOOLS_TEMPLATE)
    assert convert("--input", str(d_tool), "--output", str(out), "--model", str(smol_like)) == 2
    err = capsys.readouterr().err
    assert "chat template drops the tool calls (the turn calling calculator renders as '<|im_end|>\\n')" in err and not out.exists()

    qwen_like = with_chat_template(tiny_model_dir, tmp_path / "qwen")
    assert convert("--input", str(d_tool), "--output", str(out), "--model", str(qwen_like)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["template_checked"] == str(qwen_like)

    calls_only = with_chat_template(tiny_model_dir, tmp_path / "calls", CALLS_ONLY_TEMPLATE)
    caplog.clear()
    assert convert("--input", str(d_tool), "--output", str(tmp_path / "c.jsonl"), "--model", str(calls_only)) == 0
    assert "drops the tools' schemas" in caplog.text

    assert convert("--input", str(d_tool), "--output", str(tmp_path / "t.jsonl"), "--model", str(tiny_model_dir)) == 2
    assert "has no chat template" in capsys.readouterr().err
    caplog.clear()
    assert convert("--input", str(d_tool), "--output", str(tmp_path / "n.jsonl")) == 0  # no model: a warning says how to check
    assert "--model NAME tries the template" in caplog.text
