"""Serve the dashboard inside the service process, signed in with the service's accounts.

:func:`start_dashboard` runs Panel's (Bokeh's) server on a background thread of the process that
holds the keys, over TLS with the service's certificate, on its own loopback port; the data
stays in that process (issue #15, ``docs/decisions/0003-service-boundary.md``). The login page
takes a user name, a password and a TOTP code and checks them with
:func:`~alpr_workbench.dashboard.auth.attempt_login` against the service's
:class:`~alpr_workbench.service.accounts.AccountStore`, with the service's throttle and audit log.
``alpr-workbench serve`` (:func:`alpr_workbench.service.run.run_service`) is what calls it.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import panel as pn
from panel.auth import BasicAuthProvider, BasicLoginHandler

from alpr_workbench.dashboard.auth import (
    Credentials,
    LoginThrottle,
    SessionKeeper,
    attempt_login,
    record_logout,
)
from alpr_workbench.dashboard.hits import connect_hit_service
from alpr_workbench.dashboard.oidc import OidcSignIn, oidc_patterns
from alpr_workbench.dashboard.state import DashboardSource
from alpr_workbench.dashboard.views import create_app

__all__ = ["RunningDashboard", "start_dashboard"]

log = logging.getLogger(__name__)


#: The browser's cookie holding the session token (signed; HttpOnly, Secure, SameSite=Strict).
_COOKIE = "user"


def _login_handler(
    source: DashboardSource,
    accounts: Credentials,
    throttle: LoginThrottle,
    sessions: SessionKeeper,
) -> type[BasicLoginHandler]:
    from panel.auth import _validate_next_url
    from panel.io.state import state
    from tornado.escape import url_escape

    class WorkbenchLoginHandler(BasicLoginHandler):
        """Panel's login page, validated by :func:`~alpr_workbench.dashboard.auth.attempt_login`.

        Password and TOTP code of the service's accounts; failures slow down the client
        address (not the account), and every checked attempt goes to the audit log. A
        sign-in opens a service session (the service's sessions, as a :class:`SessionKeeper`:
        idle and absolute timeouts, ended when the user loses standing); the browser keeps
        only its token, in a signed session cookie, never the user name.
        """

        def _validate(self, username: str, password: str) -> bool:
            return False  # every login goes through post(), with its source and TOTP code

        def post(self) -> None:
            username = self.get_argument("username", "")[:64]
            password = self.get_argument("password", "")[:1024]
            totp = self.get_argument("totp", "")[:16]
            client = self.request.remote_ip or "unknown"
            problem = attempt_login(
                source.store,
                accounts,
                username,
                password,
                totp,
                source=client,
                throttle=throttle,
                audit=source.audit,
                policy=source.policy,
            )
            if problem is not None:
                log.warning("dashboard login for %r from %s refused: %s", username, client, problem)
                self.redirect(f"{self.request.path}?error={url_escape(problem)}")
                return
            token = sessions.open_session(username)
            log.info("dashboard login: %s from %s", username, client)
            self.clear_cookie("is_guest")
            self.set_secure_cookie(
                _COOKIE, token, expires_days=None, httponly=True, secure=True,
                samesite="Strict", path="/",
            )
            self.redirect(_validate_next_url(self.get_cookie("next_url", state.base_url)))

    return WorkbenchLoginHandler


def _logout_handler(source: DashboardSource, sessions: SessionKeeper) -> type[Any]:
    from panel.auth import LogoutHandler

    class WorkbenchLogoutHandler(LogoutHandler):
        """Panel's log-out page that also ends the service session the cookie names.

        The token stops working at once, on the dashboard and on the API alike, and the
        sign-out is a ``login`` audit event (``"action": "logout"``).
        """

        def get(self) -> None:
            raw = self.get_secure_cookie(_COOKIE, max_age_days=1)
            token = raw.decode("ascii", "replace") if raw else ""
            user_id = sessions.close_session(token) if token and token != "guest" else None
            client = self.request.remote_ip or "unknown"
            if token:
                record_logout(source.audit, source.store, user_id, source=client)
                log.info("dashboard logout: %s from %s", user_id or "(no live session)", client)
            super().get()

    return WorkbenchLogoutHandler


# Panel's login page, without its CDN logo and favicon: the dashboard must work offline.
_LOGIN_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta content="width=device-width, initial-scale=1.0" name="viewport">
<title>ALPR Workbench | Log in</title>
<style>
* {box-sizing: border-box; margin: 0; padding: 0;}
html, body {height: 100%; font-family: 'Segoe UI', sans-serif; line-height: 1.6;}
.wrap {align-items: center; background: #f4f6f8; display: flex; flex-direction: column;
  height: 100%; justify-content: center; width: 100%;}
.login-form.oidc {border-top: 0; padding-top: 0;}
.login-form {background: #fff; border: 1px solid #ddd; padding: 2em; width: 380px;}
.form-header {text-align: center; margin-bottom: 1em;}
.form-header h3 {color: #1f4e79;}
.form-group {margin-bottom: 1em;}
.form-input {background: #fafafa; border: 1px solid #ddd; padding: 12px; width: 100%;}
.form-button {background: #1f4e79; border: 0; color: #fff; padding: 10px; width: 100%;
  text-transform: uppercase;}
.note {color: #666; font-size: 85%; text-align: center;}
.errormessage {color: #c00; font-weight: bold; text-align: center;}
</style></head>
<body><div class="wrap">
<form class="login-form" action=".{{ login_endpoint }}" method="post">
  <div class="form-header"><h3>ALPR Workbench</h3><p>Program dashboard: efficacy and impact</p>
  </div>
  <p class="errormessage">{{ errormessage|e }}</p>
  <div class="form-group"><input name="username" type="text" class="form-input"
    autocapitalize="off" autocorrect="off" autocomplete="username" placeholder="user id"></div>
  <div class="form-group"><input name="password" type="password" class="form-input"
    autocomplete="current-password" placeholder="password"></div>
  <div class="form-group"><input name="totp" type="text" class="form-input"
    inputmode="numeric" pattern="[0-9]*" maxlength="6" autocomplete="one-time-code"
    placeholder="authenticator code"></div>
  <div class="form-group"><button class="form-button" type="submit">Log in</button></div>
  <p class="note">The program's aggregates, and the hit queue for those who work hits.
  Your workbench account: password and authenticator code.</p>
</form>
{% if oidc_name %}<form class="login-form oidc" action="./oidc/start" method="post">
  <button id="oidc-sign-in" class="form-button" type="submit">Sign in with {{ oidc_name }}
  </button></form>{% endif %}
</div></body></html>
"""


