"""Call parsing, the registry's never-raise promise, and building registries from tool names."""

from __future__ import annotations

import pytest

from trice.tools.calculator import Calculator
from trice.core.tools import MAX_ARGUMENT_CHARS, MAX_RESULT_CHARS, ToolCall, ToolError, ToolRegistry, ToolSetupError, parse_call
from trice.tools.qa import QATool
from trice.core.native import DECLARED_SCHEMAS, NativeToolCall, check_schema, parse_native_call, tool_schema
from trice.tools.factories import TOOL_FACTORIES, build_registry, register_tool_factory
from trice.tools.translator import Translator

NAMES = ["calculator"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So calculator(48+48/2) gives", ToolCall("calculator", "48+48/2")),
        ("calculator(1) then calculator(2)", ToolCall("calculator", "1")),
        ("calculator((2+3)*(4+1)) = 25", ToolCall("calculator", "(2+3)*(4+1)")),
        ("calculator(2*(3+4", ToolCall("calculator", "2*(3+4")),
        ("calculator( 1+2 )", ToolCall("calculator", "1+2")),
        ("calculator (1+2)", ToolCall("calculator", "1+2")),
        ("calculator\n(1+2)", ToolCall("calculator", "1+2")),
        ("mycalculator(1) calculator(2)", ToolCall("calculator", "2")),
        ("(calculator(3))", ToolCall("calculator", "3")),
        ("calculator()", ToolCall("calculator", "")),
    ],
)
def test_parse_call(text: str, expected: ToolCall) -> None:
    assert parse_call(text, NAMES) == expected


@pytest.mark.parametrize("text", ["", "no tools here", "mycalculator(1)", "_calculator(1)", "calculator2(1)", "Calculator(1)", "calculator 1+2"])
def test_parse_call_finds_nothing(text: str) -> None:
    assert parse_call(text, NAMES) is None


def test_parse_call_prefers_the_longer_name_and_ignores_empty_names() -> None:
    assert parse_call("calc_plus(1)", ["calc", "calc_plus"]) == ToolCall("calc_plus", "1")
    assert parse_call("(1+2)", [""]) is None
    assert parse_call("x", []) is None


class _Raises:
    name = "raiser"

    def __init__(self, error: Exception):
        self.error = error

    def run(self, argument: str) -> str:
        raise self.error


class _ReturnsNumber:
    name = "number"

    def run(self, argument: str) -> str:
        return 42  # type: ignore[return-value]


class _Echo:
    name = "echo"

    def run(self, argument: str) -> str:
        return argument * 10_000


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ToolError("unavailable", "down"), "unavailable"),
        (ValueError("bad"), "runtime"),
        (ZeroDivisionError("x"), "runtime"),
        (KeyError("x"), "runtime"),
        (OSError("disk"), "runtime"),
        (RecursionError(), "runtime"),
    ],
)
def test_execute_turns_every_tool_failure_into_a_result(error: Exception, kind: str) -> None:
    registry = ToolRegistry([_Raises(error)])
    result = registry.execute(ToolCall("raiser", "1"))
    assert (result.ok, result.error_kind, result.output) == (False, kind, None)


def test_execute_lets_a_tool_that_cannot_be_set_up_stop_the_run() -> None:
    registry = ToolRegistry([_Raises(ToolSetupError("needs the package x"))])
    with pytest.raises(ToolSetupError, match="needs the package x"):
        registry.execute(ToolCall("raiser", "1"))
    with pytest.raises(ToolSetupError):
        registry.run_text("raiser(1)")


def test_execute_refuses_non_text_results_unknown_tools_and_long_arguments() -> None:
    registry = ToolRegistry([_ReturnsNumber(), Calculator()])
    assert registry.execute(ToolCall("number", "1")).error_kind == "runtime"
    assert registry.execute(ToolCall("nope", "1")).error_kind == "unknown_tool"
    assert registry.execute(ToolCall("calculator", "1+" * MAX_ARGUMENT_CHARS)).error_kind == "limit"


def test_execute_truncates_long_output() -> None:
    result = ToolRegistry([_Echo()]).execute(ToolCall("echo", "abc"))
    assert result.ok and len(result.output) == MAX_RESULT_CHARS


