"""Attacks on the service boundary (issue #15): each must be refused, and audited at the gate."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyotp
import pytest

from alpr_workbench.client import Client, ServiceError
from alpr_workbench.store import Store
from service_fixtures import (
    ADMIN,
    CASE,
    PASSPHRASE,
    PASSWORD,
    city_service,
    free_port,
)

_SOURCES = (f"127.0.0.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with city_service(tmp_path_factory.mktemp("attack-service")) as running:
        yield running


@pytest.fixture(scope="module")
def people(service, tmp_path_factory):
    """Admin and every analyst enrolled; returns their TOTP secrets and a session folder."""
    folder = tmp_path_factory.mktemp("sessions")
    secrets_by_user = {}
    enrolled = Client.enroll(service.url, ADMIN, service.admin_code, PASSWORD, service.cert)
    secrets_by_user[ADMIN] = enrolled.totp_secret
    admin = Client.login(service.url, ADMIN, PASSWORD, pyotp.TOTP(enrolled.totp_secret).now(),
                         service.cert, session_file=folder / "admin.json")
    for user in ("t.analyst", "t.other", "t.victim", "t.remote"):
        done = Client.enroll(service.url, user, admin.issue_enrolment(user), PASSWORD,
                             service.cert)
        secrets_by_user[user] = done.totp_secret
    admin.close()
    return secrets_by_user, folder


def _login(service, people, user, *, step=0):
    secrets_by_user, folder = people
    totp = pyotp.TOTP(secrets_by_user[user])
    code = totp.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30 * step))
    return Client.login(service.url, user, PASSWORD, code, service.cert,
                        session_file=folder / f"{user}-{step}.json")


def _search_body():
    today = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(0), tzinfo=dt.UTC)
    return {"case_number": CASE, "reason_code": "motor_vehicle_theft", "vehicle_color": "white",
            "window_from": (today - dt.timedelta(days=3)).isoformat(),
            "window_to": today.isoformat()}


def test_wrong_password_and_wrong_totp_are_refused(service, people):
    secrets_by_user, _ = people
    good = pyotp.TOTP(secrets_by_user["t.other"]).now()
    with service.raw(next(_SOURCES)) as http:
        r1 = http.post("/v1/login", json={"user_id": "t.other", "password": "not the password!",
                                          "totp": good})
        wrong = f"{(int(good) + 1) % 1_000_000:06d}"
        r2 = http.post("/v1/login", json={"user_id": "t.other", "password": PASSWORD,
                                          "totp": wrong})
    for r in (r1, r2):
        assert r.status_code == 401 and r.json()["error"] == "login_refused"
        assert r.json()["event_id"]  # audited


def test_a_totp_code_works_once(service, people):
    client = _login(service, people, "t.other", step=1)
    client.close()
    with pytest.raises(ServiceError) as caught:
        _login(service, people, "t.other", step=1)
    assert caught.value.status == 401


def test_failures_back_off_the_source_not_the_account(service, people):
    attacker = next(_SOURCES)
    with service.raw(attacker) as http:
        codes = [http.post("/v1/login", json={"user_id": ADMIN, "password": "guess-guess-guess",
                                              "totp": "000000"}).status_code for _ in range(7)]
    assert codes[:5] == [401] * 5 and 429 in codes[5:]
    with service.raw(next(_SOURCES)) as http:  # the admin, from elsewhere, is not locked out
        assert http.get("/v1/health").status_code == 200
        r = http.post("/v1/login", json={"user_id": ADMIN, "password": "x" * 12, "totp": "1"})
        assert r.status_code == 401  # checked (wrong), not 429


def test_a_used_enrolment_code_is_refused(service, people, tmp_path):
    with service.raw(next(_SOURCES)) as http:
        r = http.post("/v1/enroll", json={"user_id": ADMIN, "code": service.admin_code,
                                          "new_password": "attacker's new password"})
    assert r.status_code == 400 and r.json()["error"] == "enrolment_refused"
    assert r.json()["event_id"]


def test_forged_and_missing_tokens_are_refused(service, people):
    with service.raw(next(_SOURCES)) as http:
        none = http.post("/v1/search", json=_search_body())
        forged = http.post("/v1/search", json=_search_body(),
                           headers={"Authorization": "Bearer " + "A" * 43})
    assert none.status_code == 401 and none.json()["error"] == "unauthenticated"
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_session"
    assert forged.json()["event_id"]


def test_a_token_after_logout_is_dead(service, people):
    client = _login(service, people, "t.analyst")
    token = client._token
    client.logout()
    with service.raw(next(_SOURCES)) as http:
        r = http.post("/v1/search", json=_search_body(),
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_session"


def test_a_disabled_user_is_cut_off_on_the_next_request(service, people):
    client = _login(service, people, "t.victim")
    assert client.search(**_search_body()).rows.height >= 0
    store = Store.open(service.home, passphrase=PASSPHRASE)
    users = store.tables.read("users")
    store.tables.write("users", users.with_columns(
        pl.when(pl.col("user_id") == "t.victim").then(False).otherwise(pl.col("is_active"))
        .alias("is_active")))
    with pytest.raises(ServiceError) as caught:
        client.whoami()
    assert caught.value.status == 403 and "disabled" in caught.value.detail
    assert caught.value.event_id
    with pytest.raises(ServiceError) as again:  # the session is gone, not just refused once
        client.whoami()
    assert again.value.status == 401
    client.close()


def test_malformed_and_oversized_bodies(service, people):
    client = _login(service, people, "t.remote")
    auth = {"Authorization": f"Bearer {client._token}"}
    with service.raw(next(_SOURCES)) as http:
        bad_json = http.post("/v1/search", content=b"{not json", headers=auth)
        unknown = http.post("/v1/search", json={**_search_body(), "user_id": ADMIN},
                            headers=auth)
        huge = http.post("/v1/search", content=b"x" * 200_000, headers=auth)
    assert bad_json.status_code == 422 and bad_json.json()["event_id"]
    assert unknown.status_code == 422 and "user_id" in unknown.json()["detail"]
    assert huge.status_code == 413 and huge.json()["error"] == "body_too_large"
    assert client.whoami()["user_id"] == "t.remote"
    client.close()


def test_a_non_loopback_bind_is_refused(service):
    out = subprocess.run(
        [sys.executable, "-m", "alpr_workbench.service", "--data-dir", str(service.home),
         "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")},
    )
    assert out.returncode == 2 and "not a loopback address" in out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
@contextlib.contextmanager
def _code_reachable_by_others() -> Iterator[None]:
    """Let another user traverse to the interpreter, the venv and the checkout (only ``o+x``).

    A fresh clone may sit in a private (0700) temporary folder: the unprivileged client must
    still run the workbench's code, though never reach the data directory (its own 0700).
    Folders on the way get search permission for others for the test's length, then back.
    """
    import alpr_workbench

    changed: dict[Path, int] = {}
    targets = (Path(sys.executable), Path(sys.prefix), Path(alpr_workbench.__file__))
    for target in targets:
        for folder in target.resolve().parents:
            mode = folder.stat().st_mode
            if folder not in changed and not mode & stat.S_IXOTH:
                changed[folder] = mode
                folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(stat.S_IMODE(mode))


def test_a_client_without_access_to_the_data_directory_searches_only_through_the_service(
    service, people
):
    client = _login(service, people, "t.remote", step=1)
    client.close()
    service.home.chmod(0o700)
    folder = Path(tempfile.mkdtemp(prefix="alpr-nobody-"))
    folder.chmod(0o755)
    session = folder / "session.json"
    session.write_bytes(client.session_file.read_bytes())
    os.chown(folder, 65534, 65534)
    os.chown(session, 65534, 65534)
    session.chmod(0o600)
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from alpr_workbench.client import connect
        with connect(session_file=Path({str(session)!r})) as c:
            found = c.search(**json.loads(sys.argv[1]))
        print("rows", found.rows.height)
        try:
            Path({str(service.home / "keys" / "keystore.json")!r}).read_bytes()
            print("READ THE KEY STORE")
        except PermissionError:
            print("keystore: PermissionError")
        try:
            from alpr_workbench.store import Store
            Store.open(Path({str(service.home)!r}), passphrase="guess")
            print("OPENED THE STORE")
        except PermissionError:
            print("store: PermissionError")
    """)
    import json

    with _code_reachable_by_others():
        out = subprocess.run(
            ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
             sys.executable, "-c", script, json.dumps(_search_body())],
            capture_output=True, text=True, timeout=120,
            env={"PATH": os.environ["PATH"], "HOME": str(folder)}, cwd=str(folder),
        )
    assert out.returncode == 0, out.stderr
    assert "rows " in out.stdout
    assert "keystore: PermissionError" in out.stdout and "store: PermissionError" in out.stdout


