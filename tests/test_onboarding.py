"""Onboarding a department through the service (issue #16, item 1).

``init`` an empty store, start the real service, sign the first administrator in, and import
the example users, networks, cameras and cases shipped in ``examples/`` with the command line.
Bad files are refused whole with every bad line named and nothing stored changed; a user
without ``administer`` is refused (403, audited); edits are audited with the signed-in user.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from admin_fixtures import add_users, as_user, said, sign_in
from alpr_workbench.client import ServiceError, connect
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.service.initialize import init_workbench
from alpr_workbench.store import Store
from service_fixtures import PASSPHRASE, enroll_and_login, start_service, stop_service

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ADMIN = "o.admin"
ANALYST = "o.analyst"
TABLES = ("users", "networks", "cameras", "cases")  # the order an import needs


def _store(home: Path) -> Store:
    return Store.open(home, passphrase=PASSPHRASE)


def _events(home: Path) -> pl.DataFrame:
    store = _store(home)
    return AuditLog.open(home, store.keystore).events()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An empty store made by ``init``, served, its administrator signed in, examples imported."""
    folder = tmp_path_factory.mktemp("onboarding")
    home = folder / "home"
    result = init_workbench(home, ADMIN, "Olivia Admin", passphrase=PASSPHRASE)
    assert _store(home).tables.read("cases").is_empty()
    service = start_service(home, result.enrolment_code, result.certfile)
    try:
        enroll_and_login(service, ADMIN, result.enrolment_code, folder / "admin.json").close()
        imports = {
            table: as_user(folder / "admin.json", table, "import", str(EXAMPLES / f"{table}.csv"))
            for table in TABLES
        }
        add_users(home, {ANALYST: "analyst"}, passphrase=PASSPHRASE)
        sessions = {ADMIN: folder / "admin.json",
                    **sign_in(service, [ANALYST], folder, passphrase=PASSPHRASE)}
        yield service, sessions, imports
    finally:
        stop_service(service)


def test_the_examples_import_into_an_empty_store_and_list(served):
    service, sessions, imports = served
    for table, result in imports.items():
        assert result.exit_code == 0, (table, result.output)
    rows = {t: len((EXAMPLES / f"{t}.csv").read_text().splitlines()) - 1 for t in TABLES}
    assert f"users: {rows['users']} added" in said(imports["users"])
    assert f"cases: {rows['cases']} added" in said(imports["cases"])
    store = _store(service.home)
    assert store.tables.read("cameras").height == rows["cameras"]
    assert store.tables.read("networks").height == rows["networks"]
    case = store.tables.read("cases").filter(pl.col("case_number") == "BPD-2026-000731")
    assert case["assigned_user_ids"].to_list() == [["j.rivera", "s.hakobyan"]]
    # Header variants: "Badge/User ID", "Case #", "Latitude", "Facing" ("Northbound" -> N).
    cameras = store.tables.read("cameras")
    cam = cameras.filter(pl.col("camera_id") == "BPD-001").row(0, named=True)
    assert (cam["direction"], round(cam["lat"], 3)) == ("N", 34.187)
    listed = {
        "cases": as_user(sessions[ADMIN], "cases", "list"),
        "cameras": as_user(sessions[ADMIN], "cameras", "list"),
        "networks": as_user(sessions[ADMIN], "networks", "list"),
    }
    for result in listed.values():
        assert result.exit_code == 0, result.output
    assert "BPD-2026-000412" in listed["cases"].output
    assert "America/Los_Angeles" in listed["cases"].output  # local times
    assert "HOA-01" in listed["cameras"].output
    assert "hoa-rancho" in listed["networks"].output
    with connect(session_file=sessions[ADMIN]) as client:  # `users list` is cli/users.py's
        users = client.list_records("users")
    assert {"j.rivera", "m.alvarez", "e.santos", ADMIN} <= set(users["user_id"])
    imported = _events(service.home).filter(
        pl.col("query_json").str.contains('"action": "import_')
        & (pl.col("outcome") == "allowed")
    )
    assert set(imported["user_id"]) == {ADMIN}
    assert set(imported["event_type"]) == {"user_change", "sharing_change", "settings_change"}


BAD = {
    "users": "User ID,Name,Title,Role\n"
             "z.new,Zoe New,Detective,investigator\n"
             "BAD ID!,Someone,Detective,investigator\n"
             "z.two,Zed Two,Janitor,superuser\n",
    "networks": "Network,Name,Type,Owner\n"
                "new-net,New net,City,City of Burbank\n"
                "hd-olive,Home Depot,Spaceship,Home Depot\n"
                "x,Too short id,City,City of Burbank\n",
    "cameras": "Camera,Network,Location,Lat,Long,Direction,Installed\n"
               "NEW-1,bpd-city,Somewhere,34.1,-118.3,N,2025-01-01\n"
               "NEW-2,no-such-net,Elsewhere,34.1,-118.3,N,2025-01-01\n"
               "NEW-3,bpd-city,Far away,134.1,-118.3,up,2099-01-01\n",
    "cases": "Case #,Title,Offense,Status,Opened,Investigators\n"
             "BPD-2026-009999,New case,Burglary,Open,2026-01-02,j.rivera\n"
             "2026-1,Bad number,Burglary,Open,2026-01-02,j.rivera\n"
             "BPD-2026-009998,Unknown people,Jaywalking,Open,2026-01-02,nobody.here\n",
}  # fmt: skip


