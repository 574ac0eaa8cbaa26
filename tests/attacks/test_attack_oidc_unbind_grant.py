"""A one-time code granted before an OIDC unbind does not sign the unbound identity in.

An administrator unbinds an account from the wrong person's identity at the provider
(``tests/test_oidc_unbind.py``): the binding goes and the account's sessions end. But a
one-time code that the callback had already shown to that person (redeemable for two
minutes) was still redeemed for a fresh session: the redemption checked the account's
standing, not its binding. It now checks that the account is still bound to the subject the
callback verified, under the same lock as the unbind. A real test provider and the real
service (``tests/oidc_fixtures.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from types import SimpleNamespace

import polars as pl
import pytest

from alpr_workbench.client import ServiceError, connect
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.oidc import BINDINGS_TABLE
from alpr_workbench.store import Store
from oidc_fixtures import build_oidc_service, sign_in, stop_provider
from service_fixtures import ADMIN, PASSPHRASE, enroll_and_login, stop_service

_SOURCES = (f"127.0.7.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    root = tmp_path_factory.mktemp("oidc-unbind-grant")
    service, provider = build_oidc_service(root)
    try:
        admin = root / "admin.json"
        enroll_and_login(service, ADMIN, service.admin_code, admin).close()
        yield SimpleNamespace(service=service, provider=provider, admin=admin)
    finally:
        stop_service(service)
        stop_provider(provider)


def _unbind(oidc, user_id: str) -> None:
    with connect(session_file=oidc.admin) as admin:
        admin.unbind_oidc(user_id, reason="wrong person bound")


@pytest.fixture
def wrong_code(oidc):
    """The wrong person's sign-in as t.analyst, stopped at the one-time code (bound to them)."""
    with connect(session_file=oidc.admin) as admin, contextlib.suppress(ServiceError):
        admin.unbind_oidc("t.analyst")  # start unbound (an error: it was not bound)
    oidc.provider.next = {"claims": {"sub": "sub-wrong-person"}}
    attempt = sign_in(oidc.service, oidc.provider, next(_SOURCES), redeem=False)
    assert attempt.one_time_code is not None, attempt.callback
    table = Store.open(oidc.service.home, passphrase=PASSPHRASE).tables.read(BINDINGS_TABLE)
    assert table.filter(pl.col("user_id") == "t.analyst")["subject"].to_list() == [
        "sub-wrong-person"]
    return {"flow_secret": attempt.start.json()["flow_secret"], "code": attempt.one_time_code}


def _redeem(oidc, body: dict[str, str]):
    with oidc.service.raw(next(_SOURCES)) as http:
        return http.post("/v1/oidc/redeem", json=body)


def _refusal(oidc, event_id: str) -> dict:
    store = Store.open(oidc.service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        event = log.events().filter(pl.col("event_id") == event_id).row(0, named=True)
    assert (event["event_type"], event["outcome"], event["user_id"]) == (
        "login", "refused", "t.analyst")
    assert json.loads(event["query_json"])["stage"] == "redeem"
    return event


def test_a_code_granted_before_the_unbind_is_refused(oidc, wrong_code):
    _unbind(oidc, "t.analyst")
    answered = _redeem(oidc, wrong_code)
    assert answered.status_code == 401, answered.text
    assert "token" not in answered.json()
    assert "binding" in _refusal(oidc, answered.json()["event_id"])["refusal_reason"]


def test_a_code_granted_before_the_unbind_is_refused_after_the_right_person_binds(
        oidc, wrong_code):
    _unbind(oidc, "t.analyst")
    right = sign_in(oidc.service, oidc.provider, next(_SOURCES))  # binds sub-t.analyst
    assert right.redeem is not None and right.redeem.status_code == 200, right.callback
    answered = _redeem(oidc, wrong_code)  # the wrong person's code, still within two minutes
    assert answered.status_code == 401, answered.text
    assert "binding" in _refusal(oidc, answered.json()["event_id"])["refusal_reason"]
