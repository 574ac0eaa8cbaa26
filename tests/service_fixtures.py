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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    """Whether a server's log says its port was taken meanwhile.

    :func:`free_port` only finds a port that was free a moment ago: another test running in
    parallel (``pytest -n``) may bind it first. The caller then starts again on another port.
    """
    return "address already in use" in log.read_text(errors="replace").lower()


def start_service(
    home: Path, admin_code: str, cert: Path, *, passphrase: str | None = PASSPHRASE
) -> Service:
    """Start the service on a free port; ``passphrase=None`` for a demo store (its own file)."""
    for _ in range(4):
        try:
            return _start_service(home, admin_code, cert, passphrase=passphrase)
        except _PortTaken:
            continue
    return _start_service(home, admin_code, cert, passphrase=passphrase)


class _PortTaken(RuntimeError):
    """The free port found was taken by another process before the service bound it."""


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
                        raise _PortTaken(log.read_text())
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
