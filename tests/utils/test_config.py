"""Typed config loading: keys and types checked, YAML errors located, layered YAML files merged."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from trice.utils.config import ConfigError, build_config, load_layered_yaml, load_yaml, merge_over


@dataclass
class _Cfg:
    name: str = field(default="x", metadata={"help": "a name"})
    steps: int = field(default=1, metadata={"help": "steps"})
    rate: float = field(default=0.1, metadata={"help": "rate"})
    tags: list[str] = field(default_factory=list, metadata={"help": "tags"})
    path: str | None = field(default=None, metadata={"help": "optional"})


def test_build_config_checks_keys_and_types() -> None:
    cfg = build_config(_Cfg, {"steps": 3, "rate": 1, "tags": ["a"], "path": None}, "r.yaml")
    assert cfg.steps == 3 and cfg.rate == 1 and cfg.tags == ["a"]
    with pytest.raises(ConfigError, match="r.yaml: unknown key 'stepz'"):
        build_config(_Cfg, {"stepz": 3}, "r.yaml")
    with pytest.raises(ConfigError, match="r.yaml: key 'steps': expected int"):
        build_config(_Cfg, {"steps": "3"}, "r.yaml")
    with pytest.raises(ConfigError, match="key 'tags'"):
        build_config(_Cfg, {"tags": [1]}, "r.yaml")
    with pytest.raises(ConfigError, match="key 'steps'"):
        build_config(_Cfg, {"steps": True}, "r.yaml")


def test_load_yaml_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_yaml(bad)


def test_merge_over_merges_mappings_replaces_the_rest_and_null_removes() -> None:
    base = {"a": 1, "s": {"x": 1, "y": [1, 2], "t": {"k": 1, "j": 2}}, "l": [1], "gone": {"z": 1}}
    child = {"s": {"y": [3], "t": {"j": None, "m": 3}}, "l": [2, 3], "gone": None, "new": 4}
    assert merge_over(base, child) == {"a": 1, "s": {"x": 1, "y": [3], "t": {"k": 1, "m": 3}}, "l": [2, 3], "new": 4}
    assert base["s"]["t"] == {"k": 1, "j": 2}  # the base is not changed in place


def test_load_layered_yaml_chains_bases_relative_to_each_file(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("seed: 0\ndata: {task: math, n_train: 10}\ntools: {QA: {k: 2}, WikiSearch: {}}\n")
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\ndata: {n_train: 20}\n")
    (tmp_path / "sub" / "leaf.yaml").write_text("base: mid.yaml\nrun_dir: r\ntools: {QA: null}\n")
    assert load_layered_yaml(tmp_path / "sub" / "leaf.yaml") == {
        "seed": 0,
        "data": {"task": "math", "n_train": 20},
        "tools": {"WikiSearch": {}},
        "run_dir": "r",
    }


def test_load_layered_yaml_errors_name_the_file_and_key(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"b.yaml: base: the chain of bases loops"):
        load_layered_yaml(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"c.yaml: base: no such file .*missing.yaml"):
        load_layered_yaml(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: [x]\n")
    with pytest.raises(ConfigError, match=r"d.yaml: base: expected the path of a YAML file"):
        load_layered_yaml(tmp_path / "d.yaml")
