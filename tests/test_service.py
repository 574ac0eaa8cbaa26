"""The workbench service end to end: a real service process over TLS, the real client."""

from __future__ import annotations

import datetime as dt
import stat

import polars as pl
import pyotp
import pytest
from polars.testing import assert_frame_equal

from alpr_workbench.client import Client, ServiceError, connect
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRequest
from alpr_workbench.service.accounts import ACCOUNTS_FILE
from alpr_workbench.service.sessions import SessionStore
from alpr_workbench.store import Store
from service_fixtures import (
    ADMIN,
    CASE,
    PASSPHRASE,
    PASSWORD,
    build_home,
    start_service,
    stop_service,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("service") / "home"
    code, cert = build_home(home)
    running = start_service(home, code, cert)
    yield running
    stop_service(running)


@pytest.fixture(scope="module")
def admin(service, tmp_path_factory):
    enrolled = Client.enroll(service.url, ADMIN, service.admin_code, PASSWORD, service.cert)
    session = tmp_path_factory.mktemp("admin") / "session.json"
    client = Client.login(service.url, ADMIN, PASSWORD, pyotp.TOTP(enrolled.totp_secret).now(),
                          service.cert, session_file=session)
    yield client
    client.close()


@pytest.fixture(scope="module")
def analyst(service, admin, tmp_path_factory):
    code = admin.issue_enrolment("t.analyst")
    enrolled = Client.enroll(service.url, "t.analyst", code, PASSWORD, service.cert)
    session = tmp_path_factory.mktemp("analyst") / "session.json"
    client = Client.login(service.url, "t.analyst", PASSWORD,
                          pyotp.TOTP(enrolled.totp_secret).now(), service.cert,
                          session_file=session)
    yield client
    client.close()


def _request():
    start = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(0), tzinfo=dt.UTC)
    return {
        "case_number": CASE,
        "reason_code": "motor_vehicle_theft",
        "vehicle_color": "white",
        "window_from": start - dt.timedelta(days=3),
        "window_to": start,
    }


def test_init_makes_an_empty_store_with_one_administrator(service):
    accounts = service.home / ACCOUNTS_FILE
    assert stat.S_IMODE(accounts.stat().st_mode) == 0o600
    assert stat.S_IMODE(service.home.stat().st_mode) == 0o700
    assert b"t.admin" not in accounts.read_bytes()  # sealed, not plain JSON


def test_the_session_file_is_private_and_pins_the_certificate(analyst):
    path = analyst.session_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "BEGIN CERTIFICATE" in path.read_text()


def test_whoami_comes_from_the_session(analyst):
    me = analyst.whoami()
    assert me["user_id"] == "t.analyst" and me["role"] == "analyst"


def test_search_through_the_service_equals_the_gate(service, analyst):
    request = _request()
    with connect(session_file=analyst.session_file) as client:
        found = client.search(**request)
    assert isinstance(found.rows, pl.DataFrame) and found.rows.height > 0
    assert found.event_id.startswith("evt-") and found.total_rows >= found.rows.height

    store = Store.open(service.home, passphrase=PASSPHRASE)
    direct = Gate(store).search("t.analyst", SearchRequest(**request))
    assert_frame_equal(found.rows, direct.rows)

    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events()
    mine = events.filter(pl.col("event_id") == found.event_id)
    assert mine["user_id"].to_list() == ["t.analyst"] and mine["outcome"][0] == "allowed"


def test_a_refused_search_is_403_with_the_reason_and_audit_event(analyst):
    with pytest.raises(ServiceError) as caught:
        analyst.search(**{**_request(), "reason_code": "curiosity"})
    assert caught.value.status == 403 and caught.value.code == "search_refused"
    assert "policy's list" in caught.value.detail and caught.value.event_id


def test_only_administrators_issue_enrolment_codes(analyst):
    with pytest.raises(ServiceError) as caught:
        analyst.issue_enrolment("t.other")
    assert caught.value.status == 403 and caught.value.event_id


def test_sign_ins_and_enrolments_are_audited(service, analyst):
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events()
    logins = events.filter((pl.col("event_type") == "login") & (pl.col("outcome") == "allowed"))
    assert {ADMIN, "t.analyst"} <= set(logins["user_id"])
    changes = events.filter(pl.col("event_type") == "user_change")["query_json"].to_list()
    assert any('"issue_enrolment"' in q and "t.analyst" in q for q in changes)


def test_sessions_expire_when_idle_and_absolutely():
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    sessions = SessionStore(clock=lambda: now[0])
    token, _ = sessions.open("t.analyst")
    for _ in range(17):  # active every 29 minutes, yet ended after 8 hours
        now[0] += dt.timedelta(minutes=29)
        result = sessions.check(token)
    assert result.reason == "session expired; sign in again"
