"""Operator tools leave their own audit record and never race the running service (#15).

``verify`` and ``audit verify|digest|checkpoint`` open the store in the operator's process
with the key-store secret. Before, they left no audit record at all, and ran beside a live
service. Now each takes the data directory's holder lock (the service holds it while it
runs) and appends one ``operator`` record whose actor comes from the operating system: the
environment (``ALPR_WORKBENCH_USER``, ``USER``, ``LOGNAME``) and the arguments cannot name
somebody else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import subprocess
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.initialize import init_workbench
from alpr_workbench.store import Store
from service_fixtures import _EXE, ADMIN, PASSPHRASE, start_service, stop_service

OS_ACTOR = "operator:" + pwd.getpwuid(os.geteuid()).pw_name
#: What a hostile operator sets to be recorded as someone else.
IMPERSONATE = {"ALPR_WORKBENCH_USER": "mhernandez", "USER": "mhernandez",
               "LOGNAME": "mhernandez", "USERNAME": "mhernandez"}  # fmt: skip


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    home = tmp_path_factory.mktemp("operator") / "home"
    done = init_workbench(home, ADMIN, "Test Administrator", passphrase=PASSPHRASE)
    return home, done.enrolment_code, done.certfile


def _events(home: Path) -> pl.DataFrame:
    with AuditLog.open(home, Store.open(home, passphrase=PASSPHRASE).keystore) as log:
        return log.events()


def _operator(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run an operator tool as a separate process, as the service account would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    env |= IMPERSONATE | {"ALPR_WORKBENCH_PASSPHRASE": PASSPHRASE, "COLUMNS": "200"}
    return subprocess.run(
        [_EXE, *args, "--data-dir", str(home)], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip


def _only_new(home: Path, before: int) -> dict[str, object]:
    events = _events(home)
    assert events.height == before + 1, "exactly one new audit record"
    record: dict[str, object] = events.row(-1, named=True)
    return record


@pytest.mark.parametrize(
    ("args", "command", "said"),
    [
        (["verify"], "alpr-workbench verify", "Store sound"),
        (["audit", "verify"], "alpr-workbench audit verify", "Audit log intact"),
        (["audit", "digest", "--year", str(dt.datetime.now(dt.UTC).year)],
         "alpr-workbench audit digest", '"signature"'),
        (["audit", "checkpoint"], "alpr-workbench audit checkpoint", '"signature"'),
    ],
)  # fmt: skip
def test_an_operator_tool_leaves_one_record_with_the_os_account_as_actor(
    initialised: tuple[Path, str, Path], args: list[str], command: str, said: str
) -> None:
    home = initialised[0]
    before = _events(home).height
    done = _operator(*args, home=home)
    assert done.returncode == 0, done.stderr
    assert said in done.stdout
    record = _only_new(home, before)
    assert record["event_type"] == "operator" and record["outcome"] == "allowed"
    # The OS account of the process, never the environment's ALPR_WORKBENCH_USER or USER.
    assert record["user_id"] == OS_ACTOR and "mhernandez" not in str(record["query_json"])
    query = json.loads(str(record["query_json"]))
    assert query["command"] == command and query["source"] == "local"
    assert query["result"]


def test_no_argument_names_the_operator(initialised: tuple[Path, str, Path]) -> None:
    home = initialised[0]
    before = _events(home).height
    done = _operator("verify", "--user", "mhernandez", home=home)
    assert done.returncode == 2 and "No such option" in done.stderr + done.stdout
    assert _events(home).height == before  # refused before it ran: nothing to record
    done = _operator("verify", home=home)
    assert done.returncode == 0 and _only_new(home, before)["user_id"] == OS_ACTOR


def test_operator_tools_are_refused_while_the_service_holds_the_data_directory(
    initialised: tuple[Path, str, Path],
) -> None:
    home, code, cert = initialised
    service = start_service(home, code, cert)
    try:
        before = _events(home).height
        for args in (["verify"], ["audit", "digest", "--year", "2026"]):
            done = _operator(*args, home=home)
            said = " ".join((done.stderr + done.stdout).split())
            assert done.returncode == 2, said
            assert f"the workbench service (pid {service.process.pid}" in said, said
            assert "stop it first" in said
        assert _events(home).height == before  # it never opened the store: no record
    finally:
        stop_service(service)
    # The service gone (the kernel drops its lock, even after kill -9), the tool runs.
    done = _operator("verify", home=home)
    assert done.returncode == 0, done.stderr
