"""The dashboard's "Sign in with <provider>" (issue #15, decision 0006), on the real ``serve``.

The service process serves the API and the dashboard; the dashboard shares the API's own
OIDC flow in-process. A browser is an ``httpx`` client with its own cookie jar and its own
loopback address; the provider is the real test provider of ``oidc_fixtures``.
"""

from __future__ import annotations

import base64
import html
import itertools
import re
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import pytest

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.oidc import DEFAULT_NAME, MAX_PENDING_PER_SOURCE, load_oidc_config
from alpr_workbench.store import Store
from dashboard_fixtures import Workbench, start_workbench
from oidc_fixtures import Provider, start_provider, stop_provider, write_oidc_config
from service_fixtures import PASSPHRASE, build_home

NAME = "Burbank PD Sign-On"
_SOURCES = (f"127.0.4.{n}" for n in itertools.count(10))


@dataclass
class Served:
    bench: Workbench
    provider: Provider

    def events(self) -> pl.DataFrame:
        store = Store.open(self.bench.home, passphrase=PASSPHRASE)
        with AuditLog.open(store.home, store.keystore) as log:
            return log.events()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("dashboard-oidc")
    provider = start_provider(root / "idp")
    home = root / "home"
    _, cert = build_home(home)
    write_oidc_config(home, provider, name=NAME)
    bench = start_workbench(home, cert, passphrase=PASSPHRASE)
    try:
        yield Served(bench, provider)
    finally:
        bench.stop()
        stop_provider(provider)


def _client(url: str, cert: Path, source: str) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(cert))
    transport = httpx.HTTPTransport(verify=context, local_address=source)
    return httpx.Client(base_url=url, transport=transport, timeout=60)


def _browser(bench: Workbench, source: str) -> httpx.Client:
    """A browser at ``source``: its own cookie jar, talking to the dashboard."""
    return _client(bench.dashboard_url, bench.cert, source)


def _start(browser: httpx.Client) -> str:
    """Press "Sign in with ...": the provider's authorization URL the page links to."""
    page = browser.post("/oidc/start")
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    assert page.headers["cache-control"] == "no-store"
    found = re.search(r'id="authorization-url" href="([^"]+)"', page.text)
    assert found is not None, page.text
    return html.unescape(found.group(1))


def _code_from_provider(served: Served, authorization_url: str, source: str) -> str:
    """Sign in at the provider; follow it to the API's callback; read the one-time code."""
    with served.provider.http() as at_provider:
        answer = at_provider.get(authorization_url)
    assert answer.status_code == 302, answer.text
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))
    with _client(served.bench.url, served.bench.cert, source) as api:
        page = api.get("/v1/oidc/callback", params=query)
    assert page.status_code == 200, page.text
    found = re.search(r'id="one-time-code">([^<]+)<', page.text)
    assert found is not None, page.text
    return found.group(1)


def _error(response: httpx.Response) -> str:
    """The words a refusal sends back to the login page (``?error=...``)."""
    assert response.status_code in (302, 303), response.status_code
    location = urllib.parse.urlsplit(response.headers["location"])
    assert location.path.endswith("/login"), location
    return dict(urllib.parse.parse_qsl(location.query))["error"]


def _token(browser: httpx.Client) -> str:
    """The service session token the dashboard's signed cookie holds."""
    value = browser.cookies["user"]
    return base64.b64decode(value.split("|")[-2].split(":", 1)[1]).decode()


def _oidc_events(served: Served, source: str) -> pl.DataFrame:
    return served.events().filter(
        (pl.col("event_type") == "login")
        & pl.col("query_json").str.contains('"service": "oidc"', literal=True)
        & pl.col("query_json").str.contains(f'"source": "{source}"', literal=True)
    )


def test_the_login_page_offers_the_provider_by_its_configured_name(served):
    with _browser(served.bench, next(_SOURCES)) as browser:
        page = browser.get("/login")
    assert page.status_code == 200
    assert 'id="oidc-sign-in"' in page.text and f"Sign in with {NAME}" in page.text


def test_without_oidc_the_login_page_has_no_provider_and_no_flow(tmp_path):
    home = tmp_path / "home"
    _, cert = build_home(home)
    bench = start_workbench(home, cert, passphrase=PASSPHRASE)
    try:
        with _browser(bench, next(_SOURCES)) as browser:
            page = browser.get("/login")
            assert page.status_code == 200 and 'name="password"' in page.text
            assert "oidc-sign-in" not in page.text and "Sign in with" not in page.text
            assert browser.post("/oidc/start").status_code == 404
    finally:
        bench.stop()


