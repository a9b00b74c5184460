"""The versions saved next to every result name trice's own as installed (its distribution is
trice-tools), so a result says which trice made it."""

from __future__ import annotations

import importlib.metadata

import pytest

import trice
from trice.utils.environment import environment


def test_trice_is_recorded_by_its_installed_version() -> None:
    try:
        installed = importlib.metadata.version("trice-tools")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("trice is run from its source tree here, not installed")
    assert environment()["trice"] == installed == trice.__version__


def test_every_library_a_result_depends_on_is_recorded() -> None:
    assert {"python", "platform", "trice", "torch", "transformers", "peft", "trl", "accelerate"} <= environment().keys()
