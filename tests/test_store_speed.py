"""Selective reads skip work without changing a single row (decision 0007).

Files are sorted by plate and cut into row groups of ``ROW_GROUP_ROWS`` rows, so the plate
statistics in the encrypted footer let the reader skip every row group that cannot hold a
plate; a sealed Bloom filter per file skips whole files. These tests check the layout on real
encrypted files, and that a plate lookup returns exactly the rows a full scan filtered by
hand returns, for random plates (present, absent, frequent) and random extra filters.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pqe
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpr_workbench.errors import StoreError
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


# -- small tables: a write to one table does not make the others decrypt again ------------


def _users(*ids: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": list(ids),
            "full_name": [i.upper() for i in ids],
            "role": "analyst",
            "organization": "Burbank Police Department",
            "organization_type": "ca_local_agency",
            "job_title": "Crime Analyst",
            "is_active": True,
        }
    )


def _cases(*numbers: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "case_number": list(numbers),
            "title": "Stolen Civic",
            "offense_type": "motor_vehicle_theft",
            "status": "open",
            "opened_at": dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        }
    )


@pytest.fixture
def two_tables(store: Store) -> Store:
    store.tables.write("users", _users("a.analyst", "b.analyst"))
    store.tables.write("cases", _cases("BPD-2026-000001"))
    return store


def test_writing_one_table_does_not_decrypt_another_again(two_tables):
    store = two_tables
    index = store.home / "store" / "_index.json"
    users = store.tables.read("users")
    before = index.stat()
    store.tables.append("cases", _cases("BPD-2026-000002"))
    after = index.stat()
    assert (before.st_ino, before.st_mtime_ns) != (after.st_ino, after.st_mtime_ns)
    # The index changed, the users' manifest did not: the very frame comes back.
    assert store.tables.read("users") is users
    assert store.tables.read("cases")["case_number"].to_list() == [
        "BPD-2026-000001", "BPD-2026-000002",
    ]


def test_a_changed_table_is_seen_at_once_in_this_process_and_another(two_tables):
    store = two_tables
    other = Store.open(store.home, passphrase=PASSPHRASE)
    assert other.tables.read("users").height == 2
    assert store.tables.read("users").height == 2
    store.tables.append("users", _users("c.analyst"))
    assert sorted(store.tables.read("users")["user_id"]) == ["a.analyst", "b.analyst", "c.analyst"]
    assert other.tables.read("users").height == 3
    other.tables.write("users", _users("d.analyst"))
    assert store.tables.read("users")["user_id"].to_list() == ["d.analyst"]


def _put_back(path: Path, data: bytes) -> None:
    """Overwrite ``path`` in place (same inode), keeping its timestamps."""
    before = path.stat()
    with path.open("r+b") as fh:
        fh.write(data)
        fh.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_an_older_table_manifest_put_back_is_refused_with_a_warm_cache(two_tables):
    store = two_tables
    manifest = store.tables.root / "users" / "_manifest.json"
    old = manifest.read_bytes()
    store.tables.append("users", _users("c.analyst"))
    store.tables.read("users")
    _put_back(manifest, old)
    store.tables.append("cases", _cases("BPD-2026-000002"))  # the index changes too
    with pytest.raises(StoreError, match="users.*(older copy|generation)"):
        store.tables.read("users")


def test_a_table_manifest_altered_in_place_is_refused_once_the_index_changes(two_tables):
    store = two_tables
    manifest = store.tables.root / "users" / "_manifest.json"
    store.tables.read("users")
    raw = manifest.read_bytes()
    _put_back(manifest, raw.replace(b'"rows": 2', b'"rows": 3'))
    assert manifest.read_bytes() != raw
    store.tables.append("cases", _cases("BPD-2026-000002"))
    with pytest.raises(StoreError, match="users.*authenticate"):
        store.tables.read("users")


def test_a_deleted_table_or_data_file_is_refused_with_a_warm_cache(two_tables):
    store = two_tables
    store.tables.read("users")
    store.tables.read("cases")
    (data,) = (store.tables.root / "cases").glob("part-*.parquet")
    data.unlink()
    shutil.rmtree(store.tables.root / "users")
    store.tables.write("cameras", pl.DataFrame(schema=store.tables.read("cameras").schema))
    with pytest.raises(StoreError, match="users.*deleted"):
        store.tables.read("users")
    with pytest.raises(StoreError, match="cases.*missing"):
        store.tables.read("cases")
