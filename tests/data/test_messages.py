"""Label rows as chat messages with tools (trice.data.messages): round trips, rows made elsewhere,
bad input located by file, line and field, and rendering through the real Qwen2.5-Coder template."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from trice.data.messages import label_to_messages, messages_to_label, read_labels_as_messages, read_messages, write_messages
from trice.tasks import get_task
from trice.core.prompts import task_instruction
from trice.core.native import NativeToolCall, function_schema, parse_native_call, tool_schema
from trice.utils.io import DataError, ReadReport, write_jsonl
from tests.helpers.models import converted_qwen


def label(id: str, task: str, question: str, output: str, used_tool: bool, dataset: str = "d", answers=("1",)) -> dict:
    """A row as trice label writes it."""
    source = "annotation" if used_tool else "self"
    return {"id": id, "dataset": dataset, "task": task, "question": question, "answers": list(answers),
            "output": output, "used_tool": used_tool, "source": source}  # fmt: skip


ROWS = [
    label("m1", "math", "Natalia sold 48 clips, then half as many. How many?", "calculator(48+48/2)", True, "gsm8k", ["72"]),
    label("m2", "math", "What is 2 plus 3?", "2 plus 3 is 5. The answer is 5.", False, "svamp", ["5"]),
    label("q1", "qa", "Nina Dobrev nationality?", "WikiSearch(Nina Dobrev nationality)", True, "nq", ["Bulgarian", "Canadian"]),
    label("l1", "lama", "Where was Allan Peiper born?", "QA(Where was Allan Peiper born?)", True, "trex", ["Alexandra"]),
    label("x1", "mlqa", "Kontext: ... Frage: Wer?", "translator(Kontext: ... Frage: Wer?)", True, "xquad", ["him"]),
    label("x2", "mlqa", "Kontext: ... Frage: Wo?", "In Berlin", False, "xquad", ["Berlin"]),
    label("m3", "math", "3 (apples) times 4?", "I will use the calculator. calculator((3)*4)", True, "asdiv", ["12"]),
]


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_a_label_row_round_trips(row: dict) -> None:
    messages = label_to_messages(row)
    assert messages_to_label(messages) == row
    task = get_task(row["task"])
    assert messages["tools"] == [tool_schema(task.tool)]
    user, assistant = messages["messages"]
    assert user == {"role": "user", "content": f"{task_instruction(task.name, native=True)}\n\n{row['question']}"}
    assert ("tool_calls" in assistant) == row["used_tool"]
    assert {k: messages[k] for k in ("id", "dataset", "task", "answers", "source")} == {k: row[k] for k in ("id", "dataset", "task", "answers", "source")}


def test_a_tool_label_becomes_a_tool_calls_turn() -> None:
    assistant = label_to_messages(ROWS[0])["messages"][1]
    assert assistant == {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "48+48/2"}}}]}  # fmt: skip
    with_text = label_to_messages(ROWS[-1])["messages"][1]
    assert with_text["content"] == "I will use the calculator. "
    assert with_text["tool_calls"][0]["function"]["arguments"] == {"expression": "(3)*4"}


NATIVE_CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "48+48/2"}}\n</tool_call>'


@pytest.mark.parametrize("output", [NATIVE_CALL, '{"name": "calculator", "parameters": {"expression": "48+48/2"}}'], ids=["hermes", "llama3"])
def test_a_native_runs_label_exports_its_call_and_reads_back_plain(output: str) -> None:
    """A native run's D_tool holds the model's own call text; exported, it is the same tool_calls turn
    as the plain call's, and it reads back as the plain call (train-sft renders it natively again)."""
    native = ROWS[0] | {"output": output}
    messages = label_to_messages(native)
    assert messages == label_to_messages(ROWS[0])
    assert messages_to_label(messages) == ROWS[0]


def test_a_user_turn_with_the_papers_instruction_reads_back_too() -> None:
    messages = label_to_messages(ROWS[1])
    messages["messages"][0]["content"] = f"{get_task('math').instruction}\n\n{ROWS[1]['question']}"
    assert messages_to_label(messages) == ROWS[1]


