"""Config dataclasses from YAML/dicts, checked before anything heavy runs.

Every stage has one dataclass (fields with ``metadata={"help": ...}``); the CLI flags come from it
through :mod:`trice.cli.args` and the YAML keys through :func:`build_config`, which rejects an
unknown key or a wrong type with a message naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
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


SEED_MAX = 2**32 - 1
"""The largest seed: numpy's (``transformers.set_seed`` seeds numpy too), so every seed trice passes on works."""


def _value_problem(key: str, value: Any) -> str | None:
    """What every config refuses in a value of the right type: a number that is not finite (YAML's
    ``.inf`` and ``.nan``: no field means anything by them, and they fail only once a stage uses
    them), and a ``seed`` outside ``[0, SEED_MAX]``."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in items):
        return f"must be a finite number, got {value!r}"
    if key == "seed" and isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= SEED_MAX:
        return f"must be in [0, {SEED_MAX}], got {value}"
    return None


def build_config(cls: type[T], values: Mapping[str, Any] | None, where: str) -> T:
    """``cls(**values)`` after checking every key is a field of ``cls`` and has the field's type (and a
    value no config accepts, :func:`_value_problem`), then the config's own ``validate()``."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key '{key}' (known keys: {', '.join(names)})")
        if not _check_type(value, hints[key]):
            raise ConfigError(f"{where}: key '{key}': expected {_hint_name(hints[key])}, got {value!r}")
        problem = _value_problem(key, value)
        if problem is not None:
            raise ConfigError(f"{where}: key '{key}': {problem}")
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        try:
            validate()
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"{where}: {err}") from None
    return config


MAX_YAML_VALUES = 100_000
"""Most values a YAML file may stand for once its aliases are expanded: far beyond any recipe, far
below what makes walking the result (type checks, hashing, printing) hang on an alias bomb."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and lists a YAML file may have."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys, and reading ``1e-3`` as the float YAML 1.2
    (and every user) means rather than YAML 1.1's string."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark)
            if isinstance(key, typing.Hashable):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_BoundedLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _expanded_size(node: yaml.Node, where: str) -> int:
    """Values ``node`` stands for with every alias expanded (shared nodes counted each time they are
    reached, which is what expansion costs), refusing more than :data:`MAX_YAML_VALUES`, nesting
    deeper than :data:`MAX_YAML_DEPTH` and an alias inside what it names."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(n: yaml.Node, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{where}:{n.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels")
        if id(n) in sizes:
            return sizes[id(n)]
        if id(n) in open_nodes:
            raise ConfigError(f"{where}:{n.start_mark.line + 1}: an alias refers to a value containing itself")
        open_nodes.add(id(n))
        children = [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else n.value if isinstance(n, yaml.SequenceNode) else []
        total = 1 + sum(size(c, depth + 1) for c in children)
        if total > MAX_YAML_VALUES:
            raise ConfigError(f"{where}:{n.start_mark.line + 1}: stands for more than {MAX_YAML_VALUES} values once its aliases are expanded")
        open_nodes.discard(id(n))
        sizes[id(n)] = total
        return total

    return size(node, 0)


def parse_yaml(text: str, where: str) -> Any:
    """A YAML document through :class:`_BoundedLoader` and :func:`_expanded_size`; every error a
    :class:`ConfigError` naming ``where`` and, where known, the line."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        raise ConfigError(f"{at}: invalid YAML ({getattr(err, 'problem', None) or err})") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested deeper than {MAX_YAML_DEPTH} levels") from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path, allow_empty: bool = True) -> dict[str, Any]:
    """The mapping a YAML file holds (see :func:`parse_yaml`); an empty or comment-only file is
    ``{}``, or with ``allow_empty`` False an error (a recipe with nothing in it is a mistake, not a
    request for every default)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte {exc.start})") from None
    data = parse_yaml(text, str(path))
    if data is None:
        if allow_empty:
            return {}
        raise ConfigError(f"{path}: empty (nothing but comments or blank lines): a recipe must set at least its run_dir")
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


