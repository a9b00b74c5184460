"""The data stage: load a task's datasets (or several tasks' for TRICE-MIX), or your own questions
from a file or a hub dataset with a column mapping (:mod:`trice.data.mapped`), split, subsample, write
train and test example files."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from trice.data.loaders import LOADERS, loaders
from trice.data.mapped import FIELDS as MAPPED_FIELDS
from trice.data.mapped import SourceUnavailable, is_file_source, load_mapped, source_name
from trice.core.paths import resolve_data_dir
from trice.core.schema import Example, LoadedDataset, describe, sample, save_examples
from trice.utils.io import write_json

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Which questions to train and test on (the ``trice data`` flags)."""

    output_dir: str = field(default="", metadata={"help": "Directory for train.jsonl, test.jsonl and splits.json."})
    task: str = field(default="math", metadata={"help": "Task whose datasets to load: math, qa, lama or mlqa."})
    data_dir: str | None = field(default=None, metadata={"help": "Data directory laid out like shared/data (else $TRICE_DATA_DIR, else ../shared/data)."})
    datasets: list[str] = field(
        default_factory=lambda: ["asdiv", "svamp", "gsm8k"],
        metadata={"help": "Datasets of the task (math: asdiv svamp gsm8k; qa: webq nq triviaqa; lama: trex; mlqa: xquad-zh xquad-vi xquad-de ...)."},
    )
    n_train: int | None = field(default=None, metadata={"help": "Training questions per dataset (all when unset)."})
    n_test: int | None = field(default=None, metadata={"help": "Test questions per dataset (all when unset)."})
    test_fraction: float = field(default=0.3, metadata={"help": "Test share for datasets without an official split (SVAMP, ASDiv, T-REx, XQuAD)."})
    seed: int = field(default=0, metadata={"help": "Seed of the split and of the subsampling."})
    tasks: dict[str, list[str]] = field(
        default_factory=dict,
        metadata={
            "help": "Several tasks at once (TRICE-MIX), YAML only: {task: [datasets]}, e.g. {math: [gsm8k], lama: [trex]}; "
            "replaces task and datasets, which must then be left unset."
        },
    )
    train: str = field(
        default="",
        metadata={
            "help": "Your own training questions: a .jsonl, .json (array) or .csv file (in a recipe, relative to the recipe's "
            "directory) or a Hugging Face hub dataset (org/name, its train split; org/name:split for another), read through "
            "columns; every row is of task, in one dataset (datasets' one name, else the source's name)."
        },
    )
    test: str = field(
        default="", metadata={"help": "Your own test questions, as train (a hub dataset: its test split); unset: a seeded test_fraction split of train."}
    )
    columns: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "With train: schema field -> the source's column, for question and answers (required; answers a list or one "
            "value) and id, tool_call (optional); a field not mapped is read from the column of its own name."
        },
    )
    subset: str = field(default="", metadata={"help": "With a hub dataset as train/test: its configuration (subset) name, e.g. main for openai/gsm8k."})

    @property
    def mapped(self) -> bool:
        """Whether the questions come from ``train``/``test`` sources rather than the built-in loaders."""
        return bool(self.train)

    def task_datasets(self) -> dict[str, list[str]]:
        """Task -> its datasets, in the order given: ``tasks``, or ``{task: datasets}``; with ``train``,
        the one dataset the sources make."""
        if self.mapped:
            return {self.task: [self.datasets[0] if self.datasets != DataConfig().datasets else source_name(self.train)]}
        return {t: list(ds) for t, ds in self.tasks.items()} if self.tasks else {self.task: list(self.datasets)}

    def source_files(self) -> list[Path]:
        """The ``train``/``test`` sources that are files (a stage's inputs: their bytes enter its fingerprint)."""
        return [Path(s) for s in (self.train, self.test) if s and is_file_source(s)]

    def loader(self, task: str, dataset: str) -> Any:
        """The function loading ``dataset``'s pools: its registered loader, or the mapped sources'."""
        if not self.mapped:
            return loaders(task)[dataset]
        return lambda data_dir, *, seed, test_fraction: load_mapped(
            self.train, self.test, task=task, dataset=dataset, columns=self.columns, seed=seed, test_fraction=test_fraction, subset=self.subset
        )

    @property
    def all_datasets(self) -> list[str]:
        """Every dataset of every task, in order (the report's columns)."""
        return [ds for datasets in self.task_datasets().values() for ds in datasets]

    @property
    def task_names(self) -> list[str]:
        return list(self.task_datasets())

    def validate(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        for name in ("n_train", "n_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or unset, got {value}")
        if self.mapped or self.test:
            self._validate_mapped()
            return
        defaults = DataConfig()
        if self.tasks and (self.task != defaults.task or self.datasets != defaults.datasets):
            raise ValueError("tasks: give either tasks ({task: [datasets]}) or task and datasets, not both")
        for task, datasets in self.task_datasets().items():
            where = f"tasks: {task}: " if self.tasks else ""
            if task not in LOADERS:
                raise ValueError(f"{where}task: unknown {task!r}; known: {', '.join(LOADERS)}")
            if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) for d in datasets):
                raise ValueError(f"{where}datasets: none given; task {task} has {', '.join(LOADERS[task])}")
            unknown = [d for d in datasets if d not in LOADERS[task]]
            if unknown:
                raise ValueError(f"{where}datasets: unknown {unknown} for task {task}; known: {', '.join(LOADERS[task])}")
        repeated = sorted({d for d in self.all_datasets if self.all_datasets.count(d) > 1})
        if repeated:
            raise ValueError(f"datasets: {repeated} given more than once")

    def _validate_mapped(self) -> None:
        """``train``/``test``/``columns``: what can be said before any record is read."""
        defaults = DataConfig()
        if not self.train:
            raise ValueError("test: needs train (the training questions' source) beside it")
        if self.tasks:
            raise ValueError("tasks: give either tasks or train (your own questions, of one task), not both")
        if len(self.datasets) != 1 and self.datasets != defaults.datasets:
            raise ValueError(f"datasets: with train, at most one name (the rows' dataset), got {self.datasets}")
        unknown = sorted(set(self.columns) - set(MAPPED_FIELDS))
        if unknown:
            raise ValueError(f"columns: unknown field '{unknown[0]}'; map {', '.join(MAPPED_FIELDS)} (task and dataset are data.task and the dataset name)")
        if not all(isinstance(c, str) and c for c in self.columns.values()):
            raise ValueError(f"columns: each field maps to a column name, got {self.columns}")