@pytest.mark.parametrize(
    "output, message",
    [
        ('<tool_call>\n{"name": "calculator", "arguments": {"expression": 5}}\n</tool_call>', "its hermes tool call cannot run"),
        (NATIVE_CALL + " The answer is 72.", "must end with its one call"),
        ("The answer is 72.", r"holds no calculator\(\.\.\.\) call, plain or native"),
    ],
)
def test_a_bad_native_label_is_located(output: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as err:
        label_to_messages(ROWS[0] | {"output": output}, path="d.jsonl", line=3)
    assert "d.jsonl" in str(err.value) and "3" in str(err.value) and "output" in str(err.value)


def test_files_round_trip(tmp_path: Path) -> None:
    labels = write_jsonl(tmp_path / "trice.jsonl", ROWS)
    messages = read_labels_as_messages(labels)
    assert [m["id"] for m in messages] == [r["id"] for r in ROWS]
    written = write_jsonl(tmp_path / "messages.jsonl", messages)
    assert read_messages(written) == ROWS
    assert read_messages(write_messages(tmp_path / "direct.jsonl", ROWS)) == ROWS


def test_a_tool_output_turn_round_trips() -> None:
    row = ROWS[2] | {"tool_output": "Nina Dobrev | Nina Dobrev is a Bulgarian-Canadian actress."}
    messages = label_to_messages(row)
    assert messages["messages"][-1] == {"role": "tool", "content": row["tool_output"]}
    assert messages_to_label(messages) == row


def test_a_tool_describing_itself_keeps_its_parameter_name() -> None:
    schemas = {"calculator": function_schema("calculator", "Arithmetic.", "expr", "The expression")}
    messages = label_to_messages(ROWS[0], schemas)
    assert messages["tools"][0]["function"]["description"] == "Arithmetic."
    assert messages["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"expr": "48+48/2"}
    assert messages_to_label(messages) == ROWS[0]


def test_rows_made_elsewhere_are_read(tmp_path: Path) -> None:
    """No id, no task, a system turn, OpenAI's arguments-as-text, a tool turn: all read."""
    rows = [
        {"messages": [{"role": "system", "content": "You solve math."}, {"role": "user", "content": "What is 6*7?"},
                      {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                       "function": {"name": "calculator", "arguments": "{\"expression\": \"6*7\"}"}}]},
                      {"role": "tool", "content": "42"}],
         "tools": [tool_schema("calculator")]},
        {"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}],
         "tools": [tool_schema("WikiSearch")]},
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "elsewhere.jsonl", rows)
    got = read_messages(path)
    assert got == [
        {"id": "elsewhere-1", "task": "math", "question": "What is 6*7?", "output": "calculator(6*7)", "used_tool": True, "tool_output": "42"},
        {"id": "elsewhere-2", "task": "qa", "question": "Capital of France?", "output": "Paris", "used_tool": False},
    ]
    answer_only = write_jsonl(tmp_path / "answers.jsonl", rows[1:])
    assert read_messages(answer_only, task="lama")[0]["task"] == "lama"  # a file's task, for rows without one
    with pytest.raises(DataError, match="calls 'calculator', but task lama's tool is 'QA'"):
        read_messages(path, task="lama")


def _good() -> dict:
    return label_to_messages(ROWS[0])


def _set(row: dict, keys: tuple, value: object) -> dict:
    row = copy.deepcopy(row)
    target = row
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return row


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ({"tools": []}, "messages", "missing"),
        (_set(_good(), ("messages",), "hello"), "messages", "expected list"),
        (_set(_good(), ("messages",), [{"role": "user", "content": "q"}]), "messages", "expected roles"),
        (_set(_good(), ("messages", 0, "role"), "assistant"), "messages", "expected roles"),
        (_set(_good(), ("messages", 0, "content"), 7), "messages[0].content", "expected string"),
        (_set(_good(), ("tools",), [{"name": "calculator"}]), "tools[0]", "exactly one property"),
        (_set(_good(), ("tools",), [tool_schema("QA")]), "messages[1].tool_calls[0]", "unknown_tool"),
        (_set(_good(), ("messages", 1, "tool_calls", 0, "function", "arguments"), {"expression": 3}), "messages[1].tool_calls[0]", "must be text"),
        (_set(_good(), ("messages", 1, "tool_calls", 0, "function", "arguments"), {}), "messages[1].tool_calls[0]", "missing argument"),
        (_set(_good(), ("messages", 1, "tool_calls", 0, "function", "arguments"), "{bad"), "messages[1].tool_calls[0]", "not JSON"),
        (
            _set(_good(), ("messages", 1, "tool_calls", 0, "function", "arguments"), {"expression": "1)+(2"}),
            "messages[1].tool_calls[0]",
            "would not parse back",
        ),
        (_set(_good(), ("messages", 1, "tool_calls"), [_good()["messages"][1]["tool_calls"][0]] * 2), "messages[1].tool_calls", "list of one call"),
        (_set(_good(), ("messages", 1), {"role": "assistant"}), "messages[1].content", "missing"),
        (_set(_good(), ("messages",), [*_good()["messages"], {"role": "assistant", "content": "72"}]), "messages", "expected roles"),
        (
            _set(
                _set(_good(), ("messages", 1), {"role": "assistant", "content": "x"}),
                ("messages",),
                [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}, {"role": "tool", "content": "1"}],
            ),
            "messages[1].tool_calls",
            "yet a tool turn follows",
        ),  # fmt: skip
        (_set(_good(), ("task",), "qa"), "messages[1].tool_calls[0]", "calls 'calculator', but task qa's tool is 'WikiSearch'"),
        (_set(_good(), ("task",), "poetry"), "task", "unknown task"),
        (_set(_good(), ("answers",), "72"), "answers", "expected list of string"),
        (_set(_good(), ("id",), 7), "id", "expected string"),
    ],
)
def test_a_bad_messages_row_names_file_line_and_field(tmp_path: Path, row: dict, field: str, problem: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [_good() | {"id": "ok"}, row])
    with pytest.raises(DataError) as err:
        read_messages(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, field)
    assert problem in err.value.problem


