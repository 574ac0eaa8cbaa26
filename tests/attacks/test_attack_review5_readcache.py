"""Review 5: the read cache's binary search answers every plate text as the disk read does."""

from collections.abc import Iterator

import polars as pl
import pytest

from alpr_workbench.store import READ_CACHE
from conftest import make_reads


@pytest.fixture
def cache_on() -> Iterator[None]:
    """A cache large enough for the test's days; the budget restored (and emptied) after."""
    before = READ_CACHE.budget
    READ_CACHE.set_budget(1 << 30)
    yield
    READ_CACHE.set_budget(0)
    READ_CACHE.set_budget(before)


@pytest.mark.parametrize(
    "odd",
    ["ÉB12", "ab12", "A B12", "AB12345678", "AB\x00", "日本"],
    ids=["non-ascii", "lower", "space", "longer-than-8", "nul", "cjk"],
)
def test_an_odd_plate_text_finds_the_same_rows_in_memory_as_on_disk(store, cache_on, odd):
    batch = make_reads(600, days=2, seed=11)
    store.reads.ingest(batch)
    real = batch["plate"][0]
    plates = [odd, real]
    READ_CACHE.set_budget(0)
    from_disk = store.reads.query(plates=plates).sort("read_id")
    READ_CACHE.set_budget(1 << 30)
    store.reads.query()  # every day file decrypted into memory, its plate column searchable
    # A non-ASCII value used to raise UnicodeEncodeError here (numpy's "S8" conversion),
    # where the same query read from disk found the real plate's rows.
    from_memory = store.reads.query(plates=plates).sort("read_id")
    assert from_memory.equals(from_disk)
    assert from_memory.height == batch.filter(pl.col("plate") == real).height > 0
    assert from_memory["plate"].unique().to_list() == [real]
