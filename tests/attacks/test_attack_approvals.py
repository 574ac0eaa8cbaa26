"""Attacks on supervisors' approvals of larger results (issue #15 leftovers).

A larger result than the policy's cap used to pass with ``approved_by="<supervisor id>"``:
anyone could type a supervisor's id. An approval is now granted by the supervisor's own
session (``governance/approvals.py``), for one searcher, one case and one search, and lapses.
Each test below is an attack that passed before (or, for the rules of granting, that had no
guard at all) and must now be refused, with the refusal audited.
"""

import datetime as dt
import json

import polars as pl
import pytest
from pydantic import ValidationError

from alpr_workbench.governance.approvals import ApprovalRefused, grant_approval
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRefused, SearchRequest
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store
from alpr_workbench.synth import CityConfig
from conftest import PASSPHRASE
from gate_fixtures import build_small_city, city_user

CONFIG = CityConfig(days=2, scale=0.05, seed=11)
NOW = dt.datetime.combine(CONFIG.end_date, dt.time(18, 0), tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(days=10)
CASE, OTHER_CASE = "BPD-2026-920001", "BPD-2026-920002"
POLICY = load_policy().model_copy(update={"max_rows": 50})  # the test city is small


USERS = [
    city_user("a.analyst", "analyst", since=T0),
    city_user("a.other", "analyst", since=T0),
    city_user("a.sgt", "supervisor", "Sergeant", since=T0),
    city_user("a.sgt2", "supervisor", "Sergeant", since=T0),
]


@pytest.fixture(scope="module")
def city_home(tmp_path_factory):
    return build_small_city(
        tmp_path_factory.mktemp("attack-approvals") / "home", CONFIG, USERS,
        theft=(CASE, ["a.analyst", "a.other", "a.sgt"]),
        robbery=(OTHER_CASE, ["a.analyst", "a.other"]), opened_at=T0,
    )


@pytest.fixture
def env(city_home):
    store = Store.open(city_home, passphrase=PASSPHRASE)
    audit = AuditLog.open(store.home, store.keystore)
    yield store, audit, Gate._for_testing(store, audit, clock=lambda: NOW, policy=POLICY)
    audit.close()


def _busy_camera(store: Store) -> str:
    return str(store.reads.query(columns=["camera_id"])["camera_id"].mode()[0])


def _search(gate: Gate, store: Store, user: str = "a.analyst", case: str = CASE,
            **overrides: object):
    request = {
        "case_number": case, "reason_code": "motor_vehicle_theft",
        "reason_text": "stolen silver Civic seen near Magnolia",
        "camera_ids": (_busy_camera(store),), **overrides,
    }
    return gate.search(user, SearchRequest(**request))


def _grant(store: Store, audit: AuditLog, actor: str = "a.sgt2", searcher: str = "a.analyst",
           case: str = CASE, **kw: object):
    return grant_approval(store, audit.append, actor=actor, searcher_user_id=searcher,
                          case_number=case, policy=POLICY, now=kw.pop("now", NOW), **kw)


def _last(audit: AuditLog, event_type: str) -> dict:
    events = audit.events().filter(pl.col("event_type") == event_type)
    return events.row(-1, named=True)


def test_a_typed_supervisor_id_approves_nothing(env):
    store, audit, gate = env
    with pytest.raises(ValidationError, match="approved_by is not accepted"):
        _search(gate, store, approved_by="a.sgt2")
    with pytest.raises(SearchRefused, match="no approval") as refused:
        _search(gate, store, approval_id="a.sgt2")  # a user id in the approval's place
    assert _last(audit, "search")["event_id"] == refused.value.event_id
    assert _search(gate, store).truncated  # still cut at the cap


def test_an_approval_works_once(env):
    store, audit, gate = env
    approval = _grant(store, audit)
    result = _search(gate, store, approval_id=approval.approval_id)
    assert result.total_rows > POLICY.max_rows and not result.truncated
    used = _last(audit, "approval")
    assert used["outcome"] == "allowed" and used["user_id"] == "a.analyst"
    assert json.loads(used["query_json"])["approval"] == "use"
    with pytest.raises(SearchRefused, match="already used") as refused:
        _search(gate, store, approval_id=approval.approval_id)
    assert _last(audit, "search")["event_id"] == refused.value.event_id


def test_an_approval_is_for_one_searcher_and_one_case(env):
    store, audit, gate = env
    approval = _grant(store, audit)
    with pytest.raises(SearchRefused, match="another searcher"):
        _search(gate, store, user="a.other", approval_id=approval.approval_id)
    with pytest.raises(SearchRefused, match="another case"):
        _search(gate, store, case=OTHER_CASE, approval_id=approval.approval_id)
    assert not _search(gate, store, approval_id=approval.approval_id).truncated  # still unused


def test_an_expired_approval_is_refused(env):
    store, audit, gate = env
    approval = _grant(store, audit, hours=1.0, now=NOW - dt.timedelta(hours=2))
    with pytest.raises(SearchRefused, match="expired"):
        _search(gate, store, approval_id=approval.approval_id)
    with pytest.raises(ApprovalRefused, match="at most 8 hours"):
        _grant(store, audit, hours=24.0)


def test_a_non_supervisor_cannot_grant(env):
    store, audit, _ = env
    with pytest.raises(ApprovalRefused, match="'approve' permission"):
        _grant(store, audit, actor="a.other")
    refused = _last(audit, "approval")
    assert refused["outcome"] == "refused" and refused["user_id"] == "a.other"
    with pytest.raises(ApprovalRefused, match="not a known user"):
        _grant(store, audit, actor="nobody")


def test_the_searcher_cannot_approve_themself(env):
    store, audit, gate = env
    with pytest.raises(ApprovalRefused, match="their own search"):
        _grant(store, audit, actor="a.sgt", searcher="a.sgt")
    assert _last(audit, "approval")["outcome"] == "refused"
    # Nor can a supervisor be approved by a grant made out to someone else and then reuse it.
    approval = _grant(store, audit, actor="a.sgt2", searcher="a.analyst")
    with pytest.raises(SearchRefused, match="another searcher"):
        _search(gate, store, user="a.sgt", approval_id=approval.approval_id)


def test_an_approval_beyond_the_policy_or_outside_the_case_is_not_granted(env):
    store, audit, _ = env
    with pytest.raises(ApprovalRefused, match="at most"):
        _grant(store, audit, max_rows=POLICY.max_rows_approved + 1)
    with pytest.raises(ApprovalRefused, match="not assigned"):
        _grant(store, audit, actor="a.sgt", searcher="a.sgt2")  # not assigned to the case
    with pytest.raises(ApprovalRefused, match="not an open case"):
        _grant(store, audit, case="BPD-2026-999999")