@pytest.mark.parametrize("table", TABLES)
def test_a_bad_file_is_refused_whole_naming_every_bad_line(served, tmp_path, table):
    service, sessions, _ = served
    before = _store(service.home).tables.read(table)
    path = tmp_path / f"bad-{table}.csv"
    path.write_text(BAD[table])
    result = as_user(sessions[ADMIN], table, "import", str(path))
    assert result.exit_code == 2, result.output
    text = said(result)
    assert "line 3" in text and "line 4" in text and "line 2," not in text
    assert "nothing was loaded" in text
    after = _store(service.home).tables.read(table)
    assert after.equals(before)  # not even the good line 2 was written
    refused = _events(service.home).filter(
        (pl.col("outcome") == "refused") & pl.col("query_json").str.contains(f"import_{table}")
    )
    assert refused.height >= 1 and set(refused["user_id"]) == {ADMIN}


def test_an_analyst_cannot_import_and_the_refusal_is_audited(served):
    service, sessions, _ = served
    before = _store(service.home).tables.read("users")
    with connect(session_file=sessions[ANALYST]) as client, pytest.raises(ServiceError) as exc:
        client.import_records("users", (EXAMPLES / "users.csv").read_bytes())
    assert exc.value.status == 403
    assert "administer" in str(exc.value)
    assert _store(service.home).tables.read("users").equals(before)
    refused = _events(service.home).filter(
        (pl.col("user_id") == ANALYST) & (pl.col("outcome") == "refused")
    )
    assert refused["query_json"].str.contains("/onboarding/users/import").any()


def test_edits_close_and_separate_are_audited_with_the_signed_in_user(served):
    service, sessions, _ = served
    edited = as_user(sessions[ADMIN], "cameras", "edit", "BPD-009", "--set", "Removed=",
                     "--reason", "camera back in service")
    assert edited.exit_code == 0, edited.output
    closed = as_user(sessions[ADMIN], "cases", "close", "BPD-2026-000902",
                     "--reason", "suspect arrested")
    assert closed.exit_code == 0, closed.output
    separated = as_user(sessions[ADMIN], "users", "separate", "r.thompson",
                        "--reason", "retired")
    assert separated.exit_code == 0, separated.output
    store = _store(service.home)
    camera = store.tables.read("cameras").filter(pl.col("camera_id") == "BPD-009")
    assert camera["removed_date"].to_list() == [None]
    case = store.tables.read("cases").filter(pl.col("case_number") == "BPD-2026-000902")
    assert case["status"].to_list() == ["closed"] and case["closed_at"][0] is not None
    user = store.tables.read("users").filter(pl.col("user_id") == "r.thompson")
    assert user["is_active"].to_list() == [False] and user["separated_at"][0] is not None
    events = _events(service.home).filter(pl.col("outcome") == "allowed")
    for action, key in (("edit_cameras", "BPD-009"), ("close_case", "BPD-2026-000902"),
                        ("edit_users", "r.thompson")):
        found = events.filter(pl.col("query_json").str.contains(f'"action": "{action}"')
                              & pl.col("query_json").str.contains(key))
        assert set(found["user_id"]) == {ADMIN}, action
    detail = json.loads(events.filter(
        pl.col("query_json").str.contains('"action": "edit_cameras"'))["query_json"][-1])
    assert detail["changed"]["BPD-009"]["removed_date"] == ["2026-02-27", None]
    assert detail["reason"] == "camera back in service"
    again = as_user(sessions[ADMIN], "cases", "close", "BPD-2026-000902")
    assert again.exit_code == 2 and "already closed" in said(again)


def test_a_legal_hold_is_reviewed_and_listed(served):
    service, sessions, _ = served
    store = _store(service.home)
    now = dt.datetime.now(dt.UTC)
    store.tables.append("legal_holds", pl.DataFrame({
        "hold_id": ["hold-onb-1"], "case_number": ["BPD-2026-000412"],
        "approver_user_id": ["m.alvarez"], "reason": ["Trial pending"], "created_at": [now],
        "review_by_date": [now.date() + dt.timedelta(days=10)], "read_count": [0],
    }))  # set up as the store's owner: the test store holds no reads to hold
    later = (now.date() + dt.timedelta(days=90)).isoformat()
    reviewed = as_user(sessions[ADMIN], "holds", "review", "hold-onb-1", "--review-by", later,
                       "--reason", "Trial moved to spring")
    assert reviewed.exit_code == 0, reviewed.output
    listed = as_user(sessions[ADMIN], "holds", "list")
    assert "hold-onb-1" in listed.output
    with connect(session_file=sessions[ADMIN]) as client:
        assert client.list_legal_holds()["review_by_date"].to_list() == [later]
    past = as_user(sessions[ADMIN], "holds", "review", "hold-onb-1", "--review-by",
                   now.date().isoformat(), "--reason", "x")
    assert past.exit_code == 2 and "future" in said(past)
    refused = as_user(sessions[ANALYST], "holds", "review", "hold-onb-1", "--review-by", later,
                      "--reason", "analyst tries")
    assert refused.exit_code == 2
    holds = _store(service.home).tables.read("legal_holds")
    assert holds["review_by_date"].to_list() == [dt.date.fromisoformat(later)]
    hold_events = _events(service.home).filter(pl.col("event_type") == "hold")
    assert set(hold_events.filter(pl.col("outcome") == "allowed")["user_id"]) == {ADMIN}