def test_a_row_offering_no_tasks_tool_needs_a_task(tmp_path: Path) -> None:
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": [function_schema("stock", "d", "ticker", "t")]}
    path = write_jsonl(tmp_path / "x.jsonl", [row])
    with pytest.raises(DataError, match=r"x\.jsonl:1: field 'task': missing, and no task uses its tools"):
        read_messages(path)


def test_bad_lines_can_be_skipped_and_counted(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [label_to_messages(ROWS[0]), {"messages": "x", "tools": []}, label_to_messages(ROWS[1])])
    report = ReadReport()
    assert read_messages(path, skip_bad=True, report=report) == ROWS[:2]
    assert report.kept == 2 and len(report.skipped) == 1 and "m.jsonl:2" in report.skipped[0]


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [label_to_messages(ROWS[0])] * 2)
    with pytest.raises(DataError, match=r"m\.jsonl:2: field 'id': duplicate"):
        read_messages(path)


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"output": "calculator(1+1) so 2"}, "output", "must end with its one call"),
        ({"output": "The answer is 2"}, "output", "holds no calculator(...) call"),
        ({"output": "calculator(1) calculator(1)"}, "output", "must end with its one call"),
        ({"used_tool": "yes"}, "used_tool", "expected boolean"),
        ({"task": "poetry"}, "task", "unknown task"),
        ({"tool_output": 3}, "tool_output", "expected string"),
        ({"used_tool": False, "tool_output": "72"}, "tool_output", "only a row whose output calls the tool"),
    ],
)
def test_a_bad_label_row_names_file_line_and_field(tmp_path: Path, change: dict, field: str, problem: str) -> None:
    path = write_jsonl(tmp_path / "labels.jsonl", [ROWS[1], ROWS[0] | change])
    with pytest.raises(DataError) as err:
        read_labels_as_messages(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, field)
    assert problem in err.value.problem
    with pytest.raises(DataError, match=rf"<label rows>:2: field '{field}'"):
        write_messages(tmp_path / "out.jsonl", [ROWS[1], ROWS[0] | change])
    assert not (tmp_path / "out.jsonl").exists()


@pytest.fixture(scope="module")
def qwen_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(converted_qwen())


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_messages_rows_render_through_the_qwen_template(qwen_tokenizer, row: dict) -> None:
    """What a trainer elsewhere sees: the tool's schema in the prompt, then the target, which for a
    tool-using row is a <tool_call> the native parser reads back as the label's call."""
    messages = label_to_messages(row)
    prompt = qwen_tokenizer.apply_chat_template(messages["messages"][:1], tools=messages["tools"], tokenize=False, add_generation_prompt=True)
    whole = qwen_tokenizer.apply_chat_template(messages["messages"], tools=messages["tools"], tokenize=False)
    assert json.dumps(messages["tools"][0], ensure_ascii=False) in prompt and row["question"] in prompt
    target = whole[len(prompt) :]
    assert whole.startswith(prompt) and target.endswith("<|im_end|>\n")
    call = parse_native_call(target, [get_task(row["task"]).tool], "hermes")
    if row["used_tool"]:
        assert isinstance(call, NativeToolCall) and row["output"].endswith(str(call))
    else:
        assert call is None and target == row["output"] + "<|im_end|>\n"
