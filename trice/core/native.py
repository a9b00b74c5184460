"""Native tool calls: the model's own chat-template tool calling, beside TRICE's plain ``name(argument)``.

Instruction-tuned models are trained to call tools in their chat template's format: the tools'
JSON schemas go in with ``tokenizer.apply_chat_template(messages, tools=[...])`` and the model
answers with a JSON call. Two formats are read here:

* ``hermes`` (Qwen2.5, Hermes): ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
* ``llama3`` (Llama 3.x): the whole message is ``{"name": ..., "parameters": {...}}``, possibly
  after ``<|python_tag|>``.

Every trice tool takes one text argument: a schema declares one required string parameter, whose
value becomes the :class:`~trice.core.tools.ToolCall`'s argument. The model's output is untrusted:
its JSON is bounded in size before it is parsed (:data:`MAX_CALL_CHARS`), never evaluated, and every
way a call can be wrong is a :class:`NativeCallError`, judged as a failed call (its ``result()`` is
the ``ok=False`` ToolResult ``ToolRegistry.execute`` would give). The first call is judged.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trice.core.tools import Tool, ToolCall, ToolError, ToolResult
from trice.utils.io import parse_json

PARSERS = ("hermes", "llama3")
MAX_CALL_CHARS = 8 * 1024
"""The longest call JSON read; a call is one short argument, so anything longer is a runaway generation."""
SHOWN_CHARS = 200  # of a failed call's text, kept for reports

HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"
PYTHON_TAG = "<|python_tag|>"
# The tokens that frame a call in each format. A model's vocabulary may hold them as single added
# tokens whose embedding rows it never learned (Qwen2.5-Coder-0.5B-Instruct's <tool_call> and
# </tool_call> rows are copies of each other, close to <|im_start|>'s), so training must move those
# rows too (:func:`trice.training.lora.trained_token_ids`). Llama 3's JSON calls need no marker.
CALL_MARKERS: dict[str, tuple[str, ...]] = {"hermes": (HERMES_OPEN, HERMES_CLOSE), "llama3": ()}

# The built-in tools' schemas: (what the tool does and returns, parameter name, parameter description).
BUILTIN_SCHEMAS: dict[str, tuple[str, str, str]] = {
    "calculator": (
        "Evaluate an arithmetic expression. Returns its value as a number (e.g. 72 for 48+48/2).",
        "expression",
        "The arithmetic expression to evaluate, e.g. 48+48/2",
    ),
    "WikiSearch": ("Search Wikipedia. Returns the best matching passage as 'Title | passage text'.", "query", "The search term, e.g. Nina Dobrev nationality"),
    "QA": (
        "Ask a question-answering model that reads retrieved Wikipedia passages. Returns a short answer.",
        "question",
        "The question to answer, e.g. Where was Allan Peiper born?",
    ),
    "translator": ("Translate text into English. Returns the English translation.", "text", "The text to translate into English"),
}


def function_schema(name: str, description: str, parameter: str, parameter_description: str) -> dict[str, Any]:
    """The OpenAI/Hugging Face function schema of a tool taking one required string parameter."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {parameter: {"type": "string", "description": parameter_description}}, "required": [parameter]},
        },
    }


def check_schema(schema: Any, name: str | None = None) -> dict[str, Any]:
    """``schema`` as a full function schema (a bare ``{"name", "description", "parameters"}`` is
    wrapped), refused with ValueError unless it names ``name`` (when given) and declares exactly one
    required string parameter: a trice tool's ``run`` takes one text argument, nothing else."""
    if isinstance(schema, Mapping) and "function" not in schema and "name" in schema:
        schema = {"type": "function", "function": schema}
    function = schema.get("function") if isinstance(schema, Mapping) else None
    where = f"tool schema of {name!r}" if name else "tool schema"
    if not isinstance(function, Mapping) or schema.get("type", "function") != "function":
        raise ValueError(f"{where}: expected {{'type': 'function', 'function': {{'name', 'description', 'parameters'}}}}")
    if not isinstance(function.get("name"), str) or (name is not None and function["name"] != name):
        raise ValueError(f"{where}: its function name is {function.get('name')!r}")
    if not isinstance(function.get("description", ""), str):
        raise ValueError(f"{where}: description must be text")
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    if not isinstance(properties, Mapping) or parameters.get("type") != "object" or len(properties) != 1:
        raise ValueError(f"{where}: parameters must be an object schema with exactly one property (the tool's one text argument)")
    ((parameter, spec),) = properties.items()
    if not isinstance(spec, Mapping) or spec.get("type") != "string":
        raise ValueError(f"{where}: parameter {parameter!r} must be of type string")
    if parameters.get("required", [parameter]) != [parameter]:
        raise ValueError(f"{where}: parameter {parameter!r} must be required (and the only required one)")
    full = {"type": "function", "function": dict(function)}
    full["function"]["parameters"] = {**parameters, "required": [parameter]}
    return full


