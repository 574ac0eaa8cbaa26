"""Attacks on the dashboard behind the service (issue #15): one set of accounts, two factors.

The dashboard is served by the service process (``alpr-workbench serve``) and signs users in
with the service's accounts: a password *and* a TOTP code, the same per-source back-off and
``login`` audit events as the API. Each test is an attack; each must be refused and audited.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import ssl
import time
import urllib.parse

import httpx
import polars as pl
import pyotp
import pytest

from alpr_workbench.client import Client
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.accounts import AccountStore
from alpr_workbench.store import Store
from dashboard_fixtures import opened, post_login, start_workbench
from service_fixtures import ADMIN, PASSPHRASE, PASSWORD, build_home

_SOURCES = (f"127.0.1.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    home = tmp_path_factory.mktemp("attack-dashboard") / "home"
    code, cert = build_home(home)
    running = start_workbench(home, cert, passphrase=PASSPHRASE)
    running.admin_code = code  # type: ignore[attr-defined]
    yield running
    running.stop()


@pytest.fixture(scope="module")
def secrets_by_user(bench):
    """The administrator and two analysts enrolled through the API; their TOTP secrets.

    The analysts' enrolment codes are issued by the test's side, which holds the store's
    secret (as ``admin_fixtures.sign_in`` does), so that setting up spends none of the
    administrator's TOTP steps: an account signs in at most three times per 30-second step,
    and a fourth sign-in would wait for the next step.
    """
    admin_enrolled = Client.enroll(bench.url, ADMIN, bench.admin_code, PASSWORD, bench.cert)
    accounts = AccountStore(bench.home, Store.open(bench.home, passphrase=PASSPHRASE).keystore)
    secrets = {ADMIN: admin_enrolled.totp_secret}
    for user in ("t.analyst", "t.other"):
        issued = accounts.issue_enrolment(user, issued_by="test-setup")
        secrets[user] = Client.enroll(bench.url, user, issued, PASSWORD, bench.cert).totp_secret
    return secrets


_LAST_STEP: dict[str, int] = {}


def _fresh_code(secret: str, *, valid_for: float = 5.0) -> str:
    """A code for a step no earlier sign-in used (each code works once).

    The service accepts the current step and its neighbours (clock drift), each only for a
    step later than the last one used: take the earliest such step not yet used here that
    the service still accepts ``valid_for`` seconds from now (a test that backs off for
    seconds before it signs in asks for longer), and wait for the next step only when all
    three are spent. The tests share the sign-ins among the administrator and two analysts
    so that none has to wait.
    """
    totp = pyotp.TOTP(secret)
    while True:
        clock = time.time()
        now = int(clock) // totp.interval
        for step in (now - 1, now, now + 1):
            accepted_until = (step + 2) * totp.interval  # while the clock's step <= step + 1
            if step > _LAST_STEP.get(secret, -1) and accepted_until - clock >= valid_for:
                _LAST_STEP[secret] = step
                return totp.generate_otp(step)
        time.sleep(0.5)


def _all_events(bench) -> pl.DataFrame:
    store = Store.open(bench.home, passphrase=PASSPHRASE)
    audit = AuditLog.open(bench.home, store.keystore)
    try:
        return audit.events()
    finally:
        audit.close()


def _login_events(bench) -> pl.DataFrame:
    return _all_events(bench).filter(pl.col("event_type") == "login")


def test_the_right_password_with_a_wrong_code_does_not_open_the_dashboard(bench, secrets_by_user):
    source = next(_SOURCES)
    code = pyotp.TOTP(secrets_by_user[ADMIN]).now()  # not sent, so no step is spent
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert not opened(post_login(bench, ADMIN, PASSWORD, wrong, source_ip=source))
    assert not opened(post_login(bench, ADMIN, PASSWORD, "", source_ip=source))
    events = _login_events(bench)
    mine = events.filter(pl.col("query_json").str.contains(source))
    assert mine.height == 2 and (mine["outcome"] == "refused").all()
    assert mine["query_json"].str.contains("dashboard").all()


def test_a_code_seen_once_does_not_open_the_dashboard_again(bench, secrets_by_user):
    user = "t.analyst"
    code = _fresh_code(secrets_by_user[user])
    assert opened(post_login(bench, user, PASSWORD, code, source_ip=next(_SOURCES)))
    # An observer replays the same password and code from elsewhere: refused.
    assert not opened(post_login(bench, user, PASSWORD, code, source_ip=next(_SOURCES)))


def test_an_analyst_signs_in_as_herself_and_is_audited(bench, secrets_by_user):
    """Analysts work hits on the dashboard now (issue #16): the sign-in is hers, and audited.

    Which pages a role sees is decided per page by its permissions
    (``tests/test_dashboard_hits.py``: command staff get no hit queue).
    """
    source = next(_SOURCES)
    code = _fresh_code(secrets_by_user["t.analyst"])
    location = post_login(bench, "t.analyst", PASSWORD, code, source_ip=source)
    assert opened(location)
    events = _login_events(bench).filter(pl.col("query_json").str.contains(source))
    assert events.height == 1
    assert events["user_id"][0] == "t.analyst" and events["outcome"][0] == "allowed"


def test_failures_back_off_the_source_not_the_account(bench, secrets_by_user):
    attacker = next(_SOURCES)
    code = _fresh_code(secrets_by_user[ADMIN], valid_for=30.0)  # used after the back-off
    # Guesses from one address: free at first, then 1 s, 2 s, 4 s, 8 s of back-off.
    for _ in range(6):
        assert not opened(post_login(bench, ADMIN, "guess " * 3, "000000", source_ip=attacker))
    for wait in (1, 2, 4):
        time.sleep(wait + 0.2)
        assert not opened(post_login(bench, ADMIN, "guess " * 3, "000000", source_ip=attacker))
    # The attacker's address backs off even with the right credentials (and burns no code)...
    location = post_login(bench, ADMIN, PASSWORD, code, source_ip=attacker)
    assert not opened(location) and "again" in location
    # ...while the administrator, from her own address, signs in with the same code.
    assert opened(post_login(bench, ADMIN, PASSWORD, code, source_ip=next(_SOURCES)))
    events = _login_events(bench).filter(pl.col("query_json").str.contains(attacker))
    assert events["refusal_reason"].str.contains("back off").any()
    assert (events["outcome"] == "refused").all() and events.height == 9


def test_failures_on_the_api_slow_the_same_source_on_the_dashboard(bench, secrets_by_user):
    """One throttle per source for the whole service: guessing on the API, then on the page."""

    attacker, user = next(_SOURCES), "t.other"
    code = _fresh_code(secrets_by_user[user], valid_for=30.0)  # used after the back-off
    context = ssl.create_default_context(cafile=str(bench.cert))
    transport = httpx.HTTPTransport(verify=context, local_address=attacker)
    guess = {"user_id": user, "password": "guess " * 3, "totp": "000000"}
    with httpx.Client(base_url=bench.url, transport=transport, timeout=60) as api:
        for _ in range(6):
            assert api.post("/v1/login", json=guess).status_code == 401
        for wait in (1, 2, 4):
            time.sleep(wait + 0.2)
            assert api.post("/v1/login", json=guess).status_code == 401
    location = post_login(bench, user, PASSWORD, code, source_ip=attacker)
    assert not opened(location) and "again" in location
    assert opened(post_login(bench, user, PASSWORD, code, source_ip=next(_SOURCES)))


def _cookie_of(bench, user: str, code: str) -> str:
    """Sign in on the dashboard; return the session cookie the browser would keep."""
    parts = urllib.parse.urlsplit(bench.dashboard_url)
    context = ssl.create_default_context(cafile=str(bench.cert))
    conn = http.client.HTTPSConnection(
        parts.hostname, parts.port, timeout=60, context=context, source_address=(next(_SOURCES), 0)
    )
    body = urllib.parse.urlencode({"username": user, "password": PASSWORD, "totp": code})
    conn.request(
        "POST", "/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    assert opened(response.getheader("Location") or "/login")
    cookies = [v for k, v in response.getheaders() if k.lower() == "set-cookie"]
    session = next(c for c in cookies if c.startswith("user="))
    return session


def _aggregates_for(bench, user: str) -> int:
    """How many read aggregates the gate has served ``user`` (the dashboard's data)."""
    events = _all_events(bench)
    return events.filter(
        (pl.col("event_type") == "aggregate")
        & (pl.col("user_id") == user)
        & (pl.col("outcome") == "allowed")
    ).height


def _page_with(bench, cookie: str) -> tuple[int, str, str]:
    """GET the dashboard with ``cookie``: status, redirect target, and the page's text."""
    parts = urllib.parse.urlsplit(bench.dashboard_url)
    context = ssl.create_default_context(cafile=str(bench.cert))
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=60, context=context)
    conn.request("GET", "/", headers={"Cookie": cookie})
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, response.getheader("Location") or "", body


def test_the_dashboard_cookie_is_a_service_session_that_sign_out_ends(bench, secrets_by_user):
    """A stolen or leftover cookie: it names no user, and dies with its service session."""

    cookie = _cookie_of(bench, ADMIN, _fresh_code(secrets_by_user[ADMIN]))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite"} <= attributes
    assert "expires" not in attributes and "max-age" not in attributes  # ends with the browser
    assert "samesite=strict" in cookie.lower()
    value = cookie.split(";")[0].split("=", 1)[1].strip('"')
    token = base64.b64decode(value.split("|")[-2].split(":", 1)[1]).decode()
    assert ADMIN not in value and ADMIN not in token
    pair = cookie.split(";")[0]
    before = _aggregates_for(bench, ADMIN)
    status, _, _ = _page_with(bench, pair)
    # The page was built for the session's user: the gate served her the read aggregates.
    assert status == 200 and _aggregates_for(bench, ADMIN) > before
    # The token is a session of the service: signing it out ends the dashboard session too.

    context = ssl.create_default_context(cafile=str(bench.cert))
    with httpx.Client(base_url=bench.url, verify=context, timeout=60) as api:
        assert (
            api.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"}).json()["user_id"]
            == ADMIN
        )
        assert (
            api.post("/v1/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
    status, location, _ = _page_with(bench, pair)
    assert status in (302, 303) and "/login" in location


def _get(bench, path: str, cookie: str) -> tuple[int, str]:
    parts = urllib.parse.urlsplit(bench.dashboard_url)
    context = ssl.create_default_context(cafile=str(bench.cert))
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=60, context=context)
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, body


def test_dashboard_logout_ends_the_service_session_and_is_audited(bench, secrets_by_user):
    """Log out on the dashboard: the token it held must not keep working on the API."""
    user = "t.analyst"
    cookie = _cookie_of(bench, user, _fresh_code(secrets_by_user[user]))
    value = cookie.split(";")[0].split("=", 1)[1].strip('"')
    token = base64.b64decode(value.split("|")[-2].split(":", 1)[1]).decode()
    pair = cookie.split(";")[0]
    context = ssl.create_default_context(cafile=str(bench.cert))
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=bench.url, verify=context, timeout=60) as api:
        assert api.get("/v1/whoami", headers=auth).json()["user_id"] == user
        status, page = _get(bench, "/logout", pair)
        assert status == 200 and "signed out" in page
        after = api.get("/v1/whoami", headers=auth)
    assert after.status_code == 401 and after.json()["error"] == "invalid_session"
    status, location, _ = _page_with(bench, pair)
    assert status in (302, 303) and "/login" in location
    logouts = _login_events(bench).filter(
        pl.col("query_json").str.contains('"action": "logout"', literal=True)
    )
    assert logouts.height >= 1
    last = logouts.row(-1, named=True)
    assert last["user_id"] == user and last["outcome"] == "allowed"
    assert '"session_ended": true' in last["query_json"]
