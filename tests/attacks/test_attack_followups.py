"""Attacks left after the issue #14 fixes: retention settings, digests, labels, hotlists, grants.

Each test is the attack as a hostile user would run it, through the real command line or the
real governance functions against a real encrypted demo store, and asserts that it is now
refused (and audited), detected, or neutralised.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from admin_fixtures import ServedHomes, build_demo_home, events, member, said
from alpr_workbench.cli import app
from alpr_workbench.config import (
    DEPARTMENT_SETTINGS_FILE,
    load_department_settings,
    load_settings,
)
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.audit_log import AuditLog, SignedDigest
from alpr_workbench.governance.sharing import visible_networks
from alpr_workbench.policy import load_policy
from alpr_workbench.reports.audit_checks import flag_search_patterns
from alpr_workbench.schema import empty_frame
from alpr_workbench.store import Store

runner = CliRunner()
TODAY = dt.datetime.now(dt.UTC).date()
NOW = dt.datetime.now(dt.UTC)


SERVED = ServedHomes()  # admin commands act as a user signed in to the real service (#15)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a generator fixture
    """A small demo city, shared by the attacks that change nothing lasting."""
    home = build_demo_home(tmp_path_factory.mktemp("followups") / "home")
    yield home
    SERVED.stop(home)


@pytest.fixture
def fresh_city(tmp_path: Path):  # noqa: ANN201 - a generator fixture
    """A city of its own, for attacks that change the store."""
    home = build_demo_home(tmp_path / "home")
    yield home
    SERVED.stop(home)


def _run(home: Path, *args: str):  # noqa: ANN202 - click's Result
    """A command that does not act as a user through the service (``transparency``)."""
    return runner.invoke(app, [*args, "--data-dir", str(home)])


def _as(home: Path, user: str, *args: str):  # noqa: ANN202 - click's Result
    """A command run signed in as ``user`` (the actor comes from the session only)."""
    return SERVED.run(home, user, *args)


# -- 1. retention: the signed department settings ----------------------------------------------
def test_a_demo_store_carries_signed_department_settings(city: Path) -> None:
    """A demo store is complete: its retention is signed, not a default anyone can drop."""
    assert (city / DEPARTMENT_SETTINGS_FILE).is_file()
    store = Store.open(city)
    assert load_department_settings(city, store.keystore).retention_days == 30
    shown = _as(city, member(city, "analyst"), "settings", "show")
    assert shown.exit_code == 0 and "30" in shown.output


def test_an_analyst_cannot_change_retention(city: Path) -> None:
    analyst = member(city, "analyst")
    result = _as(city, analyst, "settings", "set", "--retention-days", "3650")
    assert result.exit_code != 0 and "configure" in said(result)
    last = events(city, "settings_change").row(-1, named=True)
    assert (last["user_id"], last["outcome"]) == (analyst, "refused")
    assert load_department_settings(city, Store.open(city).keystore).retention_days == 30


def test_retention_outside_the_policy_range_is_refused(fresh_city: Path) -> None:
    admin = member(fresh_city, "administrator")
    low, high = load_policy().retention_days_range
    for days in (low - 1, high + 1):
        result = _as(fresh_city, admin, "settings", "set", "--retention-days", str(days))
        assert result.exit_code != 0 and "between" in said(result)
    ok = _as(fresh_city, admin, "settings", "set", "--retention-days", "60")
    assert ok.exit_code == 0, ok.output
    last = events(fresh_city, "settings_change").row(-1, named=True)
    assert last["outcome"] == "allowed"
    change = json.loads(last["query_json"])
    assert (change["old"], change["new"]) == ({"retention_days": 30}, {"retention_days": 60})
    keys = Store.open(fresh_city).keystore
    assert load_department_settings(fresh_city, keys).retention_days == 60


def test_workbench_toml_cannot_set_retention(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("retention_days = 3650\n")
    with pytest.raises(WorkbenchError, match="settings set"):
        load_settings(tmp_path)


def test_a_hand_edited_settings_file_stops_purge_and_transparency(fresh_city: Path) -> None:
    path = fresh_city / DEPARTMENT_SETTINGS_FILE
    doc = json.loads(path.read_text())
    doc["settings"]["retention_days"] = 3650
    path.write_text(json.dumps(doc))
    admin = member(fresh_city, "administrator")
    purge = _as(fresh_city, admin, "purge", "--dry-run")
    assert purge.exit_code != 0 and "tampered" in said(purge)
    page = _as(fresh_city, member(fresh_city, "auditor"), "transparency", "--out",
               str(fresh_city / "t.html"))
    assert page.exit_code != 0 and "tampered" in said(page)


# -- 2. a digest is checked against the department's published key -----------------------------
def test_a_digest_re_signed_with_a_fresh_key_is_refused(city: Path, tmp_path: Path) -> None:
    store = Store.open(city)
    audit = AuditLog.open(city, store.keystore)
    published = tmp_path / "department.pem"
    published.write_text(audit.public_key_pem())
    genuine = audit.digest(TODAY.year)
    forger = Ed25519PrivateKey.generate()
    forged = dataclasses.replace(
        genuine,
        records=genuine.records + 5,
        public_key_pem=forger.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii"),
    )
    forged = dataclasses.replace(
        forged, signature=base64.b64encode(forger.sign(forged._message())).decode("ascii")
    )
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(SignedDigest.to_json(forged))
    keyless = runner.invoke(app, ["audit", "verify-digest", str(forged_file)])
    assert keyless.exit_code != 0
    checked = runner.invoke(
        app, ["audit", "verify-digest", str(forged_file), "--public-key", str(published)]
    )
    assert checked.exit_code == 1 and "NOT verify" in checked.output


# -- 3. the audit labels a held text by the screening's category -------------------------------
def test_a_crime_against_a_protected_place_is_not_labelled_ambiguous_ice() -> None:
    policy = load_policy()
    text = "graffiti sprayed on the mosque wall overnight"
    row = pl.DataFrame(
        {
            "event_id": ["e1"],
            "event_type": ["search"],
            "occurred_at": [NOW],
            "user_id": ["a.analyst"],
            "organization": [policy.agency_name],
            "case_number": ["BPD-2026-000001"],
            "reason_code": ["other"],
            "reason_text": [text],
            "plate_queried": ["ABC123"],
            "window_from": [NOW - dt.timedelta(days=1)],
            "window_to": [NOW],
            "networks_searched": [1],
            "outcome": ["allowed"],
            "row_count": [1],
        }
    )
    frame = pl.concat([empty_frame("audit_events"), row], how="diagonal_relaxed")
    flags = flag_search_patterns(frame, policy=policy, retention_days=30, cases=None)
    patterns = set(flags.filter(pl.col("event_id") == "e1")["pattern"])
    assert patterns and "ambiguous_ice" not in patterns


# -- 4. custom hotlist changes need manage_hotlists --------------------------------------------
def test_an_analyst_cannot_create_a_list_or_add_an_entry(city: Path) -> None:
    analyst, investigator = member(city, "analyst"), member(city, "investigator")
    store = Store.open(city)
    case = store.tables.read("cases").filter(pl.col("status") == "open")["case_number"][0]
    expires = (TODAY + dt.timedelta(days=30)).isoformat()
    made = _as(
        city, investigator, "hotlist", "create", "--name", "Burglary crew", "--case", case,
        "--reason", "vehicle used in three burglaries on Olive Ave", "--expires", expires,
    )
    assert made.exit_code == 0, made.output
    hotlist_id = made.output.split()[-1].strip(".")
    refused = _as(
        city, analyst, "hotlist", "create", "--name", "Mine", "--case", case,
        "--reason", "vehicle used in three burglaries on Olive Ave", "--expires", expires,
    )
    assert refused.exit_code != 0 and "manage_hotlists" in said(refused)
    added = _as(city, analyst, "hotlist", "add", hotlist_id, "--plate", "7ABC123")
    assert added.exit_code != 0 and "manage_hotlists" in said(added)
    last = events(city, "hotlist_add").row(-1, named=True)
    assert (last["user_id"], last["outcome"]) == (analyst, "refused")
    entries = Store.open(city).tables.read("hotlist_entries")
    assert entries.filter(pl.col("hotlist_id") == hotlist_id).is_empty()


# -- 5. a grants-table row cannot make a federal agency local -----------------------------------
def test_a_grant_row_claiming_local_for_a_federal_agency_grants_nothing(fresh_city: Path) -> None:
    store = Store.open(fresh_city)
    grants = store.tables.read("sharing_grants")
    network = store.tables.read("networks")["network_id"][0]
    row = {
        "grant_id": "grant-planted",
        "network_id": network,
        "recipient_org": "Federal Bureau of Investigation",
        "recipient_type": "ca_local_agency",
        "scope": "search",
        "approved_by": "someone",
        "basis": "planted",
        "granted_at": NOW - dt.timedelta(days=1),
        "review_by_date": TODAY + dt.timedelta(days=30),
    }
    planted = pl.DataFrame([row], schema=grants.select(list(row)).schema)
    store.tables.append("sharing_grants", planted)
    seen = visible_networks(
        store, organization="Federal Bureau of Investigation", policy=load_policy(), at=NOW
    )
    assert seen == []
