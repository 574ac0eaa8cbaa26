"""An annual audit an auditor can file (issue #16, items 5 and 6).

Imported vendor rows stay out of the department's checks and get their own section; every
table is counted for the audited year only; ``audit report`` exits like a linter; the report
carries a methodology, scope and sign-off section and prints without cutting evidence off.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.demo import build_demo
from alpr_workbench.governance import AuditLog, read_vendor_audit
from alpr_workbench.governance.admin import import_vendor_audit
from alpr_workbench.policy import load_policy
from alpr_workbench.reports.audit_checks import (
    CHECK_TITLES,
    AuditInputs,
    CheckResult,
    audit_period,
    describe_check_rules,
    run_checks,
)
from alpr_workbench.reports.audit_report import (
    check_imported_vendor_searches,
    render_audit_report,
    write_annual_audit,
)
from alpr_workbench.schema import empty_frame
from alpr_workbench.store import Store

POLICY = load_policy()
TZ = POLICY.timezone
NOW = dt.datetime.now(dt.UTC)
END = NOW.date() - dt.timedelta(days=1)
runner = CliRunner()


def _frame(table: str, rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return empty_frame(table)
    return pl.concat([empty_frame(table), pl.DataFrame(rows)], how="diagonal_relaxed")


def _search(event_id: str, at: dt.datetime, **kw: object) -> dict:
    return {
        "event_id": event_id, "occurred_at": at, "event_type": "search", "user_id": "dkim",
        "organization": POLICY.agency_name, "reason_code": "motor_vehicle_theft",
        "reason_text": "stolen vehicle reported by owner", "case_number": "BPD-2025-000123",
        "plate_queried": "7ABC123", "outcome": "allowed", "networks_searched": 1,
        "window_from": at - dt.timedelta(days=1), "window_to": at, **kw,
    }  # fmt: skip


def _vendor(event_id: str, at: dt.datetime, **kw: object) -> dict:
    """An imported row as bad as they come: no reason, no case, federal, far lookback."""
    return {
        "event_id": f"flock_public_search_audit:{event_id}", "occurred_at": at,
        "event_type": "vendor_search", "user_id": "ice.agent", "organization": "ICE ERO",
        "organization_type": "federal", "reason_text": "investigation", "outcome": "allowed",
        "plate_queried": "8XYZ999", "networks_searched": 900,
        "window_from": at - dt.timedelta(days=400), "window_to": at, **kw,
    }  # fmt: skip


CASES = _frame("cases", [{"case_number": "BPD-2025-000123", "title": "Stolen Civic",
                          "offense_type": "motor_vehicle_theft", "status": "open",
                          "opened_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}])


def _inputs(events: list[dict], **kw: object) -> AuditInputs:
    base: dict = {
        "year": 2025, "audit_events": _frame("audit_events", events),
        "users": empty_frame("users"), "cases": CASES,
        "sharing_grants": empty_frame("sharing_grants"), "hotlists": empty_frame("hotlists"),
        "hotlist_entries": empty_frame("hotlist_entries"),
        "legal_holds": empty_frame("legal_holds"), "hits": empty_frame("hits"),
        "chain_ok": True, "chain_problem": None, "retention_days": 30, "days_stored": [],
        "as_of": dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC), "timezone": TZ,
    }  # fmt: skip
    return AuditInputs(**(base | kw))


def _summary(results: list[CheckResult], *, drop: tuple[str, ...] = ()) -> list[tuple]:
    return [
        (r.check_id, r.passed, sorted((k, v) for k, v in r.counts.items()
                                      if f"{r.check_id}.{k}" not in drop),
         r.offending.height)
        for r in results
    ]  # fmt: skip


# -- vendor rows are another system's records -------------------------------------------------
def test_vendor_rows_do_not_change_any_department_check():
    t = dt.datetime(2025, 6, 2, 18, tzinfo=dt.UTC)
    own = [_search(f"e{i}", t + dt.timedelta(days=d)) for i, d in enumerate((0, 1, 2, 40, 41))]
    # Vendor rows filling the department's silent stretch (A5 must still see the gap), with
    # the fields A1 wants blank and a reason, case, scope and lookback A2, A3, P2, R3 flag.
    vendor = [
        _vendor(f"v{i}", t + dt.timedelta(days=3 + 2 * i), case_number=None,
                user_id=None if i % 2 else "ice.agent")
        for i in range(18)
    ]  # fmt: skip
    kw = {"log_started_at": t, "as_of": t + dt.timedelta(days=42)}
    alone = run_checks(_inputs(own, **kw), policy=POLICY)
    mixed = run_checks(_inputs(own + vendor, **kw), policy=POLICY)
    assert _summary(mixed) == _summary(alone)
    by_id = {r.check_id: r for r in mixed}
    assert not any(
        "flock" in str(record) for r in mixed for record in r.offending["record_id"].to_list()
    )
    assert by_id["A1"].counts["access_records"] == 5 and by_id["A1"].passed is True
    assert by_id["A3"].passed is True and by_id["S3"].passed is not False
    assert by_id["A5"].passed is False and by_id["A5"].counts["days_with_records"] == 5
    # The vendor rows are judged in their own section, by the vendor audit's checks.
    section = check_imported_vendor_searches(_inputs(own + vendor, **kw), policy=POLICY)
    assert section.searches == 18
    failed = set(section.failed)
    assert {"reason", "lookback", "networks", "searcher"} <= failed, failed
    case = next(c for c in section.checks if c.check_id == "case_number")
    assert case.passed is None and "case_number" in (case.not_run or "")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("filing") / "home"
    build_demo(home, days=4, scale=0.01, end_date=END)
    return home


def test_importing_a_vendor_log_into_a_real_store_leaves_the_checks_as_they_were(
    demo_home: Path, tmp_path: Path
) -> None:
    from admin_fixtures import member

    home = tmp_path / "copy"
    shutil.copytree(demo_home, home)
    store = Store.open(home)
    auditor = member(home, "auditor")
    as_of = NOW
    with AuditLog.open(home, store.keystore) as log:
        before = write_annual_audit(store, log, year=END.year, out=tmp_path / "a.html",
                                    as_of=as_of)  # fmt: skip
    start, end = audit_period(END.year, TZ)
    first, last = start + dt.timedelta(hours=12), min(end, NOW) - dt.timedelta(hours=1)
    csv = tmp_path / "vendor.csv"
    rows = [
        f"v{i},agent{i % 3},{(first + (last - first) * i / 19).strftime('%Y-%m-%d %H:%M:%S')},"
        f"{3 + i},{'investigation' if i % 2 else 'stolen vehicle'}"
        for i in range(20)
    ]
    csv.write_text("id,userId,searchDate,cameraCount,reason\n" + "\n".join(rows) + "\n")
    with AuditLog.open(home, store.keystore) as log:
        imported = read_vendor_audit(csv, organization="Springfield PD")
        import_vendor_audit(store, log, imported, actor=auditor, policy=POLICY, now=NOW)
        after = write_annual_audit(store, log, year=END.year, out=tmp_path / "b.html",
                                   as_of=as_of, user_id=auditor)  # fmt: skip
    # The import itself is the department's own action: one more record (A5), nothing else.
    assert _summary(after.results, drop=("A5.records",)) == _summary(
        before.results, drop=("A5.records",)
    )
    a5 = {r.check_id: r for r in after.results}["A5"].counts["records"]
    assert a5 == {r.check_id: r for r in before.results}["A5"].counts["records"] + 1
    assert after.vendor.searches == len(rows) and before.vendor.searches == 0
    assert after.vendor.imports["rows_read"].to_list() == [len(rows)]
    assert "reason" in after.vendor.failed  # "investigation" says nothing
    assert "vendor-reason" in after.failed
    html = (tmp_path / "b.html").read_text()
    section = html[html.index('id="vendor"'):html.index('id="methodology"')]
    assert "Another system&#39;s records" in section or "Another system's records" in section
    assert "Springfield PD" in section and "vendor-reason" in section


# -- year filtering ---------------------------------------------------------------------------
def test_nothing_from_the_next_year_is_counted():
    la_new_year = dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)  # midnight in Los Angeles
    inside = [
        _search("e-jun", dt.datetime(2025, 6, 2, 18, tzinfo=dt.UTC)),
        # 23:00 on 31 December in Los Angeles, already 2026 in UTC: counted for 2025.
        _search("e-eve", la_new_year - dt.timedelta(hours=1), reason_text="investigation"),
    ]
    outside = [
        _search("e-2026", la_new_year + dt.timedelta(hours=1), reason_text="investigation",
                case_number=None, networks_searched=99),
        _search("e-2024", dt.datetime(2025, 1, 1, 7, tzinfo=dt.UTC), case_number=None),
    ]  # fmt: skip
    hit = {"read_id": "r", "entry_id": "n1", "hotlist_id": "h1", "hotlist_source": "ncic",
           "camera_id": "c", "network_id": "n", "read_plate": "7ABC123",
           "listed_plate": "7ABC123", "match_tier": "exact", "priority": 1}  # fmt: skip
    hits = [
        {**hit, "hit_id": "h-2025", "captured_at": dt.datetime(2025, 12, 1, tzinfo=dt.UTC),
         "disposition": "confirmed"},
        {**hit, "hit_id": "h-2026", "captured_at": la_new_year + dt.timedelta(days=3),
         "disposition": "pending"},
    ]  # fmt: skip
    outcomes = [{"outcome_id": "o-2026", "hit_id": "h-2026", "outcome_type": "stop",
                 "occurred_at": la_new_year + dt.timedelta(days=3), "is_misread_stop": True}]
    holds = [{"hold_id": "hold-2026", "case_number": None, "approver_user_id": None,
              "created_at": la_new_year + dt.timedelta(days=2)}]
    lists = [{"hotlist_id": "h-joke", "name": "my ex lol", "source": "custom",
              "created_at": la_new_year + dt.timedelta(days=2)}]
    days = [dt.date(2025, 12, 30), dt.date(2026, 1, 5)]
    inputs = _inputs(
        inside + outside, hits=_frame("hits", hits), outcomes=_frame("outcomes", outcomes),
        legal_holds=_frame("legal_holds", holds), hotlists=_frame("hotlists", lists),
        days_stored=days,
    )  # fmt: skip
    by_id = {r.check_id: r for r in run_checks(inputs, policy=POLICY)}
    assert by_id["A1"].counts["access_records"] == 2
    assert by_id["A3"].counts["searches"] == 2
    assert by_id["A3"].offending["record_id"].to_list() == ["e-eve"]
    assert by_id["A2"].passed is True and by_id["P2"].passed is True
    assert by_id["X1"].counts["hits"] == 1 and by_id["X1"].counts["stops_on_misread"] == 0
    assert by_id["X1"].passed is True
    assert by_id["R2"].counts["holds"] == 0 and by_id["R2"].passed is None
    assert by_id["R4"].counts["hotlists"] == 0
    assert by_id["R1"].counts["days_stored"] == 1
    every = pl.concat([r.offending.select("record_id") for r in by_id.values()])
    assert not set(every["record_id"]) & {"e-2026", "e-2024", "h-2026", "o-2026", "hold-2026"}


def test_the_audit_period_is_the_policy_time_zones_calendar_year(demo_home: Path) -> None:
    from alpr_workbench.reports.audit_report import collect_audit_inputs

    store = Store.open(demo_home)
    with AuditLog.open(demo_home, store.keystore) as log:
        inputs = collect_audit_inputs(store, log, year=END.year)
    start, end = audit_period(END.year, TZ)
    assert inputs.timezone == TZ
    times = inputs.audit_events["occurred_at"]
    assert times.len() and times.min() >= start and times.max() < end  # type: ignore[operator]


# -- methodology, scope and sign-off ----------------------------------------------------------
def test_every_check_has_one_rule_read_from_the_policy():
    rules = describe_check_rules(POLICY, retention_days=45)
    assert set(rules) == set(CHECK_TITLES)
    assert "45 days" in rules["R3"] and POLICY.case_number_pattern in rules["A2"]
    stricter = POLICY.model_copy(update={"max_networks_per_search": 4})
    assert "over 4 networks" in describe_check_rules(stricter, retention_days=30)["P2"]
    assert "over 4 networks" not in rules["P2"]


def test_report_has_methodology_scope_and_sign_off():
    t = dt.datetime(2025, 6, 2, 18, tzinfo=dt.UTC)
    inputs = _inputs([_search("e1", t), _vendor("v1", t)])
    results = run_checks(inputs, policy=POLICY)
    html = render_audit_report(results, inputs=inputs, digest=None, policy=POLICY,
                               auditor="t.auditor")  # fmt: skip
    methodology = html[html.index('id="methodology"'):]
    for heading in ("Audit period", "Data sources", "Checks, rules and thresholds",
                    "Sampling", "Limitations", "Sign-off"):  # fmt: skip
        assert f"<h3>{heading}</h3>" in methodology, heading
    assert f"Calendar year 2025 in {TZ}" in methodology
    assert "2025-01-01 08:00" in methodology and "2026-01-01 08:00" in methodology
    assert "every record of the period was examined" in methodology
    assert "Imported vendor search logs (another system" in methodology
    assert "t.auditor" in methodology and "Signature" in methodology
    for check_id in CHECK_TITLES:
        assert f"<td>{check_id}</td>" in methodology
    assert "vendor-reason" in html[html.index('id="vendor"'):html.index('id="methodology"')]


def test_printed_report_is_landscape_and_cells_wrap(tmp_path: Path) -> None:
    from alpr_workbench.reports.pdf import find_chromium, html_to_pdf

    t = dt.datetime(2025, 6, 2, 18, tzinfo=dt.UTC)
    long = "x" * 300  # one unbroken word, wider than any page
    inputs = _inputs([_search("e1", t, reason_text=long, reason_code="bogus")])
    html = render_audit_report(run_checks(inputs, policy=POLICY), inputs=inputs, digest=None)
    assert re.search(r"@page \{ size: A4 landscape", html)
    assert "overflow-wrap: anywhere" in html and 'class="evidence"' in html
    if find_chromium() is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    page = tmp_path / "audit.html"
    page.write_text(html)
    pdf = html_to_pdf(page, tmp_path / "audit.pdf").read_bytes()
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert box is not None and float(box.group(1)) > float(box.group(2))


# -- exit status through the command line, against a real service -----------------------------
def test_audit_report_exits_like_a_linter(tmp_path: Path) -> None:
    from admin_fixtures import add_users, sign_in
    from alpr_workbench.service.initialize import init_workbench
    from service_fixtures import PASSPHRASE, start_service, stop_service

    home = tmp_path / "home"
    made = init_workbench(home, "t.filing-admin", "Test Administrator", passphrase=PASSPHRASE)
    add_users(home, {"t.filing-auditor": "auditor"}, passphrase=PASSPHRASE)
    service = start_service(home, made.enrolment_code, made.certfile)
    year = str(NOW.year)
    try:
        session = sign_in(service, ["t.filing-auditor"], tmp_path,
                          passphrase=PASSPHRASE)["t.filing-auditor"]  # fmt: skip

        def report(*args: str) -> tuple[int, str]:
            out = tmp_path / "audit.html"
            result = runner.invoke(app, ["audit", "report", *args, "--out", str(out),
                                         "--session-file", str(session)])  # fmt: skip
            return result.exit_code, " ".join(result.output.split())

        status, said = report("--year", year)
        assert status == 0, said
        assert "applicable checks passed: exit status 0" in said
        csv = tmp_path / "vendor.csv"
        when = (NOW - dt.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
        csv.write_text(f"id,userId,searchDate,cameraCount,reason\nv1,u1,{when},3,inv\n")
        imported = runner.invoke(app, ["audit", "import-vendor", str(csv), "--organization",
                                       "Springfield PD", "--session-file", str(session)])
        assert imported.exit_code == 0, imported.output
        status, said = report("--year", year)
        assert status == 1, said
        assert re.search(r"1 of \d+ applicable checks failed \(vendor-reason\): exit status "
                         r"1, because a check failed", said), said  # fmt: skip
        status, said = report("--year", "1999")
        assert status == 2, said
    finally:
        stop_service(service)
