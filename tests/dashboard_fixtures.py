"""The workbench as operators run it: ``serve`` in a subprocess, API and dashboard over TLS.

The service process holds the keys and serves both the data API and the Panel dashboard
(issue #15); the tests only hold what a user holds: a user name, a password, an
authenticator secret and the service's certificate.
"""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from service_fixtures import PortTaken, free_port, port_was_taken, retry_taken_port

_EXE = shutil.which("alpr-workbench", path=os.path.dirname(sys.executable)) or "alpr-workbench"


@dataclass
class Workbench:
    """A running ``serve`` process: the API and the dashboard, one certificate."""

    home: Path
    url: str
    dashboard_url: str
    cert: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Terminate the process (and wait for it; it stops on SIGTERM within seconds)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _tls(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def start_workbench(
    home: Path, cert: Path, *, passphrase: str | None = None, timeout: float = 90.0
) -> Workbench:
    """Run ``alpr-workbench serve`` for ``home`` on free loopback ports; wait for both.

    A port taken meanwhile by a test running in parallel (``pytest -n``) means starting
    again on other ports.
    """
    return retry_taken_port(
        lambda: _start_workbench(home, cert, passphrase=passphrase, timeout=timeout)
    )


def _start_workbench(
    home: Path, cert: Path, *, passphrase: str | None, timeout: float
) -> Workbench:
    port, dash_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    if passphrase is not None:
        env["ALPR_WORKBENCH_PASSPHRASE"] = passphrase
    log = home.parent / f"workbench-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _EXE,
                "serve",
                "--data-dir",
                str(home),
                "--port",
                str(port),
                "--dashboard-port",
                str(dash_port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    bench = Workbench(
        home, f"https://127.0.0.1:{port}", f"https://127.0.0.1:{dash_port}", cert, process, log
    )
    deadline = time.monotonic() + timeout
    try:
        for p, path in ((port, "/v1/health"), (dash_port, "/login")):
            while True:
                if process.poll() is not None:
                    if port_was_taken(log):
                        raise PortTaken(log.read_text())
                    raise RuntimeError(f"serve exited: {log.read_text()}")
                try:
                    conn = http.client.HTTPSConnection(
                        "127.0.0.1", p, timeout=5, context=_tls(cert)
                    )
                    conn.request("GET", path)
                    if conn.getresponse().status == 200:
                        conn.close()
                        break
                    conn.close()
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not become ready: {log.read_text()}")
                time.sleep(0.3)
    except BaseException:
        bench.stop()
        raise
    return bench


def post_login(
    bench: Workbench, user: str, password: str, totp: str, *, source_ip: str = "127.0.0.1"
) -> str:
    """POST the dashboard's login form from ``source_ip``; return where it redirects."""
    parts = urllib.parse.urlsplit(bench.dashboard_url)
    conn = http.client.HTTPSConnection(
        parts.hostname,
        parts.port,
        timeout=60,
        context=_tls(bench.cert),
        source_address=(source_ip, 0),
    )
    body = urllib.parse.urlencode({"username": user, "password": password, "totp": totp})
    try:
        conn.request(
            "POST",
            "/login",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        response.read()
        assert response.status in (302, 303), response.status
        return response.getheader("Location") or ""
    finally:
        conn.close()


def opened(location: str) -> bool:
    """True when the login redirected into the dashboard (not back to the login page)."""
    return "/login" not in location
