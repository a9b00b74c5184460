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
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tests package

from tests.helpers.models import without_optional_models  # noqa: E402

if __name__ == "__main__":
    importlib.util.find_spec = without_optional_models(importlib.util.find_spec)
    sys.exit(pytest.main(sys.argv[1:]))
