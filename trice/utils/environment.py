"""The software a result was made with, saved next to every result so it can be made again."""

from __future__ import annotations

import importlib.metadata
import platform

# Each recorded name and the distribution pip knows it by (trice's own is published as trice-tools:
# a version looked up as "trice" would read "not installed" on every install).
DISTRIBUTIONS = {"trice": "trice-tools", "torch": "torch", "transformers": "transformers", "peft": "peft", "trl": "trl", "accelerate": "accelerate"}


def environment() -> dict[str, str]:
    """Python, the platform and the versions of trice and the libraries it trains and generates with."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name, distribution in DISTRIBUTIONS.items():
        try:
            versions[name] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
