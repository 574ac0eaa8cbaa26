"""Faults at the service boundary (issue #15): hang-ups, ``kill -9``, restarts, expiry.

Each test starts the real service in a subprocess over TLS on loopback (see
``service_fixtures``) on one small city built once for the module, does its damage, and
checks what must survive: the service keeps serving, and after a ``kill -9`` the store and
the audit log still verify and every search that was answered has its audit record. Sessions
live in the service's memory only, so a token from before a restart is refused.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import polars as pl
import pyotp
import pytest

from alpr_workbench.client import Client, ServiceError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.accounts import AccountStore
from alpr_workbench.store import Store
from service_fixtures import (
    ADMIN,
    ANALYSTS,
    CASE,
    PASSPHRASE,
    PASSWORD,
    PortTaken,
    Service,
    build_home,
    free_port,
    port_was_taken,
    retry_taken_port,
    start_service,
    stop_service,
)

# A service with short session timeouts: the real application and server, only the
# SessionStore's limits changed (the shipped service has no option to shorten them).
_SHORT_SESSIONS = """
import datetime as dt, sys
from pathlib import Path
import uvicorn
from alpr_workbench.service.app import create_app
from alpr_workbench.service.sessions import SessionStore
from alpr_workbench.service.tls import tls_files
from alpr_workbench.store import Store
home, port = Path(sys.argv[1]), int(sys.argv[2])
idle, absolute = (dt.timedelta(seconds=float(s)) for s in sys.argv[3:5])
files = tls_files(home)
app = create_app(Store.open(home), sessions=SessionStore(idle_timeout=idle,
                                                         absolute_timeout=absolute))
uvicorn.run(app, host="127.0.0.1", port=port, ssl_certfile=str(files.certfile),
            ssl_keyfile=str(files.keyfile), log_level="warning")
"""


class People:
    """The module's enrolled users, their TOTP secrets and the TOTP steps already used."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.secrets: dict[str, str] = {}
        self.used: dict[str, int] = {}

    def login(self, service: Service, user: str) -> Client:
        """Sign ``user`` in with a TOTP step not used before.

        The service takes the current step and its neighbours, each once and in increasing
        order: take the earliest unused one, waiting for the next step when all are spent.
        """
        totp = pyotp.TOTP(self.secrets[user])
        while True:
            now_step = int(time.time()) // 30
            step = max(now_step - 1, self.used.get(user, -1) + 1)
            if step <= now_step + 1:
                break
            time.sleep(0.5)
        self.used[user] = step
        return Client.login(service.url, user, PASSWORD, totp.at(step * 30), service.cert,
                            session_file=self.folder / f"{user}-{step}.json")


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Path, Path, People]:
    """A home with the administrator and every analyst enrolled (the service then stopped)."""
    root = tmp_path_factory.mktemp("faults")
    home = root / "home"
    code, cert = build_home(home)
    people = People(root)
    service = start_service(home, code, cert)
    try:
        people.secrets[ADMIN] = Client.enroll(service.url, ADMIN, code, PASSWORD,
                                              cert).totp_secret
        with people.login(service, ADMIN) as admin:
            for user in ANALYSTS:
                issued = admin.issue_enrolment(user)
                people.secrets[user] = Client.enroll(service.url, user, issued, PASSWORD,
                                                     cert).totp_secret
    finally:
        stop_service(service)
    return home, cert, people


@contextmanager
def running(home: Path, cert: Path) -> Iterator[Service]:
    service = start_service(home, "", cert)
    try:
        yield service
    finally:
        if service.process.poll() is None:
            stop_service(service)


def _search_body() -> dict[str, object]:
    start = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(0), tzinfo=dt.UTC)
    return {"case_number": CASE, "reason_code": "motor_vehicle_theft",
            "vehicle_color": "white", "window_from": start - dt.timedelta(days=3),
            "window_to": start}


def _json_body() -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v
            for k, v in _search_body().items()}


