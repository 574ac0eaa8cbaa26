"""A small real OpenID Connect provider for the tests, and a service configured to trust it.

The provider stands in for the department's identity provider (an external system): a FastAPI
app on uvicorn, over TLS on 127.0.0.1, with a discovery document, a JWKS of an RSA key made
here, an authorization endpoint that approves the configured test user at once (codes bound
to the PKCE challenge, nonce and redirect URI), and a token endpoint (client secret, single
use codes, PKCE checked). ``Provider.next`` tampers with the next ID token for the refusal
tests. The service is the real one (``service_fixtures.start_service``), configured through
``<data dir>/service/oidc.toml``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import RSAKey

from alpr_workbench.service.tls import make_loopback_certificate
from alpr_workbench.store import Store
from service_fixtures import (
    ADMIN,
    PASSPHRASE,
    Service,
    build_home,
    serve_in_thread,
    start_service,
)

CLIENT_ID = "alpr-workbench-test"
CLIENT_SECRET = "oidc client secret for tests, not a secret"
REDIRECT_URI = "https://workbench.test/v1/oidc/callback"
ROLES = {"alpr-analysts": "analyst", "alpr-supervisors": "supervisor"}
DISABLED = "t.gone"


@dataclass
class Provider:
    """The running test provider; ``user`` and ``groups`` say whom it signs in."""

    issuer: str
    cert: Path
    key: RSAKey
    server: uvicorn.Server | None = None
    user: str = "t.analyst"
    groups: list[str] = field(default_factory=lambda: ["alpr-analysts"])
    next: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def http(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.cert)), timeout=30)

    def id_token(self, grant: dict[str, Any]) -> str:
        """The ID token for a granted code, changed as ``next`` says (then ``next`` is reset)."""
        tamper, self.next = self.next, {}
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": f"sub-{grant['user']}", "aud": CLIENT_ID,
            "exp": now + 300, "iat": now, "nonce": grant["nonce"],
            "preferred_username": grant["user"], "groups": grant["groups"],
        }
        claims.update(tamper.get("claims", {}))
        for name in tamper.get("drop", ()):
            claims.pop(name, None)
        key = tamper.get("key", self.key)
        header = {"alg": tamper.get("alg", "RS256"), "kid": key.kid}
        return jwt.encode(header, claims, key)


def _provider_app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": provider.issuer,
            "authorization_endpoint": f"{provider.issuer}/authorize",
            "token_endpoint": f"{provider.issuer}/token",
            "jwks_uri": f"{provider.issuer}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return {"keys": [provider.key.as_dict(private=False)]}

    @app.get("/authorize")
    def authorize(request: Request) -> Response:
        q = request.query_params
        if (q.get("client_id") != CLIENT_ID or q.get("redirect_uri") != REDIRECT_URI
                or q.get("response_type") != "code" or q.get("code_challenge_method") != "S256"
                or "openid" not in q.get("scope", "").split()):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"],
                                "user": provider.user, "groups": list(provider.groups)}
        query = urllib.parse.urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{REDIRECT_URI}?{query}", status_code=302)

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        grant_type, code = form.get("grant_type"), form.get("code", "")
        redirect_uri, code_verifier = form.get("redirect_uri"), form.get("code_verifier", "")
        expected = base64.b64encode(f"{CLIENT_ID}:{urllib.parse.quote(CLIENT_SECRET, safe='')}"
                                    .encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = provider.codes.pop(code, None)  # single use
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        if (grant is None or grant_type != "authorization_code" or redirect_uri != REDIRECT_URI
                or challenge != grant["challenge"]):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                             "expires_in": 300, "id_token": provider.id_token(grant)})

    return app


def start_provider(folder: Path) -> Provider:
    """Start the test provider over TLS on a free loopback port."""
    folder.mkdir(parents=True, exist_ok=True)
    tls = make_loopback_certificate(folder)
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
    made: list[Provider] = []

    def app_for(port: int) -> FastAPI:
        made.append(Provider(f"https://127.0.0.1:{port}", tls.certfile, key))
        return _provider_app(made[0])

    running = serve_in_thread(app_for, log_level="warning", ssl_certfile=str(tls.certfile),
                              ssl_keyfile=str(tls.keyfile))
    provider = made[0]
    provider.server = running.server
    return provider


def stop_provider(provider: Provider) -> None:
    if provider.server is not None:
        provider.server.should_exit = True


def write_oidc_config(home: Path, provider: Provider, **changes: Any) -> Path:
    """Write ``<home>/service/oidc.toml`` (secret file 0600 beside it) naming ``provider``."""
    secret = home / "service" / "oidc-client-secret"
    secret.write_text(CLIENT_SECRET)
    secret.chmod(0o600)
    settings: dict[str, Any] = {
        "issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret_file": str(secret),
        "redirect_uri": REDIRECT_URI, "user_claim": "preferred_username",
        "role_claim": "groups", "ca_file": str(provider.cert), **changes,
    }
    lines = [f"{k} = {_toml(v)}" for k, v in settings.items()]
    lines += ["", "[roles]"] + [f'"{k}" = "{v}"' for k, v in ROLES.items()]
    path = home / "service" / "oidc.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_oidc_service(folder: Path) -> tuple[Service, Provider]:
    """A provider, and a real service (with a disabled user, ``t.gone``) that trusts it."""
    provider = start_provider(folder / "idp")
    home = folder / "home"
    code, cert = build_home(home)
    store = Store.open(home, passphrase=PASSPHRASE)
    users = store.tables.read("users")
    gone = users.filter(pl.col("user_id") == ADMIN).with_columns(
        user_id=pl.lit(DISABLED), full_name=pl.lit("Test Gone"), role=pl.lit("analyst"),
        job_title=pl.lit("Crime Analyst"), is_active=pl.lit(False))
    store.tables.append("users", gone)
    write_oidc_config(home, provider)
    return start_service(home, code, cert), provider


@dataclass
class Attempt:
    """What one sign-in through the provider got at each step."""

    start: httpx.Response
    callback: httpx.Response | None = None
    redeem: httpx.Response | None = None
    callback_query: dict[str, str] = field(default_factory=dict)

    @property
    def one_time_code(self) -> str | None:
        if self.callback is None or self.callback.status_code != 200:
            return None
        found = re.search(r'id="one-time-code">([^<]+)<', self.callback.text)
        return found.group(1) if found else None


def sign_in(service: Service, provider: Provider, source: str, *, redeem: bool = True) -> Attempt:
    """Drive one sign-in as a browser and the CLI would, from loopback address ``source``."""
    with service.raw(source) as http:
        attempt = Attempt(http.get("/v1/oidc/start"))
        if attempt.start.status_code != 200:
            return attempt
        with provider.http() as browser:
            answer = browser.get(attempt.start.json()["authorization_url"])
        assert answer.status_code == 302, answer.text
        location = urllib.parse.urlsplit(answer.headers["location"])
        attempt.callback_query = dict(urllib.parse.parse_qsl(location.query))
        attempt.callback = http.get("/v1/oidc/callback", params=attempt.callback_query)
        code = attempt.one_time_code
        if redeem and code is not None:
            attempt.redeem = http.post("/v1/oidc/redeem", json={
                "flow_secret": attempt.start.json()["flow_secret"], "code": code})
    return attempt
