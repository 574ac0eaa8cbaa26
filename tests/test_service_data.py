"""The notebooks' data through the service (``/v1/data/...``), against a real service.

A demo city is served by the service in a subprocess; its demo users of each role sign in
through enrolment and login. Each route answers a permitted role, refuses (403, audited) a
role without the permission, and audits the view with the session's user.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from alpr_workbench.client import Client, ServiceError, connect
from alpr_workbench.demo import build_demo
from alpr_workbench.governance import verify_digest
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.reports.audit_report import PLATE_MASK
from alpr_workbench.schema import load_table
from alpr_workbench.service.routes_data import DATA_PATHS
from alpr_workbench.store import Store

ROLES = ("analyst", "command_staff", "auditor", "administrator")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from demo_service_fixtures import start_demo_service
    from service_fixtures import stop_service

    home = tmp_path_factory.mktemp("data-served") / "home"
    build_demo(home, days=3, scale=0.05)
    running = start_demo_service(home)
    yield running
    stop_service(running.service)


@pytest.fixture(scope="module")
def clients(served, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions")
    made: dict[str, Client] = {}
    for role in ROLES:
        served.sign_in(role, folder / f"{role}.json")
        made[role] = connect(session_file=folder / f"{role}.json")
    yield made
    for client in made.values():
        client.close()


def _events(served) -> pl.DataFrame:
    store = Store.open(served.service.home)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events()


def _audited(served, event_id: str, user_id: str, outcome: str) -> dict:
    row = _events(served).filter(pl.col("event_id") == event_id).row(0, named=True)
    assert (row["user_id"], row["outcome"]) == (user_id, outcome)
    return row


def _refused(served, call, user_id: str) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call()
    refusal = caught.value
    assert (refusal.status, refusal.code) == (403, "refused")
    assert refusal.event_id
    _audited(served, refusal.event_id, user_id, "refused")
    return refusal


def _store(served) -> Store:
    return Store.open(served.service.home)


def test_every_path_is_served_and_needs_a_session(served) -> None:
    with served.service.raw() as http:
        for path in sorted(DATA_PATHS):
            answer = http.get(path)
            assert answer.status_code == 401, path
            assert answer.json()["error"] == "unauthenticated"


def test_an_analyst_gets_their_own_cases_cameras_and_networks(served, clients) -> None:
    analyst = clients["analyst"]
    me = served.accounts["analyst"].user_id
    cases = analyst.cases()
    assert cases.height and set(cases["user_id"]) == {me}
    assert {"case_number", "reason_code"} <= set(cases.columns)
    store = _store(served)
    assert analyst.cameras().equals(store.tables.read("cameras"))
    assert analyst.networks().height == store.tables.read("networks").height


def test_read_counts_and_trend_add_up_to_the_stored_reads(served, clients) -> None:
    count = _store(served).reads.row_count()
    counts = clients["command_staff"].read_counts()
    assert set(counts.columns) >= {"camera_id", "day", "reads"} and "plate" not in counts.columns
    assert counts["reads"].sum() == count
    assert clients["analyst"].trend()["reads"].sum() == count
    tables = clients["command_staff"].efficacy_tables()
    assert tables["figures"]["reads"] == count
    assert tables["funnel"].columns == ["stage", "hits"]
    assert "hotlist_source" in tables["hits_by_source"].columns


def test_hits_outcomes_and_entries_carry_no_plate(served, clients) -> None:
    store = _store(served)
    hits, entries = clients["analyst"].hits(), clients["analyst"].hotlist_entries()
    assert hits.height == store.tables.read("hits").height > 0
    assert not set(load_table("hits").personal_columns) & set(hits.columns)
    assert entries.height and not {"plate", "plate_state", "vin"} & set(entries.columns)
    assert {"entry_id", "category"} <= set(entries.columns)
    # The actionable fields follow a person's confirmation, in the hit workflow only.
    assert not {"theft_date", "originating_agency", "reason"} & set(entries.columns)
    # Where vehicles were recovered: to a role that searches and sees places, not an auditor.
    assert {"lat", "lon"} <= set(clients["analyst"].outcomes().columns)
    audited = clients["auditor"].outcomes()
    assert audited.height and not {"lat", "lon"} & set(audited.columns)


def test_an_auditor_runs_the_checks_with_plates_masked(served, clients) -> None:
    auditor = clients["auditor"]
    year, checks = auditor.audit_checks()
    assert {"A1", "P1", "P2"} <= set(checks["check_id"])
    flagged = checks.filter(pl.col("offending") > 0)
    assert flagged.height, "the demo city plants improper use"
    plates = set(_store(served).tables.read("hits")["listed_plate"])
    for check_id in flagged["check_id"]:
        rows = auditor.audit_offending(check_id, year)
        assert rows.height == flagged.filter(pl.col("check_id") == check_id)["offending"][0]
        text = json.dumps(rows.to_dicts(), default=str)
        assert not any(p in text for p in plates if len(p) >= 5), check_id
        for column in (c for c in rows.columns if "plate" in c.lower()):
            shown = rows[column].drop_nulls()
            assert shown.str.contains(PLATE_MASK, literal=True).all(), (check_id, column)
    with pytest.raises(ServiceError, match="no check"):
        auditor.audit_offending("Z9", year)


def test_the_digest_verifies_with_the_public_key(served, clients) -> None:
    year, _ = clients["auditor"].audit_checks()
    digest, public_key = clients["auditor"].audit_digest(year)
    assert digest.year == year and verify_digest(digest, public_key)


def test_own_audit_trail_holds_only_the_users_records(served, clients) -> None:
    analyst = clients["analyst"]
    analyst.cameras()
    trail = analyst.my_audit_trail(limit=200)
    assert trail.height and "query_json" not in trail.columns
    me = served.accounts["analyst"].user_id
    mine = _events(served).filter(pl.col("user_id") == me)
    assert trail.height == min(200, mine.height - 1)  # the trail's own record comes after


def test_transparency_findings(served, clients) -> None:
    found = clients["command_staff"].transparency_findings()
    assert {"flagged_organizations", "flagged_hotlists", "portal"} <= set(found)
    assert found["portal"]["available"] in (True, False)


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        ("analyst", "cases", "/v1/data/cases"),
        ("analyst", "read_counts", "/v1/data/read-counts"),
        ("command_staff", "hits", "/v1/data/hits"),
        ("auditor", "cases", "/v1/data/cases"),
        ("auditor", "audit_checks", "/v1/data/audit/checks"),
        ("administrator", "networks", "/v1/data/networks"),
    ],
)
def test_a_view_is_audited_with_the_session_user(served, clients, role, method, path) -> None:
    getattr(clients[role], method)()
    user_id = served.accounts[role].user_id
    last = _events(served).filter(pl.col("user_id") == user_id).tail(1).row(0, named=True)
    assert (last["event_type"], last["outcome"]) == ("aggregate", "allowed")
    assert json.loads(last["query_json"])["path"] == path


@pytest.mark.parametrize(
    ("role", "call"),
    [
        ("analyst", lambda c: c.audit_checks()),
        ("analyst", lambda c: c.audit_offending("A1")),
        ("command_staff", lambda c: c.audit_checks(2026)),
        ("command_staff", lambda c: c.audit_offending("P1")),
    ],
)
def test_a_role_without_the_permission_is_refused_and_audited(served, clients, role,
                                                             call) -> None:
    refusal = _refused(served, lambda: call(clients[role]), served.accounts[role].user_id)
    assert role in refusal.detail


def test_an_administrator_sees_every_case(served, clients) -> None:
    assert clients["administrator"].cases().height == _store(served).tables.read("cases").height
