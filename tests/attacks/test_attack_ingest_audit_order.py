"""An ingest's audit record comes before its commit, so ``kill -9`` never hides who stored it.

Before, the service committed a batch of reads and only then appended its ``ingest`` record:
a service killed between the two left reads in the store with no record of who stored them.
Now a ``started`` record (the batch's id and digest, its rows) is appended under the commit
lock before the commit point, and an outcome record (``allowed``, i.e. committed, or
``failed``) after it; ``verify`` names a started ingest with no outcome and says whether its
reads are stored.

The kill points are made exact without timing: the test holds the audit log's own lock
(``<home>/audit/.lock``, the ``flock`` every append takes), so the service stops at its next
append, and ``/proc/locks`` shows when it is waiting there. It is killed with SIGKILL (1) at
its first append of the ingest, and (2) at the append after the commit.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyotp
import pytest

from alpr_workbench.client import Client, ServiceError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.ingest import write_reads_csv
from alpr_workbench.store import Store
from alpr_workbench.synth import generate_city, generate_day
from service_fixtures import (
    _EXE,
    ADMIN,
    CONFIG,
    PASSPHRASE,
    PASSWORD,
    TODAY,
    build_home,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs /proc/locks")


def _batch(prefix: str, days: int) -> bytes:
    """Reads of the test city's cameras on ``days`` days the store lacks, as CSV."""
    template = generate_day(generate_city(CONFIG), CONFIG.start_date).reads
    offset = pl.col("captured_at") - pl.col("captured_at").dt.truncate("1d")
    copies = []
    for k in range(days):
        start = dt.datetime.combine(TODAY - dt.timedelta(days=10 + k), dt.time(0), tzinfo=dt.UTC)
        copies.append(template.with_columns(
            (pl.lit(start) + offset).alias("captured_at"),
            (pl.lit(f"{prefix}{k}-") + pl.int_range(pl.len()).cast(pl.String)).alias("read_id"),
        ))  # fmt: skip
    return write_reads_csv(pl.concat(copies))


def _waits_on_audit_lock(home: Path, pid: int) -> bool:
    """True when process ``pid`` is blocked taking the audit log's lock (``/proc/locks``)."""
    inode = (home / "audit" / ".lock").stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "->" in parts and str(pid) in parts and parts[-3].endswith(f":{inode}"):
            return True
    return False


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.002)


def _unrecorded_files(home: Path, before: set[str]) -> list[str]:
    """Files of reads stored since ``before`` whose batch has no ``started`` audit record."""
    store = Store.open(home, passphrase=PASSPHRASE)
    with AuditLog.open(home, store.keystore) as log:
        ingests = log.events().filter(
            (pl.col("event_type") == "ingest") & (pl.col("outcome") == "started")
        )
    started = {json.loads(q).get("batch_id") for q in ingests["query_json"]}
    return [
        f"{day}/{item['name']} (batch {item.get('batch_id')})"
        for day in store.reads.days()
        for item in store.reads.partition(day).manifest()["files"]
        if item["name"] not in before and item.get("batch_id") not in started
    ]


def _stored_files(home: Path) -> set[str]:
    store = Store.open(home, passphrase=PASSPHRASE)
    return {
        item["name"]
        for day in store.reads.days()
        for item in store.reads.partition(day).manifest()["files"]
    }


def _send(admin: Client, csv: bytes, outcome: list[object]) -> threading.Thread:
    def send() -> None:
        try:
            outcome.append(admin.ingest(csv, source="order.csv"))
        except ServiceError as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    return sender


def _login(service, secret: str, session: Path, step: int) -> Client:
    code = pyotp.TOTP(secret).at(step * 30)
    return Client.login(service.url, ADMIN, PASSWORD, code, service.cert, session_file=session)


def test_kill_9_at_either_audit_append_never_leaves_a_stored_batch_without_its_record(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    admin_code, cert = build_home(home)
    before = _stored_files(home)
    audit_lock = os.open(home / "audit" / ".lock", os.O_RDWR)
    service = start_service(home, admin_code, cert)
    try:
        secret = Client.enroll(service.url, ADMIN, admin_code, PASSWORD, cert).totp_secret
        step = int(time.time()) // 30
        admin = _login(service, secret, tmp_path / "admin-1.json", step)
        # (1) The service stops at the ingest's first audit append; kill it there.
        fcntl.flock(audit_lock, fcntl.LOCK_EX)
        outcome: list[object] = []
        sender = _send(admin, _batch("order-a-", 3), outcome)
        _wait_for(lambda: _waits_on_audit_lock(home, service.process.pid),
                  "the service waits to append the ingest's record")  # fmt: skip
        service.process.kill()
        service.process.wait(timeout=10)
        fcntl.flock(audit_lock, fcntl.LOCK_UN)
        sender.join(timeout=60)
        admin.close()
    finally:
        if service.process.poll() is None:
            stop_service(service)
    assert isinstance(outcome[0], ServiceError)
    assert _unrecorded_files(home, before) == [], "reads stored with no record of who stored them"

    service = start_service(home, "", cert)
    try:
        admin = _login(service, secret, tmp_path / "admin-2.json", step + 1)
        # (2) Let the "started" record through, then stop the service at the next append,
        # the outcome record after the commit; kill it there.
        fcntl.flock(audit_lock, fcntl.LOCK_EX)
        records = home / "audit" / "records.bin"
        size = records.stat().st_size
        outcome = []
        sender = _send(admin, _batch("order-b-", 2), outcome)
        _wait_for(lambda: _waits_on_audit_lock(home, service.process.pid),
                  "the service waits to append the started record")  # fmt: skip
        fcntl.flock(audit_lock, fcntl.LOCK_UN)
        _wait_for(lambda: records.stat().st_size > size, "the started record is written")
        fcntl.flock(audit_lock, fcntl.LOCK_EX)
        _wait_for(lambda: _waits_on_audit_lock(home, service.process.pid),
                  "the service waits to append the outcome record")  # fmt: skip
        service.process.kill()
        service.process.wait(timeout=10)
        fcntl.flock(audit_lock, fcntl.LOCK_UN)
        sender.join(timeout=60)
        admin.close()
    finally:
        os.close(audit_lock)
        if service.process.poll() is None:
            stop_service(service)
    assert isinstance(outcome[0], ServiceError)
    assert _unrecorded_files(home, before) == [], "reads stored with no record of who stored them"

    # The operator's verify names the ingest that has no outcome, and says it is stored.
    store = Store.open(home, passphrase=PASSPHRASE)
    assert store.verify() == []
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    env |= {"ALPR_WORKBENCH_PASSPHRASE": PASSPHRASE, "COLUMNS": "300"}
    done = subprocess.run([_EXE, "verify", "--data-dir", str(home)], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    interrupted = [line for line in said.split("interrupted:")[1:] if "has no outcome" in line]
    assert len(interrupted) == 1, said
    assert f"by {ADMIN}" in interrupted[0] and "ARE in the store" in interrupted[0]
    stored_b = {item for item in _stored_files(home) if item not in before}
    assert stored_b, "batch (2) was committed before the kill"
