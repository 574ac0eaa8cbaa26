"""Review 4: an operator record that names only the service account names nobody.

Operator tools must run as the service account (they need the key-store secret), so their
record's actor, ``operator:<account of the effective uid>``, is the same for every person who
ran ``sudo -u <service account> alpr-workbench verify``. The record now also keeps the
account the person logged in as: the kernel's audit login uid (``/proc/self/loginuid``),
which ``su`` and ``sudo`` keep and the process cannot change; the environment still names
nobody.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.initialize import init_workbench
from alpr_workbench.store import Store
from service_fixtures import _EXE, ADMIN, PASSPHRASE

LOGINUID = Path("/proc/self/loginuid")
pytestmark = pytest.mark.skipif(not LOGINUID.is_file(), reason="the kernel keeps no login uid")


def _kernel_login_account() -> str:
    """What the kernel says of this process's login (the tool inherits it)."""
    uid = int(LOGINUID.read_text().strip())
    if uid == 4294967295:
        return "unset"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"


def test_an_operator_record_names_the_login_account_not_the_environment(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    init_workbench(home, ADMIN, "Test Administrator", passphrase=PASSPHRASE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
    env |= {"ALPR_WORKBENCH_PASSPHRASE": PASSPHRASE, "USER": "mhernandez",
            "LOGNAME": "mhernandez", "SUDO_USER": "mhernandez", "SUDO_UID": "4242"}
    done = subprocess.run([_EXE, "verify", "--data-dir", str(home)], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with AuditLog.open(home, Store.open(home, passphrase=PASSPHRASE).keystore) as log:
        record = log.events().row(-1, named=True)
    assert record["event_type"] == "operator"
    query = json.loads(str(record["query_json"]))
    assert query["login_account"] == _kernel_login_account()
    assert "mhernandez" not in str(record["query_json"]) + str(record["user_id"])