def load_layered_yaml(
    path: str | Path, key: str = "base", named: Callable[[str], Path | None] | None = None, own: Sequence[str] = (), _seen: tuple[Path, ...] = ()
) -> dict[str, Any]:
    """A YAML mapping whose ``key`` (a path relative to the file, else a name ``named`` finds, e.g. a
    shipped recipe's) names a file it extends: the base is loaded the same way (bases may chain) and
    this file's values are laid over it with :func:`merge_over`; the ``own`` keys are each file's own,
    never taken from its base (a recipe's run directory). The result holds no ``key``, so what a run
    saves is self-contained."""
    path = Path(path)
    data = load_yaml(path, allow_empty=False)
    if key not in data:
        return data
    base = data.pop(key)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: {key}: expected the path of a YAML file, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        found = named(base) if named is not None else None
        if found is None:
            raise ConfigError(f"{path}: {key}: no such file {base_path}" + (f", nor a shipped recipe {base!r}" if named else ""))
        base_path = found
    seen = (*_seen, path.resolve())
    if base_path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, base_path.resolve()))
        raise ConfigError(f"{path}: {key}: the chain of bases loops ({chain})")
    inherited = {k: v for k, v in load_layered_yaml(base_path, key, named, own, seen).items() if k not in own}
    return merge_over(inherited, data)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``key.sub=value`` items (a command line's) as one nested mapping to lay over a config with
    :func:`merge_over`: each value is read as YAML (``2`` an int, ``1e-3`` a float, ``[a, b]`` a list,
    ``null`` removes the key), a later item wins over an earlier one."""
    over: dict[str, Any] = {}
    for item in items:
        dotted, sep, text = item.partition("=")
        keys = dotted.split(".")
        if not sep or not all(k.strip() for k in keys):
            raise ConfigError(f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. train.max_steps=2")
        value = parse_yaml(text, f"override {item!r}")
        layer: Any = value
        for key in reversed(keys):
            layer = {key.strip(): layer}
        over = _lay_over(over, layer)
    return over


def _lay_over(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """:func:`merge_over` that keeps a ``null`` (it must still remove the key from the recipe)."""
    merged = dict(base)
    for key, value in child.items():
        merged[key] = _lay_over(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def field_default(f: dataclasses.Field) -> Any:
    """The value a dataclass field holds when not given (its factory's result, for a factory)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def to_dict(config: Any) -> dict[str, Any]:
    """Every field of the config as plain data: what a run saves (``recipe.json``, the report)."""
    return dataclasses.asdict(config)


def set_fields(config: Any) -> dict[str, Any]:
    """The fields of a config dataclass whose values differ from their defaults, compared as a
    fingerprint hashes them (JSON): ``3`` for a default of ``3.0`` differs, as the two hash differently."""
    values = dataclasses.asdict(config)
    return {f.name: values[f.name] for f in dataclasses.fields(config) if _as_hashed(values[f.name]) != _as_hashed(field_default(f))}


def fingerprint_fields(config: Any) -> dict[str, Any]:
    """The config as a stage fingerprints it: its :func:`set_fields`, less those its class names in
    ``not_fingerprinted`` (a class attribute): keys that change how a stage reports, never what it
    makes (an experiment tracker, how often the loss is logged), so setting one on a finished run
    redoes nothing.

    This is the one rule for what of a config enters a stage's fingerprint
    (:func:`trice.utils.fingerprint.fingerprint`). A field at its default is left out, whether or
    not it was given, so adding a field to a config class (with a default that leaves what the
    stage makes as it is) never changes the fingerprint of a finished stage, which would otherwise
    look changed and be moved aside and rerun. A value other than the default always enters the hash.
    Run directories whose stages were hashed under other rules are rewritten to this one by
    ``trice migrate-run`` (:mod:`trice.pipeline.migrate_run`).
    """
    reporting = getattr(type(config), "not_fingerprinted", frozenset())
    return {k: v for k, v in set_fields(config).items() if k not in reporting}


def _as_hashed(value: Any) -> str:
    """``value`` as a fingerprint serialises it (:func:`trice.utils.fingerprint.fingerprint`)."""
    return json.dumps(value, sort_keys=True, default=str)
