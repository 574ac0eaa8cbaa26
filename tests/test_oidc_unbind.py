"""An administrator undoes a wrong OpenID Connect binding (issue #15).

An account is bound to the provider's (issuer, sub) at its first sign-in through the provider
(``tests/test_oidc_binding.py``). When that first sign-in was the wrong person's, the account's
own person is refused from then on. ``alpr-workbench users unbind-oidc USER`` (an
administrator, through the service) removes the binding, ends the account's live sessions and
is audited with the administrator from the session; the next sign-in binds the account again.
Unknown and unbound accounts get a clear error; a non-administrator is refused (audited). A
real test provider and the real service (``tests/oidc_fixtures.py``).
"""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import polars as pl
import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.client import ServiceError, connect
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.oidc import BINDINGS_TABLE
from alpr_workbench.store import Store
from oidc_fixtures import build_oidc_service, sign_in, stop_provider
from service_fixtures import ADMIN, PASSPHRASE, enroll_and_login, stop_service

runner = CliRunner()
_SOURCES = (f"127.0.6.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    root = tmp_path_factory.mktemp("oidc-unbind")
    service, provider = build_oidc_service(root)
    try:
        sessions = {ADMIN: root / "admin.json", "t.other": root / "t.other.json"}
        enroll_and_login(service, ADMIN, service.admin_code, sessions[ADMIN]).close()
        with connect(session_file=sessions[ADMIN]) as admin:
            code = admin.issue_enrolment("t.other")
        enroll_and_login(service, "t.other", code, sessions["t.other"]).close()
        yield SimpleNamespace(service=service, provider=provider, sessions=sessions)
    finally:
        stop_service(service)
        stop_provider(provider)


def _store(oidc) -> Store:
    return Store.open(oidc.service.home, passphrase=PASSPHRASE)


def _subjects(oidc, user_id: str) -> list[str]:
    table = _store(oidc).tables.read(BINDINGS_TABLE)
    return table.filter(pl.col("user_id") == user_id)["subject"].to_list()


def _event(oidc, event_id: str | None) -> dict:
    store = _store(oidc)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events().filter(pl.col("event_id") == event_id).row(0, named=True)


def _whoami(oidc, token: str) -> int:
    with oidc.service.raw() as http:
        return http.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"}).status_code


def test_an_administrator_unbinds_a_wrong_binding_and_the_next_sign_in_binds_again(oidc):
    provider = oidc.provider
    provider.next = {"claims": {"sub": "sub-wrong-person"}}  # the first sign-in: not them
    wrong = sign_in(oidc.service, provider, next(_SOURCES))
    assert wrong.redeem is not None and wrong.redeem.status_code == 200, wrong.callback
    assert _subjects(oidc, "t.analyst") == ["sub-wrong-person"]
    token = wrong.redeem.json()["token"]
    assert _whoami(oidc, token) == 200
    honest = sign_in(oidc.service, provider, next(_SOURCES))  # the account's own person
    assert honest.callback is not None and honest.callback.status_code == 401

    done = runner.invoke(app, ["users", "unbind-oidc", "t.analyst", "--reason", "ticket 42",
                               "--session-file", str(oidc.sessions[ADMIN])],
                         env={"COLUMNS": "240"})
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert f"t.analyst unbound from sub-wrong-person at {provider.issuer}" in said
    assert "1 live session(s) ended" in said
    assert _subjects(oidc, "t.analyst") == []
    assert _whoami(oidc, token) == 401  # the wrong person's session ended

    store = _store(oidc)
    with AuditLog.open(store.home, store.keystore) as log:
        changes = log.events().filter(pl.col("event_type") == "user_change")
    record = changes.row(-1, named=True)
    assert (record["user_id"], record["outcome"]) == (ADMIN, "allowed")
    details = json.loads(record["query_json"])
    assert (details["service"], details["user_id"], details["reason"]) == (
        "unbind oidc", "t.analyst", "ticket 42")
    assert (details["issuer"], details["subject"]) == (provider.issuer, "sub-wrong-person")

    again = sign_in(oidc.service, provider, next(_SOURCES))  # binds the right person now
    assert again.redeem is not None and again.redeem.status_code == 200, again.callback
    assert _subjects(oidc, "t.analyst") == ["sub-t.analyst"]


def test_an_unknown_or_unbound_account_gets_a_clear_error(oidc):
    with connect(session_file=oidc.sessions[ADMIN]) as admin:
        with pytest.raises(ServiceError) as unknown:
            admin.unbind_oidc("t.nobody")
        assert unknown.value.status == 400
        assert "unknown user 't.nobody'" in unknown.value.detail
        with pytest.raises(ServiceError) as unbound:
            admin.unbind_oidc("t.victim")  # never signed in through the provider
        assert unbound.value.status == 400
        assert "'t.victim' is not bound to an identity at the provider" in unbound.value.detail
    event = _event(oidc, unbound.value.event_id)
    assert (event["event_type"], event["outcome"], event["user_id"]) == (
        "user_change", "refused", ADMIN)


def test_a_non_administrator_is_refused_and_audited(oidc):
    sign_in(oidc.service, oidc.provider, next(_SOURCES))  # t.analyst is bound
    bound = _subjects(oidc, "t.analyst")
    assert bound
    with connect(session_file=oidc.sessions["t.other"]) as other:
        with pytest.raises(ServiceError) as refused:
            other.unbind_oidc("t.analyst")
    assert refused.value.status == 403 and "administer" in refused.value.detail
    event = _event(oidc, refused.value.event_id)
    assert (event["event_type"], event["outcome"], event["user_id"]) == (
        "user_change", "refused", "t.other")
    assert _subjects(oidc, "t.analyst") == bound
