"""Serve the dashboard with the workbench's own login (scrypt-hashed passwords, role checks).

:func:`serve_dashboard` blocks (what ``alpr-workbench serve`` calls); :func:`start_dashboard`
runs the same server on a background thread and returns a handle to stop it (tests,
benchmarks, notebooks).
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import panel as pn
from panel.auth import BasicAuthProvider, BasicLoginHandler

from alpr_workbench.dashboard.auth import (
    LoginThrottle,
    allowed_dashboard_users,
    attempt_login,
    issue_passwords,
    password_file,
    users_with_passwords,
)
from alpr_workbench.dashboard.state import AuditHealth, DashboardSource
from alpr_workbench.dashboard.views import create_app

__all__ = ["RunningDashboard", "serve_dashboard", "start_dashboard"]

log = logging.getLogger(__name__)


def _login_handler(source: DashboardSource, throttle: LoginThrottle) -> type[BasicLoginHandler]:
    from panel.auth import _validate_next_url
    from panel.io.state import state
    from tornado.escape import url_escape

    class WorkbenchLoginHandler(BasicLoginHandler):
        """Panel's login page, validated by :func:`~alpr_workbench.dashboard.auth.attempt_login`.

        One-time passwords need a new password, failures slow down the client address (not
        the account), and every attempt goes to the audit log.
        """

        def _validate(self, username: str, password: str) -> bool:
            return False  # every login goes through post(), with its source and new password

        def post(self) -> None:
            username = self.get_argument("username", "")
            password = self.get_argument("password", "")
            new_password = self.get_argument("new_password", "")
            client = self.request.remote_ip or "unknown"
            problem = attempt_login(
                source.store,
                username,
                password,
                source=client,
                throttle=throttle,
                new_password=new_password,
                audit=source.audit,
                policy=source.policy,
            )
            if problem is not None:
                log.warning("dashboard login for %r from %s refused: %s", username, client, problem)
                self.redirect(f"{self.request.path}?error={url_escape(problem)}")
                return
            log.info("dashboard login: %s from %s", username, client)
            self.set_current_user(username)
            self.redirect(_validate_next_url(self.get_cookie("next_url", state.base_url)))

    return WorkbenchLoginHandler


# Panel's login page, without its CDN logo and favicon: the dashboard must work offline.
_LOGIN_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta content="width=device-width, initial-scale=1.0" name="viewport">
<title>ALPR Workbench | Log in</title>
<style>
* {box-sizing: border-box; margin: 0; padding: 0;}
html, body {height: 100%; font-family: 'Segoe UI', sans-serif; line-height: 1.6;}
.wrap {align-items: center; background: #f4f6f8; display: flex; height: 100%;
  justify-content: center; width: 100%;}
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
  <div class="form-group"><input name="new_password" type="password" class="form-input"
    autocomplete="new-password"
    placeholder="new password (needed with a one-time password)"></div>
  <div class="form-group"><button class="form-button" type="submit">Log in</button></div>
  <p class="note">Command staff, auditors and administrators. Aggregates only.
  An issued password works once: choose your own password with it.</p>
</form></div></body></html>
"""


class _WorkbenchAuthProvider(BasicAuthProvider):
    def __init__(self, source: DashboardSource, throttle: LoginThrottle) -> None:
        import jinja2

        # Set before the base class validates the provider (it reads login_handler).
        self._handler = _login_handler(source, throttle)
        super().__init__()
        self._login_template = jinja2.Environment(autoescape=True).from_string(_LOGIN_HTML)

    @property
    def login_handler(self) -> type[BasicLoginHandler]:
        self._handler._login_endpoint = self._login_endpoint
        self._handler._login_template = self._login_template
        return self._handler


