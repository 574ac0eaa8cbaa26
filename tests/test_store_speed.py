"""Selective reads skip work without changing a single row (decision 0007).

Files are sorted by plate and cut into row groups of ``ROW_GROUP_ROWS`` rows, so the plate
statistics in the encrypted footer let the reader skip every row group that cannot hold a
plate; a sealed Bloom filter per file skips whole files. These tests check the layout on real
encrypted files, and that a plate lookup returns exactly the rows a full scan filtered by
hand returns, for random plates (present, absent, frequent) and random extra filters.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pqe
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpr_workbench.store import Store
from alpr_workbench.store._kms import WorkbenchKmsClient
from alpr_workbench.store._partition import ROW_GROUP_ROWS
from conftest import PASSPHRASE, make_reads

DAYS = 2
HOT = [f"7HOT{i:03d}" for i in range(12)]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, pl.DataFrame]:
    """A store whose day files span several row groups, with frequent plates among them."""
    n = ROW_GROUP_ROWS * 5
    batch = make_reads(n, days=DAYS, seed=7)
    hot = pl.Series([HOT[i % len(HOT)] for i in range(n)])
    batch = batch.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(hot).otherwise(pl.col("plate")).alias("plate")
    )
    store = Store.create(tmp_path_factory.mktemp("speed") / "home", passphrase=PASSPHRASE)
    store.reads.ingest(batch.slice(0, n - 500))
    store.reads.ingest(batch.slice(n - 500))  # a second file in some days
    return store, store.reads.query()


def _metadata(store: Store, path: Path) -> pq.FileMetaData:
    factory = pqe.CryptoFactory(lambda _config: WorkbenchKmsClient(store.keystore))
    props = factory.file_decryption_properties(
        pqe.KmsConnectionConfig(), pqe.DecryptionConfiguration(), str(path), pafs.LocalFileSystem()
    )
    return pq.ParquetFile(path, decryption_properties=props).metadata


def test_day_files_are_sorted_by_plate_in_row_groups_with_ordered_plate_ranges(big):
    store, _ = big
    checked = 0
    for day in store.reads.days():
        for path in store.reads.partition(day).files():
            meta = _metadata(store, path)
            column = meta.schema.names.index("plate")
            ranges = []
            for i in range(meta.num_row_groups):
                group = meta.row_group(i)
                assert group.num_rows <= ROW_GROUP_ROWS
                stats = group.column(column).statistics
                assert stats is not None and stats.has_min_max, "plate statistics are missing"
                ranges.append((stats.min, stats.max))
            # Sorted rows give row groups whose plate ranges follow one another, so an exact
            # plate falls in one or two of them and the reader skips the rest.
            assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
            checked += meta.num_row_groups > 1
    assert checked >= DAYS, "the day files should span several row groups"


def _by_hand(full: pl.DataFrame, plates: list[str], where: pl.Expr) -> pl.DataFrame:
    return full.filter(pl.col("plate").is_in(plates) & where).sort("read_id")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_plate_lookup_returns_exactly_the_rows_of_a_full_scan(big, data):
    store, full = big
    stored = full["plate"].unique().sort().to_list()
    one_plate = st.one_of(
        st.sampled_from(stored),
        st.sampled_from(HOT),
        st.text(alphabet="0123456789ABCDEFGHJKLMNPRSTUVWXYZ", min_size=1, max_size=8),
    )
    plates = data.draw(st.lists(one_plate, min_size=1, max_size=4), label="plates")
    cameras = data.draw(
        st.lists(st.sampled_from([f"cam-{i:02d}" for i in range(10)]), max_size=4),
        label="cameras",
    )
    start = dt.date(2026, 10, 1) + dt.timedelta(days=data.draw(st.integers(0, DAYS - 1)))
    where = pl.col("camera_id").is_in(cameras) if cameras else pl.lit(True)
    where &= pl.col("captured_at").dt.date() >= start

    got = store.reads.query(start, None, where=where, plates=plates).sort("read_id")
    want = _by_hand(full, plates, where)
    assert got.equals(want)
    lazy = store.reads.scan(start, None, plates=plates).filter(where).collect()
    assert lazy.sort("read_id").equals(want)


def test_a_frequent_plate_is_found_in_every_row_group_it_spans(big):
    store, full = big
    for plate in HOT[:3]:
        got = store.reads.query(plates=[plate])
        assert got.height == (full["plate"] == plate).sum() > ROW_GROUP_ROWS // 100
        assert set(got["plate"]) == {plate}