# Panel's log-out page, offline like the login page.
_LOGOUT_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ALPR Workbench | Logged out</title>
<style>body {font-family: 'Segoe UI', sans-serif; background: #f4f6f8; text-align: center;
  padding-top: 20vh;} a {color: #1f4e79;}</style></head>
<body><h3>You are signed out</h3><p>Your session has ended on the workbench service.</p>
<p><a href=".{{ LOGIN_ENDPOINT }}">Sign in again</a></p></body></html>
"""


class _WorkbenchAuthProvider(BasicAuthProvider):
    def __init__(
        self,
        source: DashboardSource,
        accounts: Credentials,
        throttle: LoginThrottle,
        sessions: SessionKeeper,
        oidc_name: str | None = None,
    ) -> None:
        import jinja2

        # Set before the base class validates the provider (it reads login_handler).
        self._handler = _login_handler(source, accounts, throttle, sessions)
        self._logout = _logout_handler(source, sessions)
        self._sessions = sessions
        super().__init__()
        templates = jinja2.Environment(autoescape=True)
        # The "Sign in with <provider>" button only when OIDC is configured.
        self._login_template = templates.from_string(_LOGIN_HTML,
                                                     globals={"oidc_name": oidc_name})
        self._logout_template = templates.from_string(_LOGOUT_HTML)

    @property
    def get_user(self) -> Callable[[Any], str | None]:
        """The signed-in user of a request: from its live service session, else nobody."""
        sessions = self._sessions

        def user_of(handler: Any) -> str | None:
            raw = handler.get_secure_cookie(_COOKIE, max_age_days=1)
            if not raw:
                return None
            return sessions.session_user(raw.decode("ascii", "replace"))

        return user_of

    @property
    def login_handler(self) -> type[BasicLoginHandler]:
        self._handler._login_endpoint = self._login_endpoint
        self._handler._login_template = self._login_template
        return self._handler

    @property
    def logout_handler(self) -> type[Any]:
        """Log-out: end the service session, audit it, then clear the cookies."""
        self._logout._login_endpoint = self._login_endpoint
        self._logout._logout_template = self._logout_template
        return self._logout


class _ApiClients:
    """The API clients of the open pages (one per signed-in page with the hit queue).

    Each holds a keep-alive TLS connection to the service's own API. They are closed when
    their page's session ends, and all together when the dashboard stops: the API's shutdown
    waits for each connection it closes to be closed by its client too, and an idle client in
    this process never would (asyncio waits 30 s for it).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[Any] = set()
        self._closed = False

    def add(self, client: Any) -> None:
        """Keep ``client`` until its page's session ends (after :meth:`close_all`: close it)."""
        with self._lock:
            if not self._closed:
                self._open.add(client)
                return
        client.close()

    def close(self, client: Any) -> None:
        """Close ``client`` (its page's session ended)."""
        with self._lock:
            self._open.discard(client)
        client.close()

    def close_all(self) -> None:
        """Close every open client; a page opened later gets its client closed at once."""
        with self._lock:
            self._closed = True
            clients, self._open = self._open, set()
        for client in clients:
            try:
                client.close()
            except Exception as exc:  # one failing close must not keep the others open
                log.warning("closing a dashboard page's API client: %s", exc)


@dataclass
class RunningDashboard:
    """A dashboard server running on a background thread of the service process.

    Attributes
    ----------
    url
        Where it listens (``https://address:port``).
    source
        The shared source (the service's store and audit log, caches); its owner closes it.
    """

    url: str
    source: DashboardSource
    _thread: Any
    _clients: _ApiClients = field(default_factory=_ApiClients)
    _stop_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopping: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and close its pages' API clients (a second call only waits).

        The source stays open: it belongs to the service.
        """
        with self._stop_lock:
            if not self._stopping:  # Panel refuses a second stop while the first one runs
                self._stopping = True
                self._thread.stop()
            self._thread.join(timeout)
            self._clients.close_all()

    def __enter__(self) -> RunningDashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _wait_listening(address: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((address, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the dashboard did not start listening on {address}:{port}")


def start_dashboard(
    source: DashboardSource,
    accounts: Credentials,
    sessions: SessionKeeper,
    *,
    certfile: Path,
    keyfile: Path,
    port: int = 0,
    address: str = "127.0.0.1",
    tiles: bool = False,
    show: bool = False,
    default_days: int | None = 30,
    throttle: LoginThrottle | None = None,
    api_url: str | None = None,
    ca_pem: str | None = None,
    oidc: OidcSignIn | None = None,
    timeout: float = 30.0,
    out: Callable[[str], None] = print,
    **kw: Any,
) -> RunningDashboard:
    """Start the dashboard over TLS on a background thread (port 0: a free port); wait for it.

    Parameters
    ----------
    source
        The dashboard's view of the service's store and audit log.
    accounts
        The service's credentials (password and TOTP per user).
    sessions
        The service's live sessions (a dashboard sign-in opens one; its timeouts apply).
    certfile, keyfile
        The service's TLS certificate and key (the dashboard speaks HTTPS only).
    port, address
        Where to listen (default: a free loopback port).
    tiles
        OpenStreetMap tiles under the maps (needs the network; off by default).
    show
        Open a browser on the login page.
    default_days
        Initial period of each session: the last ``default_days`` stored days (None: all).
    throttle
        The back-off of failed sign-ins per client address; give the service's, so that
        failures on the API and on the dashboard count together.
    api_url, ca_pem
        The service's API and its certificate (PEM). The hit queue acts through them with
        the signed-in user's own session token, so its changes take the service's lock and
        its checks; without them the hit queue is not offered.
    oidc
        The service's OpenID Connect flow, shared in-process (None: OIDC is off, and the
        login page offers no "Sign in with <provider>"; ``dashboard/oidc.py``).
    timeout
        Seconds to wait for the server to listen.
    out
        Where to print the address.
    **kw
        Passed to :func:`panel.serve` (e.g. ``websocket_origin``).

    Returns
    -------
    RunningDashboard
        Its ``stop()`` shuts the server down.

    Raises
    ------
    TimeoutError
        If the server does not listen within ``timeout`` seconds (it is stopped first).
    """
    if port == 0:
        port = _free_port(address)
    try:
        source.geo()  # warm the shared caches before the first session
    except Exception as exc:  # an empty store still serves the API; the page says why
        log.warning("dashboard caches not warmed: %s", exc)

    clients = _ApiClients()

    def app() -> Any:
        # The cookie holds the session token (Panel reads it as ``pn.state.user``): the user
        # comes from the live service session only, never from the request.
        token = pn.state.user
        user_id = sessions.session_user(token) if token and token != "guest" else None
        service = None
        if user_id and api_url and ca_pem:
            service = connect_hit_service(api_url, token, ca_pem, user_id=user_id)
            clients.add(service)
            pn.state.on_session_destroyed(lambda _context, s=service: clients.close(s))
        return create_app(source, user_id=user_id or "", tiles=tiles, default_days=default_days,
                          hit_service=service)

    origins = kw.pop(
        "websocket_origin", [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    )
    opts = {
        "port": port,
        "address": address,
        "websocket_origin": origins,
        "title": "ALPR program dashboard",
        "auth_provider": _WorkbenchAuthProvider(
            source, accounts, throttle or LoginThrottle(), sessions,
            oidc_name=oidc.display_name if oidc is not None else None,
        ),
        "extra_patterns": [
            *kw.pop("extra_patterns", []),
            *(oidc_patterns(oidc, session_cookie=_COOKIE) if oidc is not None else []),
        ],
        "cookie_secret": kw.pop("cookie_secret", secrets.token_urlsafe(32)),
        "ssl_certfile": str(certfile),
        "ssl_keyfile": str(keyfile),
        "verbose": False,
        **kw,
    }
    thread = pn.serve(app, show=show, threaded=True, start=True, **opts)
    url = f"https://{address}:{port}"
    running = RunningDashboard(url, source, thread, clients)
    try:
        _wait_listening(address, port, timeout)
    except BaseException:
        running.stop()
        raise
    out(f"ALPR Workbench dashboard: {url}/ (sign in at {url}/login with your workbench "
        "account: password and authenticator code; command staff, auditors, administrators "
        "and the roles that work hits, in good standing)")
    return running
