"""Attacks on the two-person rule through one person's two accounts (issue #15).

A supervisor may not approve their own larger search. The check compared user ids, and full
names as a second line, so a supervisor who also holds an analyst account under another
spelling of their name ("Pat Doe" and "Test t.analyst") approved their own search. Accounts
now carry a person id, recorded by an administrator (``users set-person``), and the approval
is refused, when granted and when used, for two accounts of one person. An administrator may
not unlink their own person's accounts, and one person's accounts may not hold both sides of
a two-person rule checked by user id only (``registry.SPLIT_DUTIES``). Everything goes through
the real service (``tests/service_fixtures.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import polars as pl
import pytest

from alpr_workbench.client import ServiceError, connect
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.tls import tls_files
from alpr_workbench.store import Store
from service_fixtures import ADMIN, CASE, PASSPHRASE, enroll_and_login, served_admin

# name, role, job title: none of the names is another account's
ROSTER = {
    "t.sgt": ("Pat Doe", "supervisor", "Sergeant"),
    "t.sgt2": ("Robin Roe", "supervisor", "Sergeant"),
    "t.sgt3": ("Kim Loe", "supervisor", "Sergeant"),
    "t.admin2": ("Sam Poe", "administrator", "IT Administrator"),
}
SIGNED_IN = (*ROSTER, "t.analyst", "t.other")  # the analysts are assigned to CASE


def _roster_csv(today: dt.date) -> bytes:
    day = (today - dt.timedelta(days=3)).strftime("%m/%d/%Y")
    lines = ["Badge/User ID,Name,Job Title,Role,Agency,Approved By,Approval Date,"
             "ALPR Training Date,Separation Date"]
    lines += [f"{u},{name},{title},{role},Burbank Police Department,{ADMIN},{day},{day},"
              for u, (name, role, title) in ROSTER.items()]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack-person-id")
    with served_admin(root) as (home, admin_session, camera):
        with connect(session_file=admin_session) as admin:
            admin.import_records("users", _roster_csv(dt.datetime.now(dt.UTC).date()),
                                 name="roster.csv")
            service = SimpleNamespace(url=admin.url, cert=tls_files(home).certfile)
            sessions = {ADMIN: admin_session}
            for user_id in SIGNED_IN:
                sessions[user_id] = root / f"{user_id}.json"
                enroll_and_login(service, user_id, admin.issue_enrolment(user_id),
                                 sessions[user_id]).close()
        yield SimpleNamespace(home=home, camera=camera["camera_id"], sessions=sessions)


def _as(served, user_id: str):
    return connect(session_file=served.sessions[user_id])


def _event(served, event_id: str) -> dict:
    store = Store.open(served.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events().filter(pl.col("event_id") == event_id).row(0, named=True)


def test_a_supervisor_cannot_approve_their_own_search_through_an_account_of_another_name(
    served,
):
    with _as(served, ADMIN) as admin:
        admin.set_person("t.sgt", "E-1001", "HR record 1001")
        admin.set_person("t.analyst", "e-1001", "the same sergeant's analyst account")
    with _as(served, "t.sgt") as sergeant, pytest.raises(ServiceError) as refused:
        sergeant.grant_approval("t.analyst", CASE, hours=1)
    assert refused.value.status == 403 and refused.value.code == "refused"
    assert "one person" in str(refused.value)
    event = _event(served, refused.value.event_id)
    assert (event["event_type"], event["outcome"], event["user_id"]) == (
        "approval", "refused", "t.sgt")
    assert json.loads(event["query_json"])["searcher"] == "t.analyst"
    with _as(served, "t.sgt") as sergeant:
        assert sergeant.approvals().is_empty()  # nothing was granted


def test_an_approval_granted_before_the_accounts_were_linked_no_longer_holds(served):
    with _as(served, "t.sgt2") as sergeant:
        approval = sergeant.grant_approval("t.other", CASE, hours=1)
    with _as(served, ADMIN) as admin:
        admin.set_person("t.sgt2", "E-2002")
        admin.set_person("t.other", "E-2002")
    with _as(served, "t.other") as analyst, pytest.raises(ServiceError) as refused:
        analyst.search(case_number=CASE, reason_code="motor_vehicle_theft",
                       camera_ids=[served.camera], approval_id=approval["approval_id"])
    assert "no longer holds" in str(refused.value) and "one person" in str(refused.value)
    assert _event(served, refused.value.event_id)["outcome"] == "refused"


def test_an_administrator_cannot_change_the_person_ids_of_their_own_persons_accounts(served):
    with _as(served, "t.admin2") as other_admin:
        other_admin.set_person(ADMIN, "E-3003")
        other_admin.set_person("t.victim", "E-3003")
    with _as(served, ADMIN) as admin:
        for user_id, person in ((ADMIN, None), ("t.victim", None), ("t.victim", "E-9"),
                                ("t.remote", "e-3003")):
            with pytest.raises(ServiceError) as refused:
                admin.set_person(user_id, person)
            assert refused.value.status == 403, (user_id, person)
            assert "their own person's accounts" in str(refused.value)
            event = _event(served, refused.value.event_id)
            assert (event["event_type"], event["outcome"], event["user_id"]) == (
                "user_change", "refused", ADMIN)
        users = admin.list_users()
    person = dict(zip(users["user_id"], users["person_id"], strict=True))
    assert (person[ADMIN], person["t.victim"], person["t.remote"]) == ("E-3003", "E-3003", None)


def test_one_persons_accounts_may_not_hold_both_sides_of_the_legal_hold_rule(served):
    with _as(served, ADMIN) as admin:
        admin.set_person("t.sgt3", "E-4004")  # a supervisor: approves legal holds
        with pytest.raises(ServiceError) as refused:
            admin.set_person("t.admin2", "E-4004")  # places them
        assert refused.value.status == 403
        assert "'manage_legal_holds'/'approve' two-person rule" in str(refused.value)
        users = admin.list_users()
    assert users.filter(pl.col("user_id") == "t.admin2")["person_id"].to_list() == [None]
