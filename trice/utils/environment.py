"""The software a result was made with, saved next to every result so it can be made again."""

from __future__ import annotations

import importlib.metadata
import platform


def environment() -> dict[str, str]:
    """Python, the platform and the versions of trice and the libraries it trains and generates with."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("trice", "torch", "transformers", "peft", "trl", "accelerate"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions
