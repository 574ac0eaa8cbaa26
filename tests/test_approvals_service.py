"""A supervisor's approval of a larger result, end to end (issue #15), through the real service.

A small city is served (``service_fixtures.served_admin``); its administrator imports a
sergeant, ingests more reads at one camera than one search may return, and enrols the sergeant
and an analyst. Everything after that is the command line, as the signed-in users: the analyst's
search is cut at the policy's cap; the sergeant grants the analyst one larger search
(``approvals grant``); the analyst's ``search ... --approval ID`` returns every row; a second use
is refused with a clear message; ``approvals list`` shows the approval used; and the audit log
holds the grant, the use and both searches. The attacks on approvals are in
``tests/attacks/test_attack_approvals.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from alpr_workbench.cli import app
from alpr_workbench.client import connect
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.ingest import write_reads_csv
from alpr_workbench.policy import load_policy
from alpr_workbench.service.tls import tls_files
from alpr_workbench.store import Store
from service_fixtures import ADMIN, CASE, PASSPHRASE, enroll_and_login, served_admin

runner = CliRunner()
POLICY = load_policy()
SERGEANT, ANALYST = "t.sgt", "t.analyst"  # the analyst is assigned to CASE by build_home
REASON = "motor_vehicle_theft"
PLANTED = POLICY.max_rows + 50  # more than one search may return without an approval
APPROVED_ROWS = POLICY.max_rows + 500
_APPROVAL_ID = re.compile(r"apr-[0-9a-f]{24}")


def _sergeant_csv(today: dt.date) -> bytes:
    """One supervisor, in the export format an agency's roster has (examples/users.csv)."""
    day = (today - dt.timedelta(days=3)).strftime("%m/%d/%Y")
    return (
        "Badge/User ID,Name,Job Title,Role,Agency,Approved By,Approval Date,"
        "ALPR Training Date,Separation Date\n"
        f"{SERGEANT},Test Sergeant,Sergeant,supervisor,Burbank Police Department,{ADMIN},"
        f"{day},{day},\n"
    ).encode()


def _busy_reads_csv(camera_id: str, day: dt.date) -> bytes:
    """``PLANTED`` reads at one camera, one a minute from midnight (UTC) of ``day``."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    reads = pl.DataFrame({
        "read_id": [f"approval-busy-{i:05d}" for i in range(PLANTED)],
        "camera_id": [camera_id] * PLANTED,
        "captured_at": [start + dt.timedelta(minutes=i) for i in range(PLANTED)],
        "plate": [f"6APR{i % 500:03d}" for i in range(PLANTED)],
        "plate_state": ["CA"] * PLANTED,
        "confidence_pct": [95.0] * PLANTED,
        "source": ["camera"] * PLANTED,
    })  # fmt: skip
    return write_reads_csv(reads)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The served city, a sergeant and more reads at one camera than the cap; two sessions."""
    root = tmp_path_factory.mktemp("approvals-service")
    with served_admin(root) as (home, admin_session, camera):
        yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        with connect(session_file=admin_session) as admin:
            admin.import_records("users", _sergeant_csv(yesterday), name="sergeant.csv")
            ingested = admin.ingest(_busy_reads_csv(camera["camera_id"], yesterday),
                                    source="approvals test", camera=camera["camera_id"])
            assert ingested["rows_added"] == PLANTED, ingested
            service = SimpleNamespace(url=admin.url, cert=tls_files(home).certfile)
            sessions = {}
            for user_id in (SERGEANT, ANALYST):  # enrolled by the administrator, signed in
                sessions[user_id] = root / f"{user_id}.json"
                enroll_and_login(service, user_id, admin.issue_enrolment(user_id),
                                 sessions[user_id]).close()
        yield {"home": home, "camera": camera["camera_id"], "sessions": sessions}


def _as(served, user_id: str, *args: str) -> Result:
    """``alpr-workbench ARGS`` with ``user_id``'s saved session (who acts comes from it)."""
    return runner.invoke(app, [*args, "--session-file", str(served["sessions"][user_id])],
                         env={"COLUMNS": "240"})


def _search(served, *args: str) -> Result:
    return _as(served, ANALYST, "search", "--case", CASE, "--reason", REASON,
               "--camera", served["camera"], "--json", *args)


