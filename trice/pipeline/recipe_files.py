"""Recipes shipped inside the package (``trice/recipes/*.yaml``), found by name: ``trice run demo``
works from any directory and from an installed wheel, while a path still names any recipe file."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from trice.utils.config import ConfigError

SUFFIX = ".yaml"


def shipped_dir() -> Path:
    """The directory of the shipped recipes (a real directory: they ship as plain package files)."""
    return Path(str(files("trice") / "recipes"))


def shipped_names() -> list[str]:
    """The names ``trice run`` accepts in place of a path, e.g. ``demo`` for ``trice/recipes/demo.yaml``."""
    return sorted(p.stem for p in shipped_dir().glob(f"*{SUFFIX}"))


def shipped_recipe(name: str) -> Path | None:
    """The shipped recipe a bare ``name`` (``demo`` or ``demo.yaml``) names, or None."""
    if len(Path(name).parts) != 1:
        return None
    shipped = shipped_dir() / (name if name.endswith(SUFFIX) else name + SUFFIX)
    return shipped if shipped.is_file() else None


def find_recipe(name_or_path: str) -> Path:
    """The recipe file ``name_or_path`` means: an existing file as given, else the shipped recipe of
    that bare name (``demo`` or ``demo.yaml``); otherwise a ConfigError (for a bare name, listing the
    shipped names).
    A file wins over a shipped name, so a local ``demo.yaml`` is never shadowed."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if len(path.parts) == 1:
        shipped = shipped_recipe(name_or_path)
        if shipped is not None:
            return shipped
        raise ConfigError(f"{name_or_path}: no such file, nor a shipped recipe of that name; shipped: {', '.join(shipped_names())}")
    raise ConfigError(f"{name_or_path}: no such file")
