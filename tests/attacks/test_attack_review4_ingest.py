"""Review 4: an ingest recorded as ``failed`` whose reads were stored all the same.

An ingest appends ``started`` before its commit point and ``failed`` when the store raises.
But the store can raise *after* the commit point: the journal is in place, applying it fails
(a full disk, an I/O error on a manifest), and the next process to open the store finishes the
commit. The audit trail then says the batch failed while its reads are in the store, and
``verify`` (``interrupted_ingests``) said nothing, because a ``failed`` record counted as an
outcome. Now such an ingest is listed, marked ``recorded_failed``.

The failure after the commit point is real, not mocked: a directory sits where the day's
manifest must be written, so the journal's application fails with ``IsADirectoryError``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.ingest import ingest_reads, interrupted_ingests
from alpr_workbench.store import Store
from conftest import PASSPHRASE, make_reads

NOW = dt.datetime(2026, 10, 4, 12, 0, tzinfo=dt.UTC)


def _register_cameras(store: Store) -> None:
    """The network and cameras ``make_reads`` uses (cam-00..cam-09 on bpd-city)."""
    store.tables.write("networks", pl.DataFrame({
        "network_id": ["bpd-city"], "name": ["City"], "owner_type": ["city"],
        "owner_name": ["Burbank"], "is_department_owned": [True],
        "created_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)],
    }))  # fmt: skip
    ids = [f"cam-{i:02d}" for i in range(10)]
    store.tables.write("cameras", pl.DataFrame({
        "camera_id": ids, "network_id": ["bpd-city"] * 10, "name": ids, "lat": 34.18,
        "lon": -118.31, "direction": "N", "installed_date": dt.date(2026, 1, 1),
    }))  # fmt: skip


def _ingest_with_obstacle(store: Store, obstacle: Path) -> tuple[list[str], pl.DataFrame]:
    """Ingest one day of reads with a directory at ``obstacle``; return outcomes and events."""
    obstacle.mkdir(parents=True)
    (obstacle / "in-the-way").write_text("x")
    with AuditLog.open(store.home, store.keystore) as audit:
        with pytest.raises(OSError):
            ingest_reads(store, make_reads(50, days=1), audit_append=audit.append,
                         actor="t.ingester", now=NOW)
        (obstacle / "in-the-way").unlink()
        obstacle.rmdir()
        events = audit.events()
    outcomes = events.filter(pl.col("event_type") == "ingest")["outcome"].to_list()
    return outcomes, events


def test_an_ingest_recorded_failed_after_its_commit_point_is_named_by_verify(
    store: Store,
) -> None:
    _register_cameras(store)
    day = make_reads(50, days=1)["captured_at"][0].date()
    manifest = store.home / "store" / "reads" / f"day={day.isoformat()}" / "_manifest.json"
    outcomes, events = _ingest_with_obstacle(store, manifest)
    assert outcomes == ["started", "failed"]

    reopened = Store.open(store.home, passphrase=PASSPHRASE)  # finishes the journal
    assert reopened.reads.row_count() == 50  # the "failed" batch is stored
    found = interrupted_ingests(events, reopened.reads.batch_ids())
    assert [(i.in_store, i.recorded_failed) for i in found] == [(True, True)]
    assert "recorded as failed, but its reads ARE in the store" in found[0].describe()


def test_an_ingest_that_failed_before_its_commit_point_is_not_named(store: Store) -> None:
    _register_cameras(store)
    journal = store.home / "store" / "_commit.json"  # the commit point itself fails
    outcomes, events = _ingest_with_obstacle(store, journal)
    assert outcomes == ["started", "failed"]

    reopened = Store.open(store.home, passphrase=PASSPHRASE)
    assert reopened.reads.row_count() == 0
    assert interrupted_ingests(events, reopened.reads.batch_ids()) == []
