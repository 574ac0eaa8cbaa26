"""``kill -9`` of the service during an ingest through it (issue #15).

A large CSV of reads, spread over many days, goes to the real service (TLS, a subprocess)
through the real client as the signed-in administrator. The service is killed with SIGKILL as
soon as it starts writing the new days' files (the trigger is the first new file under
``store/reads/``, so the kill falls inside the store's write, not before the request arrives
nor after the answer). Then, on the same data directory: the client got a clear error, the
store and the audit log verify, the batch is wholly absent or wholly present (never part of a
day), and the same ingest sent again succeeds and leaves each read stored exactly once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import polars as pl
import pyotp

from alpr_workbench.client import Client, ServiceError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.ingest import write_reads_csv
from alpr_workbench.store import Store
from alpr_workbench.synth import generate_city, generate_day
from service_fixtures import (
    ADMIN,
    CONFIG,
    PASSPHRASE,
    PASSWORD,
    TODAY,
    build_home,
    start_service,
    stop_service,
)

_DAYS = [TODAY - dt.timedelta(days=d) for d in range(19, 3, -1)]  # 16 days the store lacks
_PREFIX = "kill9-"


def _batch() -> pl.DataFrame:
    """About 52,000 reads of the test city's cameras (some 11 MB of CSV), 16 new days."""
    template = generate_day(generate_city(CONFIG), CONFIG.start_date).reads
    template = template.with_columns(
        (pl.col("captured_at") - pl.col("captured_at").dt.truncate("1d")).alias("_offset")
    )
    copies = []
    for k in range(64):
        day = _DAYS[k % len(_DAYS)]
        start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
        copies.append(template.with_columns(
            (pl.lit(start) + pl.col("_offset")).alias("captured_at"),
            (pl.lit(f"{_PREFIX}{k:03d}-") + pl.int_range(pl.len()).cast(pl.String))
            .alias("read_id"),
        ))
    return pl.concat(copies).drop("_offset")


def _login(service, secret: str, session: Path, step: int) -> Client:
    code = pyotp.TOTP(secret).at(step * 30)
    return Client.login(service.url, ADMIN, PASSWORD, code, service.cert, session_file=session)


def _mine_by_day(home: Path) -> dict[dt.date, int]:
    """How many of the batch's reads each day holds (read by the operator, not the service)."""
    store = Store.open(home, passphrase=PASSPHRASE)
    counts = {}
    for day in store.reads.days():
        ids = store.reads.partition(day).read(["read_id"]).get_column("read_id")
        counts[day] = int(ids.str.starts_with(_PREFIX).sum())
        assert ids.n_unique() == ids.len(), f"{day}: a read stored twice"
    return {day: n for day, n in counts.items() if n}


def _assert_intact(home: Path) -> pl.DataFrame:
    store = Store.open(home, passphrase=PASSPHRASE)
    assert store.verify() == []
    with AuditLog.open(store.home, store.keystore) as log:
        verdict = log.verify()
        events = log.events()
    assert verdict.ok, verdict.problem
    return events


def _new_read_files(home: Path, before: set[Path]) -> bool:
    return any(p not in before for p in (home / "store" / "reads").rglob("*") if p.is_file())


def test_kill_9_during_an_ingest_leaves_it_all_or_nothing_and_a_rerun_stores_it_once(
    tmp_path,
):
    home = tmp_path / "home"
    admin_code, cert = build_home(home)
    batch = _batch()
    csv = write_reads_csv(batch)
    assert 5_000_000 < len(csv) < 30_000_000  # large, yet under the service's upload limit
    expected = batch.group_by(pl.col("captured_at").dt.date()).len()
    expected_by_day = dict(expected.iter_rows())
    assert set(expected_by_day) == set(_DAYS)

    service = start_service(home, admin_code, cert)
    try:
        secret = Client.enroll(service.url, ADMIN, admin_code, PASSWORD, cert).totp_secret
        first_step = int(time.time()) // 30
        admin = _login(service, secret, tmp_path / "admin-1.json", first_step)
        before = {p for p in (home / "store" / "reads").rglob("*") if p.is_file()}
        outcome: list[object] = []

        def send() -> None:
            try:
                outcome.append(admin.ingest(csv, source="big-export.csv"))
            except ServiceError as exc:
                outcome.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 120
        while not _new_read_files(home, before):
            assert sender.is_alive(), f"the ingest ended before the kill: {outcome}"
            assert time.monotonic() < deadline, "the service never started writing"
            time.sleep(0.002)
        service.process.kill()  # SIGKILL: no clean-up, no answer
        service.process.wait(timeout=10)
        sender.join(timeout=60)
        assert not sender.is_alive()
        admin.close()
    finally:
        if service.process.poll() is None:
            stop_service(service)

    # The client got a clear error, not an answer and not a hang.
    (error,) = outcome
    assert isinstance(error, ServiceError), error
    assert error.status == 0 and "cannot reach the service" in str(error)

    # Restart on the same data directory: a commit left by the killed writer is finished or
    # dropped as a whole when the service opens the store.
    service = start_service(home, "", cert)
    try:
        _assert_intact(home)
        stored = _mine_by_day(home)
        assert stored in ({}, expected_by_day), "part of the batch was stored"
        # The same ingest again, in a new session (the restart signed everybody out).
        with _login(service, secret, tmp_path / "admin-2.json", first_step + 1) as admin:
            answer = admin.ingest(csv, source="big-export.csv")
    finally:
        stop_service(service)
    assert answer["rows_received"] == batch.height
    already = sum(stored.values())
    assert answer["rows_already_stored"] == already
    assert answer["rows_added"] == batch.height - already
    events = _assert_intact(home)
    assert _mine_by_day(home) == expected_by_day  # every read once, every day whole
    rerun = events.filter(pl.col("event_id") == answer["event_id"]).row(0, named=True)
    assert rerun["event_type"] == "ingest" and rerun["user_id"] == ADMIN
    assert rerun["outcome"] == "allowed" and rerun["row_count"] == answer["rows_added"]