def _events(home: Path) -> pl.DataFrame:
    store = Store.open(home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events()


def _searches_by(home: Path, user: str) -> int:
    events = _events(home)
    return events.filter((pl.col("event_type") == "search") & (pl.col("user_id") == user)).height


def _assert_intact(home: Path) -> None:
    store = Store.open(home, passphrase=PASSPHRASE)
    assert store.verify() == []
    with AuditLog.open(store.home, store.keystore) as log:
        verdict = log.verify()
    assert verdict.ok, verdict.problem


def _kill_during(service: Service, work, *, after: int) -> list[BaseException]:
    """Run ``work()`` back to back in a thread; ``kill -9`` the service during call ``after``."""
    done, errors, stop = [0], [], threading.Event()

    def loop() -> None:
        while not stop.is_set() and done[0] < 1000:
            try:
                work()
            except (ServiceError, httpx.HTTPError) as exc:
                errors.append(exc)
                return
            done[0] += 1

    thread = threading.Thread(target=loop)
    thread.start()
    deadline = time.monotonic() + 60
    while done[0] < after and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert done[0] >= after, f"only {done[0]} calls succeeded before the kill: {errors}"
    time.sleep(0.01)  # the next call is in flight
    service.process.kill()  # SIGKILL: no clean-up in the service
    service.process.wait(timeout=10)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return errors


def test_a_client_hanging_up_mid_result_leaves_the_service_serving_and_audited(city):
    home, cert, people = city
    with running(home, cert) as service, people.login(service, "t.analyst") as analyst:
        before = _searches_by(home, "t.analyst")
        token = analyst._token
        headers = {"Authorization": f"Bearer {token}"}
        with service.raw() as http, http.stream("POST", "/v1/search", json=_json_body(),
                                                headers=headers) as response:
            assert response.status_code == 200
            event_id = response.headers["X-Audit-Event-Id"]
            next(response.iter_raw(512))  # a first piece of the Arrow stream, then hang up
        # A client that sends its search and closes the socket without reading anything.
        body = httpx.Request("POST", f"{service.url}/v1/search", json=_json_body()).content
        request = (
            f"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        context = ssl.create_default_context(cafile=str(cert))
        port = int(service.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw_socket, \
                context.wrap_socket(raw_socket, server_hostname="127.0.0.1") as tls:
            tls.sendall(request)
        deadline = time.monotonic() + 10
        while _searches_by(home, "t.analyst") < before + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _searches_by(home, "t.analyst") == before + 2
        found = analyst.search(**_search_body())  # still serving, the same session
        assert found.rows.height > 0
        assert service.process.poll() is None
    mine = _events(home).filter(pl.col("event_id") == event_id)
    assert mine["outcome"].to_list() == ["allowed"]


def test_kill_9_during_searches_then_restart_verifies_and_refuses_old_tokens(city):
    home, cert, people = city
    with running(home, cert) as service:
        analyst = people.login(service, "t.other")
        token = analyst._token
        before = _searches_by(home, "t.other")
        answered: list[str] = []

        def search() -> None:
            answered.append(analyst.search(**_search_body()).event_id)

        _kill_during(service, search, after=5)
        analyst.close()
    _assert_intact(home)
    events = _events(home)
    recorded = set(events.filter(pl.col("user_id") == "t.other")["event_id"])
    assert set(answered) <= recorded  # every answered search has its record
    assert _searches_by(home, "t.other") - before in (len(answered), len(answered) + 1)

    with running(home, cert) as service, service.raw("127.0.0.2") as http:
        replay = http.post("/v1/search", json=_json_body(),
                           headers={"Authorization": f"Bearer {token}"})
        assert replay.status_code == 401 and replay.json()["error"] == "invalid_session"
        assert replay.json()["event_id"]  # the replay itself is audited


def test_kill_9_during_enrolment_and_sign_in_writes_keeps_accounts_store_and_log(city):
    home, cert, people = city
    with running(home, cert) as service:
        admin = people.login(service, ADMIN)

        def enrol() -> None:  # rewrites accounts.json twice and appends two audit records
            code = admin.issue_enrolment("t.remote")
            Client.enroll(service.url, "t.remote", code, PASSWORD, cert)

        _kill_during(service, enrol, after=3)
        admin.close()
    _assert_intact(home)
    store = Store.open(home, passphrase=PASSPHRASE)
    AccountStore(home, store.keystore).is_enrolled(ADMIN)  # opens: not damaged, not older
    with running(home, cert) as service, people.login(service, ADMIN) as admin:
        fresh = Client.enroll(service.url, "t.remote", admin.issue_enrolment("t.remote"),
                              PASSWORD, cert)
        people.secrets["t.remote"] = fresh.totp_secret
        people.used.pop("t.remote", None)
        assert admin.whoami()["user_id"] == ADMIN
    _assert_intact(home)


@contextmanager
def _short_sessions(home: Path, cert: Path, idle_s: float, absolute_s: float):
    service = retry_taken_port(lambda: _start_short_sessions(home, cert, idle_s, absolute_s))
    try:
        yield service
    finally:
        stop_service(service)


def _start_short_sessions(home: Path, cert: Path, idle_s: float, absolute_s: float) -> Service:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    env["ALPR_WORKBENCH_PASSPHRASE"] = PASSPHRASE
    log = home.parent / "short-sessions.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _SHORT_SESSIONS, str(home), str(port), str(idle_s),
             str(absolute_s)], env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    service = Service(home, f"https://127.0.0.1:{port}", cert, process, "")
    try:
        deadline = time.monotonic() + 60
        with service.raw() as http:
            while True:
                if process.poll() is not None and port_was_taken(log):
                    raise PortTaken(log.read_text())
                assert process.poll() is None, f"the service exited: {log.read_text()}"
                try:
                    if http.get("/v1/health").status_code == 200:
                        return service
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the service did not become ready"
                time.sleep(0.2)
    except BaseException:
        stop_service(service)
        raise


def test_expired_sessions_are_refused_idle_and_absolute(city):
    home, cert, people = city
    with _short_sessions(home, cert, idle_s=1.0, absolute_s=2.5) as service:
        idle = people.login(service, "t.victim")
        assert idle.whoami()["user_id"] == "t.victim"
        time.sleep(1.2)
        with pytest.raises(ServiceError) as caught:
            idle.whoami()
        assert caught.value.status == 401 and "idle" in caught.value.detail

        busy = people.login(service, "t.victim")
        started = time.monotonic()
        with pytest.raises(ServiceError) as caught:
            for _ in range(20):  # never idle for long, yet ended at the absolute limit
                busy.whoami()
                time.sleep(0.25)
        assert caught.value.status == 401 and caught.value.detail.startswith("session expired;")
        assert time.monotonic() - started >= 2.0
        idle.close()
        busy.close()
