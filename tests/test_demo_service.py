"""``alpr-workbench demo`` serves the city: the printed commands sign a demo user in and search.

The demo runs as a real subprocess (the service in its foreground); the printed ``enroll``,
``login`` and ``search`` commands are then run as printed (the port is the one given).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp
import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from service_fixtures import PASSWORD, PortTaken, free_port, port_was_taken, retry_taken_port

runner = CliRunner()


def _wait_ready(process: subprocess.Popen[bytes], url: str, cert: Path, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None and port_was_taken(log):
            raise PortTaken(log.read_text())
        assert process.poll() is None, log.read_text()
        if cert.is_file():
            context = ssl.create_default_context(cafile=str(cert))
            try:
                if httpx.get(f"{url}/v1/health", verify=context, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    raise AssertionError(f"the demo's service did not come up: {log.read_text()}")


def _start_demo(folder: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Run ``alpr-workbench demo`` on a free port, into a new home; (process, URL, its log)."""
    port = free_port()
    home, log = folder / f"home-{port}", folder / f"demo-{port}.log"
    exe = shutil.which("alpr-workbench", path=os.path.dirname(sys.executable))
    assert exe
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    env["COLUMNS"] = "200"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [exe, "demo", "--data-dir", str(home), "--days", "1", "--scale", "0.05",
             "--frames", "0", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(demo, url, home / "service" / "tls" / "service-cert.pem", log)
    except BaseException:
        _stop_demo(demo)
        raise
    return demo, url, log


def _stop_demo(demo: subprocess.Popen[bytes]) -> None:
    demo.send_signal(signal.SIGINT)
    try:
        demo.wait(timeout=30)
    except subprocess.TimeoutExpired:
        demo.kill()
        demo.wait()


def test_make_demo_serves_and_its_printed_commands_sign_in_and_search(tmp_path):
    demo, url, log = retry_taken_port(lambda: _start_demo(tmp_path))
    try:
        lines = log.read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("# analyst: "))
        enroll, login, search = (shlex.split(line)[1:] for line in lines[at + 1 : at + 4])
        assert enroll[0] == "enroll" and login[0] == "login" and search[0] == "search"
        assert url in enroll
        assert "--user" not in search
        session = tmp_path / "session.json"
        enrolled = runner.invoke(app, enroll, input=f"{PASSWORD}\n{PASSWORD}\n")
        assert enrolled.exit_code == 0, enrolled.output
        secret = re.search(r"TOTP secret: (\w+)", enrolled.output)
        assert secret is not None
        signed_in = runner.invoke(
            app, [*login, "--session-file", str(session)],
            input=f"{PASSWORD}\n{pyotp.TOTP(secret.group(1)).now()}\n",
        )  # fmt: skip
        assert signed_in.exit_code == 0, signed_in.output
        found = runner.invoke(app, [*search, "--session-file", str(session), "--json"])
        assert found.exit_code == 0, found.output
        plate = search[search.index("--plate") + 1]
        assert f'"plate": "{plate}"' in found.stdout
    finally:
        _stop_demo(demo)
    assert demo.returncode is not None


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from demo_service_fixtures import start_demo_service
    from service_fixtures import stop_service

    home = tmp_path_factory.mktemp("demo-served") / "home"
    built = runner.invoke(app, ["demo", "--data-dir", str(home), "--days", "2", "--scale",
                                "0.05", "--frames", "0", "--no-serve"])  # fmt: skip
    assert built.exit_code == 0, built.output
    running = start_demo_service(home)
    yield running
    stop_service(running.service)


def test_every_demo_search_is_allowed_to_its_signed_in_user(served, tmp_path):
    from alpr_workbench.demo import DEMO_ROLES

    assert set(served.accounts) == set(DEMO_ROLES)
    searching = [a for a in served.accounts.values() if a.search is not None]
    assert {"analyst", "investigator"} <= {a.role for a in searching}
    for account in searching:
        session = tmp_path / f"{account.role}.json"
        served.sign_in(account.role, session)
        found = runner.invoke(app, ["search", *account.search, "--session-file", str(session)])
        assert found.exit_code == 0, (account, found.output)
        assert "read(s)" in found.output


def test_notebook_01_searches_through_the_service_when_signed_in(served, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    session = tmp_path / "session.json"
    account = served.sign_in("analyst", session)
    monkeypatch.setenv("ALPR_WORKBENCH_HOME", str(served.service.home))
    monkeypatch.setenv("ALPR_WORKBENCH_SESSION", str(session))
    notebook = Path(__file__).resolve().parents[1] / "notebooks"
    nb = nbformat.read(notebook / "01_analyst_patterns_in_a_case.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"Searching through the service at {served.service.url} as {account.user_id}" in printed