@dataclass
class RunningDashboard:
    """A dashboard server running on a background thread.

    Attributes
    ----------
    url
        Where it listens (``http://address:port``).
    issued
        Passwords issued at start (user id to password), to hand out once.
    source
        The shared source (store, audit log, caches).
    """

    url: str
    issued: dict[str, str]
    source: DashboardSource
    _thread: Any

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and close the audit log."""
        self._thread.stop()
        self._thread.join(timeout)
        self.source.close()

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


def _prepare(
    home: Path,
    *,
    audit_health: AuditHealth | None,
    reset_passwords: bool,
    issue_missing: bool,
) -> tuple[DashboardSource, dict[str, str]]:
    source = DashboardSource.open(Path(home), audit_health=audit_health)
    try:
        allowed = allowed_dashboard_users(source.store, policy=source.policy)
        have = users_with_passwords(source.home)
        wanted = allowed if reset_passwords else [u for u in allowed if u not in have]
        issued = issue_passwords(source.home, wanted) if (wanted and issue_missing) else {}
        source.geo()  # warm the shared caches before the first session
    except BaseException:
        source.close()
        raise
    return source, issued


def _announce(url: str, home: Path, issued: dict[str, str], out: Callable[[str], None]) -> None:
    out(f"ALPR Workbench dashboard: {url}/ (log in at {url}/login)")
    if issued:
        out(
            "Dashboard one-time passwords issued now (shown once; only scrypt hashes are kept "
            f"in {password_file(home)}; each works once, with the user's new password):"
        )
        for user, password in sorted(issued.items()):
            out(f"  {user:<16} {password}")
    else:
        out(f"Passwords: as issued before (hashes in {password_file(home)}).")
    out("Only command staff, auditors and administrators in good standing can log in.")


def _serve_kwargs(
    source: DashboardSource,
    *,
    port: int,
    address: str,
    tiles: bool,
    default_days: int | None,
    throttle: LoginThrottle | None,
    kw: dict[str, Any],
) -> tuple[Callable[[], Any], dict[str, Any]]:
    def app() -> Any:
        return create_app(source, tiles=tiles, default_days=default_days)

    origins = kw.pop("websocket_origin", [f"{address}:{port}", f"localhost:{port}"])
    opts = {
        "port": port,
        "address": address,
        "websocket_origin": origins,
        "title": "ALPR program dashboard",
        "auth_provider": _WorkbenchAuthProvider(source, throttle or LoginThrottle()),
        "cookie_secret": kw.pop("cookie_secret", secrets.token_urlsafe(32)),
        "verbose": False,
        **kw,
    }
    return app, opts


def serve_dashboard(
    home: Path,
    *,
    port: int = 5006,
    address: str = "127.0.0.1",
    show: bool = False,
    tiles: bool = False,
    audit_health: AuditHealth | None = None,
    reset_passwords: bool = False,
    issue_missing_passwords: bool = True,
    default_days: int | None = 30,
    out: Callable[[str], None] = print,
    throttle: LoginThrottle | None = None,
    **kw: Any,
) -> None:
    """Serve the command-staff dashboard for data directory ``home`` until interrupted.

    Prints the address and, for allowed users who have none yet, a freshly drawn one-time
    password (shown once; only its scrypt hash is kept in ``<home>/dashboard/passwords.json``;
    it logs in once, together with the user's new password).

    Parameters
    ----------
    home
        Data directory of the store.
    port, address
        Where to listen (default: localhost only).
    show
        Open a browser on the login page.
    tiles
        OpenStreetMap tiles under the maps (needs the network; off by default).
    audit_health
        Callable returning the latest audit checks (default: the checks that exist today).
    reset_passwords
        Issue new passwords to every allowed user (the old ones stop working).
    issue_missing_passwords
        Issue passwords to allowed users who have none.
    default_days
        Initial period of each session: the last ``default_days`` stored days (None: all).
    out
        Where to print.
    throttle
        Back-off of failed logins per client address (default: :class:`LoginThrottle`).
    **kw
        Passed to :func:`panel.serve` (e.g. ``websocket_origin``, ``cookie_secret``).
    """
    if port == 0:
        port = _free_port(address)
    source, issued = _prepare(
        home,
        audit_health=audit_health,
        reset_passwords=reset_passwords,
        issue_missing=issue_missing_passwords,
    )
    try:
        app, opts = _serve_kwargs(
            source,
            port=port,
            address=address,
            tiles=tiles,
            default_days=default_days,
            throttle=throttle,
            kw=kw,
        )
        _announce(f"http://{address}:{port}", source.home, issued, out)
        pn.serve(app, show=show, threaded=False, start=True, **opts)
    finally:
        source.close()


def start_dashboard(
    home: Path,
    *,
    port: int = 0,
    address: str = "127.0.0.1",
    tiles: bool = False,
    audit_health: AuditHealth | None = None,
    reset_passwords: bool = False,
    issue_missing_passwords: bool = True,
    default_days: int | None = 30,
    timeout: float = 30.0,
    throttle: LoginThrottle | None = None,
    **kw: Any,
) -> RunningDashboard:
    """Start the dashboard on a background thread (port 0: a free port) and wait for it.

    Same parameters as :func:`serve_dashboard`; returns a :class:`RunningDashboard` whose
    ``stop()`` shuts it down (use it as a context manager).

    Raises
    ------
    TimeoutError
        If the server does not listen within ``timeout`` seconds (it is stopped first).
    """
    if port == 0:
        port = _free_port(address)
    source, issued = _prepare(
        home,
        audit_health=audit_health,
        reset_passwords=reset_passwords,
        issue_missing=issue_missing_passwords,
    )
    app, opts = _serve_kwargs(
        source,
        port=port,
        address=address,
        tiles=tiles,
        default_days=default_days,
        throttle=throttle,
        kw=kw,
    )
    thread = pn.serve(app, show=False, threaded=True, start=True, **opts)
    running = RunningDashboard(f"http://{address}:{port}", issued, source, thread)
    try:
        _wait_listening(address, port, timeout)
    except BaseException:
        running.stop()
        raise
    return running
