"""The annual audit report: inputs from a real store, self-contained and escaped HTML."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.demo import build_demo
from alpr_workbench.governance import AuditLog, SignedDigest, verify_digest
from alpr_workbench.policy import load_policy
from alpr_workbench.reports.audit_checks import AuditInputs, run_checks
from alpr_workbench.reports.audit_report import (
    collect_audit_inputs,
    render_audit_report,
    write_audit_report,
)
from alpr_workbench.schema import empty_frame
from alpr_workbench.store import Store

POLICY = load_policy()
CHECK_IDS = "A1 A2 A3 A4 A5 R1 R2 R3 R4 S1 S2 S3 S4 S5 U1 U2 U3 X1 P1 P2".split()
END = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("audit") / "home"
    build_demo(home, days=8, scale=0.01, end_date=END)
    return home


def _tiny_inputs(reason: str) -> AuditInputs:
    t = dt.datetime(2026, 3, 2, 18, tzinfo=dt.UTC)
    row = {
        "event_id": "e1",
        "occurred_at": t,
        "event_type": "search",
        "user_id": "dkim",
        "organization": POLICY.agency_name,
        "reason_code": "other",
        "reason_text": reason,
        "case_number": "<b>BPD</b>",
        "plate_queried": "<img src=x onerror=alert(1)>",
        "outcome": "allowed",
        "window_from": t - dt.timedelta(days=1),
        "window_to": t,
    }
    events = pl.concat([empty_frame("audit_events"), pl.DataFrame([row])], how="diagonal_relaxed")
    return AuditInputs(
        year=2026,
        audit_events=events,
        users=empty_frame("users"),
        cases=empty_frame("cases"),
        sharing_grants=empty_frame("sharing_grants"),
        hotlists=empty_frame("hotlists"),
        hotlist_entries=empty_frame("hotlist_entries"),
        legal_holds=empty_frame("legal_holds"),
        hits=empty_frame("hits"),
        chain_ok=True,
        chain_problem=None,
        retention_days=30,
        days_stored=[],
        as_of=t + dt.timedelta(hours=1),
    )


def test_report_escapes_the_data_and_loads_nothing_from_outside():
    inputs = _tiny_inputs("<script>alert('x')</script> protest at city hall")
    html = render_audit_report(run_checks(inputs, policy=POLICY), inputs=inputs, digest=None)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    assert "<img" not in html and "<b>BPD" not in html
    assert not re.search(r"https?://", html)
    assert not re.search(r"<(link|iframe|object|embed)\b", html, re.IGNORECASE)
    for check_id in CHECK_IDS:
        assert f'id="check-{check_id}"' in html
    assert "<svg" in html
    assert "No signed digest" in html


def test_collect_reads_tables_log_and_stored_days(demo_home):
    store = Store.open(demo_home)
    with AuditLog.open(demo_home, store.keystore) as log:
        inputs = collect_audit_inputs(store, log, year=END.year)
    assert inputs.chain_ok is True and inputs.chain_problem is None
    assert inputs.days_stored[-1] == END and len(inputs.days_stored) == 8
    assert inputs.audit_events.height > 0
    local = inputs.audit_events["occurred_at"].dt.convert_time_zone(POLICY.timezone)
    assert (local.dt.year() == END.year).all()  # the policy's calendar year
    assert inputs.users.height and inputs.hits.height and inputs.sharing_grants.height
    assert inputs.retention_days == 30
    assert inputs.sharing_history is not None and inputs.sharing_history.height >= 1


def test_write_audit_report_on_a_demo_store(demo_home, tmp_path):
    store = Store.open(demo_home)
    out = tmp_path / "audit.html"
    with AuditLog.open(demo_home, store.keystore) as log:
        results = write_audit_report(store, log, year=END.year, out=out)
        records = log.records_path
    assert [r.check_id for r in results] == CHECK_IDS
    by_id = {r.check_id: r for r in results}
    assert by_id["A5"].passed is True
    assert by_id["R1"].passed is True  # 8 days stored, 30 days retention
    assert by_id["S2"].passed is True  # the loader's audited baseline matches the table
    for check_id in ("A2", "A3", "S1", "S3", "S5", "U1", "U2", "U3"):
        assert by_id[check_id].passed is False, check_id
    html = out.read_text()
    assert not re.search(r"https?://", html)
    assert "alpr-workbench audit verify-digest" in html
    assert "BEGIN PUBLIC KEY" in html
    for check_id in CHECK_IDS:
        assert f'id="check-{check_id}"' in html
    # The digest printed in the report verifies against the log.
    text = re.search(r"<h3>Digest \(JSON\)</h3>\s*<pre>(.*?)</pre>", html, re.S)
    assert text is not None
    digest = SignedDigest.from_json(html_lib.unescape(text.group(1)))
    assert digest.year == END.year
    assert verify_digest(digest, digest.public_key_pem, log_path=records)
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)


def test_a_damaged_log_fails_a5_and_is_not_signed(demo_home, tmp_path):
    home = tmp_path / "copy"
    shutil.copytree(demo_home, home)
    store = Store.open(home)
    with AuditLog.open(home, store.keystore) as log:
        path = log.records_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    out = tmp_path / "audit.html"
    with AuditLog.open(home, store.keystore) as log:
        results = write_audit_report(store, log, year=END.year, out=out)
    a5 = next(r for r in results if r.check_id == "A5")
    assert a5.passed is False
    assert a5.offending["pattern"].to_list()[0] == "chain_broken"
    html = out.read_text()
    assert "DOES NOT VERIFY" in html and "No signed digest" in html
