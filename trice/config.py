"""Config dataclasses from YAML/dicts, checked before anything heavy runs.

Every stage has one dataclass (fields with ``metadata={"help": ...}``); the CLI flags come from it
through :mod:`trice.cli_args` and the YAML keys through :func:`build_config`, which rejects an
unknown key or a wrong type with a message naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A recipe or config that cannot be used, located as ``where: key 'k': problem``."""


def _check_type(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_check_type(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def build_config(cls: type[T], values: Mapping[str, Any] | None, where: str) -> T:
    """``cls(**values)`` after checking every key is a field of ``cls`` and has the field's type."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key '{key}' (known keys: {', '.join(names)})")
        if not _check_type(value, hints[key]):
            raise ConfigError(f"{where}: key '{key}': expected {_hint_name(hints[key])}, got {value!r}")
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        try:
            validate()
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"{where}: {err}") from None
    return config


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def merge_over(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` laid over ``base``: mappings merge key by key (recursively), anything else (lists
    included) replaces, and a ``null`` in the child removes the key, so a recipe can drop what its
    base sets (e.g. a tool its task does not use)."""
    merged = dict(base)
    for key, value in child.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_over(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_layered_yaml(path: str | Path, key: str = "base", _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping whose ``key`` (a path relative to the file) names a file it extends:
    the base is loaded the same way (bases may chain) and this file's values are laid over it
    with :func:`merge_over`. The result holds no ``key``, so what a run saves is self-contained."""
    path = Path(path)
    data = load_yaml(path)
    if key not in data:
        return data
    base = data.pop(key)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: {key}: expected the path of a YAML file, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise ConfigError(f"{path}: {key}: no such file {base_path}")
    seen = (*_seen, path.resolve())
    if base_path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, base_path.resolve()))
        raise ConfigError(f"{path}: {key}: the chain of bases loops ({chain})")
    return merge_over(load_layered_yaml(base_path, key, seen), data)


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain data: what a stage fingerprints and what a run saves.

    Fields a config class lists in its ``OMIT_AT_DEFAULT`` class attribute are left out while they
    hold their default. They are options added after runs were made; leaving them out keeps those
    runs' fingerprints, so adding an option does not make every finished stage look changed (a
    changed stage is deleted and rerun). (A class attribute, not field metadata: the flag builder, trice.cli_args,
    hands every metadata key to argparse.)
    """
    values = dataclasses.asdict(config)
    omit = set(getattr(config, "OMIT_AT_DEFAULT", ()))
    for f in dataclasses.fields(config):
        if f.name in omit and values[f.name] == _default(f):
            del values[f.name]
    return values
