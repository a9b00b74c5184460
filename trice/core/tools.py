"""The tool interface: a model writes ``name(argument)``; a tool parses, executes, and answers with
text or a typed error.

Tool execution is untrusted model output. Every call goes through :meth:`ToolRegistry.execute`,
which bounds the argument length and the result size and turns every failure into a
:class:`ToolResult` with ``ok=False``; the reward and the evaluation treat that as a failed call.
The one exception is :class:`ToolSetupError`: a tool that cannot be set up on this machine fails
every call for a reason no call caused, so it stops the run instead of being judged as the model's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

OUTAGE_KINDS = ("timeout", "unavailable")
"""Error kinds of a tool or server that failed to answer, not of the call: asking again may work."""
MAX_ARGUMENT_CHARS = 2_000
MAX_RESULT_CHARS = 4_000
_QUOTES = "\"'`“”‘’"


class ToolError(Exception):
    """A tool call that could not produce a result. ``kind`` says why, for reports and rewards."""

    KINDS: ClassVar[tuple[str, ...]] = ("unknown_tool", "bad_argument", "limit", "timeout", "unavailable", "runtime")

    def __init__(self, kind: str, message: str):
        if kind not in self.KINDS:
            raise ValueError(f"unknown ToolError kind {kind!r}")
        self.kind = kind
        super().__init__(message)


class ToolSetupError(Exception):
    """A tool that cannot be set up at all (its model package is not installed, its corpus is
    missing). Not a :class:`ToolError`: judging every call as failed would score the machine's
    setup as the model's answers (a translator that never loads drops every translated question
    from D_tool), so the registry lets it through and the stage stops, naming what to install."""


def clean_text_argument(argument: str, limit: int, what: str) -> str:
    """A text argument (a search term, a question) as a tool wants it: whitespace collapsed, one pair
    of surrounding quotes dropped, refused (a typed error naming ``what``) when not text, empty, or
    longer than ``limit`` characters, a huge one before any work is spent on it."""
    if not isinstance(argument, str):
        raise ToolError("bad_argument", f"{what} must be text, got {type(argument).__name__}")
    if len(argument) > 4 * limit:
        raise ToolError("limit", f"{what} longer than {limit} characters")
    text = " ".join(argument.split())
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if not text:
        raise ToolError("bad_argument", f"empty {what}")
    if len(text) > limit:
        raise ToolError("limit", f"{what} longer than {limit} characters")
    return text


@runtime_checkable
class Tool(Protocol):
    """What a tool is: a name the model writes and a function from the argument text to a result.

    ``run`` raises :class:`ToolError` for anything it cannot answer.
    """

    name: str

    def run(self, argument: str) -> str: ...


@dataclass(frozen=True)
class ToolCall:
    name: str
    argument: str

    def __str__(self) -> str:
        return f"{self.name}({self.argument})"


@dataclass(frozen=True)
class ToolResult:
    call: ToolCall
    ok: bool
    output: str | None = None
    error_kind: str | None = None
    error: str | None = None


def _first_call(text: str, names: Iterable[str]) -> tuple[re.Match[str], int | None] | None:
    """The first ``name(`` of one of ``names`` in ``text`` and the index of the parenthesis that
    balances its opening one (None while unbalanced), or None when no name is followed by ``(``.

    The one definition of "a call" that judging (:func:`parse_call`) and stopping generation
    (:func:`call_end`) share. Linear in the text's length.
    """
    names = sorted({n for n in names if n}, key=len, reverse=True)  # "" would match every "("
    if not names or not text:
        return None
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(re.escape(n) for n in names) + r")\s*\(")
    match = pattern.search(text)
    if match is None:
        return None
    depth = 1
    for i in range(match.end(), len(text)):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return match, i
    return match, None


def parse_call(text: str, names: Iterable[str]) -> ToolCall | None:
    """The first ``name(argument)`` in ``text`` for one of ``names`` (case-sensitive), or None.

    The argument runs to the parenthesis that balances the opening one; when the response was cut
    off before it balances, the rest of the text is the argument (the tool then decides). The scan is
    linear in the text's length.
    """
    found = _first_call(text, names)
    if found is None:
        return None
    match, close = found
    return ToolCall(match.group(1), text[match.end() : close].strip())


def call_end(text: str, names: Iterable[str]) -> int | None:
    """The index just past the closing parenthesis of the call :func:`parse_call` would read in
    ``text``, or None when there is no call or it is not closed yet.

    Whatever follows that index cannot change how the response is judged (the judge executes the
    first call and ignores the rest), so generation may stop there. Once not None, it stays the same
    however the text goes on: an earlier call would need its ``(`` before this call's name.
    """
    found = _first_call(text, names)
    if found is None or found[1] is None:
        return None
    return found[1] + 1


def call_start(text: str, names: Iterable[str]) -> int | None:
    """The index where the call :func:`parse_call` would read in ``text`` begins (its name), or None."""
    found = _first_call(text, names)
    return None if found is None else found[0].start()


class ToolRegistry:
    """Name -> tool. ``register`` your own; ``execute`` is the one safe way to run a call."""

    def __init__(self, tools: Iterable[Tool] = ()):
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> Tool:
        if not isinstance(tool, Tool) or not isinstance(getattr(tool, "name", None), str):
            raise TypeError(f"{tool!r} is not a tool: it needs a str `name` and a `run(argument) -> str` method")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tool.name):
            raise ValueError(f"tool name {tool.name!r} must be an identifier")
        self._tools[tool.name] = tool
        return tool

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        """The tool registered as ``name`` (for its extra methods, e.g. WikiSearch's ``passages``), or None."""
        return self._tools.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def parse(self, text: str) -> ToolCall | None:
        return parse_call(text, self._tools)

    def execute(self, call: ToolCall) -> ToolResult:
        """Run a call under the registry's bounds; never raises for anything the call contains
        (only :class:`ToolSetupError`, which no call causes)."""
        tool = self._tools.get(call.name)
        if tool is None:
            return ToolResult(call, False, error_kind="unknown_tool", error=f"no tool named {call.name!r}")
        if len(call.argument) > MAX_ARGUMENT_CHARS:
            return ToolResult(call, False, error_kind="limit", error=f"argument longer than {MAX_ARGUMENT_CHARS} characters")
        try:
            output = tool.run(call.argument)
        except ToolError as err:
            return ToolResult(call, False, error_kind=err.kind, error=str(err))
        except ToolSetupError:
            raise
        except Exception as err:  # a tool's bug on one argument is a failed call, not a crashed run
            return ToolResult(call, False, error_kind="runtime", error=f"{type(err).__name__}: {err}")
        if not isinstance(output, str):
            return ToolResult(call, False, error_kind="runtime", error=f"tool returned {type(output).__name__}, not text")
        return ToolResult(call, True, output=output[:MAX_RESULT_CHARS])

    def run_text(self, text: str) -> ToolResult | None:
        """Parse and execute the first call in a model response; None when it calls no tool."""
        call = self.parse(text)
        return None if call is None else self.execute(call)