def test_the_whole_flow_signs_in_the_bound_user_and_the_session_works(served):
    source = next(_SOURCES)
    with _browser(served.bench, source) as browser:
        assert browser.get("/login").status_code == 200
        code = _code_from_provider(served, _start(browser), source)
        signed_in = browser.post("/oidc/redeem", data={"code": code})
        assert signed_in.status_code in (302, 303)
        assert "/login" not in signed_in.headers["location"]
        assert "oidc_flow" not in browser.cookies  # the flow's secret is gone with the flow
        page = browser.get("/")
        assert page.status_code == 200 and "bokeh" in page.text.lower()
        token = _token(browser)
    # The cookie holds an ordinary service session of the bound user.
    with _client(served.bench.url, served.bench.cert, source) as api:
        me = api.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["user_id"] == "t.analyst"

    events = _oidc_events(served, source)
    redeemed = events.filter(pl.col("query_json").str.contains('"stage": "redeem"', literal=True))
    assert redeemed.height == 1
    row = redeemed.row(0, named=True)
    assert row["outcome"] == "allowed" and row["user_id"] == "t.analyst"
    assert '"login": "dashboard"' in row["query_json"] and '"session_id"' in row["query_json"]


def test_a_code_from_another_browser_or_without_the_secret_is_refused_and_audited(served):
    mine, theirs, bare = next(_SOURCES), next(_SOURCES), next(_SOURCES)
    with _browser(served.bench, mine) as victim, _browser(served.bench, theirs) as other, \
            _browser(served.bench, bare) as no_cookie:
        code = _code_from_provider(served, _start(victim), mine)
        _start(other)  # another browser, with a flow (and a secret) of its own
        words = _error(other.post("/oidc/redeem", data={"code": code}))
        assert "started elsewhere" in words
        assert "user" not in other.cookies
        # The code is used up by the refusal: not even its own browser can use it now.
        assert "unknown, used or expired" in _error(victim.post("/oidc/redeem",
                                                                data={"code": code}))
        # A browser holding no flow secret at all.
        fresh = _code_from_provider(served, _start(victim), mine)
        assert "started elsewhere" in _error(no_cookie.post("/oidc/redeem",
                                                            data={"code": fresh}))
        assert "user" not in no_cookie.cookies and "user" not in victim.cookies

    for source in (theirs, bare):
        refused = _oidc_events(served, source).filter(pl.col("outcome") == "refused")
        assert refused.height == 1, source
        row = refused.row(0, named=True)
        assert row["user_id"] == "t.analyst" and "started elsewhere" in row["refusal_reason"]
        assert '"stage": "redeem"' in row["query_json"]
        assert '"login": "dashboard"' in row["query_json"]
    # Refusals count against the browsers' addresses, never the service's own.
    assert _oidc_events(served, "127.0.0.1").filter(pl.col("outcome") == "refused").height == 0


def test_flows_started_by_one_source_do_not_count_against_another(served):
    busy, calm = next(_SOURCES), next(_SOURCES)
    with _browser(served.bench, busy) as flooder:
        for _ in range(MAX_PENDING_PER_SOURCE):
            _start(flooder)
        assert "already in progress from your address" in _error(flooder.post("/oidc/start"))
    with _browser(served.bench, calm) as browser:
        _start(browser)
    # Nor against the service's own address: the API's flow from loopback still starts.
    with _client(served.bench.url, served.bench.cert, "127.0.0.1") as api:
        assert api.get("/v1/oidc/start").status_code == 200
    refused = _oidc_events(served, busy).filter(pl.col("outcome") == "refused")
    assert refused.height == 1 and '"stage": "start"' in refused["query_json"][0]


# -- the provider's display name in oidc.toml -------------------------------------------
class _FakeProvider:
    issuer = "https://idp.example.org/realms/pd"
    cert = Path(__file__)


def test_the_display_name_defaults_and_is_validated(tmp_path):
    (tmp_path / "service").mkdir()
    roles = {"analyst", "supervisor"}
    write_oidc_config(tmp_path, _FakeProvider())
    config = load_oidc_config(tmp_path, roles=roles, environ={})
    assert config is not None and config.name == DEFAULT_NAME
    write_oidc_config(tmp_path, _FakeProvider(), name="  Okta  ")
    config = load_oidc_config(tmp_path, roles=roles, environ={})
    assert config is not None and config.name == "Okta"
    for bad in ("", "x" * 61, "Okta\tSign in as admin"):
        write_oidc_config(tmp_path, _FakeProvider(), name=bad)
        with pytest.raises(WorkbenchError, match="name .* must be printable text"):
            load_oidc_config(tmp_path, roles=roles, environ={})
