"""A real department moves in, end to end (issue #16, "Done when").

From ``init`` (an empty store, no synthetic city): the first administrator signs in and imports
the sample users, networks, cameras and cases shipped in ``examples/``, enrols an analyst from
that import, loads a stolen-vehicle list and ingests reads from one of the imported cameras.
The analyst then works the hit from the alert to a recovery, and the efficacy figures move.
Everything goes through the real service in a subprocess, as the signed-in users.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.client import Client
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.ingest import write_reads_csv
from alpr_workbench.service.initialize import init_workbench
from alpr_workbench.store import Store
from service_fixtures import PASSPHRASE, enroll_and_login, start_service, stop_service

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ADMIN, ANALYST, SUPERVISOR = "m.admin", "l.chen", "m.alvarez"  # the last two: examples
CAMERA, NETWORK = "BPD-001", "bpd-city"  # from examples/cameras.csv
STOLEN = "8MOV123"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _hotlist_csv() -> bytes:
    stolen = (NOW - dt.timedelta(days=3)).strftime("%m/%d/%Y")
    return (
        "LIC,LIS,VMA,VCO,DOT,ORI,OCA,Value\n"
        f"{STOLEN},CA,Toyota,Silver,{stolen},CA0190000,BPD-2026-000777,18500\n"
        "5XYZ987,CA,Honda,Blue,{stolen},CA0190000,BPD-2026-000778,9000\n".replace(
            "{stolen}", stolen)
    ).encode()


def _reads_csv() -> bytes:
    """Two reads made just now: after the list was loaded (earlier reads need a retro match)."""
    now = dt.datetime.now(dt.UTC)
    times = [now - dt.timedelta(milliseconds=300), now - dt.timedelta(milliseconds=100)]
    reads = pl.DataFrame(
        {
            "read_id": ["move-in-1", "move-in-2"],
            "camera_id": [CAMERA, CAMERA],
            "captured_at": times,
            "plate": [STOLEN, "4ABC001"],
            "plate_state": ["CA", "CA"],
            "confidence_pct": [96.0, 91.0],
            "source": ["camera", "camera"],
        }
    )
    return write_reads_csv(reads)


@pytest.fixture(scope="module")
def moved_in(tmp_path_factory):
    """An init store, the examples imported, a list loaded, reads ingested; two sessions."""
    folder = tmp_path_factory.mktemp("move-in")
    home = folder / "home"
    made = init_workbench(home, ADMIN, "Morgan Admin", passphrase=PASSPHRASE)
    service = start_service(home, made.enrolment_code, made.certfile)
    try:
        admin = enroll_and_login(service, ADMIN, made.enrolment_code, folder / "admin.json")
        imported = {
            table: admin.import_records(table, (EXAMPLES / f"{table}.csv").read_bytes())
            for table in ("users", "networks", "cameras", "cases")
        }
        sergeant = enroll_and_login(service, SUPERVISOR, admin.issue_enrolment(SUPERVISOR),
                                    folder / "supervisor.json")
        listed = sergeant.import_hotlist(_hotlist_csv(), source="state_stolen")  # manage_hotlists
        sergeant.close()
        time.sleep(1.0)  # the reads come after the entries were added
        ingested = admin.ingest(_reads_csv(), source="move-in test", camera=CAMERA)
        code = admin.issue_enrolment(ANALYST)
        analyst = enroll_and_login(service, ANALYST, code, folder / "analyst.json")
        yield service, admin, analyst, imported, listed, ingested
        analyst.close()
        admin.close()
    finally:
        stop_service(service)


def test_an_init_store_takes_the_examples_a_list_and_reads(moved_in):
    service, _, _, imported, listed, ingested = moved_in
    store = Store.open(service.home, passphrase=PASSPHRASE)
    for table in ("users", "networks", "cameras", "cases"):
        lines = len((EXAMPLES / f"{table}.csv").read_text().splitlines()) - 1
        extra = 1 if table == "users" else 0  # the administrator made by init
        assert store.tables.read(table).height == lines + extra, (table, imported[table])
    assert ingested["rows_added"] == 2 and ingested["hits_added"] == 1, (listed, ingested)


def test_the_analyst_works_the_hit_to_a_recovery_and_the_figures_move(moved_in):
    service, _, analyst, *_ = moved_in
    start, end = (NOW - dt.timedelta(days=7)).date(), NOW.date()
    before = analyst.efficacy(start=start, end=end)["figures"]
    queue = analyst.hit_queue()["hits"]
    assert [h["read_plate"] for h in queue] == [STOLEN]
    hit = queue[0]
    assert not hit["is_actionable"] and "reason" not in hit  # nothing actionable yet
    analyst.confirm_hit(hit["hit_id"], "correct", note="plate and state checked on the image")
    shown = analyst.show_hit(hit["hit_id"])["hit"]
    assert shown["is_actionable"]
    analyst.record_hit_outcome(hit["hit_id"], "recovery", value_usd=18500.0,
                               case_number="BPD-2026-000731")  # from examples/cases.csv
    after = analyst.efficacy(start=start, end=end)["figures"]
    assert after["recoveries"] == before["recoveries"] + 1
    assert after["recovered_value_usd"] == pytest.approx(before["recovered_value_usd"] + 18500)
    assert analyst.hit_queue()["hits"] == []
    # Every step is audited as the signed-in analyst.
    store = Store.open(service.home, passphrase=PASSPHRASE)
    events = AuditLog.open(service.home, store.keystore).events()
    mine = events.filter(pl.col("user_id") == ANALYST)
    assert {"hotlist_change", "aggregate"} <= set(mine["event_type"])
    assert (mine.filter(pl.col("event_type") == "hotlist_change")["outcome"] == "allowed").all()


def test_a_second_session_client_sees_the_same_user(moved_in):
    _, _, analyst, *_ = moved_in
    assert isinstance(analyst, Client) and analyst.whoami()["user_id"] == ANALYST
