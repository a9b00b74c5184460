"""Run pytest as CI's environment sees it: the test extras only, so none of the optional model
packages (the ``gemma`` and ``qwen`` extras) a developer's machine may have installed.

A test that passes only because such a package is installed here fails in CI; this hides them from
``importlib.util.find_spec``, which is how trice finds an embedded model's package, without
uninstalling anything (a benchmark may be using them). Usage, arguments as pytest's::

    .venv/bin/python scripts/test_without_model_extras.py -q
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from trice.generation.embedded import ChunkedModel
from trice.generation.models import DEFAULT_MODEL, EMBEDDED

# Every embedded model's package but the default one, which `make test` installs.
HIDDEN = frozenset(
    module
    for name, spec in EMBEDDED.items()
    if name != DEFAULT_MODEL
    for module in ([c.module for c in spec.chunks] if isinstance(spec, ChunkedModel) else [spec.module])
)
_find_spec = importlib.util.find_spec


def find_spec(name: str, package: str | None = None):  # noqa: ANN201 - importlib's own signature
    """None (not installed) for the hidden model packages, else what importlib finds."""
    if name in HIDDEN:
        return None
    return _find_spec(name, package)


if __name__ == "__main__":
    importlib.util.find_spec = find_spec
    sys.exit(pytest.main(sys.argv[1:]))
