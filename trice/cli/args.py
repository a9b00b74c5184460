"""Command-line flags from a config dataclass, with the standard library only.

The flags are the ones ``transformers.HfArgumentParser`` made for these dataclasses (``--name`` and
``--name-with-dashes``, ``--flag [BOOL]`` plus ``--no_flag`` for a flag that defaults to true,
``nargs='+'`` for lists, defaults shown in ``--help``), so every command line and ``--help`` text
stays as it was; building them without transformers lets ``trice evaluate`` and ``trice score``
start without importing torch or transformers.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

import yaml

_TRUE = ("yes", "true", "t", "y", "1")
_FALSE = ("no", "false", "f", "n", "0")


def string_to_bool(value: str | bool) -> bool:
    """A flag's boolean value, spelled as HfArgumentParser accepts it."""
    if isinstance(value, bool):
        return value
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"Truthy value expected: got {value} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive).")


def yaml_mapping(value: str) -> dict:
    """A mapping-typed flag's value, written as a YAML/JSON mapping (``'{QA: {k: 2}}'``)."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise argparse.ArgumentTypeError(f"expected a YAML mapping, got {value!r} ({err})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"expected a YAML mapping, got {value!r}")
    return parsed


def _value_type(hint: Any) -> Any:
    """The argparse ``type`` of one value: mappings are parsed as YAML, everything else by its class."""
    origin = typing.get_origin(hint) or hint
    return yaml_mapping if origin is dict else hint


def _unwrap_optional(hint: Any) -> Any:
    """``X | None`` -> ``X``: the flag parses an ``X``; None is only ever the default."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _add_field(parser: argparse.ArgumentParser, f: dataclasses.Field, hint: Any) -> None:
    names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
    kwargs: dict[str, Any] = dict(f.metadata)
    default = _default(f)
    hint = _unwrap_optional(hint)
    if hint is bool:
        kwargs.update(type=string_to_bool, default=False if default is dataclasses.MISSING else default, nargs="?", const=True)
    elif typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint) or (str,)
        kwargs.update(type=_value_type(item), nargs="+")
    else:
        kwargs["type"] = _value_type(hint)
    if "default" not in kwargs:
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
    parser.add_argument(*names, **kwargs)
    if default is True and hint is bool:
        no = dict(f.metadata) | {"default": False}
        parser.add_argument(f"--no_{f.name}", f"--no-{f.name.replace('_', '-')}", action="store_false", dest=f.name, **no)


def dataclass_parser(cls: type, **kwargs: Any) -> argparse.ArgumentParser:
    """An argument parser with one flag per field of ``cls`` (help from ``metadata["help"]``)."""
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kwargs)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.init:
            _add_field(parser, f, hints[f.name])
    return parser
