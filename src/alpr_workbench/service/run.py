"""Start the service: the API (uvicorn) and the dashboard (Panel), one process, both over TLS.

The process that holds the keys serves the data API on ``--port`` and, with
``--dashboard-port``, the command-staff dashboard on its own port with the same certificate
and the same accounts, throttle and audit log (issue #15). Both listen on loopback unless the
operator says otherwise.

The key-encryption secret comes from the service's own environment
(``ALPR_WORKBENCH_PASSPHRASE`` or ``ALPR_WORKBENCH_KEK``) or from a file the operator names
(``--secret-file``), never from a client. Run it as ``alpr-workbench serve`` or
``python -m alpr_workbench.service`` (API only unless ``--dashboard-port`` is given).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from alpr_workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import polars as pl
    import uvicorn

    from alpr_workbench.dashboard.auth import LoginThrottle
    from alpr_workbench.dashboard.oidc import OidcSignIn
    from alpr_workbench.dashboard.serve import RunningDashboard
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.service.accounts import AccountStore
    from alpr_workbench.service.flight import FlightSearch
    from alpr_workbench.service.sessions import SessionStore
    from alpr_workbench.store import Store

__all__ = [
    "DEFAULT_DASHBOARD_PORT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "check_bind_host",
    "main",
    "run_service",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
DEFAULT_DASHBOARD_PORT = 8444


#: Seconds a stopping service waits for open connections before it cuts them.
SHUTDOWN_GRACE_S = 5


def check_bind_host(host: str, *, allow_remote: bool = False) -> None:
    """Refuse a non-loopback address unless ``allow_remote`` is given.

    Raises
    ------
    WorkbenchError
        For an address other clients could reach, without ``allow_remote``.

    Examples
    --------
    >>> check_bind_host("127.0.0.1"), check_bind_host("localhost")
    (None, None)
    >>> check_bind_host("0.0.0.0")
    Traceback (most recent call last):
    ...
    alpr_workbench.errors.WorkbenchError: refusing to listen on 0.0.0.0: ...
    """
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise WorkbenchError(
            f"refusing to listen on {host}: it is not a loopback address; give "
            "--allow-remote (and a certificate for that name) to serve other machines"
        )


def _read_secret(secret_file: Path | None) -> str | None:
    if secret_file is None:
        return None
    text = Path(secret_file).read_text().strip()
    if not text:
        raise WorkbenchError(f"{secret_file} is empty")
    return text


def run_service(
    home: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_remote: bool = False,
    secret_file: Path | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    dashboard_port: int | None = None,
    tiles: bool = False,
    show: bool = False,
    read_cache_mb: int | None = None,
    flight_port: int = 0,
) -> None:
    """Open the store with the service's secret; serve the API (and dashboard) until stopped.

    Parameters
    ----------
    home
        The data directory (made by ``alpr-workbench init``).
    host, port
        Where to listen (default ``127.0.0.1:8443``).
    allow_remote
        Allow a non-loopback ``host``.
    secret_file
        A file holding the key-store passphrase (otherwise the environment's).
    certfile, keyfile
        The operator's certificate and key (default: the one made at init).
    dashboard_port
        Also serve the dashboard on this port of ``host`` (0: a free one; None: no
        dashboard), over TLS with the same certificate, signed in with the same accounts.
    tiles, show
        Dashboard: online map tiles; open a browser on its login page.
    read_cache_mb
        Memory for decrypted day files (decision 0009; 0 turns it off; None: the default,
        1 GiB). The newest days are decrypted into it in the background at start.
    flight_port
        Port of ``host`` for search results over Arrow Flight (0: a free one; ``GET
        /v1/health`` tells clients which; ``docs/decisions/0010-flight-results.md``).

    Raises
    ------
    WorkbenchError
        For a refused host, a missing certificate, or a store that does not open.
    SystemExit
        With status 0 on SIGTERM (``systemctl stop``), and KeyboardInterrupt on SIGINT
        (Ctrl-C; ``alpr-workbench serve`` then exits with 130), each after a clean stop: the
        API finishes its requests, the dashboard stops, the audit log closes and the data
        directory's holder lock is released.
    """
    check_bind_host(host, allow_remote=allow_remote)
    from alpr_workbench.service.tls import tls_files

    if (certfile is None) != (keyfile is None):
        raise WorkbenchError("give both --certfile and --keyfile, or neither")
    files = tls_files(home)
    cert = Path(certfile) if certfile is not None else files.certfile
    key = Path(keyfile) if keyfile is not None else files.keyfile
    if not cert.is_file() or not key.is_file():
        raise WorkbenchError(f"no TLS certificate at {cert}: run `alpr-workbench init` first")

    import uvicorn

    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.service.accounts import AccountStore
    from alpr_workbench.service.app import create_app
    from alpr_workbench.service.oidc_dashboard import dashboard_oidc
    from alpr_workbench.service.sessions import SessionStore
    from alpr_workbench.service.throttle import make_throttle
    from alpr_workbench.store import READ_CACHE, Store, hold_store

    # The data directory's holder lock, for as long as the service runs: an operator tool
    # (verify, audit digest...) started beside it is refused, naming this service.
    holder = f"the workbench service (pid {os.getpid()}, {_api_url(host, port)})"
    with _exit_on_sigterm(), hold_store(Path(home), holder=holder):
        store = Store.open(Path(home), passphrase=_read_secret(secret_file))
        if read_cache_mb is not None:
            READ_CACHE.set_budget(read_cache_mb << 20)
        filled = threading.Event()  # GET /v1/health says "filling" until it is set

        def fill() -> None:
            try:
                store.reads.warm()
            finally:
                filled.set()

        threading.Thread(target=fill, name="read-cache-warm", daemon=True).start()
        audit = AuditLog.open(store.home, store.keystore)
        accounts = AccountStore(store.home, store.keystore)
        throttle = make_throttle()  # one back-off per source for the API and the dashboard
        sessions = SessionStore()  # one session table: the dashboard's sign-ins are sessions too
        app = create_app(
            store, audit=audit, accounts=accounts, sessions=sessions, throttle=throttle
        )
        app.state.service.cache_filled = filled
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
            access_log=False,
            server_header=False,
            # The source of a request is the peer's address, never what it claims: uvicorn's
            # default trusts X-Forwarded-For from loopback, which would let a local caller rotate
            # its login back-off away and write a false `source` into the audit trail.
            proxy_headers=False,
            forwarded_allow_ips="",
            # A client keeps one TLS connection for its session; a notebook pausing between
            # searches should not pay a new handshake each time (uvicorn's default is 5 s).
            timeout_keep_alive=60,
            # A client's idle keep-alive TLS connection (a notebook, a CLI session) held a stop
            # for asyncio's 30 s SSL close; after this many seconds of shutdown such connections
            # (and a download still going to a slow client) are cut. Requests already in the
            # gate finish first: the audit log closes under the service lock (below).
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        from alpr_workbench.service.flight import start_flight

        dashboard, flight = None, None
        try:
            flight = start_flight(app.state.service, host, flight_port, cert.read_bytes(),
                                  key.read_bytes())
            if dashboard_port is not None:
                dashboard = _start_dashboard(
                    store, audit, accounts, throttle, sessions, host=host, port=dashboard_port,
                    cert=cert, key=key, tiles=tiles, show=show, api_url=_api_url(host, port),
                    oidc=dashboard_oidc(app.state.service),  # the API's flow, shared
                )
            print(
                f"alpr-workbench service on https://{host}:{port} (search results also over "
                f"Arrow Flight, port {flight.port}; certificate {cert})",
                flush=True,
            )
            _api_server(config, dashboard).run()
        finally:
            try:
                try:
                    if dashboard is not None:
                        dashboard.stop()
                finally:
                    if flight is not None:
                        _stop_flight(flight)
            finally:
                # A request thread still in the gate (its connection cut at shutdown) holds the
                # service lock: its audit record is written before the log closes.
                with app.state.service.lock:
                    audit.close()


def _stop_flight(server: FlightSearch) -> None:
    """Stop the Flight server, waiting at most :data:`SHUTDOWN_GRACE_S` for its calls.

    Its ``shutdown()`` waits for every call, also a result stream to a client that stopped
    reading (a laptop gone to sleep): the service would never stop. Searches still in the gate
    need no wait here: the audit log closes under the service lock, after them.
    """
    stopper = threading.Thread(target=server.shutdown, name="flight-stop", daemon=True)
    stopper.start()
    stopper.join(SHUTDOWN_GRACE_S)


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """While in it, SIGTERM (``systemctl stop``, ``kill``) leaves through ``finally``: exit 0.

    uvicorn handles SIGTERM while it serves, shuts down, then raises the signal again under
    the handler it found. Python's default one would end the process there, before the
    dashboard stops, the audit log closes and the holder lock is released. This one raises
    :class:`SystemExit` instead, once: a second SIGTERM during that clean-up is ignored.
    Outside the main thread (where Python sets no handler) it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _api_server(config: uvicorn.Config, dashboard: RunningDashboard | None) -> uvicorn.Server:
    """The API's server (uvicorn's) for ``config``; as it begins to shut down, stop the dashboard.

    The dashboard's pages hold keep-alive TLS connections to this API (their hit queue's
    clients). uvicorn closes an idle connection gracefully, and over TLS asyncio then waits for
    the client's own close, up to 30 s per connection: a client idle in this very process never
    answers. Stopping the dashboard first closes those clients, so the API stops at once.
    """
    import uvicorn

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if dashboard is not None:
                # On a worker thread: a page's call into this API must still be answered.
                await asyncio.to_thread(dashboard.stop)
            await super().shutdown(sockets)

    return _Server(config)


class _DashboardSessions:
    """The service's :class:`SessionStore` as the dashboard's ``SessionKeeper``."""

    def __init__(self, sessions: SessionStore) -> None:
        self._sessions = sessions

    def open_session(self, user_id: str) -> str:
        """Start a session for ``user_id``; return its token."""
        token, _ = self._sessions.open(user_id)
        return token

    def session_user(self, token: str) -> str | None:
        """The user of the live session of ``token``, or None."""
        from alpr_workbench.service.sessions import Session

        found = self._sessions.check(token)
        return found.user_id if isinstance(found, Session) else None

    def close_session(self, token: str) -> str | None:
        """End the session of ``token`` (a dashboard sign-out); return its user, or None."""
        ended = self._sessions.revoke(token)
        return ended.user_id if ended is not None else None


def _start_dashboard(
    store: Store,
    audit: AuditLog,
    accounts: AccountStore,
    throttle: LoginThrottle,
    sessions: SessionStore,
    *,
    host: str,
    port: int,
    cert: Path,
    key: Path,
    tiles: bool,
    show: bool,
    api_url: str | None = None,
    oidc: OidcSignIn | None = None,
) -> RunningDashboard:
    """Start the dashboard on a thread of this process, over the service's own store.

    The dashboard gets the service's store, audit log, accounts and throttle: its data and
    its sign-ins stay in the process that holds the keys. Its hit queue acts through this
    process's API (``api_url``, pinned to ``cert``) with each user's own session token, so
    its changes take the service's lock and checks like any client's. With ``oidc`` (the
    API's own OpenID Connect flow) its login page offers "Sign in with <provider>", each
    flow's source being the browser's address (``docs/decisions/0006-oidc-sign-in.md``).
    """
    from alpr_workbench.dashboard.serve import start_dashboard
    from alpr_workbench.dashboard.state import DashboardSource
    from alpr_workbench.reports import audit_health

    def checks() -> pl.DataFrame:
        return audit_health(store, audit)

    source = DashboardSource(store, audit, audit_health=checks)
    return start_dashboard(
        source, accounts, _DashboardSessions(sessions), certfile=cert, keyfile=key,
        port=port, address=host, tiles=tiles, show=show, throttle=throttle,
        api_url=api_url, ca_pem=cert.read_text(), oidc=oidc,
        out=lambda line: print(line, flush=True),
    )


def _api_url(host: str, port: int) -> str:
    """Where this process's own API answers, for the dashboard's hit queue.

    Examples
    --------
    >>> _api_url("127.0.0.1", 8443), _api_url("0.0.0.0", 8443), _api_url("::", 1)
    ('https://127.0.0.1:8443', 'https://127.0.0.1:8443', 'https://[::1]:1')
    """
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alpr_workbench.service --data-dir D [--port P] [--dashboard-port Q]``."""
    parser = argparse.ArgumentParser(prog="alpr_workbench.service", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument("--secret-file", type=Path)
    parser.add_argument("--certfile", type=Path)
    parser.add_argument("--keyfile", type=Path)
    parser.add_argument("--dashboard-port", type=int, default=None)
    parser.add_argument("--read-cache-mb", type=int, default=None)
    parser.add_argument("--flight-port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        run_service(
            args.data_dir,
            host=args.host,
            port=args.port,
            allow_remote=args.allow_remote,
            secret_file=args.secret_file,
            certfile=args.certfile,
            keyfile=args.keyfile,
            dashboard_port=args.dashboard_port,
            read_cache_mb=args.read_cache_mb,
            flight_port=args.flight_port,
        )
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: stopped cleanly (run_service's clean-up has run)
        return 130
    return 0
