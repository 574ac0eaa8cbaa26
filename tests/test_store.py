import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpr_workbench.errors import KeyDestroyedError, SchemaValidationError, StoreError
from alpr_workbench.keys import KeyStore
from alpr_workbench.store import Store
from alpr_workbench.store._kms import key_material_path, read_data_keys
from conftest import PASSPHRASE, make_reads

DAY1, DAY2, DAY3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("read_id")


def _all_files(store: Store) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes()
        for p in sorted(store.home.rglob("*"))
        if p.is_file() and "keys" not in p.parts
    }


def test_round_trip_and_day_partitions(store, reads):
    report = store.reads.ingest(reads)
    assert report.rows_added == reads.height and report.days == (DAY1, DAY2, DAY3)
    assert store.reads.days() == [DAY1, DAY2, DAY3]
    out = store.reads.query()
    from alpr_workbench.schema import validate_frame

    assert _sorted(out).equals(_sorted(validate_frame("reads", reads)))
    folders = sorted(p.name for p in (store.home / "store" / "reads").iterdir() if p.is_dir())
    assert folders == ["day=2026-10-01", "day=2026-10-02", "day=2026-10-03"]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(min_value=1, max_value=300), seed=st.integers(0, 10_000), days=st.integers(1, 4)
)
def test_round_trip_property(tmp_path_factory, n, seed, days):
    store = Store.create(tmp_path_factory.mktemp("h") / "home", passphrase=PASSPHRASE)
    batch = make_reads(n, seed=seed, days=days)
    store.reads.ingest(batch)
    out = store.reads.query()
    assert out.height == n
    assert (
        _sorted(out)
        .select(batch.columns)
        .equals(_sorted(batch).cast(out.select(batch.columns).schema))
    )


def test_ingest_is_idempotent_by_read_id(store, reads):
    store.reads.ingest(reads)
    again = store.reads.ingest(reads)
    assert again.rows_added == 0 and again.rows_already_stored == reads.height
    overlap = pl.concat([reads.slice(0, 100), make_reads(50, prefix="new", seed=9)])
    report = store.reads.ingest(overlap)
    assert report.rows_added == 50
    out = store.reads.query(columns=["read_id"])
    assert out.height == reads.height + 50 and out["read_id"].n_unique() == out.height


def test_files_are_sorted_by_plate(store, reads):
    store.reads.ingest(reads)
    for path in store.reads.partition(DAY2).files():
        footer, columns = read_data_keys(store.keystore, path)
        keys = store.reads.partition(DAY2)._leaf_paths(columns)
        plates = pl.read_parquet(
            path,
            decryption=pl.ParquetDecryptionProperties(footer_key=footer, column_keys=keys),
            columns=["plate"],
        )["plate"]
        assert plates.is_sorted()


def test_plate_lookup_and_wildcards(store, reads):
    store.reads.ingest(reads)
    plate = reads["plate"][17]
    hit = store.reads.query(where=pl.col("plate") == plate)
    assert set(hit["plate"]) == {plate} and hit.height == (reads["plate"] == plate).sum()


def test_files_are_encrypted_with_256_bit_keys_and_an_encrypted_footer(store, reads):
    store.reads.ingest(reads)
    path = store.reads.partition(DAY1).files()[0]
    raw = path.read_bytes()
    assert raw[-4:] == b"PARE"  # encrypted-footer Parquet magic
    for plate in reads["plate"].head(50):
        assert plate.encode() not in raw
    with pytest.raises(Exception, match="(?i)encrypt"):
        pq.ParquetFile(path)
    footer, columns = read_data_keys(store.keystore, path)
    assert len(footer) == 32 and all(len(k) == 32 for k in columns.values())
    material = json.loads(key_material_path(path).read_text())
    ids = {json.loads(v)["masterKeyID"] for v in material.values()}
    f = path.stem  # each key is bound to its partition and its file
    assert f"reads/2026-10-01/pii#{f}#plate" in ids and f"reads/2026-10-01/pii#{f}#lat" in ids
    assert f"reads/2026-10-01/ops#{f}#camera_id" in ids
    assert f"reads/2026-10-01/ops#{f}#__footer__" in ids
    assert all(len(set(columns.values())) == len(columns) for _ in [0])  # one key per column


def test_no_plate_appears_in_clear_anywhere_in_the_data_directory(store, reads):
    store.reads.ingest(reads)
    blob = b"".join(p.read_bytes() for p in store.home.rglob("*") if p.is_file())
    for plate in reads["plate"].head(100):
        assert plate.encode() not in blob


def test_wrong_passphrase_never_returns_data(store, reads):
    store.reads.ingest(reads)
    with pytest.raises(Exception, match="wrong passphrase"):
        Store.open(store.home, passphrase="the wrong passphrase")