def load_pools(config: DataConfig) -> tuple[dict[str, Any], Path]:
    """Each dataset's full train and test pools (before subsampling), every task's, and the data directory."""
    data_dir = Path(".") if config.mapped and config.data_dir is None else resolve_data_dir(config.data_dir)
    return {
        ds: config.loader(task, ds)(data_dir, seed=config.seed, test_fraction=config.test_fraction)
        for task, datasets in config.task_datasets().items()
        for ds in datasets
    }, data_dir


def load_split(config: DataConfig) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """(train, test, description of the splits) after per-dataset subsampling; each dataset loads once."""
    loaded, data_dir = load_pools(config)
    train = [e for d in loaded.values() for e in sample(d.train, config.n_train, config.seed)]
    test = [e for d in loaded.values() for e in sample(d.test, config.n_test, config.seed)]
    splits = describe(loaded)
    if config.tasks:  # a mixed run says which task each dataset belongs to
        for task, datasets in config.tasks.items():
            for ds in datasets:
                splits[ds]["task"] = task
    for ds in config.all_datasets:
        splits[ds] |= {"train_used": sum(e.dataset == ds for e in train), "test_used": sum(e.dataset == ds for e in test)}
    return train, test, {"data_dir": str(data_dir), "datasets": splits}


def dev_from_pool(config: DataConfig, n_per_dataset: int) -> list[Example]:
    """``n_per_dataset`` questions per dataset from its *training* pool that the data stage did not
    pick (marked ``split="dev"``): a dev set for choosing stage II checkpoints that no stage trains
    on and that never touches test. Deterministic: the pool's seeded order, after the training picks."""
    loaded, _ = load_pools(config)
    dev: list[Example] = []
    for ds, d in loaded.items():
        used = len(sample(d.train, config.n_train, config.seed))
        rest = sample(d.train, None, config.seed)[used:]
        if len(rest) < n_per_dataset:
            raise ValueError(
                f"dev: {ds} has {len(rest)} training questions beyond the {used} used for training, "
                f"fewer than the {n_per_dataset} asked for; lower n_train or the dev size"
            )
        dev += [replace(e, split="dev") for e in rest[:n_per_dataset]]
    return dev


