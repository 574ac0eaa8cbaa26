"""Attacks on OpenID Connect sign-in (issue #15): each is refused, backed off and audited.

A real test identity provider (``tests/oidc_fixtures.py``) signs the ID tokens; the service
is the real one. Each attack comes from its own loopback address, so the back-off of one does
not hide the next.
"""

from __future__ import annotations

import itertools
import time

import polars as pl
import pytest
from joserfc.jwk import RSAKey

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.store import Store
from oidc_fixtures import DISABLED, build_oidc_service, sign_in, stop_provider
from service_fixtures import PASSPHRASE, stop_service

_SOURCES = (f"127.0.3.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    service, provider = build_oidc_service(tmp_path_factory.mktemp("attack-oidc"))
    yield service, provider
    stop_service(service)
    stop_provider(provider)


@pytest.fixture(autouse=True)
def _honest_provider(oidc):
    _, provider = oidc
    provider.user, provider.groups, provider.next = "t.analyst", ["alpr-analysts"], {}


def _refused_and_audited(service, answer, words: str, user_id: str | None = None) -> None:
    assert answer is not None and answer.status_code == 401, answer.text
    body = answer.json()
    assert body["error"] == "login_refused" and words in body["detail"], body
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        event = log.events().filter(pl.col("event_id") == body["event_id"])
    assert event["event_type"].to_list() == ["login"]
    assert event["outcome"][0] == "refused" and words in event["refusal_reason"][0]
    assert '"service": "oidc"' in event["query_json"][0]
    if user_id is not None:
        assert event["user_id"][0] == user_id


def _tampered(oidc, words: str, **tamper) -> None:
    service, provider = oidc
    provider.next = tamper
    attempt = sign_in(service, provider, next(_SOURCES))
    _refused_and_audited(service, attempt.callback, words)
    assert attempt.redeem is None


def test_an_id_token_for_another_audience_is_refused(oidc):
    _tampered(oidc, "audience", claims={"aud": "some-other-app"})


def test_several_audiences_without_our_azp_are_refused(oidc):
    _tampered(oidc, "several audiences", claims={"aud": ["alpr-workbench-test", "other"]})


def test_an_id_token_from_another_issuer_is_refused(oidc):
    _tampered(oidc, "issuer", claims={"iss": "https://evil.example.org"})


def test_an_expired_id_token_is_refused(oidc):
    now = int(time.time())
    _tampered(oidc, "expired", claims={"exp": now - 600, "iat": now - 300})


def test_an_id_token_issued_long_ago_or_in_the_future_is_refused(oidc):
    now = int(time.time())
    _tampered(oidc, "iat", claims={"iat": now + 3600})
    _tampered(oidc, "iat", claims={"iat": now - 3600})


def test_an_id_token_signed_by_another_key_is_refused(oidc):
    forged = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
    _tampered(oidc, "signature not verified", key=forged)


def test_an_id_token_with_another_nonce_or_none_is_refused(oidc):
    _tampered(oidc, "nonce", claims={"nonce": "replayed-from-another-sign-in"})
    _tampered(oidc, "nonce", drop=["nonce"])


def test_an_unknown_user_is_refused_never_created(oidc):
    service, provider = oidc
    provider.user = "t.nobody"
    attempt = sign_in(service, provider, next(_SOURCES))
    _refused_and_audited(service, attempt.callback, "unknown user", "t.nobody")
    store = Store.open(service.home, passphrase=PASSPHRASE)
    assert "t.nobody" not in store.tables.read("users")["user_id"].to_list()


def test_a_disabled_user_is_refused(oidc):
    service, provider = oidc
    provider.user = DISABLED
    attempt = sign_in(service, provider, next(_SOURCES))
    _refused_and_audited(service, attempt.callback, "disabled", DISABLED)


def test_groups_mapping_to_a_higher_role_are_refused_not_escalated(oidc):
    service, provider = oidc
    provider.groups = ["alpr-supervisors"]
    attempt = sign_in(service, provider, next(_SOURCES))
    _refused_and_audited(service, attempt.callback, "role 'supervisor'", "t.analyst")
    provider.groups = ["alpr-analysts", "alpr-supervisors"]
    attempt = sign_in(service, provider, next(_SOURCES))
    _refused_and_audited(service, attempt.callback, "several roles", "t.analyst")
    provider.groups = ["domain-users"]
    attempt = sign_in(service, provider, next(_SOURCES))
    _refused_and_audited(service, attempt.callback, "no workbench role", "t.analyst")


def test_a_replayed_state_is_refused(oidc):
    service, provider = oidc
    source = next(_SOURCES)
    attempt = sign_in(service, provider, source, redeem=False)
    assert attempt.callback is not None and attempt.callback.status_code == 200
    with service.raw(source) as http:
        again = http.get("/v1/oidc/callback", params=attempt.callback_query)
    _refused_and_audited(service, again, "unknown, used or expired sign-in state")


def test_a_replayed_authorization_code_with_a_fresh_state_is_refused(oidc):
    service, provider = oidc
    source = next(_SOURCES)
    first = sign_in(service, provider, source, redeem=False)
    with service.raw(source) as http:
        fresh = http.get("/v1/oidc/start").json()["authorization_url"]
        state = dict(
            p.split("=", 1) for p in fresh.split("?", 1)[1].split("&"))["state"]
        again = http.get("/v1/oidc/callback",
                         params={"code": first.callback_query["code"], "state": state})
    _refused_and_audited(service, again, "refused the code")


def test_a_one_time_code_works_once_and_only_with_its_flow_secret(oidc):
    service, provider = oidc
    source = next(_SOURCES)
    done = sign_in(service, provider, source)
    assert done.redeem is not None and done.redeem.status_code == 200
    with service.raw(source) as http:
        again = http.post("/v1/oidc/redeem", json={
            "flow_secret": done.start.json()["flow_secret"], "code": done.one_time_code})
    _refused_and_audited(service, again, "unknown, used or expired one-time code")

    # A code shown to a victim is useless to an attacker who started another flow.
    victim = sign_in(service, provider, next(_SOURCES), redeem=False)
    attacker = next(_SOURCES)
    with service.raw(attacker) as http:
        own_secret = http.get("/v1/oidc/start").json()["flow_secret"]
        stolen = http.post("/v1/oidc/redeem", json={
            "flow_secret": own_secret, "code": victim.one_time_code})
    _refused_and_audited(service, stolen, "started elsewhere", "t.analyst")


def test_an_error_from_the_provider_is_refused_and_consumes_the_state(oidc):
    service, provider = oidc
    source = next(_SOURCES)
    with service.raw(source) as http:
        url = http.get("/v1/oidc/start").json()["authorization_url"]
        state = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["state"]
        denied = http.get("/v1/oidc/callback",
                          params={"error": "access_denied", "state": state})
        _refused_and_audited(service, denied, "access_denied")
        with provider.http() as browser:
            location = browser.get(url).headers["location"]
        query = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))
        late = http.get("/v1/oidc/callback", params=query)
    _refused_and_audited(service, late, "unknown, used or expired sign-in state")