def test_foreign_key_material_fails_instead_of_returning_ciphertext(store, reads):
    store.reads.ingest(reads)
    f1 = store.reads.partition(DAY1).files()[0]
    f2 = store.reads.partition(DAY2).files()[0]
    shutil.copy(key_material_path(f2), key_material_path(f1))  # day 1 file, day 2 keys
    with pytest.raises(StoreError, match="day=2026-10-01"):
        store.reads.query(DAY1, DAY1)


def test_missing_key_material_is_a_clear_error(store, reads):
    store.reads.ingest(reads)
    key_material_path(store.reads.partition(DAY1).files()[0]).unlink()
    with pytest.raises(StoreError, match="reads day=2026-10-01: key material .* missing"):
        store.reads.query(DAY1, DAY1)


def test_corrupted_file_is_detected_and_named(store, reads):
    store.reads.ingest(reads)
    path = store.reads.partition(DAY2).files()[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="day=2026-10-02"):
        store.reads.query()
    assert any("day=2026-10-02" in p for p in store.verify())
    assert store.reads.query(DAY1, DAY1).height > 0  # other days are untouched


def test_truncated_file_is_detected_and_named(store, reads):
    store.reads.ingest(reads)
    path = store.reads.partition(DAY3).files()[0]
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(StoreError, match="day=2026-10-03"):
        store.reads.query()
    assert any("truncated" in p for p in store.verify())


def test_bad_batch_changes_nothing(store, reads):
    store.reads.ingest(reads)
    before = _all_files(store)
    bad = make_reads(100, prefix="x").with_columns(
        pl.when(pl.int_range(pl.len()) == 60)
        .then(pl.lit("BAD PLATE"))
        .otherwise(pl.col("plate"))
        .alias("plate")
    )
    with pytest.raises(SchemaValidationError, match="row 60"):
        store.reads.ingest(bad)
    naive = make_reads(10, prefix="y").with_columns(
        pl.col("captured_at").dt.replace_time_zone(None)
    )
    with pytest.raises(SchemaValidationError, match="naive"):
        store.reads.ingest(naive)
    assert _all_files(store) == before


def test_purge_crypto_shreds_old_days(store, reads, tmp_path):
    store.reads.ingest(reads)
    victim = store.reads.partition(DAY1).files()[0]
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(victim, backup / victim.name)
    shutil.copy(key_material_path(victim), backup / key_material_path(victim).name)
    report = store.reads.purge(as_of=DAY2 + dt.timedelta(days=30), retention_days=30)
    assert report.days_purged == (DAY1,)
    assert store.reads.days() == [DAY2, DAY3]
    assert not (store.home / "store" / "reads" / "day=2026-10-01").exists()
    # The copy taken before the purge can no longer be decrypted, by this or a fresh process.
    for keystore in (store.keystore, KeyStore.open(store.home / "keys", passphrase=PASSPHRASE)):
        with pytest.raises(KeyDestroyedError):
            read_data_keys(keystore, backup / victim.name)
    with pytest.raises(Exception, match="(?i)decrypt|encrypt"):
        pl.read_parquet(backup / victim.name)
    # and the day can never be written again
    with pytest.raises(StoreError, match="purged"):
        store.reads.ingest(make_reads(5, prefix="late", days=1))


def test_legal_hold_survives_purge_under_its_own_key(store, reads):
    store.reads.ingest(reads)
    day1 = store.reads.query(DAY1, DAY1)
    held_ids = day1["read_id"].head(25)
    assert store.reads.place_hold("H-1", held_ids) == 25
    report = store.reads.purge(as_of=DAY3 + dt.timedelta(days=60), retention_days=30)
    assert set(report.days_purged) == {DAY1, DAY2, DAY3}
    assert report.rows_kept_under_hold == 25
    kept = store.reads.query()
    assert sorted(kept["read_id"]) == sorted(held_ids)
    ids = {
        json.loads(v)["masterKeyID"].split("#")[0]
        for p in store.reads.hold_partition("H-1").files()
        for v in json.loads(key_material_path(p).read_text()).values()
    }
    assert ids == {"holds/H-1/pii", "holds/H-1/ops"}
    store.reads.release_hold("H-1")
    assert store.reads.query().height == 0


def test_hold_and_live_day_are_not_double_counted(store, reads):
    store.reads.ingest(reads)
    store.reads.place_hold("H-2", reads["read_id"].head(10))
    assert store.reads.query().height == reads.height


def test_master_key_rotation_rewrites_no_data(store, reads):
    store.reads.ingest(reads)
    store.tables.write(
        "cases",
        pl.DataFrame(
            {
                "case_number": ["BPD-2026-000001"],
                "title": ["Stolen Civic"],
                "offense_type": ["motor_vehicle_theft"],
                "status": ["open"],
                "opened_at": [dt.datetime(2026, 10, 1, tzinfo=dt.UTC)],
            }
        ),
    )
    data_files = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (store.home / "store").rglob("part-*.parquet")
    }
    assert store.rotate_master_keys() == len(data_files)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_files} == data_files
    fresh = Store.open(store.home, passphrase=PASSPHRASE)
    assert fresh.reads.query().height == reads.height
    assert fresh.tables.read("cases").height == 1
    with pytest.raises(KeyDestroyedError):
        fresh.keystore.get_key("reads/2026-10-01/pii", 1)  # old version retired