def test_run_text_parses_and_executes() -> None:
    registry = ToolRegistry([Calculator()])
    result = registry.run_text("She sold calculator(48+48/2) clips")
    assert result is not None and result.ok and result.output == "72"
    failed = registry.run_text("calculator(__import__('os'))")
    assert failed is not None and not failed.ok and failed.error_kind == "bad_argument"
    assert registry.run_text("The answer is 72.") is None


def test_register_validates_tools() -> None:
    registry = ToolRegistry()
    with pytest.raises(TypeError):
        registry.register(object())  # type: ignore[arg-type]

    class BadName:
        name = "not a name"

        def run(self, argument: str) -> str:
            return argument

    with pytest.raises(ValueError):
        registry.register(BadName())
    assert registry.register(Calculator()).name in registry
    assert registry.names == ["calculator"]


@pytest.fixture
def clean_factories():
    saved, schemas = dict(TOOL_FACTORIES), dict(DECLARED_SCHEMAS)
    yield
    TOOL_FACTORIES.clear()
    TOOL_FACTORIES.update(saved)
    DECLARED_SCHEMAS.clear()
    DECLARED_SCHEMAS.update(schemas)


class _Upper:
    name = "upper"

    def __init__(self, suffix: str = ""):
        self.suffix = suffix

    def run(self, argument: str) -> str:
        return argument.upper() + self.suffix


def test_build_registry_with_a_custom_tool(clean_factories: None) -> None:
    register_tool_factory("upper", _Upper)
    registry = build_registry(["calculator", "upper"], upper={"suffix": "!"})
    assert registry.names == ["calculator", "upper"]
    assert registry.run_text("upper(hi)").output == "HI!"
    assert registry.run_text("calculator(2^3)").output == "8"
    assert build_registry("calculator").names == ["calculator"]
    assert build_registry(["calculator", "calculator"]).names == ["calculator"]


def test_build_registry_rejects_unknown_names_and_options(clean_factories: None) -> None:
    with pytest.raises(ValueError, match="known: .*calculator"):
        build_registry(["calculator", "wiki"])
    with pytest.raises(ValueError, match="keyed by the name"):
        build_registry(["calculator"], upper={})
    with pytest.raises(TypeError, match="mapping"):
        build_registry(["calculator"], calculator=3)


def test_register_tool_factory_validation(clean_factories: None) -> None:
    register_tool_factory("calculator", Calculator)  # same factory again: fine
    register_tool_factory("QA", QATool.from_options)  # a classmethod, a new bound method each time: the same too
    with pytest.raises(ValueError, match="already registered"):
        register_tool_factory("QA", Translator.from_options)
    with pytest.raises(ValueError, match="already registered"):
        register_tool_factory("calculator", _Upper)
    with pytest.raises(ValueError):
        register_tool_factory("bad name", _Upper)
    with pytest.raises(TypeError):
        register_tool_factory("thing", 3)  # type: ignore[arg-type]
    register_tool_factory("shout", _Upper)  # builds a tool named "upper"
    with pytest.raises(ValueError, match="built a tool named"):
        build_registry(["shout"])
    register_tool_factory("calculator", _Upper, replace=True)
    assert TOOL_FACTORIES["calculator"] is _Upper


class _Stock:
    """A share's price."""

    name = "stock"
    schema = {"name": "stock", "description": "A share's price.", "parameters": {
        "type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]}}  # fmt: skip

    def run(self, argument: str) -> str:
        return f"{argument}: 12.5"


def test_a_registered_tool_class_is_offered_and_read_by_its_own_schema(clean_factories: None) -> None:
    """Prompts, endpoints, messages and the judge know a task's tool by name only: the schema the
    tool class declares must be what they offer, and its parameter what a native call is read by."""
    generic = tool_schema("stock")["function"]["parameters"]["required"]
    register_tool_factory("stock", _Stock)
    assert generic == ["argument"] and tool_schema("stock") == check_schema(_Stock.schema, "stock")
    call = parse_native_call('<tool_call>{"name": "stock", "arguments": {"ticker": "ACME"}}</tool_call>', ["stock"], "hermes")
    assert isinstance(call, NativeToolCall) and call.argument == "ACME"
    register_tool_factory("upper", _Upper)  # no schema: one from its name and docstring
    assert tool_schema("upper")["function"]["parameters"]["required"] == ["argument"]
    register_tool_factory("stock", lambda: _Stock(), replace=True)  # a function: the tool describes itself once built
    assert tool_schema("stock")["function"]["parameters"]["required"] == ["argument"]
