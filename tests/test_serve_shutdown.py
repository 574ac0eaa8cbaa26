"""``alpr-workbench serve`` stops cleanly on SIGTERM and SIGINT after a dashboard page was opened.

A signed-in page of the dashboard gets a client of the service's own API (its hit queue). That
client's idle keep-alive TLS connection held the API's shutdown for asyncio's SSL shutdown
timeout (30 s), so a test (or systemd) ended the process with SIGKILL; and SIGTERM, raised again
by uvicorn once it had stopped, ended the process before ``run_service``'s clean-up (dashboard
stopped, audit log closed, the data directory's holder lock released).
"""

from __future__ import annotations

import contextlib
import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pyotp
import pytest

from alpr_workbench.client import Client
from alpr_workbench.service.accounts import AccountStore
from alpr_workbench.store import Store
from alpr_workbench.store._holder import HOLDER_LOCK
from dashboard_fixtures import Workbench, opened, start_workbench
from service_fixtures import PASSPHRASE, PASSWORD, build_home

#: Longer than any clean stop takes, shorter than the 30 s an idle TLS connection held it.
_STOP_BOUND_S = 20


@pytest.fixture(scope="module")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """A small city's home, its certificate and an enrolment code per analyst (one per test)."""
    home = tmp_path_factory.mktemp("serve-shutdown") / "home"
    _, cert = build_home(home)
    accounts = AccountStore(home, Store.open(home, passphrase=PASSPHRASE).keystore)
    codes = {user: accounts.issue_enrolment(user, issued_by="test-setup")
             for user in ("t.analyst", "t.other")}
    return home, cert, codes


def _open_dashboard_page(bench: Workbench, user: str, code: str) -> httpx.Client:
    """Enrol ``user``, sign in on the dashboard's login form and load ``/``: a browser."""
    secret = Client.enroll(bench.url, user, code, PASSWORD, bench.cert).totp_secret
    context = ssl.create_default_context(cafile=str(bench.cert))
    browser = httpx.Client(base_url=bench.dashboard_url, verify=context, timeout=60)
    signed_in = browser.post("/login", data={"username": user, "password": PASSWORD,
                                             "totp": pyotp.TOTP(secret).now()})
    assert signed_in.status_code in (302, 303) and opened(signed_in.headers["location"])
    page = browser.get("/")
    assert page.status_code == 200 and "bokeh" in page.text.lower()
    return browser


@pytest.mark.parametrize(
    ("user", "signum", "status"),
    [
        ("t.analyst", signal.SIGTERM, 0),  # systemctl stop: a clean, successful end
        ("t.other", signal.SIGINT, 130),  # Ctrl-C (`alpr-workbench demo`'s service)
    ],
    ids=["sigterm", "sigint"],
)
def test_serve_stops_cleanly_after_a_dashboard_page_was_opened(
    served_home: tuple[Path, Path, dict[str, str]], user: str, signum: int, status: int
) -> None:
    home, cert, codes = served_home
    bench = start_workbench(home, cert, passphrase=PASSPHRASE)
    try:
        # The browser stays open, as a user's would, while the service is stopped.
        with contextlib.closing(_open_dashboard_page(bench, user, codes[user])):
            bench.process.send_signal(signum)
            try:
                returncode = bench.process.wait(timeout=_STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"serve did not stop on {signal.Signals(signum).name}")
    finally:
        bench.stop()  # kills it only if it is still running
    output = bench.log.read_text(errors="replace")
    assert returncode == status, output
    assert "Traceback" not in output, output
    # hold_store empties its lock file in its `finally`, after run_service's own clean-up
    # (the dashboard stopped, the audit log closed): the process got through all of it.
    assert (home / "store" / HOLDER_LOCK).read_bytes() == b""


def test_an_idle_client_connection_does_not_hold_a_stop(tmp_path: Path) -> None:
    """A notebook or CLI session keeps its TLS connection open between searches; SIGTERM must
    not wait asyncio's 30 s SSL close for it (``run.SHUTDOWN_GRACE_S``), and the clean-up runs."""
    from alpr_workbench.service.run import SHUTDOWN_GRACE_S
    from service_fixtures import enroll_and_login, start_service, stop_service

    home = tmp_path / "home"
    admin_code, cert = build_home(home)
    service = start_service(home, admin_code, cert)
    try:
        accounts = AccountStore(home, Store.open(home, passphrase=PASSPHRASE).keystore)
        code = accounts.issue_enrolment("t.analyst", issued_by="test-setup")
        with contextlib.closing(enroll_and_login(service, "t.analyst", code,
                                                 tmp_path / "session.json")) as client:
            assert client.whoami()["user_id"] == "t.analyst"  # the connection now idles open
            service.process.send_signal(signal.SIGTERM)
            try:
                returncode = service.process.wait(timeout=SHUTDOWN_GRACE_S + 10)
            except subprocess.TimeoutExpired:
                pytest.fail("serve waited for an idle client's connection")
    finally:
        stop_service(service)
    assert returncode == 0
    assert (home / "store" / HOLDER_LOCK).read_bytes() == b""
