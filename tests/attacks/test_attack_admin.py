"""Attacks on admin actions and sharing grants (issue #14): roles, purges, hotlists, recipients.

Each test runs the attack through the real command line against a real encrypted demo store
and asserts that it is now refused (and audited) or flagged. Since issue #15 the commands are
clients of the real service (a subprocess over the store): the actor is the user signed in to
the session, never a claimed name; a user who may not sign in gets no session at all.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from admin_fixtures import build_demo_home, events, member, said, serve, sign_in
from alpr_workbench.cli import app
from alpr_workbench.client import ServiceError
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store
from service_fixtures import Service, stop_service

runner = CliRunner()
TODAY = dt.datetime.now(dt.UTC).date()


_SERVED: dict[Path, tuple[Service, dict[str, Path]]] = {}


def _stop(home: Path) -> None:
    served = _SERVED.pop(home, None)
    if served is not None:
        stop_service(served[0])


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a generator fixture
    """A demo city whose three days straddle the retention cut-off (today - 30)."""
    home = build_demo_home(
        tmp_path_factory.mktemp("admin") / "home", end=TODAY - dt.timedelta(days=29), days=3
    )
    yield home
    _stop(home)


@pytest.fixture
def fresh_city(tmp_path: Path):  # noqa: ANN201 - a generator fixture
    """A city of its own, for attacks that would destroy data on the old code."""
    home = build_demo_home(tmp_path / "home", end=TODAY - dt.timedelta(days=29), days=3)
    yield home
    _stop(home)


def _run(home: Path, user: str, *args: str):  # noqa: ANN202 - click's Result
    """Run a command signed in as ``user`` through the home's service (started on first use).

    A user the service will not enrol (unknown, federal, separated...) has no session: the
    command then runs with none, as such a user would have to.
    """
    if home not in _SERVED:
        _SERVED[home] = (serve(home), {})
    service, sessions = _SERVED[home]
    if user not in sessions:
        try:
            sessions[user] = sign_in(service, [user], home.parent)[user]
        except ServiceError:
            sessions[user] = home.parent / f"{user}.no-session.json"
    return runner.invoke(app, [*args, "--session-file", str(sessions[user])])


def _last_refused(home: Path, event_type: str, actor: str) -> dict[str, object]:
    last = events(home, event_type).row(-1, named=True)
    assert (last["user_id"], last["outcome"]) == (actor, "refused"), last
    return last


# -- finding 1: every admin action checks the actor's role -----------------------------------
def test_a_federal_agent_cannot_purge(city: Path) -> None:
    days = Store.open(city).reads.days()
    result = _run(city, "hsi.agent", "purge")
    assert result.exit_code != 0 and "alpr-workbench login" in said(result)  # no session
    assert Store.open(city).reads.days() == days
    _last_refused(city, "user_change", "hsi.agent")  # the service refused to enrol them


def test_an_analyst_cannot_purge(city: Path) -> None:
    analyst = member(city, "analyst")
    days = Store.open(city).reads.days()
    result = _run(city, analyst, "purge")
    assert result.exit_code != 0 and "'purge' permission" in said(result)
    assert Store.open(city).reads.days() == days


def test_an_unknown_user_cannot_revoke_a_grant(city: Path) -> None:
    before = Store.open(city).tables.read("sharing_grants")
    grant = before.filter(pl.col("revoked_at").is_null())["grant_id"][0]
    result = _run(city, "nobody", "grants", "revoke", grant)
    assert result.exit_code != 0 and "alpr-workbench login" in said(result)  # no session
    assert Store.open(city).tables.read("sharing_grants").equals(before)
    _last_refused(city, "user_change", "nobody")  # the service refused to enrol them


def test_an_analyst_cannot_reopen_a_private_network(city: Path) -> None:
    analyst = member(city, "analyst")
    before = Store.open(city).tables.read("sharing_grants")
    result = _run(
        city, analyst, "grants", "add", "--network", "hoa-rancho",
        "--recipient", "Burbank Police Department", "--recipient-type", "ca_local_agency",
        "--approved-by", "HOA board", "--basis", "verbal", "--review-by", "2099-01-01",
    )
    assert result.exit_code != 0 and "'manage_grants' permission" in said(result)
    assert Store.open(city).tables.read("sharing_grants").equals(before)
    _last_refused(city, "sharing_change", analyst)


def test_an_analyst_cannot_replace_a_hotlist(city: Path, tmp_path: Path) -> None:
    analyst = member(city, "analyst")
    before = Store.open(city).tables.read("hotlist_entries")
    csv = tmp_path / "ncic.csv"
    csv.write_text("Plate,State,Category\n7ABC123,CA,stolen_vehicle\n")
    result = _run(city, analyst, "hotlist", "import", str(csv), "--source", "ncic")
    assert result.exit_code != 0 and "'manage_hotlists' permission" in said(result)
    assert Store.open(city).tables.read("hotlist_entries").equals(before)
    assert events(city, "hotlist_add").row(-1, named=True)["outcome"] == "refused"


def test_an_investigator_cannot_rotate_the_master_keys(city: Path) -> None:
    investigator = member(city, "investigator")
    result = _run(city, investigator, "keys", "rotate")
    assert result.exit_code != 0 and "'rotate_keys' permission" in said(result)
    assert events(city, "key_rotation")["outcome"].to_list() == ["refused"]


def test_an_investigator_cannot_import_a_vendor_log(city: Path, tmp_path: Path) -> None:
    investigator = member(city, "investigator")
    csv = tmp_path / "export.csv"
    csv.write_text(
        "ID,Name,Org Name,Total Networks Searched,Time Frame,License Plate,Reason,Case #,"
        "Filters,Search Time,Search Type,Text Prompt,Moderation\n"
        "z9,jdoe,Glendale PD,3,7 days,7ABC123,stolen vehicle,BPD-2026-000001,,"
        "2026-10-01 10:00:00,plate,,\n"
    )
    before = events(city, "vendor_search").filter(pl.col("outcome") == "allowed").height
    result = _run(city, investigator, "audit", "import-vendor", str(csv))
    assert result.exit_code != 0 and "'import_vendor_audit' permission" in said(result)
    after = events(city, "vendor_search").filter(pl.col("outcome") == "allowed").height
    assert after == before
    _last_refused(city, "ingest", investigator)


# -- finding 2: a purge never reaches into retention, and can be previewed --------------------
def test_a_purge_dated_in_the_future_is_refused(fresh_city: Path) -> None:
    admin = member(fresh_city, "administrator")
    days = Store.open(fresh_city).reads.days()
    result = _run(fresh_city, admin, "purge", "--as-of", "2099-01-01")
    assert result.exit_code != 0 and "in the future" in said(result)
    assert Store.open(fresh_city).reads.days() == days
    _last_refused(fresh_city, "purge", admin)


def test_a_purge_with_a_shorter_retention_is_refused(fresh_city: Path) -> None:
    admin = member(fresh_city, "administrator")
    days = Store.open(fresh_city).reads.days()
    result = _run(fresh_city, admin, "purge", "--retention-days", "1")
    assert result.exit_code != 0 and "inside retention" in said(result)
    assert Store.open(fresh_city).reads.days() == days


def test_a_dry_run_lists_what_would_be_shredded_and_shreds_nothing(fresh_city: Path) -> None:
    admin = member(fresh_city, "administrator")
    store = Store.open(fresh_city)
    days = store.reads.days()
    expired = [d for d in days if d < TODAY - dt.timedelta(days=30)]
    assert expired and len(expired) < len(days)
    counts = {d: store.reads.partition(d).row_count() for d in expired}
    result = _run(fresh_city, admin, "purge", "--dry-run")
    assert result.exit_code == 0, result.output
    assert Store.open(fresh_city).reads.days() == days
    for day, count in counts.items():
        assert day.isoformat() in said(result) and f"{count:,}" in said(result)
    assert "nothing was shredded" in said(result)
    real = _run(fresh_city, admin, "purge")
    assert real.exit_code == 0, real.output
    assert Store.open(fresh_city).reads.days() == [d for d in days if d not in counts]


# -- finding 3: a replacing hotlist import says what it removed ------------------------------
def test_a_hotlist_reload_says_how_many_entries_it_removed(city: Path, tmp_path: Path) -> None:
    investigator = member(city, "investigator")
    first = tmp_path / "first.csv"
    first.write_text(
        "Plate,State,Category\n7ABC123,CA,stolen_vehicle\n8DEF456,CA,stolen_vehicle\n"
        "9GHI789,CA,stolen_vehicle\n"
    )
    second = tmp_path / "second.csv"
    second.write_text("Plate,State,Category\n7ABC123,CA,stolen_vehicle\n")
    args = ("hotlist", "import", "--source", "ncic", "--name", "attack reload")
    assert _run(city, investigator, *args[:2], str(first), *args[2:]).exit_code == 0
    result = _run(city, investigator, *args[:2], str(second), *args[2:])
    assert result.exit_code == 0, result.output
    assert "2 entries removed" in said(result)
    details = events(city, "hotlist_change").row(-1, named=True)["query_json"]
    assert '"entries_removed": 2' in str(details)


# -- finding 4: recipients come from a registry of known agencies ----------------------------
@pytest.mark.parametrize(
    ("recipient", "claimed"),
    [
        ("Homeland Security Investigations", "ca_local_agency"),
        ("Peregrine Recovery Services LLC", "ca_state_agency"),
    ],
)
def test_a_grant_to_a_self_declared_agency_is_refused(
    city: Path, recipient: str, claimed: str
) -> None:
    admin = member(city, "administrator")
    before = Store.open(city).tables.read("sharing_grants")
    result = _run(
        city, admin, "grants", "add", "--network", "bpd-city", "--recipient", recipient,
        "--recipient-type", claimed, "--approved-by", "Chief", "--basis", "MOU",
        "--review-by", "2099-01-01",
    )
    assert result.exit_code != 0, result.output
    assert "may not receive" in said(result) or "not a known agency" in said(result)
    assert Store.open(city).tables.read("sharing_grants").equals(before)
    _last_refused(city, "sharing_change", admin)


def test_the_transparency_page_flags_a_grant_whose_type_is_false(
    fresh_city: Path, tmp_path: Path
) -> None:
    from alpr_workbench.agencies import load_agencies
    from alpr_workbench.reports.transparency import _organizations

    store = Store.open(fresh_city)
    grants = store.tables.read("sharing_grants")
    assert grants.filter(pl.col("recipient_org") == "Homeland Security Investigations").height
    # Whoever wrote the table claimed HSI is a California local agency.
    forged = grants.with_columns(
        pl.when(pl.col("recipient_org") == "Homeland Security Investigations")
        .then(pl.lit("ca_local_agency"))
        .otherwise(pl.col("recipient_type"))
        .alias("recipient_type")
    )
    organizations = _organizations(
        forged,
        store.tables.read("networks"),
        policy=load_policy(),
        day=TODAY - dt.timedelta(days=29),
        agencies=load_agencies(fresh_city, Store.open(fresh_city).keystore),
    )
    hsi = next(o for o in organizations if o.organization == "Homeland Security Investigations")
    assert hsi.is_flagged and hsi.recipient_type == "federal"
    assert any("registry" in p for p in hsi.problems)
    # The published page, built by the real command from the forged table, flags it too.
    store.tables.write("sharing_grants", forged)
    out = tmp_path / "public.html"
    as_of = f"{TODAY - dt.timedelta(days=29)}T23:00:00+00:00"
    result = _run(fresh_city, member(fresh_city, "auditor"), "transparency", "--out",
                  str(out), "--as-of", as_of)
    assert result.exit_code == 0, result.output
    html = " ".join(out.read_text().split())
    assert "registry of known agencies" in html


def test_the_department_registry_cannot_recast_a_federal_agency(
    fresh_city: Path,
) -> None:
    admin = member(fresh_city, "administrator")
    (fresh_city / "agencies.yaml").write_text(
        "agencies:\n  - {name: Homeland Security Investigations, "
        "organization_type: ca_local_agency, state: CA}\n"
    )
    before = Store.open(fresh_city).tables.read("sharing_grants")
    result = _run(
        fresh_city, admin, "grants", "add", "--network", "bpd-city",
        "--recipient", "Homeland Security Investigations", "--approved-by", "Chief",
        "--basis", "MOU", "--review-by", "2099-01-01",
    )
    # A hand-written registry is now refused outright, naming the file (second red team, S5).
    words = said(result).replace(" ", "")
    assert result.exit_code != 0 and ("maynotreceive" in words or "agencies.yaml" in words)
    assert Store.open(fresh_city).tables.read("sharing_grants").equals(before)


def test_only_a_grant_manager_extends_the_registry(city: Path) -> None:
    analyst, admin = member(city, "analyst"), member(city, "administrator")
    args = ("grants", "add-agency", "--name", "Burbank Airport Police",
            "--organization-type", "ca_local_agency", "--state", "CA")
    refused = _run(city, analyst, *args)
    assert refused.exit_code != 0 and "'manage_grants' permission" in said(refused)
    _last_refused(city, "sharing_change", analyst)
    assert _run(city, admin, *args).exit_code == 0
    granted = _run(
        city, admin, "grants", "add", "--network", "bpd-city",
        "--recipient", "burbank airport  police", "--approved-by", "Chief",
        "--basis", "Mutual aid MOU", "--review-by", "2099-01-01",
    )
    assert granted.exit_code == 0, granted.output
    grants = Store.open(city).tables.read("sharing_grants")
    row = grants.filter(pl.col("recipient_org") == "Burbank Airport Police").row(0, named=True)
    assert row["recipient_type"] == "ca_local_agency"
