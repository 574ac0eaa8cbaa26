"""Serve the dashboard with the workbench's own login (scrypt-hashed passwords, role checks).

:func:`serve_dashboard` blocks (what ``alpr-workbench serve`` calls); :func:`start_dashboard`
runs the same server on a background thread and returns a handle to stop it (tests,
benchmarks, notebooks).
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
    allowed_dashboard_users,
    check_login,
    issue_passwords,
    password_file,
    users_with_passwords,
)
from alpr_workbench.dashboard.state import AuditHealth, DashboardSource
from alpr_workbench.dashboard.views import create_app
from alpr_workbench.store import Store

__all__ = ["RunningDashboard", "serve_dashboard", "start_dashboard"]

log = logging.getLogger(__name__)

_MAX_FAILURES = 5
_LOCKOUT_S = 15 * 60


@dataclass
class _Throttle:
    """Refuse a user name for a while after repeated failed logins (in memory, per server)."""

    failures: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked(self, user: str) -> bool:
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self.failures.get(user, []) if now - t < _LOCKOUT_S]
            self.failures[user] = recent
            return len(recent) >= _MAX_FAILURES

    def failed(self, user: str) -> None:
        with self.lock:
            self.failures.setdefault(user, []).append(time.monotonic())

    def succeeded(self, user: str) -> None:
        with self.lock:
            self.failures.pop(user, None)


def _login_handler(store: Store) -> type[BasicLoginHandler]:
    throttle = _Throttle()

    class WorkbenchLoginHandler(BasicLoginHandler):
        """Panel's login page, validated against the workbench's users and password hashes."""

        def _validate(self, username: str, password: str) -> bool:
            if throttle.blocked(username):
                log.warning("dashboard login for %r refused: too many failures", username)
                return False
            problem = check_login(store, username, password)
            if problem is None:
                throttle.succeeded(username)
                log.info("dashboard login: %s", username)
                return True
            throttle.failed(username)
            log.warning("dashboard login for %r refused: %s", username, problem)
            return False

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
  <div class="form-group"><button class="form-button" type="submit">Log in</button></div>
  <p class="note">Command staff, auditors and administrators. Aggregates only.</p>
</form></div></body></html>
"""


class _WorkbenchAuthProvider(BasicAuthProvider):
    def __init__(self, store: Store) -> None:
        import jinja2

        # Set before the base class validates the provider (it reads login_handler).
        self._handler = _login_handler(store)
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
            "Dashboard passwords issued now (shown once; only scrypt hashes are kept in "
            f"{password_file(home)}):"
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
        "auth_provider": _WorkbenchAuthProvider(source.store),
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
    **kw: Any,
) -> None:
    """Serve the command-staff dashboard for data directory ``home`` until interrupted.

    Prints the address and, for allowed users who have none yet, a freshly drawn password
    (shown once; only its scrypt hash is kept in ``<home>/dashboard/passwords.json``).

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
            source, port=port, address=address, tiles=tiles, default_days=default_days, kw=kw
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
        source, port=port, address=address, tiles=tiles, default_days=default_days, kw=kw
    )
    thread = pn.serve(app, show=False, threaded=True, start=True, **opts)
    running = RunningDashboard(f"http://{address}:{port}", issued, source, thread)
    try:
        _wait_listening(address, port, timeout)
    except BaseException:
        running.stop()
        raise
    return running