def test_repeated_failures_back_the_source_off(oidc):
    service, _ = oidc
    source = next(_SOURCES)
    with service.raw(source) as http:
        answers = [http.get("/v1/oidc/callback", params={"state": f"forged-{n}", "code": "x"})
                   for n in range(8)]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    assert 429 in [a.status_code for a in answers[5:]]
    assert all(a.json()["error"] == "login_refused" for a in answers if a.status_code == 401)


def test_a_flood_of_started_sign_ins_from_one_address_is_cut_off_and_others_still_sign_in(oidc):
    """Review finding: anonymous `GET /v1/oidc/start` requests evicted other people's flows."""
    from alpr_workbench.service.oidc import MAX_PENDING_PER_SOURCE

    service, provider = oidc
    flooder, victim = next(_SOURCES), next(_SOURCES)
    with service.raw(victim) as http:  # the victim starts first and is slow to come back
        pending = http.get("/v1/oidc/start")
    assert pending.status_code == 200
    with service.raw(flooder) as http:
        answers = [http.get("/v1/oidc/start") for _ in range(MAX_PENDING_PER_SOURCE + 1)]
    assert all(a.status_code == 200 for a in answers[:MAX_PENDING_PER_SOURCE])
    _refused_and_audited(service, answers[-1], "already in progress from your address")
    # Another address still signs in end to end.
    done = sign_in(service, provider, next(_SOURCES))
    assert done.redeem is not None and done.redeem.status_code == 200
