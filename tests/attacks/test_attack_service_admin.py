"""Attacks on administration through the service (issue #15): the actor is the session's user.

Each test is the attack as a signed-in (or once signed-in) user would run it; each must be
refused with 403 and an audit record naming the session's user, and change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import polars as pl
import pytest

from admin_fixtures import add_users, as_user, sign_in
from alpr_workbench.cli import app
from alpr_workbench.client import Client, ServiceError, connect
from alpr_workbench.governance.admin import configured_retention_days
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.store import Store
from service_fixtures import ADMIN, PASSPHRASE, build_home, start_service, stop_service

pytestmark = pytest.mark.attack

ROLES = {"t.admin2": "administrator", "t.super": "supervisor", "t.investigator": "investigator"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("attack-admin-service") / "home"
    code, cert = build_home(home)
    add_users(home, ROLES, passphrase=PASSPHRASE)
    running = start_service(home, code, cert)
    yield running
    stop_service(running)


@pytest.fixture(scope="module")
def sessions(service, tmp_path_factory):
    folder = tmp_path_factory.mktemp("admin-sessions")
    return sign_in(service, [ADMIN, "t.analyst", *ROLES], folder, passphrase=PASSPHRASE)


def _client(sessions, user: str) -> Client:
    return connect(session_file=sessions[user])


def _events(service) -> pl.DataFrame:
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events()


def _refused(call, service, user: str) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call()
    error = caught.value
    assert error.status == 403 and error.event_id, error
    record = _events(service).filter(pl.col("event_id") == error.event_id)
    assert record["user_id"].to_list() == [user] and record["outcome"][0] == "refused"
    return error


def test_an_analyst_session_cannot_purge(service, sessions):
    with _client(sessions, "t.analyst") as analyst:
        error = _refused(lambda: analyst.purge(retention_days=1), service, "t.analyst")
        _refused(lambda: analyst.purge(dry_run=True), service, "t.analyst")
    assert "purge" in error.detail
    assert len(Store.open(service.home, passphrase=PASSPHRASE).reads.days()) == 2


def test_an_analyst_session_cannot_add_grants_or_agencies(service, sessions):
    before = Store.open(service.home, passphrase=PASSPHRASE).tables.read("sharing_grants")
    with _client(sessions, "t.analyst") as analyst:
        _refused(lambda: analyst.add_grant(
            network_id=before["network_id"][0], recipient_org="Glendale Police Department",
            approved_by="x", basis="y", review_by_date=dt.date(2027, 1, 1)),
            service, "t.analyst")
        _refused(lambda: analyst.revoke_grant(before["grant_id"][0]), service, "t.analyst")
        _refused(lambda: analyst.add_agency("Springfield Police Department",
                                            "ca_local_agency", "CA"), service, "t.analyst")
    after = Store.open(service.home, passphrase=PASSPHRASE).tables.read("sharing_grants")
    assert after.equals(before)


def test_an_analyst_session_cannot_rotate_keys_or_change_settings(service, sessions):
    store = Store.open(service.home, passphrase=PASSPHRASE)
    days = configured_retention_days(store)
    with _client(sessions, "t.analyst") as analyst:
        _refused(analyst.rotate_keys, service, "t.analyst")
        _refused(lambda: analyst.set_retention_days(3650), service, "t.analyst")
    assert configured_retention_days(store) == days
    rotations = _events(service).filter(
        (pl.col("event_type") == "key_rotation") & (pl.col("outcome") == "allowed"))
    assert rotations.is_empty()


def test_an_analyst_session_cannot_place_or_release_holds(service, sessions):
    with _client(sessions, "t.analyst") as analyst:
        _refused(lambda: analyst.release_legal_hold("hold-1"), service, "t.analyst")
        _refused(lambda: analyst.place_legal_hold(
            hold_id="hold-x", case_number="BPD-2026-910001", approver_user_id="t.super",
            reason="keep", review_by_date=dt.date(2027, 1, 1), read_ids=[]),
            service, "t.analyst")


def test_an_analyst_session_cannot_manage_users_or_hotlists(service, sessions):
    with _client(sessions, "t.analyst") as analyst:
        _refused(lambda: analyst.disable_user(ADMIN), service, "t.analyst")
        _refused(analyst.list_users, service, "t.analyst")
        _refused(lambda: analyst.import_hotlist(b"Plate,State\n7ABC123,CA\n", source="ncic"),
                 service, "t.analyst")
        _refused(lambda: analyst.create_hotlist(
            name="x", case_number="BPD-2026-910001", reason="y",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3)), service, "t.analyst")
        _refused(lambda: analyst.import_vendor_audit(b"ID,Name\n"), service, "t.analyst")
        _refused(lambda: analyst.ingest(b"read_id\n"), service, "t.analyst")


def test_an_actor_smuggled_into_the_body_is_not_taken(service, sessions):
    with _client(sessions, "t.analyst") as analyst:
        token = json.loads(sessions["t.analyst"].read_text())["token"]
        with service.raw("127.0.0.71") as http:
            answer = http.post("/v1/admin/settings/retention",
                               json={"retention_days": 60, "actor": ADMIN, "user_id": ADMIN},
                               headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code in (403, 422), answer.text
        assert analyst.whoami()["user_id"] == "t.analyst"


def test_no_session_no_admin_action(service):
    with service.raw("127.0.0.72") as http:
        for path in ("/v1/admin/purge", "/v1/admin/keys/rotate",
                     "/v1/admin/users/t.admin2/disable"):
            answer = http.post(path, json={})
            assert answer.status_code == 401 and answer.json()["error"] == "unauthenticated"


def test_a_disabled_administrators_live_session_is_refused(service, sessions):
    with _client(sessions, "t.admin2") as admin2, _client(sessions, ADMIN) as admin:
        assert admin2.whoami()["role"] == "administrator"
        done = admin.disable_user("t.admin2", reason="separated")
        assert done["sessions_ended"] >= 1 and done["event_id"]
        with pytest.raises(ServiceError) as caught:
            admin2.rotate_keys()
        assert caught.value.status in (401, 403)
        with pytest.raises(ServiceError):
            admin2.disable_user(ADMIN)
        users = admin.list_users()
    assert users.filter(pl.col("user_id") == "t.admin2")["is_active"].to_list() == [False]
    changes = _events(service).filter(pl.col("event_type") == "user_change")
    assert any("t.admin2" in q for q in changes.filter(pl.col("user_id") == ADMIN)["query_json"])


def test_an_administrator_session_does_the_work_audited_as_itself(service, sessions):
    with _client(sessions, ADMIN) as admin:
        plan = admin.purge(dry_run=True)
        assert plan["dry_run"] is True and plan["event_id"]
        assert admin.settings()["retention_days"] >= 1
        grants = admin.list_grants()
        assert grants.height > 0
    record = _events(service).filter(pl.col("event_id") == plan["event_id"])
    assert record["user_id"].to_list() == [ADMIN]


ADMIN_COMMANDS = [
    ["purge"], ["ingest"], ["grants", "add"], ["grants", "revoke"], ["grants", "add-agency"],
    ["grants", "snapshot"], ["settings", "set"], ["keys", "rotate"], ["hotlist", "import"],
    ["hotlist", "create"], ["hotlist", "add"], ["hotlist", "change"], ["hotlist", "delete"],
    ["audit", "import-vendor"], ["audit", "checkpoint"],
]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=" ".join)
def test_no_admin_command_accepts_an_asserted_user(command):
    from typer.testing import CliRunner

    shown = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert not re.search(r"--user\b", shown.output), shown.output
    refused = CliRunner().invoke(app, [*command, "--user", ADMIN])
    assert refused.exit_code != 0


def test_an_analyst_cannot_purge_from_the_command_line(service, sessions):
    result = as_user(sessions["t.analyst"], "purge", "--dry-run")
    assert result.exit_code == 2 and "may not purge" in " ".join(result.output.split())


def test_an_oversized_upload_is_refused_before_it_is_read(service, sessions):
    from alpr_workbench.service.routes_admin import MAX_UPLOAD_BYTES

    token = json.loads(sessions["t.investigator"].read_text())["token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    with service.raw("127.0.0.73") as http:
        huge = http.post("/v1/admin/hotlists/import", params={"source": "ncic"},
                         content=b"x" * (MAX_UPLOAD_BYTES + 1), headers=headers)
        assert huge.status_code == 413
        # only the CSV routes take large bodies: a JSON route keeps the 64 KiB limit
        big = http.post("/v1/admin/purge", content=b" " * (70 * 1024),
                        headers={**headers, "Content-Type": "application/json"})
        assert big.status_code == 413


def test_users_commands_act_as_the_session_user(service, sessions):
    refused = as_user(sessions["t.analyst"], "users", "disable", "t.other")
    assert refused.exit_code == 2 and "'administer' permission" in " ".join(refused.output.split())
    listed = as_user(sessions[ADMIN], "users", "list")
    assert listed.exit_code == 0 and "t.other" in listed.output
    assert as_user(sessions[ADMIN], "users", "disable", "t.other").exit_code == 0
    assert as_user(sessions[ADMIN], "users", "enable", "t.other").exit_code == 0
    assert not re.search(r"--user\b", as_user(sessions[ADMIN], "users", "disable",
                                               "--help").output)


def test_an_anonymous_upload_is_answered_before_its_body_is_read(service):
    with service.raw("127.0.0.74") as http:
        answer = http.post("/v1/admin/ingest", content=b"read_id\n" * 1000,
                           headers={"Content-Type": "text/csv"})
    assert answer.status_code == 401 and answer.json()["error"] == "unauthenticated"


REPORT_COMMANDS = [["efficacy"], ["transparency"], ["audit", "report", "--year", "2026"]]


@pytest.mark.parametrize("command", REPORT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_no_report_command_accepts_an_asserted_user(command):
    from typer.testing import CliRunner

    shown = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert not re.search(r"--user\b", shown.output), shown.output
    assert not re.search(r"--data-dir\b", shown.output), shown.output
    refused = CliRunner().invoke(app, [*command, "--user", ADMIN])
    assert refused.exit_code == 2 and "No such option" in refused.output


def test_an_analyst_session_cannot_see_whole_plates_in_the_audit_report(
    service, sessions, tmp_path
):
    year = dt.datetime.now(dt.UTC).year
    with _client(sessions, "t.analyst") as analyst:
        error = _refused(lambda: analyst.audit_report(year, show_plates=True), service,
                         "t.analyst")
        _refused(lambda: analyst.audit_report(year), service, "t.analyst")
    record = _events(service).filter(pl.col("event_id") == error.event_id)
    assert record["event_type"].to_list() == ["export"]
    out = tmp_path / "plates.html"
    result = as_user(sessions["t.analyst"], "audit", "report", "--year", str(year),
                     "--show-plates", "--out", str(out))
    assert result.exit_code == 3 and "refused" in result.output, result.output
    assert "audit event" in " ".join(result.output.split())
    assert not out.exists()
