"""The table of dataset loaders: every dataset becomes a list of :class:`trice.core.schema.Example`.

:data:`LOADERS` maps each task to its datasets' loaders; every loader takes
``(data_dir, *, seed, test_fraction)`` and returns a :class:`trice.core.schema.LoadedDataset`
(datasets with an official split ignore ``seed`` and ``test_fraction``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from trice.data.lama import LAMA_LOADERS
from trice.data.math import MATH_LOADERS
from trice.data.mlqa import MLQA_LOADERS
from trice.data.qa import QA_LOADERS
from trice.core.schema import LoadedDataset

Loader = Callable[..., LoadedDataset]

LOADERS: dict[str, Mapping[str, Loader]] = {"math": MATH_LOADERS, "qa": QA_LOADERS, "lama": LAMA_LOADERS, "mlqa": MLQA_LOADERS}


def register_loader(task: str, dataset: str, loader: Loader) -> None:
    """Make ``dataset`` loadable under ``task`` (``data: {task: T, datasets: [D]}``), e.g. a user's
    task's data. Registering the same loader again is a no-op; another under a taken name fails."""
    if not callable(loader):
        raise TypeError(f"loader for {dataset!r} is not callable: {loader!r}")
    known = LOADERS.get(task, {})
    if known.get(dataset, loader) is not loader:
        raise ValueError(f"task {task!r} already has a loader for dataset {dataset!r}")
    LOADERS[task] = {**known, dataset: loader}  # a new mapping: the built-in tasks' tables stay as shipped


def loaders(task: str) -> Mapping[str, Loader]:
    """Dataset name -> loader for ``task``; ValueError naming the known tasks otherwise."""
    if task not in LOADERS:
        raise ValueError(f"unknown task {task!r}; tasks with datasets: {', '.join(LOADERS)}")
    return LOADERS[task]