def test_orphans_of_an_interrupted_write_are_invisible_then_removed(store, reads):
    store.reads.ingest(reads)
    part = store.reads.partition(DAY1)
    stray = part.root / "part-deadbeef.parquet"
    shutil.copy(part.files()[0], stray)
    (part.root / ".staging").mkdir(exist_ok=True)
    (part.root / ".staging" / "part-x.parquet").write_bytes(b"half a file")
    assert store.reads.query(DAY1, DAY1).height == part.row_count()
    assert store.reads.remove_orphans() == 1
    assert not stray.exists() and not (part.root / ".staging").exists()


def test_tables_round_trip_and_append_skips_known_keys(store):
    users = pl.DataFrame(
        {
            "user_id": ["a.analyst", "b.cmd"],
            "full_name": ["A", "B"],
            "role": ["analyst", "command_staff"],
            "organization": "Burbank Police Department",
            "organization_type": "ca_local_agency",
            "job_title": ["Crime Analyst", "Captain"],
            "is_active": [True, True],
        }
    )
    store.tables.write("users", users)
    assert store.tables.read("users").height == 2
    more = users.with_columns(pl.Series("user_id", ["a.analyst", "c.new"]))
    assert store.tables.append("users", more) == 1
    assert sorted(store.tables.read("users")["user_id"]) == ["a.analyst", "b.cmd", "c.new"]
    with pytest.raises(StoreError, match="unknown table"):
        store.tables.read("drivers")
    with pytest.raises(StoreError, match="read store"):
        store.tables.read("reads")


KILL_SCRIPT = textwrap.dedent("""
    import sys, datetime as dt
    sys.path.insert(0, {tests!r})
    from conftest import make_reads
    from alpr_workbench.store import Store
    store = Store.open({home!r})
    for i in range(40):
        start = dt.date(2026, 9, 1) + dt.timedelta(days=i)
        store.reads.ingest(make_reads(20000, start=start, days=1, seed=i, prefix=f"d{{i:02d}}-"))
        print("committed", i, flush=True)
""")


def test_a_real_kill_mid_ingest_leaves_the_store_consistent(tmp_path):
    home = tmp_path / "home"
    Store.create(home, passphrase=PASSPHRASE)
    script = tmp_path / "ingest.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent), home=str(home)))
    env = {**os.environ, "ALPR_WORKBENCH_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    committed = 0
    while committed < 3:  # let a few days commit, then kill somewhere inside the next ones
        line = proc.stdout.readline()
        assert line, "ingest process ended early"
        committed += line.startswith("committed")
    time.sleep(0.15)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    store = Store.open(home, passphrase=PASSPHRASE)
    assert store.verify() == []
    days = store.reads.days()
    assert len(days) >= 3
    for day in days:  # every visible day is complete, never half-written
        assert store.reads.partition(day).row_count() == 20000
    store.reads.remove_orphans()
    # rerunning the whole ingest finishes the job without duplicates
    for i in range(40):
        store.reads.ingest(
            make_reads(
                20000,
                start=dt.date(2026, 9, 1) + dt.timedelta(days=i),
                days=1,
                seed=i,
                prefix=f"d{i:02d}-",
            )
        )
    ids = store.reads.query(columns=["read_id"])["read_id"]
    assert ids.len() == 40 * 20000 and ids.n_unique() == ids.len()


def test_the_index_of_partitions_is_checked(store, reads):
    store.reads.ingest(reads)
    index = store.home / "store" / "_index.json"
    doc = json.loads(index.read_text())
    del doc["partitions"]["reads/day=2026-10-02"]  # hide a day by editing the index
    index.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="index .* does not authenticate"):
        store.reads.days()
    assert any("does not authenticate" in p for p in store.verify())
    index.unlink()
    with pytest.raises(StoreError, match="index .* is missing"):
        store.reads.query()
    with pytest.raises(StoreError, match="index .* is missing"):
        store.reads.ingest(make_reads(5, prefix="more"))  # a writer refuses too


def test_a_forged_commit_journal_is_not_applied(store, reads):
    store.reads.ingest(reads)
    journal = store.home / "store" / "_commit.json"
    journal.write_text(json.dumps({"format": 2, "updates": [], "drops": [], "destroy": [
        "reads/2026-10-01/pii"], "index": {}, "mac": "00"}))
    with pytest.raises(StoreError, match="journal .* does not authenticate"):
        Store.open(store.home, passphrase=PASSPHRASE)
    assert not store.keystore.is_destroyed("reads/2026-10-01/pii")
