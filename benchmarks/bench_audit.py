"""Audit log benchmark: durable appends per second against plain fsync'd JSON lines.

Appends N single events (default 5,000), each durable when the call returns (records, head
and the witness beside the key store each flushed: three ``fdatasync`` calls), then the same
number through ``append_many`` in batches, then verifies the whole log. The baseline, measured
in the same run on the same disk, appends the same events as JSON lines to a plain file with
an ``fsync`` after each line (no encryption, chain, HMAC or head anchor). Prints events/s,
the ratio audit/baseline and the target (>= 1,000 durable events/s).

    python benchmarks/bench_audit.py [--events 5000] [--batch 100] [--dir /path/on/the/disk]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.keys import KeyStore

console = Console()
TARGET_EVENTS_PER_S = 1_000


def make_events(n: int) -> list[dict[str, Any]]:
    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    return [
        {
            "event_type": "search",
            "outcome": "allowed" if i % 13 else "refused",
            "user_id": f"u{i % 40:03d}",
            "organization": "Burbank PD",
            "organization_type": "ca_local_agency",
            "case_number": f"26-{i:06d}",
            "reason_code": "240",
            "reason_text": "stolen vehicle reported by owner",
            "plate_queried": f"{i % 9 + 1}ABC{i % 1000:03d}",
            "window_from": base,
            "window_to": base + dt.timedelta(days=2),
            "networks_searched": 3,
            "query_json": json.dumps({"plate": f"{i % 9 + 1}ABC{i % 1000:03d}", "days": 2}),
            "row_count": i % 50,
        }
        for i in range(n)
    ]


def json_default(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def bench_baseline(path: Path, events: list[dict[str, Any]]) -> float:
    """Plain JSON lines, one ``write`` + ``fsync`` per event."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = time.perf_counter()
        for event in events:
            os.write(fd, json.dumps(event, default=json_default).encode() + b"\n")
            os.fsync(fd)
        return time.perf_counter() - start
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=args.dir))
    try:
        events = make_events(args.events)
        keystore = KeyStore.create(root / "keys", passphrase="benchmark passphrase, not secret")
        log = AuditLog.open(root / "home", keystore)

        baseline_s = bench_baseline(root / "baseline.jsonl", events)

        start = time.perf_counter()
        for event in events:
            log.append(event)
        single_s = time.perf_counter() - start

        start = time.perf_counter()
        for i in range(0, len(events), args.batch):
            log.append_many(events[i : i + args.batch])
        many_s = time.perf_counter() - start

        start = time.perf_counter()
        verification = log.verify()
        verify_s = time.perf_counter() - start
        assert verification.ok and verification.records == 2 * len(events), verification

        start = time.perf_counter()
        frame = log.events()
        events_s = time.perf_counter() - start
        assert frame.height == 2 * len(events)
        size = log.records_path.stat().st_size
        log.close()

        n = len(events)
        baseline_rate = n / baseline_s
        single_rate = n / single_s
        table = Table(title=f"Audit log, {n:,} events (same run, same disk: {root})")
        table.add_column("measure")
        table.add_column("events/s", justify="right")
        table.add_column("vs baseline", justify="right")
        table.add_row("baseline: JSON lines + fsync per event", f"{baseline_rate:,.0f}", "1.00")
        table.add_row(
            "audit log: append (durable, one by one)",
            f"{single_rate:,.0f}",
            f"{single_rate / baseline_rate:.2f}",
        )
        table.add_row(
            f"audit log: append_many (batches of {args.batch})",
            f"{n / many_s:,.0f}",
            f"{n / many_s / baseline_rate:.2f}",
        )
        table.add_row("audit log: verify (whole chain, decrypt)", f"{2 * n / verify_s:,.0f}", "")
        table.add_row("audit log: events() to a frame", f"{2 * n / events_s:,.0f}", "")
        console.print(table)
        console.print(f"records file: {size / (2 * n):,.0f} bytes per event")
        verdict = "MET" if single_rate >= TARGET_EVENTS_PER_S else "NOT MET"
        console.print(
            f"target: >= {TARGET_EVENTS_PER_S:,} durable single appends/s -> "
            f"{single_rate:,.0f}/s: {verdict}"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
