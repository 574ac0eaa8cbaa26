"""Attacks on what a long-running process remembers of the store (decision 0007).

The service keeps the authenticated index and manifests, the unwrapped data keys and the
plate filters of the files it read. Each attack warms those caches through the same store
object, then swaps, replays, alters or deletes a file behind its back (putting the old
timestamps back where it can), and checks that the next read refuses, exactly as a cold
process would.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from alpr_workbench.errors import StoreError
from alpr_workbench.store import ReadStore, Store
from conftest import PASSPHRASE, make_reads

DAY1, DAY2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)


def _warm(store: Store) -> int:
    rows = 0
    for _ in range(2):
        rows = store.reads.query().height
        plate = store.reads.query(columns=["plate"])["plate"][0]
        store.reads.query(plates=[plate])
    return rows


def _put_back(path: Path, data: bytes) -> None:
    """Overwrite ``path`` in place (same inode) and restore its timestamps."""
    before = path.stat()
    with path.open("r+b") as fh:
        fh.write(data)
        fh.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.fixture
def warm(store: Store) -> tuple[Store, bytes, bytes]:
    """A store read twice (caches warm), with the older bytes of DAY2's manifest and index."""
    store.reads.ingest(make_reads(600, days=3))
    old_manifest = (store.reads.partition(DAY2).root / "_manifest.json").read_bytes()
    old_index = (store.home / "store" / "_index.json").read_bytes()
    store.reads.ingest(make_reads(200, days=3, seed=5, prefix="late"))
    _warm(store)
    return store, old_manifest, old_index


def test_an_older_manifest_put_back_in_place_is_refused_with_warm_caches(warm):
    store, old_manifest, _ = warm
    _put_back(store.reads.partition(DAY2).root / "_manifest.json", old_manifest)
    with pytest.raises(StoreError, match="older copy|generation"):
        store.reads.query()
    assert store.verify()


def test_an_older_index_put_back_in_place_is_refused_with_warm_caches(warm):
    store, _, old_index = warm
    _put_back(store.home / "store" / "_index.json", old_index)
    with pytest.raises(StoreError, match="older copy|witnessed"):
        store.reads.query()


def test_swapped_day_manifests_are_refused_with_warm_caches(warm):
    store, _, _ = warm
    one = store.reads.partition(DAY1).root / "_manifest.json"
    two = store.reads.partition(DAY2).root / "_manifest.json"
    a, b = one.read_bytes(), two.read_bytes()
    one.write_bytes(b)
    two.write_bytes(a)
    with pytest.raises(StoreError, match="moved or swapped"):
        store.reads.query()


def test_a_manifest_altered_in_place_with_the_same_size_is_refused_with_warm_caches(warm):
    store, _, _ = warm
    path = store.reads.partition(DAY1).root / "_manifest.json"
    data = bytearray(path.read_bytes())
    at = data.index(b'"rows": ') + len(b'"rows": ')
    data[at] = ord("1") if data[at] != ord("1") else ord("2")  # same length, new row count
    _put_back(path, bytes(data))
    with pytest.raises(StoreError, match="does not authenticate"):
        store.reads.query()


def test_a_deleted_partition_is_refused_with_warm_caches(warm):
    store, _, _ = warm
    shutil.rmtree(store.reads.partition(DAY1).root)
    with pytest.raises(StoreError, match="missing|deleted"):
        store.reads.query()


def test_a_swapped_data_file_does_not_decrypt_with_cached_keys(warm):
    store, _, _ = warm
    one = store.reads.partition(DAY1).files()[0]
    two = store.reads.partition(DAY2).files()[0]
    shutil.copyfile(two, one)  # another day's file under this file's name
    with pytest.raises(StoreError):
        store.reads.query()


def test_another_key_store_gets_nothing_from_a_warm_cache(warm, tmp_path):
    store, _, _ = warm
    stranger = Store.create(tmp_path / "other", passphrase=PASSPHRASE)
    with pytest.raises(StoreError, match="does not authenticate"):
        ReadStore(store.reads.root, stranger.keystore).query()
