"""Comparing recomputed results with committed ones."""

from __future__ import annotations

from typing import Any

import pytest

# A bootstrap or a sum recomputed on another machine (another numpy build, BLAS, summation order)
# differs from the committed value in the last bits (-0.017777777777777753 vs ...726), never more:
# 1e-9 relative is far below the printed precision (a tenth of a point) and far above rounding noise.
REL = 1e-9


def approx_tree(expected: Any, rel: float = REL) -> Any:
    """``expected`` with every float wrapped in ``pytest.approx``, through dicts and lists, so a
    recomputed result equals a committed one up to rounding (ints, strings and keys exactly)."""
    if isinstance(expected, dict):
        return {k: approx_tree(v, rel) for k, v in expected.items()}
    if isinstance(expected, (list, tuple)):
        return type(expected)(approx_tree(v, rel) for v in expected)
    if isinstance(expected, float):
        return pytest.approx(expected, rel=rel, abs=1e-12)
    return expected