def argument_name(schema: Mapping[str, Any]) -> str:
    """The name of the one parameter of a checked schema (:func:`check_schema`)."""
    return next(iter(schema["function"]["parameters"]["properties"]))


DECLARED_SCHEMAS: dict[str, dict[str, Any]] = {}
"""Tool name -> the schema its registered factory declares (:func:`declare_schema`)."""


def declare_schema(name: str, schema: Any) -> None:
    """Make ``schema`` what :func:`tool_schema` gives for the *name* ``name``, so that prompts,
    endpoints and messages, which know a task's tool by name only, offer a user tool as it describes
    itself (:func:`trice.tools.factories.register_tool_factory` declares a factory's); None forgets it."""
    if schema is None:
        DECLARED_SCHEMAS.pop(name, None)
    else:
        DECLARED_SCHEMAS[name] = check_schema(schema, name)


def tool_schema(tool: Tool | str) -> dict[str, Any]:
    """The function schema of ``tool`` (a tool, or a tool's name).

    A tool's own ``schema`` attribute wins (a user tool describing itself), then the schema declared
    for its name; the built-in four have theirs (:data:`BUILTIN_SCHEMAS`); any other tool gets one
    string parameter named ``argument``, described by the first paragraph of its docstring.
    """
    name = tool if isinstance(tool, str) else getattr(tool, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{tool!r} is not a tool: it has no str `name`")
    declared = None if isinstance(tool, str) else getattr(tool, "schema", None)
    if declared is not None:
        return check_schema(declared, name)
    if isinstance(tool, str) and name in DECLARED_SCHEMAS:  # a tool object describes itself
        return DECLARED_SCHEMAS[name]
    if name in BUILTIN_SCHEMAS:
        return function_schema(name, *BUILTIN_SCHEMAS[name])
    doc = "" if isinstance(tool, str) else inspect.getdoc(tool) or ""
    description = " ".join(doc.split("\n\n")[0].split()) or f"The {name} tool."
    return function_schema(name, description, "argument", f"The text {name} reads")


def tool_schemas(tools: Mapping[str, Any] | Iterable[str]) -> dict[str, dict[str, Any]]:
    """Name -> checked schema: a mapping's schemas (a user tool's own), or each name's :func:`tool_schema`."""
    if isinstance(tools, Mapping):
        return {name: check_schema(schema, name) for name, schema in tools.items()}
    return {name: tool_schema(name) for name in tools}


def render_call(name: str, argument: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """An assistant message's ``tool_calls`` entry calling ``name`` with ``argument`` (a label's target).

    ``arguments`` is an object, as Hugging Face chat templates expect (they write it with ``tojson``).
    """
    schema = check_schema(schema)
    if schema["function"]["name"] != name:
        raise ValueError(f"the schema describes {schema['function']['name']!r}, not {name!r}")
    return {"type": "function", "function": {"name": name, "arguments": {argument_name(schema): argument}}}


def hermes_text(name: str, arguments: Any) -> str:
    """A call as hermes text, ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``: how a call
    that a server returned as ``tool_calls`` reaches a response, which the judge reads as text
    (:func:`parse_native_call` with parser ``hermes`` reads it back). ``arguments`` is kept as it
    came (an object; or text that is not a JSON object, which then reads back as the failed call it is)."""
    return HERMES_OPEN + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + HERMES_CLOSE


@dataclass(frozen=True)
class NativeToolCall(ToolCall):
    """A call read from a native format: a :class:`ToolCall` that also says how many calls the text
    held (``calls``; the first is the one used, as with the plain format). Equal only to other
    NativeToolCalls with the same name and argument: compare ``name``/``argument`` with a ToolCall."""

    calls: int = field(default=1, compare=False)


@dataclass(frozen=True)
class NativeCallError:
    """A call the model wrote that cannot run: judged as a failed call.

    ``name`` is the tool name as written ("" when unreadable); ``argument`` what was read of the
    call (its argument, or the start of its raw text); ``kind`` one of ``ToolError.KINDS``.
    """

    name: str
    argument: str
    kind: str
    error: str
    calls: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ToolError.KINDS:
            raise ValueError(f"unknown ToolError kind {self.kind!r}")

    @property
    def call(self) -> ToolCall:
        return ToolCall(self.name, self.argument)

    def result(self) -> ToolResult:
        """The failed result the judge reads, as :meth:`ToolRegistry.execute` reports a failed call."""
        return ToolResult(self.call, False, error_kind=self.kind, error=self.error)

    def __str__(self) -> str:
        return str(self.call)


def check_parser(parser: str) -> str:
    if parser not in PARSERS:
        raise ValueError(f"unknown tool call parser {parser!r}; known: {', '.join(PARSERS)}")
    return parser


def parser_for_template(template: str) -> str:
    """The parser of the calls a model with this chat template writes; ValueError when its template
    has no tool-calling format trice reads (then name the parser yourself)."""
    if not isinstance(template, str) or not template:
        raise ValueError("the tokenizer has no chat template, so no native tool calling")
    if HERMES_OPEN in template:
        return "hermes"
    if PYTHON_TAG in template or ("<|start_header_id|>" in template and '"parameters"' in template):
        return "llama3"
    raise ValueError(
        "the chat template writes tool calls in no format trice reads "
        f"(hermes: {HERMES_OPEN} JSON; llama3: a JSON message); name the parser ({', '.join(PARSERS)})"
    )


@dataclass(frozen=True)
class _Span:
    """Where the first call is: its JSON text, the index just past it (None while unfinished), how
    many calls the text holds, and whether it is longer than :data:`MAX_CALL_CHARS`."""

    body: str
    end: int | None
    calls: int
    oversized: bool = False
    start: int = 0  # where the call opens: the token where a response decides to call


def _hermes_span(text: str) -> _Span | None:
    start = text.find(HERMES_OPEN)
    if start < 0:
        return None
    body_start = start + len(HERMES_OPEN)
    close = text.find(HERMES_CLOSE, body_start, body_start + MAX_CALL_CHARS + len(HERMES_CLOSE))
    calls = text.count(HERMES_OPEN)
    if close < 0:  # cut off before its closing tag: the rest is the call (it may still parse)
        rest = text[body_start : body_start + MAX_CALL_CHARS + 1]
        return _Span(rest, None, calls, oversized=len(rest) > MAX_CALL_CHARS, start=start)
    return _Span(text[body_start:close], close + len(HERMES_CLOSE), calls, start=start)


def _object_end(text: str, start: int) -> int | None:
    """The index just past the JSON object opening at ``text[start]`` (strings and escapes skipped),
    or None when it does not close within :data:`MAX_CALL_CHARS` characters of the text."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, min(len(text), start + MAX_CALL_CHARS)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _more_objects(text: str, at: int) -> int:
    """How many further JSON objects follow ``at``, separated by whitespace, ``;`` or ``,``."""
    count = 0
    while True:
        while at < len(text) and (text[at].isspace() or text[at] in ";,"):
            at += 1
        if at >= len(text) or text[at] != "{":
            return count
        count += 1
        end = _object_end(text, at)
        if end is None:
            return count
        at = end


def _llama3_span(text: str) -> _Span | None:
    """A call only where the message is one: it opens with ``{`` (after ``<|python_tag|>``)."""
    at = opens = len(text) - len(text.lstrip())
    if text.startswith(PYTHON_TAG, at):
        at += len(PYTHON_TAG)
        at += len(text[at:]) - len(text[at:].lstrip())
    if not text.startswith("{", at):
        return None
    end = _object_end(text, at)
    if end is None:
        rest = text[at : at + MAX_CALL_CHARS + 1]
        return _Span(rest, None, 1, oversized=len(rest) > MAX_CALL_CHARS, start=opens)
    return _Span(text[at:end], end, 1 + _more_objects(text, end), start=opens)


_SPANS = {"hermes": _hermes_span, "llama3": _llama3_span}
_NAME_GUESS = re.compile(r'"name"\s*:\s*"([A-Za-z_][A-Za-z0-9_]{0,63})"')


def native_call_end(text: str, parser: str) -> int | None:
    """The index just past the first complete call in ``text`` (past ``</tool_call>`` for hermes;
    the end of the balanced JSON object for llama3), or None when there is none yet.

    As with :func:`trice.core.tools.call_end`, generation may stop there: the judge reads the first
    call only. Once not None it stays the same however the text goes on, since the call's start and
    end are fixed by the text before them.
    """
    span = _SPANS[check_parser(parser)](text)
    return None if span is None else span.end


def native_call_start(text: str, parser: str) -> int | None:
    """The index where the first call in ``text`` opens (its marker), or None when it holds none."""
    span = _SPANS[check_parser(parser)](text)
    return None if span is None else span.start


def parse_native_call(text: str, tools: Mapping[str, Any] | Iterable[str], parser: str) -> NativeToolCall | NativeCallError | None:
    """The first call in ``text`` written in ``parser``'s format, to one of ``tools`` (names, whose
    :func:`tool_schema` is used, or name -> schema); None when the text calls no tool.

    Never raises on the text: malformed JSON, an unknown tool, arguments that do not match the
    schema and a call longer than :data:`MAX_CALL_CHARS` are each a :class:`NativeCallError`.
    """
    span = _SPANS[check_parser(parser)](text)
    if span is None:
        return None
    guess = _NAME_GUESS.search(span.body[:SHOWN_CHARS])
    name = guess.group(1) if guess else ""
    if span.oversized:
        return NativeCallError(name, span.body[:SHOWN_CHARS], "limit", f"tool call longer than {MAX_CALL_CHARS} characters", span.calls)
    try:
        obj = parse_json(span.body)
    except ValueError as err:
        return NativeCallError(name, span.body[:SHOWN_CHARS].strip(), "bad_argument", f"tool call is not JSON: {err}", span.calls)
    return read_call(obj, tool_schemas(tools), span.calls)


def read_call(obj: Any, schemas: Mapping[str, Mapping[str, Any]], calls: int = 1) -> NativeToolCall | NativeCallError:
    """A parsed JSON call (``{"name", "arguments"|"parameters"}``, or OpenAI's ``{"function": {...}}``
    around it; arguments an object or its JSON text) checked against the checked ``schemas``."""
    if isinstance(obj, dict) and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        shape = "an object without a text name" if isinstance(obj, dict) else type(obj).__name__
        return NativeCallError("", "", "bad_argument", f'a tool call is {{"name": ..., "arguments": {{...}}}}, got {shape}', calls)
    name, keys = obj["name"], [key for key in ("arguments", "parameters") if key in obj]
    if len(keys) != 1:
        return NativeCallError(name, "", "bad_argument", "a tool call needs exactly one of 'arguments' or 'parameters'", calls)
    if name not in schemas:
        known = ", ".join(schemas) or "none"
        return NativeCallError(name, "", "unknown_tool", f"no tool named {name!r} (known: {known})", calls)
    arguments = obj[keys[0]]
    if isinstance(arguments, str):  # OpenAI's shape: the arguments object as JSON text
        try:
            arguments = parse_json(arguments)
        except ValueError as err:
            return NativeCallError(name, "", "bad_argument", f"arguments are not JSON: {err}", calls)
    return _check_arguments(name, arguments, argument_name(schemas[name]), calls)


def _check_arguments(name: str, arguments: Any, parameter: str, calls: int) -> NativeToolCall | NativeCallError:
    """The call, when ``arguments`` is exactly ``{parameter: text}``."""
    if not isinstance(arguments, dict):
        return NativeCallError(name, "", "bad_argument", f"arguments must be an object, got {type(arguments).__name__}", calls)
    extra = sorted(set(arguments) - {parameter})
    if extra:
        found = ", ".join(map(repr, extra))
        return NativeCallError(name, "", "bad_argument", f"unexpected argument(s) {found}; {name} takes only {parameter!r}", calls)
    if parameter not in arguments:
        return NativeCallError(name, "", "bad_argument", f"missing argument {parameter!r}", calls)
    value = arguments[parameter]
    if not isinstance(value, str):
        shown = str(value)[:SHOWN_CHARS]
        return NativeCallError(name, shown, "bad_argument", f"argument {parameter!r} must be text, got {type(value).__name__}", calls)
    return NativeToolCall(name, value.strip(), calls)
