"""A real service in a subprocess, over TLS on loopback, with a small city in its store."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import polars as pl
import pyotp

from alpr_workbench.client import Client
from alpr_workbench.service.initialize import init_workbench
from alpr_workbench.store import Store
from alpr_workbench.synth import CityConfig, generate_city, generate_day

PASSPHRASE = "service test passphrase, not a secret"
TODAY = dt.datetime.now(dt.UTC).date()
CONFIG = CityConfig(days=2, scale=0.02, seed=5, end_date=TODAY - dt.timedelta(days=1))
CASE = "BPD-2026-910001"
ADMIN = "t.admin"
ANALYSTS = ("t.analyst", "t.other", "t.victim", "t.remote")
PASSWORD = "correct horse battery staple"
# The one command that runs the service: `alpr-workbench serve` (here with the API only).
_EXE = shutil.which("alpr-workbench", path=os.path.dirname(sys.executable)) or "alpr-workbench"


def _user(user_id: str, role: str, title: str, now: dt.datetime) -> dict[str, object]:
    return {
        "user_id": user_id, "full_name": f"Test {user_id}", "role": role,
        "organization": "Burbank Police Department", "organization_type": "ca_local_agency",
        "job_title": title, "is_active": True, "approved_by": ADMIN,
        "approved_at": now - dt.timedelta(days=3), "trained_at": now - dt.timedelta(days=3),
    }


def build_home(home: Path) -> tuple[str, Path]:
    """Init a store, then add a small city, analysts and a case; return (admin code, cert)."""
    result = init_workbench(home, ADMIN, "Test Administrator", passphrase=PASSPHRASE)
    store = Store.open(home, passphrase=PASSPHRASE)
    city = generate_city(CONFIG)
    for table in ("networks", "cameras", "sharing_grants"):
        store.tables.write(table, getattr(city, table))
    now = dt.datetime.now(dt.UTC)
    users = store.tables.read("users")
    rows = [_user(u, "analyst", "Crime Analyst", now) for u in ANALYSTS]
    store.tables.append("users", pl.DataFrame(rows, schema=users.schema))
    store.tables.write("cases", pl.DataFrame(
        {"case_number": [CASE], "title": ["Stolen Honda Civic"],
         "offense_type": ["motor_vehicle_theft"], "status": ["open"],
         "opened_at": [now - dt.timedelta(days=5)], "closed_at": [None],
         "assigned_user_ids": [list(ANALYSTS)]},
        schema=store.tables.read("cases").schema,
    ))
    for i in range(CONFIG.days):
        store.reads.ingest(generate_day(city, CONFIG.start_date + dt.timedelta(days=i)).reads)
    return result.enrolment_code, result.certfile


_T = TypeVar("_T")


def free_port() -> int:
    """A loopback port free a moment ago: start with :func:`retry_taken_port`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(RuntimeError):
    """A free port found was taken by another process before the server bound it."""


def retry_taken_port(start: Callable[[], _T], *, tries: int = 5) -> _T:
    """Call ``start`` (which picks its ports with :func:`free_port`) until no port was taken.

    :func:`free_port` only finds a port that was free a moment ago: another test running in
    parallel (``pytest -n``) may bind it first. ``start`` then raises :class:`PortTaken`
    (:func:`port_was_taken` reads a server's log for it) and is called again, on other
    ports; the last try's error is raised as it is.
    """
    for _ in range(tries - 1):
        try:
            return start()
        except PortTaken:
            continue
    return start()


@dataclass
class ThreadServer:
    """A uvicorn server running in a thread of the test's process (see :func:`serve_in_thread`)."""

    server: Any
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(30)


def serve_in_thread(
    app_for: Callable[[int], Any], *, timeout: float = 30.0, **config: Any
) -> ThreadServer:
    """Serve ``app_for(port)`` with uvicorn on a loopback port; return once it listens.

    The socket is bound here, to a port the system picks, and handed to the server, so no
    other process (a test on another ``pytest -n`` worker) can take the port between finding
    it and serving on it: no retry needed. ``config``: more ``uvicorn.Config`` options.
    """
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app_for(port), host="127.0.0.1", port=port, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    running = ThreadServer(server, thread, port)
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            running.stop()
            sock.close()
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.05)
    return running


@dataclass
class Service:
    """A running service and what the tests need to talk to it."""

    home: Path
    url: str
    cert: Path
    process: subprocess.Popen[bytes]
    admin_code: str

    def raw(self, source: str = "127.0.0.1") -> httpx.Client:
        """A plain HTTPS client from a chosen loopback source address (an 'attacker')."""
        context = ssl.create_default_context(cafile=str(self.cert))
        transport = httpx.HTTPTransport(verify=context, local_address=source)
        return httpx.Client(base_url=self.url, transport=transport, timeout=30)


def port_was_taken(log: Path) -> bool:
    """Whether a server's log says its port was taken meanwhile (:func:`retry_taken_port`)."""
    return "address already in use" in log.read_text(errors="replace").lower()


def start_service(
    home: Path, admin_code: str, cert: Path, *, passphrase: str | None = PASSPHRASE
) -> Service:
    """Start the service on a free port; ``passphrase=None`` for a demo store (its own file)."""
    return retry_taken_port(
        lambda: _start_service(home, admin_code, cert, passphrase=passphrase)
    )


def _start_service(
    home: Path, admin_code: str, cert: Path, *, passphrase: str | None
) -> Service:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    if passphrase is not None:
        env["ALPR_WORKBENCH_PASSPHRASE"] = passphrase
    log = home.parent / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [_EXE, "serve", "--no-dashboard", "--data-dir", str(home), "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    service = Service(home, f"https://127.0.0.1:{port}", cert, process, admin_code)
    deadline = time.monotonic() + 60
    try:
        with service.raw() as http:
            while True:
                if process.poll() is not None:
                    if port_was_taken(log):
                        raise PortTaken(log.read_text())
                    raise RuntimeError(f"the service exited: {log.read_text()}")
                try:
                    if http.get("/v1/health").status_code == 200:
                        return service
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not become ready: {log.read_text()}")
                time.sleep(0.2)
    except BaseException:
        stop_service(service)
        raise


@contextlib.contextmanager
def city_service(root: Path) -> Iterator[Service]:
    """The small city served from ``root/home`` (:func:`build_home`); stopped on exit."""
    home = root / "home"
    code, cert = build_home(home)
    running = start_service(home, code, cert)
    try:
        yield running
    finally:
        stop_service(running)


def stop_service(service: Service) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


def enroll_and_login(service: Service, user_id: str, code: str, session_file: Path) -> Client:
    enrolled = Client.enroll(service.url, user_id, code, PASSWORD, service.cert)
    totp = pyotp.TOTP(enrolled.totp_secret).now()
    return Client.login(service.url, user_id, PASSWORD, totp, service.cert,
                        session_file=session_file)


def secret_of(enrolled_uri: str) -> str:
    return pyotp.parse_uri(enrolled_uri).secret


@contextlib.contextmanager
def served_admin(root: Path) -> Iterator[tuple[Path, Path, dict[str, object]]]:
    """A small city served from ``root/home``: its home, the administrator's saved session file
    and one of its cameras (a row of the ``cameras`` table); the service stops on exit."""
    home = root / "home"
    code, cert = build_home(home)
    camera = Store.open(home, passphrase=PASSPHRASE).tables.read("cameras").row(0, named=True)
    service = start_service(home, code, cert)
    try:
        session = root / "admin-session.json"
        enroll_and_login(service, ADMIN, code, session).close()
        yield home, session, camera
    finally:
        stop_service(service)
