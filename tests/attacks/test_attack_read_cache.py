"""Crypto-shredding reaches the service's memory: a purged day or a released hold leaves no
decrypted copy in the read cache (decision 0009), even one filled while the purge ran."""

import datetime as dt

import polars as pl

from alpr_workbench.store import READ_CACHE, Store
from conftest import make_reads


def _cached_under(store: Store, folder: str) -> int:
    parent = store.reads.holds_root if folder.startswith("hold=") else store.reads.days_root
    root = str(parent / folder)
    return sum(1 for key in list(READ_CACHE._frames) if key[0].startswith(root))


def test_a_purged_day_leaves_no_decrypted_copy_in_memory(store):
    store.reads.ingest(make_reads(900, days=3, seed=11))
    store.reads.query()  # every day decrypted into the cache, as the service's searches do
    assert _cached_under(store, "day=2026-10-01") == 1
    store.reads.purge(as_of=dt.date(2026, 10, 5), retention_days=3)
    assert _cached_under(store, "day=2026-10-01") == 0
    assert store.reads.query(end=dt.date(2026, 10, 1)).height == 0


def test_a_released_hold_leaves_no_decrypted_copy_in_memory(store):
    batch = make_reads(600, days=2, seed=12)
    store.reads.ingest(batch)
    store.reads.place_hold("case-9", batch["read_id"][:50])
    store.reads.purge(as_of=dt.date(2026, 10, 6), retention_days=3)  # only the hold remains
    plate = batch["plate"][0]
    assert store.reads.query(plates=[plate]).height >= 1  # read through the cache
    assert _cached_under(store, "hold=case-9") == 1
    store.reads.release_hold("case-9")
    assert _cached_under(store, "hold=case-9") == 0
    assert store.reads.query(plates=[plate]).height == 0
    assert store.reads.query().filter(pl.col("read_id").is_in(batch["read_id"][:50])).is_empty()
