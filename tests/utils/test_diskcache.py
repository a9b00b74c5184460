"""The shared on-disk store: canonical keys, atomic entry files."""

from __future__ import annotations

from pathlib import Path

from trice.utils.diskcache import DiskCache, cache_key


def test_disk_cache_keys_are_canonical_and_entries_atomic_files(tmp_path: Path) -> None:
    store = DiskCache(tmp_path)
    assert cache_key({"a": 1, "b": "é"}) == cache_key({"b": "é", "a": 1})
    assert store.get({"a": 1}) is None
    store.put({"a": 1}, "one")
    assert store.get({"a": 1}) == "one" and store.get({"a": 2}) is None
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{cache_key({'a': 1})}.json"]  # no temp files left


def test_an_entry_is_served_only_for_the_request_it_stored(tmp_path: Path) -> None:
    store = DiskCache(tmp_path)
    store.put({"argument": "2+2"}, "4")
    store.path({"argument": "3+3"}).parent.mkdir(parents=True, exist_ok=True)
    store.path({"argument": "2+2"}).rename(store.path({"argument": "3+3"}))  # a file under another request's key
    assert store.get({"argument": "3+3"}) is None
    store.put({"argument": "3+3"}, "6")
    assert store.get({"argument": "3+3"}) == "6"
