"""Gate overhead: a case-gated, audited search against the same store query without the gate.

Builds the synthetic city (default 30 days at full scale), then times an exact-plate search
through the gate (identity, case, reason, screening, scope checks and a durable audit record)
and the identical store query called directly, in the same run. Target: overhead < 5 ms.

    python benchmarks/bench_gate.py [--days 30] [--repeats 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRequest
from alpr_workbench.store import Store
from alpr_workbench.synth import CityConfig, generate_city, generate_day

console = Console(width=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="alpr-gate-"))
    try:
        config = CityConfig(days=args.days)
        city = generate_city(config)
        store = Store.create(work / "home", passphrase=secrets.token_urlsafe(24))
        for table in ("networks", "cameras", "users", "cases", "sharing_grants"):
            store.tables.write(table, getattr(city, table))
        for i in range(args.days):
            store.reads.ingest(generate_day(city, config.start_date + dt.timedelta(days=i)).reads)
        audit = AuditLog.open(store.home, store.keystore)
        now = dt.datetime.combine(config.end_date, dt.time(20), tzinfo=dt.UTC)
        gate = Gate._for_testing(store, audit, clock=lambda: now)  # a pinned clock
        cases = city.cases.filter(pl.col("status") == "open").explode("assigned_user_ids")
        users = city.users.filter(pl.col("role") == "investigator")["user_id"].to_list()
        case_number, user = next(
            (c, u)
            for c, u in cases.select("case_number", "assigned_user_ids").iter_rows()
            if u in users[:10]
        )
        plates = store.reads.query(columns=["plate"])["plate"].sample(args.repeats, seed=1)
        window_from = now - dt.timedelta(days=min(args.days, 29))
        networks = ["bpd-city", "hw-magnolia", "hw-victory", "hoa-rancho"]

        def direct(plate: str) -> pl.DataFrame:
            where = (
                pl.col("network_id").is_in(networks)
                & (pl.col("captured_at") >= window_from)
                & (pl.col("captured_at") <= now)
            )
            return store.reads.query(window_from.date(), now.date(), where=where, plates=[plate])

        def gated(plate: str) -> pl.DataFrame:
            request = SearchRequest(
                case_number=case_number,
                reason_code="motor_vehicle_theft",
                reason_text="stolen vehicle follow-up",
                plate=plate,
                window_from=window_from,
                window_to=now,
            )
            return gate.search(user, request).rows

        direct(plates[0])
        gated(plates[0])
        t_direct, t_gate = [], []
        for plate in plates:
            start = time.perf_counter()
            a = direct(plate)
            t_direct.append(time.perf_counter() - start)
            start = time.perf_counter()
            b = gated(plate)
            t_gate.append(time.perf_counter() - start)
            assert a.height == b.height, "gate and direct query disagree"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    d, g = statistics.median(t_direct) * 1000, statistics.median(t_gate) * 1000
    table = Table(title=f"Gate overhead ({args.repeats} exact-plate searches, {args.days} days)")
    for col in ("measure", "median ms"):
        table.add_column(col)
    table.add_row("store query (baseline)", f"{d:.2f}")
    table.add_row("gated, audited search", f"{g:.2f}")
    table.add_row("overhead (target < 5 ms)", f"{g - d:.2f}")
    table.add_row("ratio gated/baseline", f"{g / d:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
