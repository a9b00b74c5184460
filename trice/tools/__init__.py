"""Tools a model may call, and the factory table that turns tool names in a config into a registry.

New tools plug in without editing this package: ``register_tool_factory("wiki", WikiSearch)`` and
then ``build_registry(["calculator", "wiki"], wiki={"index": path})``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from trice.tools.base import Tool, ToolCall, ToolError, ToolRegistry, ToolResult, call_end, parse_call
from trice.tools.calculator import Calculator

__all__ = [
    "TOOL_FACTORIES",
    "Calculator",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "build_registry",
    "call_end",
    "parse_call",
    "register_tool_factory",
]

ToolFactory = Callable[..., Tool]


def _wikisearch(**options: Any) -> Tool:
    """WikiSearch, imported on first use: its retrieval stack (bm25s, HTTP clients) is not needed by math runs."""
    from trice.tools.wikisearch import WikiSearch

    return WikiSearch(**options)


TOOL_FACTORIES: dict[str, ToolFactory] = {"calculator": Calculator, "WikiSearch": _wikisearch}


def register_tool_factory(name: str, factory: ToolFactory, *, replace: bool = False) -> None:
    """Make ``name`` buildable by :func:`build_registry`.

    Registering a different factory under a taken name fails unless ``replace=True``, so two
    plugins cannot silently swap each other's tools; registering the same factory again is a no-op.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"tool name {name!r} must be an identifier")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} is not callable: {factory!r}")
    existing = TOOL_FACTORIES.get(name)
    if existing is not None and existing is not factory and not replace:
        raise ValueError(f"a tool factory named {name!r} is already registered; pass replace=True to swap it")
    TOOL_FACTORIES[name] = factory


def build_registry(names: Iterable[str] | str, **options: Mapping[str, Any]) -> ToolRegistry:
    """A registry holding one tool per name, built by its factory.

    ``options`` are keyed by tool name and hold that tool's keyword arguments
    (``wiki={"index": path}``), so tools with different settings can be built in one call.
    A single string is one name. Unknown names or option keys raise ValueError.
    """
    wanted = [names] if isinstance(names, str) else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in TOOL_FACTORIES]
    if unknown:
        raise ValueError(f"unknown tool(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(TOOL_FACTORIES))}")
    stray = sorted(set(options) - set(wanted))
    if stray:
        raise ValueError(
            f"options are keyed by the name of a tool being built (e.g. wiki={{'index': path}}); "
            f"got {', '.join(map(repr, stray))} for tools {', '.join(map(repr, wanted))}"
        )
    for name, kwargs in options.items():
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"options for tool {name!r} must be a mapping of keyword arguments, not {kwargs!r}")
    registry = ToolRegistry()
    for name in wanted:
        tool = TOOL_FACTORIES[name](**options.get(name, {}))
        if getattr(tool, "name", None) != name:
            raise ValueError(f"factory for {name!r} built a tool named {getattr(tool, 'name', None)!r}")
        registry.register(tool)
    return registry


def _translator(**options: Any) -> Tool:
    """The translator, imported on first use; its model loads on the first call (see trice.tools.translator)."""
    from trice.tools.translator import Translator

    return Translator.from_options(**options)


register_tool_factory("translator", _translator)


def _qa(**options: Any) -> Tool:
    """The QA tool (retrieval + reader), imported on first use; its index and reader load on the first call."""
    from trice.tools.qa import QATool

    return QATool.from_options(**options)


register_tool_factory("QA", _qa)
