"""Seeing the machine as a fresh one does: the optional model packages absent."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trice.generation.embedded import ChunkedModel
from trice.core.paths import cache_dir
from trice.generation.models import DEFAULT_MODEL, EMBEDDED

# Every embedded model's package but the default one, which the test extras install.
OPTIONAL_MODEL_MODULES = frozenset(
    module
    for name, spec in EMBEDDED.items()
    if name != DEFAULT_MODEL
    for module in ([c.module for c in spec.chunks] if isinstance(spec, ChunkedModel) else [spec.module])
)


def without_optional_models(find_spec: Callable[..., Any]) -> Callable[..., Any]:
    """``find_spec`` (how trice finds an embedded model's package) seeing none of the optional model
    packages, so a test fails here as it would where they are not installed."""

    def find(name: str, package: str | None = None) -> Any:
        return None if name in OPTIONAL_MODEL_MODULES else find_spec(name, package)

    return find


def hide_optional_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`without_optional_models` for one test."""
    monkeypatch.setattr(importlib.util, "find_spec", without_optional_models(importlib.util.find_spec))


def converted_qwen() -> Path:
    """The converted Qwen2.5-Coder-0.5B directory in the trice cache, or a skip saying why: its chat
    template is the real one the native-format tests check against, and converting it (the qwen
    extra, ~1 min) is a benchmark's cost, not a test's, so a fresh machine skips these."""
    path = cache_dir() / "models" / "qwen2.5-coder-0.5b-instruct"
    if not (path / "tokenizer.json").is_file():
        pytest.skip(f"the converted Qwen2.5-Coder-0.5B is not at {path} (trice converts it on first use of the alias, with the qwen extra)")
    return path