def _head_then_stall(service, path: str, token: str | None, declared: int) -> tuple[int, dict]:
    """Send a request's headers and a sliver of its body, never the rest; read the answer.

    A service that reads the body before it checks the token would wait for the rest of the
    ``declared`` bytes and never answer (the socket's 60 s guard then fails the test).
    """
    import json
    import socket
    import ssl

    host, port = "127.0.0.1", int(service.url.rsplit(":", 1)[1])
    auth = f"Authorization: Bearer {token}\r\n" if token is not None else ""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: text/csv\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()
    context = ssl.create_default_context(cafile=str(service.cert))
    with (
        socket.create_connection((host, port), timeout=60,
                                 source_address=(next(_SOURCES), 0)) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(head + b"read_id,plate\n" * 64)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = tls.recv(65536)
            assert chunk, "the service closed the connection without an answer"
            answer += chunk
        head_bytes, _, body = answer.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines
                      if line.lower().startswith("content-length:"))
        while len(body) < length:
            chunk = tls.recv(65536)
            assert chunk, "the answer was cut short"
            body += chunk
    return int(lines[0].split()[1]), json.loads(body)


def test_a_forged_token_gets_401_before_a_big_upload_is_read(service, people):
    from alpr_workbench.service.routes_admin import MAX_UPLOAD_BYTES

    status, doc = _head_then_stall(service, "/v1/admin/ingest", "F" * 43,
                                   MAX_UPLOAD_BYTES - 1024)
    assert status == 401 and doc["error"] == "invalid_session"
    assert doc["event_id"]  # audited and backed off, as a route would


def test_a_signed_out_token_gets_401_before_the_body_is_read(service, people):
    client = _login(service, people, "t.analyst", step=1)
    token = client._token
    client.logout()
    for path in ("/v1/search", "/v1/admin/hotlists/import"):
        status, doc = _head_then_stall(service, path, token, 60_000)
        assert status == 401 and doc["error"] == "invalid_session", (path, doc)


def test_no_token_gets_401_before_the_body_is_read(service):
    for path, declared in (("/v1/search", 60_000), ("/v1/admin/ingest", 30 * 1024 * 1024)):
        status, doc = _head_then_stall(service, path, None, declared)
        assert status == 401 and doc["error"] == "unauthenticated", path


def test_only_health_enroll_and_login_are_open_without_a_session(service):
    with service.raw(next(_SOURCES)) as http:
        assert http.get("/v1/health").status_code == 200
        for path in ("/v1/whoami", "/v1/admin/users", "/v1/no-such-route", "/docs"):
            answer = http.get(path)
            assert answer.status_code == 401, path
            assert answer.json()["error"] == "unauthenticated"
