"""Attack on OpenID Connect sign-in: another person at the provider with the same user claim.

OIDC used to find the account by a claim (``preferred_username``) alone, so whoever the
provider gave that claim to (a renamed, recycled or look-alike account) signed in as the
workbench user. Each account is now bound to the provider's (issuer, sub) at its first
sign-in; a different subject presenting the same claim is refused, backed off and audited.
"""

from __future__ import annotations

import itertools

import polars as pl
import pytest

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.store import Store
from oidc_fixtures import build_oidc_service, sign_in, stop_provider
from service_fixtures import PASSPHRASE, stop_service

_SOURCES = (f"127.0.4.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    service, provider = build_oidc_service(tmp_path_factory.mktemp("attack-oidc-binding"))
    yield service, provider
    stop_service(service)
    stop_provider(provider)


def test_another_subject_with_the_same_user_claim_is_refused(oidc):
    service, provider = oidc
    honest = sign_in(service, provider, next(_SOURCES))  # binds t.analyst to sub-t.analyst
    assert honest.redeem is not None and honest.redeem.status_code == 200, honest.callback

    provider.next = {"claims": {"sub": "sub-someone-else"}}  # same preferred_username
    attempt = sign_in(service, provider, next(_SOURCES))
    assert attempt.callback is not None and attempt.callback.status_code == 401
    assert attempt.redeem is None and "bound to another identity" in attempt.callback.text
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        event = log.events().filter(pl.col("event_id") == attempt.callback.json()["event_id"])
    assert event["outcome"].to_list() == ["refused"] and event["user_id"][0] == "t.analyst"
    assert "bound to another identity" in event["refusal_reason"][0]
    bound = store.tables.read("oidc_bindings").filter(pl.col("user_id") == "t.analyst")
    assert bound["subject"].to_list() == ["sub-t.analyst"]  # the binding did not move


def test_a_bound_subject_cannot_take_another_account(oidc):
    service, provider = oidc
    sign_in(service, provider, next(_SOURCES))  # t.analyst is bound to sub-t.analyst
    provider.user = "t.other"
    provider.next = {"claims": {"sub": "sub-t.analyst"}}  # t.analyst's subject, t.other's claim
    attempt = sign_in(service, provider, next(_SOURCES))
    provider.user = "t.analyst"
    assert attempt.callback is not None and attempt.callback.status_code == 401
    assert "bound to another workbench account" in attempt.callback.text
    store = Store.open(service.home, passphrase=PASSPHRASE)
    assert "t.other" not in store.tables.read("oidc_bindings")["user_id"].to_list()
