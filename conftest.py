"""Under pytest the notebooks (nbval) are clients of a real service over one synthetic city.

The notebooks never open a store: they connect to the workbench service with a saved session
(``alpr_workbench.client.connect``). So that ``pytest`` is deterministic and touches nobody's
data or sign-in, before the first notebook's kernel starts this

1. builds one demo city (``build_demo(days=30, scale=0.1)``, once per test session, in a
   temporary folder) without any secret from the environment (a demo store);
2. starts the real service on it in a subprocess (``python -m alpr_workbench.service``, TLS on
   loopback, a free port), after ``prepare_demo_service`` issued its demo users' enrolment
   codes;
3. enrols and signs in, through the service, the demo user of each role a notebook needs
   (:data:`ROLE_OF`), saving one session file per role;
4. removes every ``ALPR_WORKBENCH_*`` variable (passphrases, home, user, session) from the
   environment and, before each notebook's kernel starts, sets ``ALPR_WORKBENCH_SESSION`` to
   the session of that notebook's role. Kernels inherit the environment when they start (nbval
   starts one per notebook file and its items take no fixtures), so each notebook signs in as
   its role.

The environment is restored after the last notebook; the service is stopped and the city
removed at the session's end.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# This file sits at the root, not in notebooks/: a second top-level "conftest" module there
# would replace tests/conftest.py, which the tests import from. It holds no doctests.
collect_ignore = ["conftest.py"]

_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
_PREFIX = "ALPR_WORKBENCH_"
#: The role each notebook signs in as (by its number); notebooks/README.md says the same.
ROLE_OF = {"01": "analyst", "02": "analyst", "03": "command_staff", "04": "auditor",
           "05": "command_staff"}
_PASSWORD = "nbval notebook password, not a secret"


class _Session:
    """What this session made: the city's folder, the service, sessions, saved environment."""

    city: tempfile.TemporaryDirectory[str] | None = None
    service: subprocess.Popen[bytes] | None = None
    sessions: dict[str, Path] = {}
    saved: dict[str, str] | None = None


def _is_notebook(item: pytest.Item | None) -> bool:
    return item is not None and item.path.suffix == ".ipynb" and item.path.parent == _NOTEBOOKS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, cert: Path, log: Path) -> None:
    import httpx

    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the notebooks' service exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/v1/health", verify=context, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the notebooks' service did not become ready: {log.read_text()}")


def _serve_city(folder: Path) -> None:
    """Build the city, start the service on it and sign in each role the notebooks need."""
    import pyotp

    from alpr_workbench.client import Client
    from alpr_workbench.demo import build_demo, prepare_demo_service

    home = folder / "city"
    build_demo(home, days=30, scale=0.1)
    prepared = prepare_demo_service(home)
    port, log = _free_port(), folder / "service.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIX)}
    with log.open("wb") as out:
        _Session.service = subprocess.Popen(
            [sys.executable, "-m", "alpr_workbench.service", "--data-dir", str(home),
             "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    _wait_ready(_Session.service, url, prepared.certfile, log)
    codes = {a.role: (a.user_id, a.enrolment_code) for a in prepared.accounts}
    for role in sorted(set(ROLE_OF.values())):
        user_id, code = codes[role]
        enrolled = Client.enroll(url, user_id, code, _PASSWORD, prepared.certfile)
        session = folder / "sessions" / f"{role}.json"
        Client.login(url, user_id, _PASSWORD, pyotp.TOTP(enrolled.totp_secret).now(),
                     prepared.certfile, session_file=session).close()
        _Session.sessions[role] = session


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Sign the notebook's kernel in as its role before the kernel starts."""
    if not _is_notebook(item):
        return
    if _Session.saved is None:
        _Session.saved = {k: v for k, v in os.environ.items() if k.startswith(_PREFIX)}
        for name in _Session.saved:
            del os.environ[name]
    if _Session.city is None:
        _Session.city = tempfile.TemporaryDirectory(prefix="alpr-workbench-nbval-")
        _serve_city(Path(_Session.city.name))
    role = ROLE_OF.get(item.path.name[:2])
    if role is None:
        raise RuntimeError(f"{item.path.name}: add its role to ROLE_OF in conftest.py")
    os.environ[_PREFIX + "SESSION"] = str(_Session.sessions[role])


def _restore() -> None:
    if _Session.saved is None:
        return
    os.environ.pop(_PREFIX + "SESSION", None)
    os.environ.update(_Session.saved)
    _Session.saved = None


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Give the environment back once the notebooks are done."""
    if _is_notebook(item) and not _is_notebook(nextitem):
        _restore()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the service and remove the session's city."""
    _restore()
    if _Session.service is not None:
        _Session.service.terminate()
        try:
            _Session.service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _Session.service.kill()
            _Session.service.wait()
        _Session.service = None
    if _Session.city is not None:
        _Session.city.cleanup()
        _Session.city = None
