"""User tasks, tools and dataset loaders named in a recipe by import path, the way verl names a
custom reward function: nothing in trice is edited to add a task.

.. code-block:: yaml

    plugins:
      tools: {weather: "weather_plugin:Weather"}             # a factory: called with tools.weather's options
      tasks: {weather: "weather_plugin:WEATHER"}             # a trice.tasks.Task (instruction, tool, metric)
      loaders: {weather: {cities: "weather_plugin:load"}}    # task -> dataset -> loader(data_dir, *, seed, test_fraction)

Each object is imported and registered when the recipe is planned (modules are looked up in the
recipe's directory first, then on the Python path), before the rest of the recipe is checked (so ``data.task: weather`` and ``tools: {weather: {...}}`` are known names); a failed
import or an object of the wrong kind is a ConfigError naming the recipe key. A recipe without
``plugins`` imports nothing and its fingerprints are unchanged.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trice.utils.config import ConfigError
from trice.data.loaders import register_loader
from trice.tasks import Task, register_task
from trice.tools.factories import TOOL_FACTORIES, register_tool_factory

KINDS = ("tools", "tasks", "loaders")  # registered in this order: a task names its tool


def import_object(ref: Any, where: str, search: Sequence[Path] = ()) -> Any:
    """The object ``module:attribute`` (the attribute may be dotted) names; the module is looked up
    in the ``search`` directories first (a recipe's own), then on the Python path."""
    module_name, sep, attribute = ref.partition(":") if isinstance(ref, str) else ("", "", "")
    if not (sep and module_name and attribute):
        raise ConfigError(f"{where}: expected 'module:object', got {ref!r}")
    added = [str(d) for d in search if str(d) not in sys.path]
    sys.path[:0] = added
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as err:  # a plug-in's own import error is the user's to see, whatever its type
        looked = f"; looked in {', '.join(str(d) for d in search)} and the Python path" if search else ""
        raise ConfigError(f"{where}: cannot import {module_name!r} ({type(err).__name__}: {err}){looked}") from None
    finally:
        for entry in added:  # the module stays imported; the path is the user's again
            sys.path.remove(entry)
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{where}: {module_name!r} has no {attribute!r}")
        obj = getattr(obj, part)
    return obj


def _mapping(value: Any, where: str, of: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {of}, got {value!r}")
    return value


def _register(where: str, register: Callable[..., None], *args: Any) -> None:
    """``register(*args)``; its ValueError or TypeError becomes a ConfigError at ``where``."""
    try:
        register(*args)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None


def load_plugins(spec: Any, where: str, search: Sequence[Path] = ()) -> None:
    """Import and register every object ``spec`` (a recipe's ``plugins`` value) names; ``where``
    locates errors (``recipe.yaml: plugins``), ``search``: directories to import from first."""
    if spec is None:
        return
    spec = _mapping(spec, where, f"kinds ({', '.join(KINDS)})")
    unknown = sorted(set(spec) - set(KINDS))
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known keys: {', '.join(KINDS)})")
    for name, ref in _mapping(spec.get("tools", {}), f"{where}: tools", "tool name: 'module:factory'").items():
        factory = import_object(ref, f"{where}: tools: {name}", search)
        if not callable(factory):
            raise ConfigError(f"{where}: tools: {name}: {ref} is not callable (a tool factory takes the tool's options)")
        _register(f"{where}: tools: {name}", register_tool_factory, name, factory)
    for name, ref in _mapping(spec.get("tasks", {}), f"{where}: tasks", "task name: 'module:Task'").items():
        task = import_object(ref, f"{where}: tasks: {name}", search)
        if not isinstance(task, Task) or task.name != name:
            raise ConfigError(f"{where}: tasks: {name}: {ref} is not a trice.tasks.Task named {name!r}")
        if task.tool not in TOOL_FACTORIES:
            raise ConfigError(f"{where}: tasks: {name}: its tool {task.tool!r} is no known tool (known: {', '.join(sorted(TOOL_FACTORIES))})")
        _register(f"{where}: tasks: {name}", register_task, task)
    for task_name, datasets in _mapping(spec.get("loaders", {}), f"{where}: loaders", "task: {dataset: 'module:loader'}").items():
        for dataset, ref in _mapping(datasets, f"{where}: loaders: {task_name}", "dataset: 'module:loader'").items():
            loader = import_object(ref, f"{where}: loaders: {task_name}: {dataset}", search)
            _register(f"{where}: loaders: {task_name}: {dataset}", register_loader, task_name, dataset, loader)
