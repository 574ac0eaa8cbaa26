"""Command-staff dashboard: time to first paint and per filter change, beside a naive baseline.

Builds the synthetic city (default 365 days at scale 1) in an encrypted store, then times in
the same run:

* server start: opening the store and audit log and computing the shared geometry (once per
  server);
* first paint of a session (in process): the state for the default period (last 30 stored
  days; the gate's read summary not cached yet) plus rendering every view to Bokeh models;
* filter changes: a network, another 30-day window, the last 7 days, the whole year;
* the baseline: the same figures computed naively for each change, the way a dashboard
  without a state object would (``build_efficacy_report`` re-reading every table and the
  audit log, ``monthly_trend``, the city outline, heat and coverage grids from scratch);
* with ``/usr/bin/chromium`` and Playwright: the real ``alpr-workbench serve`` process (the
  service with its dashboard, TLS, password and TOTP sign-in), from submitting the login form
  to the first canvas, and from clicking "Last 7 days" to the updated figures.

Targets: first paint < 3 s, filter change < 1 s.

    python benchmarks/bench_dashboard.py [--days 365] [--scale 1.0] [--repeats 3] [--home DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

console = Console(width=120)
CHROMIUM = "/usr/bin/chromium"
USER = ""  # the first command-staff user who may open the dashboard (set in main)


def _timed(fn: Callable[[], Any], repeats: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _baseline(home: Path, start: dt.date, end: dt.date, networks: list[str] | None) -> None:
    """Everything recomputed from the store for one filter setting (no state, no cache)."""
    from alpr_workbench.analytics import (
        cameras_gdf,
        city_outline,
        coverage_grid,
        efficacy_report,
        heat_grid,
        monthly_trend,
    )
    from alpr_workbench.config import load_settings
    from alpr_workbench.governance import AuditLog, Gate
    from alpr_workbench.store import Store

    store = Store.open(home)
    with AuditLog.open(home, store.keystore) as audit:
        settings = load_settings(home)
        summary = Gate(store, audit).read_summary(USER, start=start, end=end)
        hits, outcomes = store.tables.read("hits"), store.tables.read("outcomes")
        efficacy_report(
            reads_daily=summary.reads_daily,
            unique_vehicles=summary.unique_vehicles,
            hits=hits,
            outcomes=outcomes,
            audit_events=audit.events(),
            networks=store.tables.read("networks"),
            start=start,
            end=end,
            program_budget_usd=settings.program_budget_usd,
            staff_hours_saved_per_recovery=settings.staff_hours_saved_per_recovery,
            network_ids=networks,
        )
        monthly_trend(reads_daily=summary.reads_daily, hits=hits, outcomes=outcomes)
        cameras = store.tables.read("cameras")
        outline = city_outline(cameras)
        in_period = hits.filter(pl.col("captured_at").dt.date().is_between(start, end))
        rec = outcomes.filter(pl.col("outcome_type") == "recovery").join(
            in_period.select("hit_id"), on="hit_id", how="semi"
        )
        heat_grid(rec.select("lat", "lon"), outline=outline, cell_m=400)
        coverage_grid(cameras_gdf(cameras), outline=outline, cell_m=400)


def _browser(home: Path) -> dict[str, float] | None:
    if not os.path.exists(CHROMIUM):
        console.print(f"[yellow]no {CHROMIUM}: browser timings skipped[/]")
        return None
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        console.print("[yellow]playwright not installed: browser timings skipped[/]")
        return None
    import pyotp

    from alpr_workbench.service.accounts import AccountStore
    from alpr_workbench.service.tls import make_loopback_certificate, tls_files
    from alpr_workbench.store import Store

    # Accounts are the service's (password and TOTP); the benchmark enrols its user here.
    store = Store.open(home)
    accounts = AccountStore(home, store.keystore)
    password = "a benchmark passphrase"
    code = accounts.issue_enrolment(USER, issued_by="bench_dashboard")
    totp = pyotp.TOTP(accounts.enroll(USER, code, password).totp_secret)
    if not tls_files(home).certfile.is_file():
        make_loopback_certificate(home)

    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    server, url = _start_serve(home)
    out["server start (`serve`: store, audit log, geometry, listening)"] = time.perf_counter() - t0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
            try:
                # the service's self-signed certificate (a deployment uses the operator's)
                page = browser.new_context(
                    viewport={"width": 1400, "height": 1200}, ignore_https_errors=True
                ).new_page()
                page.set_default_timeout(60_000)
                for label in ("browser: login to first canvas (cold)", "browser: reload (warm)"):
                    if "reload" in label:
                        t0 = time.perf_counter()
                        page.reload()
                    else:
                        page.goto(f"{url}/login")
                        page.fill("input[name=username]", USER)
                        page.fill("input[name=password]", password)
                        page.fill("input[name=totp]", totp.now())
                        t0 = time.perf_counter()
                        page.click("button[type=submit]")
                    page.wait_for_selector("canvas", state="visible")
                    expect(page.get_by_text(re.compile(r"\(30 days\)")).first).to_be_visible()
                    out[label] = time.perf_counter() - t0
                t0 = time.perf_counter()
                page.get_by_role("button", name="Last 7 days").click()
                expect(page.get_by_text(re.compile(r"\(7 days\)")).first).to_be_visible()
                out["browser: click 'Last 7 days' to new figures"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                page.get_by_role("button", name="Last 30 days").click()
                expect(page.get_by_text(re.compile(r"\(30 days\)")).first).to_be_visible()
                out["browser: click 'Last 30 days' (cached summary)"] = time.perf_counter() - t0
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def _start_serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``alpr-workbench serve`` (API and dashboard, TLS) on free ports; wait for it."""
    import socket
    import ssl
    import sys

    def free() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    port, dash = free(), free()
    exe = shutil.which("alpr-workbench", path=os.path.dirname(sys.executable)) or "alpr-workbench"
    process = subprocess.Popen(  # noqa: S603 - our own entry point
        [exe, "serve", "--data-dir", str(home), "--port", str(port), "--dashboard-port", str(dash)],
        stdout=subprocess.DEVNULL,
    )
    context = ssl.create_default_context(cafile=str(_tls_cert(home)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", dash), timeout=1) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                    return process, f"https://127.0.0.1:{dash}"
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("`alpr-workbench serve` did not start")


def _tls_cert(home: Path) -> Path:
    """The service's certificate for ``home``."""
    from alpr_workbench.service.tls import tls_files

    return tls_files(home).certfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--home", type=Path, help="Reuse (or build once into) this directory.")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    from bokeh.document import Document

    from alpr_workbench.dashboard import (
        DashboardApp,
        DashboardSource,
        DashboardState,
        allowed_dashboard_users,
    )
    from alpr_workbench.demo import build_demo

    home = args.home or Path(tempfile.mkdtemp(prefix="alpr-dash-")) / "home"
    try:
        t0 = time.perf_counter()
        summary = build_demo(home, days=args.days, scale=args.scale)
        console.print(
            f"city: {args.days} days at scale {args.scale}: {summary.reads_stored:,} reads, "
            f"{summary.hits:,} hits, {summary.recoveries} recoveries, built in "
            f"{time.perf_counter() - t0:.1f} s"
        )

        global USER
        rows: list[tuple[str, float, float | None]] = []
        t0 = time.perf_counter()
        source = DashboardSource.open(home)
        command = source.store.tables.read("users").filter(pl.col("role") == "command_staff")
        allowed = allowed_dashboard_users(source.store)
        USER = next(u for u in command["user_id"] if u in allowed)
        source.geo()
        source.audit_health()
        rows.append(
            ("server start: open store and audit log, geometry", time.perf_counter() - t0, None)
        )

        def first_paint() -> DashboardState:
            state = DashboardState(source=source, user_id=USER)
            DashboardApp(state=state).template().server_doc(Document())
            return state

        def cold() -> None:
            source._summaries.clear()  # the gate's read summary is computed afresh

        state = first_paint()
        start, end = state.start, state.end
        state_cold = _timed(
            lambda: DashboardState(source=source, user_id=USER), args.repeats, before=cold
        )
        paint_cold = _timed(first_paint, args.repeats, before=cold)
        paint_warm = _timed(first_paint, args.repeats)
        base_paint = _timed(lambda: _baseline(home, start, end, None), args.repeats)
        rows.append(("state for the default 30 days, summary cold", state_cold, base_paint))
        rows.append(
            ("first paint (30 days; state + all views), summary cold", paint_cold, base_paint)
        )
        rows.append(("first paint, summary cached (another session)", paint_warm, base_paint))

        last = state.last_day
        e_end = max(state.first_day, last - dt.timedelta(days=30))
        earlier = (max(state.first_day, e_end - dt.timedelta(days=29)), e_end)
        changes: list[tuple[str, Callable[[], None], tuple[dt.date, dt.date], list[str] | None]] = [
            (
                "filter: network -> bpd-city",
                lambda: setattr(state, "network_ids", ["bpd-city"]),
                (start, end),
                ["bpd-city"],
            ),
            (
                "filter: another 30-day window",
                lambda: state.set_period(*earlier),
                earlier,
                ["bpd-city"],
            ),
            (
                "filter: last 7 days",
                lambda: state.set_last_days(7),
                (last - dt.timedelta(days=6), last),
                ["bpd-city"],
            ),
            (
                "filter: whole stored range",
                lambda: state.set_last_days(None),
                (state.first_day, last),
                ["bpd-city"],
            ),
        ]
        for label, change, (s, e), nets in changes:

            def reset() -> None:
                state.param.update(start=start, end=end, network_ids=[])
                cold()

            took = _timed(change, args.repeats, before=reset)
            base = _timed(lambda s=s, e=e, nets=nets: _baseline(home, s, e, nets), args.repeats)
            rows.append((f"{label} (summary cold)", took, base))
        state.param.update(start=start, end=end, network_ids=[])
        state.set_last_days(7)
        rows.append(
            (
                "filter: back to last 30 days (summary cached)",
                _timed(
                    lambda: state.set_last_days(30),
                    args.repeats,
                    before=lambda: state.set_last_days(7),
                ),
                None,
            )
        )
        source.close()

        table = Table(
            title=f"dashboard, {args.days} days at scale {args.scale} (median of {args.repeats})"
        )
        for col in ("what", "seconds", "naive baseline s", "speed-up"):
            table.add_column(col)
        for label, took, base in rows:
            table.add_row(
                label,
                f"{took:.3f}",
                "" if base is None else f"{base:.3f}",
                "" if base is None else f"{base / took:.1f}x",
            )
        if not args.no_browser:
            for label, took in (_browser(home) or {}).items():
                table.add_row(label, f"{took:.3f}", "", "")
        console.print(table)
        paints = [t for label, t, _ in rows if label.startswith("first paint")]
        filters = [t for label, t, _ in rows if label.startswith("filter")]
        console.print(
            f"first paint < 3 s: {'met' if max(paints) < 3 else 'MISSED'} "
            f"(worst {max(paints):.2f} s); filter change < 1 s: "
            f"{'met' if max(filters) < 1 else 'MISSED'} (worst {max(filters):.2f} s)"
        )
    finally:
        if args.home is None:
            shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
