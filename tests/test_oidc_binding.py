"""OpenID Connect accounts are bound to the provider's (issuer, sub) once (issue #15).

The first sign-in of an account through the provider binds it (one ``oidc_bindings`` row, one
audited ``oidc_bound`` record); later sign-ins with the same subject pass and bind nothing new.
A real test provider and the real service (``tests/oidc_fixtures.py``). The refusals (another
subject with the same user claim, a bound subject taking another account) are attacks, in
``tests/attacks/test_attack_oidc_binding.py``.
"""

from __future__ import annotations

import itertools
import json

import polars as pl
import pytest

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.routes_oidc import BINDINGS_TABLE
from alpr_workbench.store import Store
from oidc_fixtures import build_oidc_service, sign_in, stop_provider
from service_fixtures import PASSPHRASE, stop_service

_SOURCES = (f"127.0.5.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    service, provider = build_oidc_service(tmp_path_factory.mktemp("oidc-binding"))
    yield service, provider
    stop_service(service)
    stop_provider(provider)


def _store(service) -> Store:
    return Store.open(service.home, passphrase=PASSPHRASE)


def _bound_records(service) -> pl.DataFrame:
    """The audit log's ``oidc_bound`` records (``login`` events whose action is the binding)."""
    store = _store(service)
    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events().filter(pl.col("event_type") == "login")
    return events.filter(pl.col("query_json").map_elements(
        lambda q: json.loads(q).get("service") == "oidc_bound", return_dtype=pl.Boolean))


def _whoami(service, attempt) -> str:
    assert attempt.redeem is not None and attempt.redeem.status_code == 200, attempt.callback
    token = attempt.redeem.json()["token"]
    with service.raw() as http:
        me = http.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    return str(me.json()["user_id"])


def test_the_first_sign_in_binds_once_and_the_same_subject_signs_in_again(oidc):
    service, provider = oidc
    assert _store(service).tables.read(BINDINGS_TABLE).is_empty()
    assert _bound_records(service).is_empty()

    assert _whoami(service, sign_in(service, provider, next(_SOURCES))) == "t.analyst"
    bindings = _store(service).tables.read(BINDINGS_TABLE)
    assert bindings.select("user_id", "issuer", "subject").rows() == [
        ("t.analyst", provider.issuer, "sub-t.analyst")
    ]
    records = _bound_records(service)
    assert records.height == 1
    record = records.row(0, named=True)
    assert (record["user_id"], record["outcome"]) == ("t.analyst", "allowed")
    details = json.loads(record["query_json"])
    assert (details["issuer"], details["subject"]) == (provider.issuer, "sub-t.analyst")

    for _ in range(2):  # the same person again: accepted, and nothing new is bound
        assert _whoami(service, sign_in(service, provider, next(_SOURCES))) == "t.analyst"
    assert _store(service).tables.read(BINDINGS_TABLE).equals(bindings)
    assert _bound_records(service).height == 1


def test_each_account_gets_its_own_binding(oidc):
    service, provider = oidc
    sign_in(service, provider, next(_SOURCES))  # t.analyst, bound (here or in the test above)
    before = _bound_records(service).height
    provider.user = "t.other"
    try:
        assert _whoami(service, sign_in(service, provider, next(_SOURCES))) == "t.other"
    finally:
        provider.user = "t.analyst"
    records = _bound_records(service)
    assert records.height == before + 1 and records["user_id"][-1] == "t.other"
    bindings = _store(service).tables.read(BINDINGS_TABLE).sort("user_id")
    assert bindings.select("user_id", "subject").rows() == [
        ("t.analyst", "sub-t.analyst"), ("t.other", "sub-t.other")
    ]