def _json_rows(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _said(result: Result) -> str:
    return " ".join(result.output.split())


def _events(served) -> pl.DataFrame:
    store = Store.open(served["home"], passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events()


def test_a_granted_approval_returns_more_rows_once_and_is_audited(served):
    store = Store.open(served["home"], passphrase=PASSPHRASE)
    total = store.reads.query().filter(pl.col("camera_id") == served["camera"]).height
    assert total > POLICY.max_rows

    cut = _search(served)
    assert cut.exit_code == 0, cut.output
    assert len(_json_rows(cut)) == POLICY.max_rows
    assert "ask a supervisor for an approval (--approval)" in _said(cut)

    granted = _as(served, SERGEANT, "approvals", "grant", "--searcher", ANALYST,
                  "--case", CASE, "--max-rows", str(APPROVED_ROWS), "--hours", "1")
    assert granted.exit_code == 0, granted.output
    found = _APPROVAL_ID.search(granted.output)
    assert found is not None, granted.output
    approval_id = found.group(0)
    assert f"granted to {ANALYST} for case {CASE}" in _said(granted)
    assert f"up to {APPROVED_ROWS:,} rows, one search" in _said(granted)

    approved = _search(served, "--approval", approval_id)
    assert approved.exit_code == 0, approved.output
    rows = _json_rows(approved)
    assert len(rows) == total and len({r["read_id"] for r in rows}) == total
    assert "showing" not in _said(approved)  # not cut

    again = _search(served, "--approval", approval_id)
    assert again.exit_code == 3, again.output
    assert f"refused: approval {approval_id} was already used" in _said(again)
    assert _json_rows(again) == []

    for user_id in (SERGEANT, ANALYST):  # the grantor and the searcher both see it used
        listed = _as(served, user_id, "approvals", "list")
        assert listed.exit_code == 0, listed.output
        line = next(x for x in listed.output.splitlines() if approval_id in x)
        granted_at, expires_at, used_at = re.findall(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}", line)
        assert SERGEANT in line and ANALYST in line and CASE in line and used_at >= granted_at

    with connect(session_file=served["sessions"][SERGEANT]) as sergeant:
        row = sergeant.approvals().filter(pl.col("approval_id") == approval_id).row(0, named=True)
    assert row["used_at"] is not None and row["max_rows"] == APPROVED_ROWS

    events = _events(served)
    approvals = events.filter(
        (pl.col("event_type") == "approval") & pl.col("query_json").str.contains(approval_id)
    )
    by_action = {json.loads(q)["approval"]: r for q, r in
                 zip(approvals["query_json"], approvals.iter_rows(named=True), strict=True)}
    assert set(by_action) == {"grant", "use"} and approvals.height == 2
    grant, use = by_action["grant"], by_action["use"]
    assert (grant["user_id"], grant["outcome"], grant["case_number"]) == (SERGEANT, "allowed", CASE)
    assert json.loads(grant["query_json"])["searcher"] == ANALYST
    assert (use["user_id"], use["outcome"], use["case_number"]) == (ANALYST, "allowed", CASE)
    assert json.loads(use["query_json"])["granted_by"] == SERGEANT
    assert row["used_event_id"] == use["event_id"]  # the table names the audit record

    searches = events.filter(
        (pl.col("event_type") == "search") & pl.col("query_json").str.contains(approval_id)
    ).sort("occurred_at")
    assert searches["user_id"].to_list() == [ANALYST, ANALYST]
    assert searches["outcome"].to_list() == ["allowed", "refused"]
    assert "already used" in searches["refusal_reason"][1]


def test_an_analyst_cannot_grant_an_approval(served):
    before = _events(served).filter(pl.col("event_type") == "approval").height
    refused = _as(served, ANALYST, "approvals", "grant", "--searcher", "t.other",
                  "--case", CASE)
    assert refused.exit_code == 2, refused.output
    assert "lacks the 'approve' permission" in _said(refused)
    events = _events(served).filter(pl.col("event_type") == "approval")
    assert events.height == before + 1
    last = events.sort("occurred_at").row(-1, named=True)
    assert (last["user_id"], last["outcome"]) == (ANALYST, "refused")
