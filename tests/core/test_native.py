"""Native tool calls (trice.core.native): schemas, the hermes and llama3 parsers, where a call ends,
and the real Qwen2.5-Coder chat template rendering schemas and calls that the parser reads back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trice.tasks import Execution, get_task
from trice.tools.calculator import Calculator
from trice.core.tools import ToolError
from trice.tools.factories import build_registry
from tests.helpers.models import converted_qwen
from trice.core.native import (
    BUILTIN_SCHEMAS,
    MAX_CALL_CHARS,
    NativeCallError,
    NativeToolCall,
    check_schema,
    native_call_end,
    parse_native_call,
    parser_for_template,
    render_call,
    tool_schema,
)

BUILTIN = ["calculator", "WikiSearch", "QA", "translator"]


def hermes(name: str, arguments: object) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def llama3(name: str, parameters: object) -> str:
    return json.dumps({"name": name, "parameters": parameters})


class Weather:
    """Today's weather in a city.

    Returns one word."""

    name = "weather"

    def run(self, argument: str) -> str:
        return "sunny"


class Stock(Weather):
    name = "stock"
    schema = {"name": "stock", "description": "A share's price.", "parameters": {
        "type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]}}  # fmt: skip


# --- schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "parameter"), [("calculator", "expression"), ("WikiSearch", "query"), ("QA", "question"), ("translator", "text")])
def test_builtin_tools_have_one_required_string_parameter(name: str, parameter: str) -> None:
    schema = tool_schema(name)
    function = schema["function"]
    assert schema["type"] == "function" and function["name"] == name and "Returns" in function["description"]
    assert function["parameters"] == {
        "type": "object",
        "properties": {parameter: {"type": "string", "description": BUILTIN_SCHEMAS[name][2]}},
        "required": [parameter],
    }
    assert tool_schema(Calculator()) == tool_schema("calculator")


def test_a_tool_declares_its_schema_or_gets_one_from_its_docstring() -> None:
    stock = tool_schema(Stock())
    assert stock["type"] == "function" and stock["function"]["parameters"]["required"] == ["ticker"]
    weather = tool_schema(Weather())["function"]
    assert weather["description"] == "Today's weather in a city."
    assert list(weather["parameters"]["properties"]) == ["argument"]


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "stock"},
        {"name": "other", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}},
        {"name": "stock", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}},
        {"name": "stock", "parameters": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}},
        {"name": "stock", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}},
        ["stock"],
    ],
)
def test_a_schema_trice_tools_cannot_follow_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="stock"):
        check_schema(bad, "stock")


def test_render_call_fills_the_schemas_parameter() -> None:
    entry = render_call("calculator", "48+48/2", tool_schema("calculator"))
    assert entry == {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "48+48/2"}}}
    with pytest.raises(ValueError, match="not 'QA'"):
        render_call("QA", "x", tool_schema("calculator"))


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parser"),
    [
        (hermes("calculator", {"expression": "48+48/2"}), "hermes"),
        ("I will compute it.\n" + hermes("calculator", {"expression": " 48+48/2 "}) + "<|im_end|>", "hermes"),
        ('<tool_call>{"name": "calculator", "arguments": "{\\"expression\\": \\"48+48/2\\"}"}</tool_call>', "hermes"),
        ('<tool_call>\n{"name": "calculator", "arguments": {"expression": "48+48/2"}}', "hermes"),  # cut off before its tag
        (llama3("calculator", {"expression": "48+48/2"}), "llama3"),
        ("<|python_tag|>" + llama3("calculator", {"expression": "48+48/2"}) + "<|eom_id|>", "llama3"),
        ('  {"name": "calculator", "arguments": {"expression": "48+48/2"}}', "llama3"),
    ],
)
def test_a_good_call_is_todays_tool_call(text: str, parser: str) -> None:
    call = parse_native_call(text, BUILTIN, parser)
    assert isinstance(call, NativeToolCall) and (call.name, call.argument, call.calls) == ("calculator", "48+48/2", 1)
    assert str(call) == "calculator(48+48/2)"
    assert build_registry(["calculator"]).execute(call).output == "72"


@pytest.mark.parametrize("text", ["The answer is 72.", "", "<tool_", "calculator(48+48/2)", 'The call would be {"name": "calculator"}'])
@pytest.mark.parametrize("parser", ["hermes", "llama3"])
def test_text_without_a_call_is_none(text: str, parser: str) -> None:
    assert parse_native_call(text, BUILTIN, parser) is None
    assert native_call_end(text, parser) is None


@pytest.mark.parametrize("parser", ["hermes", "llama3"])
@pytest.mark.parametrize(
    ("arguments", "kind", "error"),
    [
        ({}, "bad_argument", "missing argument 'expression'"),
        ({"expression": "1+1", "unit": "kg"}, "bad_argument", "unexpected argument(s) 'unit'"),
        ({"expression": 2}, "bad_argument", "must be text, got int"),
        ({"expr": "1+1"}, "bad_argument", "unexpected argument(s) 'expr'"),
        (["1+1"], "bad_argument", "must be an object, got list"),
    ],
)
def test_arguments_that_do_not_match_the_schema_fail(parser: str, arguments: object, kind: str, error: str) -> None:
    text = hermes("calculator", arguments) if parser == "hermes" else llama3("calculator", arguments)
    failed = parse_native_call(text, BUILTIN, parser)
    assert isinstance(failed, NativeCallError) and failed.kind == kind and error in failed.error
    assert failed.name == "calculator"


@pytest.mark.parametrize(
    ("text", "parser", "kind", "error"),
    [
        ('<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"</tool_call>', "hermes", "bad_argument", "not JSON"),
        ("<tool_call>calculator(1+1)</tool_call>", "hermes", "bad_argument", "not JSON"),
        ('<tool_call>{"name": "calculator", "arguments": {"expression": NaN}}</tool_call>', "hermes", "bad_argument", "not JSON"),
        ('{"name": "calculator", "parameters": {"expression": "1+1"}', "llama3", "bad_argument", "not JSON"),
        ('{"name": "calculator", "parameters": {"expression": "1+1"}} trailing', "llama3", None, None),
        (hermes("weather", {"argument": "Oslo"}), "hermes", "unknown_tool", "no tool named 'weather'"),
        (llama3("weather", {"argument": "Oslo"}), "llama3", "unknown_tool", "no tool named 'weather'"),
        ('<tool_call>{"arguments": {"expression": "1"}}</tool_call>', "hermes", "bad_argument", "without a text name"),
        ('<tool_call>["calculator"]</tool_call>', "hermes", "bad_argument", "got list"),
        ('<tool_call>{"name": "calculator"}</tool_call>', "hermes", "bad_argument", "exactly one of"),
        ('<tool_call>{"name": "calculator", "arguments": "not json"}</tool_call>', "hermes", "bad_argument", "arguments are not JSON"),
    ],
)
def test_a_malformed_call_is_a_typed_failed_call(text: str, parser: str, kind: str | None, error: str | None) -> None:
    got = parse_native_call(text, BUILTIN, parser)
    if kind is None:  # text after a complete call is ignored, as with the plain format
        assert isinstance(got, NativeToolCall) and got.argument == "1+1"
        return
    assert isinstance(got, NativeCallError) and got.kind == kind and error in got.error
    assert got.kind in ToolError.KINDS


@pytest.mark.parametrize("parser", ["hermes", "llama3"])
@pytest.mark.parametrize("closed", [True, False])
def test_an_oversized_call_is_refused_before_parsing(parser: str, closed: bool) -> None:
    huge = {"expression": "1+" * MAX_CALL_CHARS + "1"}
    text = hermes("calculator", huge) if parser == "hermes" else llama3("calculator", huge)
    text = text if closed else text[: len(text) // 2]
    failed = parse_native_call(text, BUILTIN, parser)
    assert isinstance(failed, NativeCallError) and failed.kind == "limit" and failed.name == "calculator"
    assert len(failed.argument) <= 200
    assert native_call_end(text, parser) is None


def test_a_deeply_nested_call_fails_without_crashing() -> None:
    text = "<tool_call>" + "[" * 4000 + "]" * 4000 + "</tool_call>"  # within the size bound
    assert isinstance(parse_native_call(text, BUILTIN, "hermes"), NativeCallError)


@pytest.mark.parametrize(
    ("text", "parser"),
    [
        (hermes("calculator", {"expression": "1+1"}) + "\n" + hermes("calculator", {"expression": "2+2"}) + hermes("QA", {"question": "q"}), "hermes"),
        (llama3("calculator", {"expression": "1+1"}) + "; " + llama3("calculator", {"expression": "2+2"}) + "\n" + llama3("QA", {"question": "q"}), "llama3"),
    ],
)
def test_several_calls_use_the_first_and_count_them(text: str, parser: str) -> None:
    call = parse_native_call(text, BUILTIN, parser)
    assert isinstance(call, NativeToolCall) and call.argument == "1+1" and call.calls == 3


def test_a_failed_first_call_among_several_says_how_many() -> None:
    text = hermes("weather", {"argument": "Oslo"}) + hermes("calculator", {"expression": "1+1"})
    failed = parse_native_call(text, BUILTIN, "hermes")
    assert isinstance(failed, NativeCallError) and failed.kind == "unknown_tool" and failed.calls == 2


def test_user_schemas_name_the_parameter() -> None:
    tools = {"stock": Stock.schema}
    call = parse_native_call(hermes("stock", {"ticker": "ACME"}), tools, "hermes")
    assert isinstance(call, NativeToolCall) and (call.name, call.argument) == ("stock", "ACME")
    failed = parse_native_call(hermes("stock", {"argument": "ACME"}), tools, "hermes")
    assert isinstance(failed, NativeCallError) and "'argument'" in failed.error


def test_a_failed_call_is_judged_as_a_failed_tool_call() -> None:
    """What Task.execute/conclude make of it: used the tool, no prediction, the error kind reported."""
    failed = parse_native_call(hermes("calculator", {"expression": 7}), BUILTIN, "hermes")
    assert isinstance(failed, NativeCallError)
    result = failed.result()
    assert not result.ok and result.error_kind == "bad_argument" and result.call == failed.call
    judgement = get_task("math").conclude("", Execution(failed.call, result), ["7"])
    assert judgement.used_tool and not judgement.correct and judgement.prediction is None
    assert judgement.tool_error == f"bad_argument: {failed.error}"
    with pytest.raises(ValueError, match="unknown ToolError kind"):
        NativeCallError("calculator", "", "syntax", "x")


PIECES = [*'{}[]":,\\ <>/_abcnmetolr|12', "<tool_call>", "</tool_call>", "<|python_tag|>", '"name"', '"arguments"', '"calculator"', '"expression"']


@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
@settings(max_examples=300, deadline=None)
def test_no_text_crashes_the_parsers(text: str) -> None:
    for parser in ("hermes", "llama3"):
        got = parse_native_call(text, BUILTIN, parser)
        assert got is None or isinstance(got, (NativeToolCall, NativeCallError))
        end = native_call_end(text, parser)
        assert end is None or 0 < end <= len(text)


# --- where a call ends -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "call", "tail", "parser"),
    [
        ("Let me compute.\n", hermes("calculator", {"expression": "(1+2)*{3}"}), "<|im_end|> more <tool_call>{}</tool_call>", "hermes"),
        ("", '{"name": "calculator", "parameters": {"expression": "a \\" } { b"}}', '<|eot_id|>{"name": 1}', "llama3"),
        ("<|python_tag|>", llama3("calculator", {"expression": "1+1"}), ";", "llama3"),
    ],
)
def test_call_end_is_none_until_the_call_completes_then_stays(head: str, call: str, tail: str, parser: str) -> None:
    text = head + call + tail
    complete = len(head) + len(call)
    for cut in range(len(text) + 1):
        expected = complete if cut >= complete else None
        assert native_call_end(text[:cut], parser) == expected, cut
    assert parse_native_call(text[:complete], BUILTIN, parser) == parse_native_call(text, BUILTIN, parser)


def test_unknown_parser_is_refused() -> None:
    with pytest.raises(ValueError, match="known: hermes, llama3"):
        parse_native_call("x", BUILTIN, "mistral")
    with pytest.raises(ValueError, match="known: hermes, llama3"):
        native_call_end("x", "mistral")


# --- chat templates ----------------------------------------------------------------------------

# The tool-calling lines of Llama 3.1's chat template (meta-llama/Llama-3.1-8B-Instruct).
LLAMA31_EXCERPT = (
    '{{- "<|start_header_id|>user<|end_header_id|>\\n\\n" -}}\n'
    '{{- \'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.\' }}\n'
    "{%- if builtin_tools is defined %}{{- '<|python_tag|>' }}{%- endif %}"
)


def test_the_parser_is_read_from_the_chat_template() -> None:
    assert parser_for_template(LLAMA31_EXCERPT) == "llama3"
    assert parser_for_template("{{ '<tool_call>' }}") == "hermes"
    with pytest.raises(ValueError, match="no format trice reads"):
        parser_for_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    with pytest.raises(ValueError, match="no chat template"):
        parser_for_template("")


@pytest.fixture(scope="module")
def qwen_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(converted_qwen())


def test_qwen_template_shows_the_schemas_and_its_calls_parse_back(qwen_tokenizer) -> None:
    schemas = [tool_schema(name) for name in BUILTIN]
    user = [{"role": "user", "content": "What is 48+48/2?"}]
    prompt = qwen_tokenizer.apply_chat_template(user, tools=schemas, tokenize=False, add_generation_prompt=True)
    for schema in schemas:
        assert json.dumps(schema, ensure_ascii=False) in prompt
    assert parser_for_template(qwen_tokenizer.chat_template) == "hermes"
    turn = {"role": "assistant", "tool_calls": [render_call("calculator", "48+48/2", schemas[0])]}
    whole = qwen_tokenizer.apply_chat_template([*user, turn], tools=schemas, tokenize=False)
    assert whole.startswith(prompt)
    completion = whole[len(prompt) :]
    assert "<tool_call>" in completion
    call = parse_native_call(completion, BUILTIN, "hermes")
    assert isinstance(call, NativeToolCall) and str(call) == "calculator(48+48/2)" and call.calls == 1
    end = native_call_end(completion, "hermes")
    assert end is not None and completion[:end].endswith("</tool_call>") and completion[end:].strip() == "<|im_end|>"