@cache
def _pool_size(task: str, dataset: str, data_dir: Path, seed: int, test_fraction: float) -> tuple[int, int]:
    """(training pool, test pool) of one dataset, from its own loader so the counts are exactly
    the data stage's. Kept in memory for the process only: a --status or a test suite planning
    several recipes over the same data reads each dataset once (GSM8K's takes seconds)."""
    loaded = loaders(task)[dataset](data_dir, seed=seed, test_fraction=test_fraction)
    if not isinstance(loaded, LoadedDataset):
        raise ValueError(f"the loader of {dataset} returned {type(loaded).__name__}, not a trice.core.schema.LoadedDataset")
    return len(loaded.train), len(loaded.test)


def _mapped_pool_sizes(config: DataConfig, where: str) -> dict[str, tuple[int, int]] | None:
    """The mapped sources' pool sizes, every record read and checked (a bad one is a located
    DataError); None, with a warning, where a hub dataset cannot be loaded now (offline): the data
    stage then names what failed."""
    try:
        loaded, _ = load_pools(config)
    except SourceUnavailable as err:
        log.warning("%s: your data not checked: %s", where, err)
        return None
    return {ds: (len(d.train), len(d.test)) for ds, d in loaded.items()}


def check_pool_sizes(config: DataConfig, dev_size: int | None, where: str) -> None:
    """Raise ValueError when a dataset's pools cannot give what the run asks: ``n_train`` or
    ``n_test`` questions, and ``dev_size`` more training questions beyond the ``n_train`` picks
    (None: the run has no dev stage). A plan calls it, so a recipe that would stop at the dev stage
    after all of stage I stops before anything runs. Without a data directory nothing can be
    counted: it warns and returns, and the data stage then fails naming the missing directory."""
    if config.mapped:
        pools = _mapped_pool_sizes(config, where)
        if pools is None:
            return
    else:
        try:
            data_dir = resolve_data_dir(config.data_dir)
        except FileNotFoundError as err:
            log.warning("%s: pool sizes not checked: %s", where, err)
            return
        pools = {ds: _pool_size(task, ds, data_dir, config.seed, config.test_fraction) for task, datasets in config.task_datasets().items() for ds in datasets}
    for ds, (n_train_pool, n_test_pool) in pools.items():
        for key, asked, pool, split in (("n_train", config.n_train, n_train_pool, "training"), ("n_test", config.n_test, n_test_pool, "test")):
            if asked is not None and asked > pool:
                raise ValueError(f"data.{key} = {asked} > {pool} {split} questions of {ds}")
    if dev_size is None:
        return
    smallest = min(pools, key=lambda ds: pools[ds][0])  # n_train is per dataset: the smallest pool binds
    pool = pools[smallest][0]
    room = f"set data.n_train to at most {pool - dev_size} or lower dev.n_per_dataset" if pool > dev_size else "lower dev.n_per_dataset"
    if config.n_train is None:
        raise ValueError(
            f"data.n_train unset (every training question) leaves none of the {pool} training questions of {smallest} "
            f"for dev.n_per_dataset = {dev_size}; {room}"
        )
    if config.n_train + dev_size > pool:
        raise ValueError(f"data.n_train + dev.n_per_dataset = {config.n_train} + {dev_size} > {pool} training questions of {smallest}; {room}")


def run_data(config: DataConfig) -> dict[str, Any]:
    """``trice data``: write ``train.jsonl``, ``test.jsonl`` and ``splits.json`` to the output directory."""
    train, test, splits = load_split(config)
    out = Path(config.output_dir)
    save_examples(out / "train.jsonl", train)
    save_examples(out / "test.jsonl", test)
    write_json(out / "splits.json", splits)
    return splits
