"""The person behind an account (``users.person_id``), set by an administrator (issue #15).

Through the real service and the command line: ``users set-person`` records it (audited, with
the administrator from the session), ``users list`` shows it, ``--clear`` removes it, bad input
gets a clear error and a non-administrator is refused (audited). An import of the users roster
keeps it. A store written before the column was declared still loads, with no person ids. The
attacks (one person's two accounts approving each other) are in
``tests/attacks/test_attack_person_id.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from alpr_workbench.cli import app
from alpr_workbench.client import ServiceError, connect
from alpr_workbench.governance.admin import change_user
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.registry import get_user
from alpr_workbench.policy import load_policy
from alpr_workbench.schema import schema_dir
from alpr_workbench.service.tls import tls_files
from alpr_workbench.store import Store
from conftest import PASSPHRASE as STORE_PASSPHRASE
from service_fixtures import ADMIN, PASSPHRASE, enroll_and_login, served_admin

runner = CliRunner()


def _roster(job_title: str) -> bytes:
    day = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)).strftime("%m/%d/%Y")
    return ("Badge/User ID,Name,Job Title,Role,Agency,Approved By,Approval Date,"
            "ALPR Training Date,Separation Date\n"
            f"t.sgt,Pat Doe,{job_title},supervisor,Burbank Police Department,{ADMIN},"
            f"{day},{day},\n").encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("person-id")
    with served_admin(root) as (home, admin_session, _camera):
        with connect(session_file=admin_session) as admin:
            admin.import_records("users", _roster("Sergeant"), name="roster.csv")
            service = SimpleNamespace(url=admin.url, cert=tls_files(home).certfile)
            analyst = root / "t.analyst.json"
            enroll_and_login(service, "t.analyst", admin.issue_enrolment("t.analyst"),
                             analyst).close()
        yield SimpleNamespace(home=home, sessions={ADMIN: admin_session, "t.analyst": analyst})


def _cli(served, user_id: str, *args: str) -> Result:
    return runner.invoke(app, [*args, "--session-file", str(served.sessions[user_id])],
                         env={"COLUMNS": "240"})


def _events(served) -> pl.DataFrame:
    store = Store.open(served.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events().filter(pl.col("event_type") == "user_change")


def _person_ids(served) -> dict[str, str | None]:
    with connect(session_file=served.sessions[ADMIN]) as admin:
        users = admin.list_users()
    return dict(zip(users["user_id"], users["person_id"], strict=True))


def test_an_administrator_sets_shows_and_clears_a_person_id(served):
    done = _cli(served, ADMIN, "users", "set-person", "t.sgt", "E-1001", "--reason", "HR 1001")
    assert done.exit_code == 0, done.output
    assert "t.sgt: person id E-1001." in done.output
    assert _person_ids(served)["t.sgt"] == "E-1001"
    listed = _cli(served, ADMIN, "users", "list")
    assert listed.exit_code == 0, listed.output
    assert "person_id" in listed.output
    assert any("t.sgt" in line and "E-1001" in line for line in listed.output.splitlines())

    event = _events(served).row(-1, named=True)
    assert (event["user_id"], event["outcome"]) == (ADMIN, "allowed")
    assert json.loads(event["query_json"])["changes"] == {"person_id": "E-1001"}

    cleared = _cli(served, ADMIN, "users", "set-person", "t.sgt", "--clear")
    assert cleared.exit_code == 0, cleared.output
    assert "t.sgt: person id cleared." in cleared.output
    assert _person_ids(served)["t.sgt"] is None


def test_bad_input_gets_a_clear_error(served):
    both = _cli(served, ADMIN, "users", "set-person", "t.sgt", "E-1", "--clear")
    assert both.exit_code == 2 and "give either a PERSON_ID or --clear" in both.output
    with connect(session_file=served.sessions[ADMIN]) as admin:
        with pytest.raises(ServiceError) as invalid:
            admin.set_person("t.sgt", "E 1001; drop")
        assert invalid.value.status == 400
        assert "person id 'E 1001; drop' is not valid" in invalid.value.detail
        with pytest.raises(ServiceError) as unknown:
            admin.set_person("t.nobody", "E-1")
        assert unknown.value.status == 400 and "unknown user 't.nobody'" in unknown.value.detail
        with pytest.raises(ServiceError) as long:
            admin.set_person("t.sgt", "E" * 65)
        assert long.value.status == 422
    assert _events(served).filter(pl.col("event_id") == unknown.value.event_id)[
        "outcome"].to_list() == ["refused"]


def test_a_non_administrator_is_refused_and_audited(served):
    refused = _cli(served, "t.analyst", "users", "set-person", "t.analyst", "E-7")
    assert refused.exit_code == 2, refused.output
    assert "administer" in refused.output
    event = _events(served).row(-1, named=True)
    assert (event["user_id"], event["outcome"]) == ("t.analyst", "refused")
    assert _person_ids(served)["t.analyst"] is None


def test_an_import_of_the_roster_keeps_the_person_id(served):
    with connect(session_file=served.sessions[ADMIN]) as admin:
        admin.set_person("t.sgt", "E-1002")
        admin.import_records("users", _roster("Lieutenant"), name="roster-again.csv")
        users = admin.list_users().filter(pl.col("user_id") == "t.sgt")
    assert users.select("job_title", "person_id").rows() == [("Lieutenant", "E-1002")]


_OLD_STORE = """
import datetime as dt, sys
import polars as pl
from alpr_workbench.store import Store
now = dt.datetime.now(dt.UTC)
store = Store.create(sys.argv[1], passphrase=sys.argv[2])
store.tables.write("users", pl.DataFrame([{
    "user_id": "o.old", "full_name": "Olive Oldham", "role": "analyst",
    "organization": "Burbank Police Department", "organization_type": "ca_local_agency",
    "job_title": "Crime Analyst", "is_active": True, "approved_by": "setup",
    "approved_at": now, "trained_at": now}]))
assert "person_id" not in store.tables.read("users").columns
"""


def test_a_store_written_before_the_column_was_declared_still_loads(tmp_path: Path):
    schema = tmp_path / "old-schema"
    shutil.copytree(schema_dir(), schema)
    users = schema / "users.yaml"
    users.write_text("".join(line for line in users.read_text().splitlines(keepends=True)
                             if "name: person_id" not in line))
    home = tmp_path / "home"
    env = {**os.environ, "ALPR_WORKBENCH_SCHEMA_DIR": str(schema)}
    subprocess.run([sys.executable, "-c", _OLD_STORE, str(home), STORE_PASSPHRASE], env=env,
                   check=True)

    store = Store.open(home, passphrase=STORE_PASSPHRASE)
    table = store.tables.read("users")
    assert table["person_id"].to_list() == [None]
    old = get_user(store, "o.old")
    assert old is not None and old.person_id is None
    now = dt.datetime.now(dt.UTC)
    store.tables.append("users", table.with_columns(user_id=pl.lit("o.keeper"),
                                                    full_name=pl.lit("Kim Keeper"),
                                                    role=pl.lit("administrator"),
                                                    job_title=pl.lit("IT Administrator")))
    with AuditLog.open(home, store.keystore) as log:
        change_user(store, log.append, actor="o.keeper", user_id="o.old",
                    changes={"person_id": "E-5"}, policy=load_policy(), now=now)
    again = Store.open(home, passphrase=STORE_PASSPHRASE).tables.read("users").sort("user_id")
    assert again.select("user_id", "person_id").rows() == [("o.keeper", None), ("o.old", "E-5")]
