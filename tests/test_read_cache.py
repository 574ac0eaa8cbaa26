"""The service's cache of decrypted day files (decision 0009): same rows, bounded, forgetful."""

import datetime as dt
from collections.abc import Iterator

import polars as pl
import pytest

from alpr_workbench.store import READ_CACHE, ReadCache, Store
from alpr_workbench.store._readcache import CachedFile
from conftest import make_reads


@pytest.fixture
def budget() -> Iterator[None]:
    """Restore the process's cache budget (and empty it) after a test changes it."""
    before = READ_CACHE.budget
    yield
    READ_CACHE.set_budget(0)
    READ_CACHE.set_budget(before)


def _keys_under(store: Store, folder: str) -> list[tuple[str, int, int]]:
    root = str(store.home / "store" / "reads" / folder)
    return [k for k in list(READ_CACHE._frames) if k[0].startswith(root)]


def _queries(store: Store, plates: list[str]) -> list[pl.DataFrame]:
    return [
        store.reads.query(plates=plates).sort("read_id"),
        store.reads.query(plates=plates[:1], start=dt.date(2026, 10, 2)).sort("read_id"),
        store.reads.query(where=pl.col("camera_id") == "cam-03").sort("read_id"),
        store.reads.query(columns=["read_id", "plate"]).sort("read_id"),
        store.reads.scan(plates=plates).collect().sort("read_id"),
    ]


def test_cached_and_disk_reads_are_the_same_rows(store, budget):
    batch = make_reads(3000, days=3, seed=7)
    store.reads.ingest(batch)
    plates = batch["plate"].sample(25, seed=1).to_list() + ["NOSUCH1"]
    READ_CACHE.set_budget(0)
    from_disk = _queries(store, plates)
    assert not _keys_under(store, "")
    READ_CACHE.set_budget(1 << 30)
    store.reads.query()  # fills the cache
    assert len(_keys_under(store, "")) == 3
    from_memory = _queries(store, plates)
    for disk, memory in zip(from_disk, from_memory, strict=True):
        assert memory.equals(disk)
    expected = batch.filter(pl.col("plate").is_in(plates)).height
    assert from_memory[0].height == expected > 0


def test_held_copies_are_read_once_from_the_cache(store, budget):
    batch = make_reads(600, days=2, seed=3)
    store.reads.ingest(batch)
    held = batch.filter(pl.col("captured_at").dt.date() == dt.date(2026, 10, 1))
    store.reads.place_hold("case-1", held["read_id"])
    store.reads.purge(as_of=dt.date(2026, 10, 5), retention_days=3)  # day 1 gone, held copy kept
    plate = held["plate"][0]
    rows = store.reads.query(plates=[plate])
    assert rows.height == batch.filter(pl.col("plate") == plate).height
    assert rows["read_id"].n_unique() == rows.height


def test_a_purge_forgets_the_day_in_memory(store, budget):
    store.reads.ingest(make_reads(900, days=3, seed=5))
    store.reads.query()
    assert _keys_under(store, "day=2026-10-01")
    report = store.reads.purge(as_of=dt.date(2026, 10, 5), retention_days=3)
    assert report.days_purged == (dt.date(2026, 10, 1),)
    assert not _keys_under(store, "day=2026-10-01")
    assert _keys_under(store, "day=2026-10-02")  # the kept days stay cached
    assert store.reads.query(end=dt.date(2026, 10, 1)).height == 0


def test_a_fill_that_raced_a_purge_is_not_kept():
    cache = ReadCache(1 << 20)
    frame = pl.DataFrame({"plate": ["A1", "B2"], "n": [1, 2]})
    generation = cache.generation
    cache.forget("/somewhere/day=2026-10-01/")  # a purge between decrypting and keeping
    cache.put(("/somewhere/day=2026-10-01/part-1.parquet", 10, 1), CachedFile.of(frame, "plate"),
              since=generation)
    assert cache.used == 0
    cache.put(("/x/part-2.parquet", 10, 1), CachedFile.of(frame, "plate"),
              since=cache.generation)
    assert cache.used > 0


def test_the_budget_evicts_the_least_recently_used():
    frame = pl.DataFrame({"plate": [f"P{i:05d}" for i in range(1000)]})
    size = CachedFile.of(frame, "plate").size
    cache = ReadCache(size * 2 + size // 2)
    for name in ("a", "b"):
        cache.put((name, 1, 1), CachedFile.of(frame, "plate"), since=cache.generation)
    assert cache.get(("a", 1, 1)) is not None  # a is now the most recently used
    cache.put(("c", 1, 1), CachedFile.of(frame, "plate"), since=cache.generation)
    assert ("b", 1, 1) not in cache and ("a", 1, 1) in cache and ("c", 1, 1) in cache
    assert cache.used <= cache.budget
    cache.set_budget(0)
    assert cache.used == 0 and ("a", 1, 1) not in cache
    with pytest.raises(ValueError, match="0 or more bytes"):
        cache.set_budget(-1)


def test_binary_search_only_on_a_sorted_short_ascii_index():
    unsorted = pl.DataFrame({"plate": ["B2", "A1", "B2"], "n": [1, 2, 3]})
    entry = CachedFile.of(unsorted, "plate")
    assert entry.sorted_keys is None
    assert entry.rows_of(["B2"]).equals(unsorted)  # everything: the caller's filter decides
    ordered = CachedFile.of(unsorted.sort("plate"), "plate")
    assert ordered.sorted_keys is not None
    assert ordered.rows_of(["B2", "ZZ9"])["n"].sort().to_list() == [1, 3]
    assert ordered.rows_of(["TOOLONG99"]).height == 0
    too_long = CachedFile.of(pl.DataFrame({"plate": ["A", "ABCDEFGHIJ"]}), "plate")
    assert too_long.sorted_keys is None


def test_warm_fills_the_newest_days_first(store, budget):
    store.reads.ingest(make_reads(900, days=3, seed=9))
    READ_CACHE.set_budget(0)
    one_day = CachedFile.of(store.reads.partition(dt.date(2026, 10, 3)).read(), "plate").size
    READ_CACHE.set_budget(int(one_day * 1.5))
    assert store.reads.warm() == 1
    assert _keys_under(store, "day=2026-10-03") and not _keys_under(store, "day=2026-10-01")
