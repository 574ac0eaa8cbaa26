"""The service boundary's cost: searches through the real service beside the in-process gate.

Builds the synthetic city, measures the in-process gate, then starts the real service (TLS on
loopback, its own process), signs a user in with a TOTP code and, in the same run, measures:

- an exact-plate search through the service, p50/p95 (sign-in excluded), beside the
  in-process gate's p50 for the same requests (target p50 <= 15 ms);
- rows per second of a large allowed result (a colour search over ``--large-days`` days with a
  supervisor's single-use approval, under the policy's approved cap of 100 k rows) over
  loopback, beside the gate's rows per second (target >= 1 M rows/s);
- both through the client's default transport (Arrow Flight, decision 0010) and through the
  HTTP API's ``POST /v1/search`` (``Client(use_flight=False)``), in the same run;
- ``--clients`` concurrent clients searching for ``--seconds``: requests served, errors, and
  the audit records written for the period, which must equal the requests made.

    python benchmarks/bench_service.py [--days 30] [--seconds 60] [--clients 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyotp
from rich.console import Console
from rich.table import Table

from alpr_workbench.client import Client, ServiceError
from alpr_workbench.governance.approvals import grant_approval
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRequest
from alpr_workbench.service.accounts import AccountStore
from alpr_workbench.service.initialize import init_workbench
from alpr_workbench.store import Store
from alpr_workbench.synth import CityConfig, generate_city, generate_day

console = Console(width=120)
PASSPHRASE = "benchmark passphrase, not a secret"
PASSWORD = "benchmark password, long enough"
# The one command that runs the service: `alpr-workbench serve` (the API only here).
_EXE = shutil.which("alpr-workbench", path=os.path.dirname(sys.executable)) or "alpr-workbench"
ADMIN = "bench.admin"


def _build(home: Path, days: int) -> tuple[Store, Any, Path]:
    today = dt.datetime.now(dt.UTC).date()
    config = CityConfig(days=days, end_date=today - dt.timedelta(days=1))
    city = generate_city(config)
    result = init_workbench(home, ADMIN, "Benchmark Administrator", passphrase=PASSPHRASE)
    store = Store.open(home, passphrase=PASSPHRASE)
    for table in ("networks", "cameras", "cases", "sharing_grants"):
        store.tables.write(table, getattr(city, table))
    users = store.tables.read("users")
    store.tables.append("users", city.users.select(users.columns).cast(users.schema))
    for i in range(days):
        store.reads.ingest(generate_day(city, config.start_date + dt.timedelta(days=i)).reads)
    return store, city, result.certfile


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(home: Path, cert: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    env["ALPR_WORKBENCH_PASSPHRASE"] = PASSPHRASE
    with log.open("wb") as out:
        process = subprocess.Popen(
            [_EXE, "serve", "--no-dashboard", "--data-dir", str(home), "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    with httpx.Client(base_url=url, verify=str(cert)) as http:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if http.get("/v1/health").status_code == 200:
                    return process, url
            except httpx.HTTPError:
                time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the service did not start: {log.read_text()}")


def _cache_filled(url: str, cert: Path) -> None:
    """Wait (at most a minute) until the service has filled its read cache at start."""
    with httpx.Client(base_url=url, verify=str(cert)) as http:
        for _ in range(600):
            if http.get("/v1/health").json().get("read_cache") == "ready":
                return
            time.sleep(0.1)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--large-days", type=int, default=10,
                        help="days of the large result (10: ~90 k rows, under the approved cap)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="alpr-service-"))
    try:
        _run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, args: argparse.Namespace) -> None:
    home = work / "home"
    store, city, cert = _build(home, args.days)
    now = dt.datetime.now(dt.UTC)
    cases = city.cases.filter(pl.col("status") == "open").explode("assigned_user_ids")
    investigators = set(city.users.filter(pl.col("role") == "investigator")["user_id"])
    case_number, user = next(
        (c, u) for c, u in cases.select("case_number", "assigned_user_ids").iter_rows()
        if u in investigators
    )
    organization = city.users.filter(pl.col("user_id") == user)["organization"][0]
    supervisor = city.users.filter(
        (pl.col("role") == "supervisor") & (pl.col("organization") == organization)
    )["user_id"][0]
    window_from = now - dt.timedelta(days=min(args.days, 29))
    plates = store.reads.query(columns=["plate"])["plate"].sample(args.repeats, seed=1)
    exact = [dict(case_number=case_number, reason_code="motor_vehicle_theft",
                  reason_text="stolen vehicle follow-up", plate=p, window_from=window_from,
                  window_to=now) for p in plates]
    broad = dict(case_number=case_number, reason_code="motor_vehicle_theft",
                 reason_text="stolen vehicle follow-up", vehicle_color="white",
                 window_from=now - dt.timedelta(days=args.large_days), window_to=now)

    # In-process gate first (the service, once started, is the audit log's only writer).
    with AuditLog.open(store.home, store.keystore) as audit:
        gate = Gate(store, audit)
        # A supervisor's approvals for the large searches: one each, single use (5 x 3).
        approvals = [
            grant_approval(store, audit.append, actor=supervisor, searcher_user_id=user,
                           case_number=case_number, policy=gate.policy, now=now).approval_id
            for _ in range(15)
        ]
        gate.search(user, SearchRequest(**exact[0]))
        t_gate = []
        for body in exact:
            start = time.perf_counter()
            gate.search(user, SearchRequest(**body))
            t_gate.append(time.perf_counter() - start)
        t_gate_broad, gate_rows = [], 0
        for approval in approvals[:5]:
            start = time.perf_counter()
            gate_rows = gate.search(user, SearchRequest(**broad, approval_id=approval)).rows.height
            t_gate_broad.append(time.perf_counter() - start)

    code = AccountStore(home, store.keystore).issue_enrolment(user, issued_by=ADMIN)
    process, url = _start(home, cert, work / "service.log")
    try:
        secret = Client.enroll(url, user, code, PASSWORD, cert).totp_secret
        client = Client.login(url, user, PASSWORD, pyotp.TOTP(secret).now(), cert,
                              session_file=work / "session.json")
        start = time.perf_counter()
        client.search(**exact[0])  # the first search after start: the read cache still warming
        t_first = time.perf_counter() - start
        _cache_filled(url, cert)  # then the steady state: the start-up fill done
        t_service = []
        for body in exact:
            start = time.perf_counter()
            client.search(**body)
            t_service.append(time.perf_counter() - start)
        t_service_broad, service_rows = [], 0
        for approval in approvals[5:10]:
            start = time.perf_counter()
            service_rows = client.search(**broad, approval_id=approval).rows.height
            t_service_broad.append(time.perf_counter() - start)
        with Client(url, client._token, cert.read_text(), use_flight=False) as http_client:
            t_http = []
            for body in exact:
                start = time.perf_counter()
                http_client.search(**body)
                t_http.append(time.perf_counter() - start)
            t_http_broad, http_rows = [], 0
            for approval in approvals[10:]:
                start = time.perf_counter()
                http_rows = http_client.search(**broad, approval_id=approval).rows.height
                t_http_broad.append(time.perf_counter() - start)
        served, errors, period_from = _concurrent(url, client, cert, exact, args)
        period_to = dt.datetime.now(dt.UTC)
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    with AuditLog.open(store.home, store.keystore) as audit:
        events = audit.events()
    audited = events.filter(
        (pl.col("event_type") == "search") & (pl.col("user_id") == user)
        & (pl.col("occurred_at") >= period_from) & (pl.col("occurred_at") <= period_to)
    ).height

    g50, s50, s95 = _pct(t_gate, 0.5), _pct(t_service, 0.5), _pct(t_service, 0.95)
    gate_rps = gate_rows / statistics.median(t_gate_broad)
    service_rps = service_rows / statistics.median(t_service_broad)
    table = Table(title=f"Service boundary ({args.days} days, {args.repeats} exact-plate "
                        f"searches, {args.clients} clients x {args.seconds:.0f} s)")
    for col in ("measure", "in-process gate", "through the service", "ratio / target"):
        table.add_column(col)
    table.add_row("exact plate p50 ms", f"{g50:.2f}", f"{s50:.2f}",
                  f"{s50 / g50:.2f}x (target p50 <= 15 ms)")
    table.add_row("first exact search after start ms", "", f"{t_first * 1000:.2f}",
                  "read cache warming (decision 0009); the rest waits until it is filled")
    table.add_row("exact plate p95 ms", f"{_pct(t_gate, 0.95):.2f}", f"{s95:.2f}", "")
    table.add_row("exact plate p50 ms, the boundary alone", "", f"{s50 - g50:.2f}",
                  "service p50 - gate p50")
    table.add_row(f"large result rows/s ({service_rows:,} rows)", f"{gate_rps:,.0f}",
                  f"{service_rps:,.0f}", f"{service_rps / gate_rps:.2f}x (target >= 1 M/s)")
    boundary_s = statistics.median(t_service_broad) - statistics.median(t_gate_broad)
    table.add_row("large result rows/s, the boundary alone", "",
                  f"{service_rows / boundary_s:,.0f}" if boundary_s > 0 else "n/a",
                  "rows / (service - gate time)")
    h50 = _pct(t_http, 0.5)
    http_rps = http_rows / statistics.median(t_http_broad)
    table.add_row("exact plate p50 ms over HTTP POST /v1/search", f"{g50:.2f}", f"{h50:.2f}",
                  f"Flight {s50:.2f} ms: {h50 / s50:.2f}x faster")
    table.add_row(f"large result rows/s over HTTP ({http_rows:,} rows)", f"{gate_rps:,.0f}",
                  f"{http_rps:,.0f}", f"Flight {service_rps / http_rps:.2f}x the HTTP rate")
    table.add_row("concurrent requests served", "", f"{served:,}",
                  f"{served / args.seconds:.1f} req/s")
    table.add_row("concurrent errors", "", f"{errors:,}", "target 0")
    table.add_row("audit records for the period", "", f"{audited:,}",
                  "== requests" if audited == served + errors else "MISMATCH")
    console.print(table)


def _concurrent(
    url: str, client: Client, cert: Path, bodies: list[dict[str, Any]],
    args: argparse.Namespace,
) -> tuple[int, int, dt.datetime]:
    """``args.clients`` threads, each its own connection on the same session, for a while."""
    token, ca_pem = client._token, cert.read_text()
    counts = [[0, 0] for _ in range(args.clients)]
    start = dt.datetime.now(dt.UTC)
    stop_at = time.monotonic() + args.seconds

    def worker(i: int) -> None:
        with Client(url, token, ca_pem) as mine:
            n = i
            while time.monotonic() < stop_at:
                try:
                    mine.search(**bodies[n % len(bodies)])
                    counts[i][0] += 1
                except ServiceError:
                    counts[i][1] += 1
                n += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts), start


if __name__ == "__main__":
    main()
