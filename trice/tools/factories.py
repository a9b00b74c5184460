"""The factory table that turns tool names in a config into a :class:`~trice.core.tools.ToolRegistry`.

New tools plug in without editing this package: ``register_tool_factory("wiki", WikiSearch)`` and
then ``build_registry(["calculator", "wiki"], wiki={"index": path})``. The built-in factories are
the paper's four tools; each loads nothing heavy until its first call (an index, a model).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from trice.retrieval.factory import RetrieverConfig, missing_packages
from trice.core.tools import Tool, ToolRegistry
from trice.tools.calculator import Calculator
from trice.core.native import declare_schema, tool_schema
from trice.tools.qa import QATool, QAToolConfig
from trice.tools.translator import Translator, TranslatorConfig
from trice.tools.wikisearch import WikiSearch
from trice.utils.config import build_config

ToolFactory = Callable[..., Tool]

TOOL_FACTORIES: dict[str, ToolFactory] = {"calculator": Calculator, "WikiSearch": WikiSearch, "translator": Translator.from_options, "QA": QATool.from_options}


def register_tool_factory(name: str, factory: ToolFactory, *, replace: bool = False) -> None:
    """Make ``name`` buildable by :func:`build_registry`.

    Registering a different factory under a taken name fails unless ``replace=True``, so two
    plugins cannot silently swap each other's tools; registering the same factory again is a no-op.
    A tool class's schema (its ``schema``, else one from its docstring) is declared for ``name``, so
    native prompts, endpoints and messages that know the tool by name offer it as it describes itself.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"tool name {name!r} must be an identifier")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} is not callable: {factory!r}")
    existing = TOOL_FACTORIES.get(name)
    # == not `is`: a classmethod factory (QATool.from_options) is a new bound method at each access
    if existing is not None and existing != factory and not replace:
        raise ValueError(f"a tool factory named {name!r} is already registered; pass replace=True to swap it")
    TOOL_FACTORIES[name] = factory
    # a tool class: its schema (declared, or from its docstring); a function's tool describes itself once built
    declare_schema(name, tool_schema(factory) if getattr(factory, "name", None) == name else None)


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


def known_tool_options(name: str) -> set[str] | None:
    """The option keys the built-in tool ``name`` takes (None: a plugged-in tool, checked when built).
    Read from the tools' option dataclasses, so a key cannot be known here and refused there."""

    def names(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    return {"calculator": set(), "WikiSearch": names(RetrieverConfig) | {"readings"}, "QA": names(QAToolConfig),
            "translator": names(TranslatorConfig)}.get(name)  # fmt: skip


MODEL_CONFIGS: dict[str, type] = {"translator": TranslatorConfig, "QA": QAToolConfig}
"""The built-in tools that load a model, by the option dataclass that names it (``local_models()``)."""


def tool_models(name: str, options: Mapping[str, Any]) -> list[str]:
    """The local models the built-in tool ``name`` loads with ``options`` (none for the calculator,
    WikiSearch's retrievers, or a plugged-in tool, which loads what it loads when built)."""
    if name not in MODEL_CONFIGS:
        return []
    return build_config(MODEL_CONFIGS[name], dict(options), f"tools: {name}").local_models()


def tool_missing_packages(name: str, options: Mapping[str, Any]) -> list[str]:
    """What the built-in tool ``name`` with ``options`` needs and this machine lacks, beyond its
    model (:func:`tool_models`): WikiSearch's and the QA tool's retriever packages."""
    if name == "WikiSearch":
        return missing_packages(options)
    if name == "QA":
        return missing_packages(options.get("retriever", {}))
    return []


def check_tool_options(tools: dict) -> None:
    """Tool options are keyed by known tool names, each a mapping of keys the tool takes: a typo
    fails a recipe's --status, not a stage after hours of probing."""
    for name, options in tools.items():
        if name not in TOOL_FACTORIES:
            raise ValueError(f"tools: unknown tool {name!r}; known: {', '.join(sorted(TOOL_FACTORIES))}")
        if not isinstance(options, dict):
            raise ValueError(f"tools: options of {name!r} must be a mapping, got {options!r}")
        known = known_tool_options(name)
        unknown = sorted(set(options) - known) if known is not None else []
        if unknown:
            raise ValueError(f"tools: {name}: unknown option '{unknown[0]}' (known: {', '.join(sorted(known)) or 'none'})")
