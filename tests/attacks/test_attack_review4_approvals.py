"""Review 4: a supervisor approving their own search through their second account.

An approval's approver must be another user than the searcher. A supervisor who also holds
an analyst account (the same person, another user id) could grant that account an approval
and run the larger search as the analyst: the user ids differ, so it passed. Now an approver
whose account carries the searcher's full name is refused, at the grant and again when the
approval is used (an account renamed after the grant), and the refusal is audited.
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from alpr_workbench.governance.approvals import (
    ApprovalRefused,
    approval_problem,
    grant_approval,
)
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.registry import get_user
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store

NOW = dt.datetime(2026, 10, 4, 18, 0, tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(days=10)
CASE = "BPD-2026-930001"
POLICY = load_policy().model_copy(update={"max_rows": 50})


def _user(user_id: str, full_name: str, role: str, title: str) -> dict[str, object]:
    return {
        "user_id": user_id, "full_name": full_name, "role": role,
        "organization": "Burbank Police Department", "organization_type": "ca_local_agency",
        "job_title": title, "is_active": True, "approved_by": "dlee", "approved_at": T0,
        "trained_at": T0,
    }  # fmt: skip


USERS = [
    _user("r.sgt", "Robin Ortega", "supervisor", "Sergeant"),
    _user("r.ortega", "robin  ORTEGA", "analyst", "Crime Analyst"),  # the same person
    _user("k.analyst", "Kim Analyst", "analyst", "Crime Analyst"),
]


@pytest.fixture
def env(store: Store):
    store.tables.write("users", pl.DataFrame(USERS, schema=store.tables.read("users").schema))
    store.tables.write("cases", pl.DataFrame({
        "case_number": [CASE], "title": ["Stolen Honda Civic"],
        "offense_type": ["motor_vehicle_theft"], "status": ["open"], "opened_at": [T0],
        "assigned_user_ids": [["r.ortega", "k.analyst"]],
    }))  # fmt: skip
    with AuditLog.open(store.home, store.keystore) as audit:
        yield store, audit


def _grant(store: Store, audit: AuditLog, searcher: str):  # noqa: ANN202 - Approval
    return grant_approval(store, audit.append, actor="r.sgt", searcher_user_id=searcher,
                          case_number=CASE, policy=POLICY, now=NOW)


def test_a_supervisor_cannot_approve_their_own_second_account(env) -> None:
    store, audit = env
    with pytest.raises(ApprovalRefused, match="same person's name"):
        _grant(store, audit, "r.ortega")
    last = audit.events().row(-1, named=True)
    assert last["event_type"] == "approval" and last["outcome"] == "refused"
    assert json.loads(last["query_json"])["searcher"] == "r.ortega"
    assert store.tables.read("search_approvals").is_empty()


def test_an_approval_stops_holding_once_the_searcher_is_renamed_to_the_approver(env) -> None:
    store, audit = env
    approval = _grant(store, audit, "k.analyst")  # another person: allowed
    users = store.tables.read("users").with_columns(
        full_name=pl.when(pl.col("user_id") == "k.analyst").then(pl.lit("Robin Ortega"))
        .otherwise(pl.col("full_name"))
    )
    store.tables.write("users", users)
    searcher = get_user(store, "k.analyst")
    assert searcher is not None
    problem, _ = approval_problem(store, approval_id=approval.approval_id, user=searcher,
                                  case_number=CASE, policy=POLICY, now=NOW)
    assert problem is not None and "same person's name" in problem
