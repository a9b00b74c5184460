"""D_tool's calls in the model's native format: rendered by its chat template, parsed back by the
run's parser; answers without the tool unchanged; the real Qwen2.5 template where it is at hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.chat_template import with_chat_template
from trice.generation.models import load_tokenizer
from trice.stage1.label import LabelConfig
from trice.stage1.native_labels import native_call_text, native_label_rows, native_targets
from trice.tasks import get_task
from trice.core.tools import ToolCall
from trice.core.call_format import detect_parser
from trice.core.native import NativeToolCall, parse_native_call
from tests.helpers.models import converted_qwen

ROWS = [
    {
        "id": "a",
        "task": "math",
        "question": "48 and half of 48?",
        "answers": ["72"],
        "output": "calculator(48+48/2)",
        "used_tool": True,
        "source": "annotation",
    },
    {"id": "b", "task": "math", "question": "2+3?", "answers": ["5"], "output": "It is 5.", "used_tool": False, "source": "self"},
    {
        "id": "c",
        "task": "lama",
        "question": "Paris is the capital of ?",
        "answers": ["France"],
        "output": 'QA(Where is "Paris"?)',
        "used_tool": True,
        "source": "annotation",
    },
]


@pytest.fixture(scope="module")
def chat_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_chat_template(tiny_model_dir, tmp_path_factory.mktemp("tiny-chat"))


def _reads_back(rows: list[dict], labelled: list[dict], parser: str) -> None:
    for row, native in zip(rows, labelled):
        assert {k: v for k, v in native.items() if k != "output"} == {k: v for k, v in row.items() if k != "output"}
        if not row["used_tool"]:
            assert native["output"] == row["output"]
            continue
        tool = get_task(row["task"]).tool
        call = parse_native_call(native["output"], [tool], parser)
        assert isinstance(call, NativeToolCall) and str(call) == row["output"]


def test_tool_calls_become_the_templates_calls_and_answers_stay(chat_dir: Path) -> None:
    tokenizer = load_tokenizer(str(chat_dir))
    labelled = native_label_rows(ROWS, tokenizer, "hermes")
    assert labelled[0]["output"] == '<tool_call>\n{"name": "calculator", "arguments": {"expression": "48+48/2"}}\n</tool_call>'
    _reads_back(ROWS, labelled, "hermes")
    config = LabelConfig(model=str(chat_dir), template="chat", call_format="native")  # auto: read from the template
    assert config.in_call_format(ROWS) == labelled and LabelConfig().in_call_format(ROWS) == ROWS


def test_a_parser_that_does_not_read_the_templates_calls_is_refused(chat_dir: Path) -> None:
    with pytest.raises(ValueError, match="the llama3 parser does not read back"):
        native_call_text(load_tokenizer(str(chat_dir)), get_task("math"), "2+3?", ToolCall("calculator", "2+3"), "llama3")
    with pytest.raises(ValueError, match="holds no calculator"):
        native_label_rows([ROWS[0] | {"output": "72"}], load_tokenizer(str(chat_dir)), "hermes")


def test_qwens_own_template_renders_label_targets_its_parser_reads_back() -> None:
    tokenizer = load_tokenizer(str(converted_qwen()))
    parser = detect_parser(tokenizer)
    assert parser == "hermes"
    labelled = native_label_rows(ROWS, tokenizer, parser)
    assert labelled[0]["output"].startswith("<tool_call>\n") and labelled[0]["output"].endswith("</tool_call>")
    _reads_back(ROWS, labelled, parser)


def test_a_native_training_renders_plain_calls_natively_and_keeps_the_rest(chat_dir: Path) -> None:
    """SFT rows of a native run that hold plain calls (a text D_tool, or messages read back) are
    trained as native calls; native calls, answers and calls inside other text are kept."""
    tokenizer = load_tokenizer(str(chat_dir))
    labelled = native_label_rows(ROWS, tokenizer, "hermes")
    prose = ROWS[0] | {"id": "d", "output": "I use calculator(48+48/2)"}
    rows, rewritten = native_targets([*ROWS, labelled[0] | {"id": "e"}, prose], tokenizer, "hermes")
    assert rewritten == 2
    assert rows[:3] == labelled and rows[3]["output"] == labelled[0]["output"] and rows[4] is prose
