"""Review 3's attacks on the hit routes and the notebooks' data routes, against a real service.

- a hit captured before the retention period, still shown (plate, camera, time) by the hit
  routes, without a case;
- a user of an organization the policy does not allow to receive the data (here: federal)
  reading ``/v1/data/*``; another agency's hits and outcomes in ``/v1/data/hits`` and
  ``/v1/data/outcomes``;
- the hotlist entries' actionable fields (reason, originating agency and case, theft date),
  which the hit workflow withholds until a person confirms a hit, from
  ``/v1/data/hotlist-entries``;
- query parameters named ``source`` and ``service`` forging the audit record's own keys.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.client import ServiceError, connect
from alpr_workbench.demo import build_demo
from alpr_workbench.governance.admin import configured_retention_days
from alpr_workbench.governance.hit_workflow import ACTIONABLE_FIELDS
from alpr_workbench.store import Store
from demo_service_fixtures import start_demo_service
from hit_fixtures import FOREIGN_HIT, HitCity, _freshen, stop_hit_city
from service_fixtures import stop_service

OLD_HIT = "hit-past-retention"
FOREIGN_OUTCOME = "outcome-of-another-agency"
ROLES = ("analyst", "auditor", "investigator")


def _plant(home: Path, pending: list[str]) -> None:
    """A pending hit captured past retention; an outcome of another agency's hit."""
    store = Store.open(home)
    hits, outcomes = store.tables.read("hits"), store.tables.read("outcomes")
    days = configured_retention_days(store)
    old = hits.filter(pl.col("hit_id") == pending[0]).with_columns(
        pl.lit(OLD_HIT).alias("hit_id"),
        (pl.col("captured_at") - dt.timedelta(days=days + 30)).alias("captured_at"))
    store.tables.write("hits", pl.concat([hits, old]))
    foreign = outcomes.filter(pl.col("outcome_type") == "stop").head(1).with_columns(
        pl.lit(FOREIGN_OUTCOME).alias("outcome_id"), pl.lit(FOREIGN_HIT).alias("hit_id"))
    store.tables.write("outcomes", pl.concat([outcomes, foreign]))


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review3-data")
    home = folder / "home"
    build_demo(home, days=3, scale=0.05)
    pending, misread = _freshen(home)
    _plant(home, pending)
    served = start_demo_service(home)
    running = HitCity(served, pending, misread, {}, {})
    try:
        for role in ROLES:
            running.sessions[role] = folder / f"{role}.json"
            served.sign_in(role, running.sessions[role])
            running.clients[role] = connect(session_file=running.sessions[role])
    except BaseException:
        stop_service(served.service)
        raise
    yield running
    stop_hit_city(running)


def _refused(city: HitCity, role: str, call) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (403, "refused")
    row = city.event(caught.value.event_id)
    assert (row["user_id"], row["outcome"]) == (city.served.accounts[role].user_id, "refused")
    return caught.value


# -- 1. hits past retention ------------------------------------------------------------------
def test_a_hit_past_retention_is_neither_queued_shown_nor_worked(city) -> None:
    analyst = city.clients["analyst"]
    queued = [h["hit_id"] for h in analyst.hit_queue()["hits"]]
    assert city.pending[0] in queued  # its twin within retention is queued
    assert OLD_HIT not in queued
    for call in (lambda: analyst.show_hit(OLD_HIT),
                 lambda: analyst.confirm_hit(OLD_HIT, "correct"),
                 lambda: analyst.record_hit_outcome(OLD_HIT, "stop")):
        refusal = _refused(city, "analyst", call)
        assert "retention" in refusal.detail
    hits = city.table("hits")
    assert hits.filter(pl.col("hit_id") == OLD_HIT)["disposition"].to_list() == ["pending"]


# -- 2. organization type, and other agencies' hits --------------------------------------------
def test_another_agencys_hits_and_outcomes_stay_out_of_the_data_routes(city) -> None:
    analyst, auditor = city.clients["analyst"], city.clients["auditor"]
    assert FOREIGN_HIT not in analyst.hits()["hit_id"].to_list()
    assert FOREIGN_OUTCOME not in analyst.outcomes()["outcome_id"].to_list()
    assert analyst.hits().height  # the department's own hits are still there
    # An auditor reviews the whole program, plate-free.
    audited = auditor.hits()
    assert FOREIGN_HIT in audited["hit_id"].to_list()
    assert FOREIGN_OUTCOME in auditor.outcomes()["outcome_id"].to_list()
    assert not {"read_plate", "listed_plate"} & set(audited.columns)


def test_a_federal_organizations_user_gets_no_data(city) -> None:
    investigator = city.clients["investigator"]
    assert investigator.cameras().height  # allowed while the organization is local
    user_id = city.served.accounts["investigator"].user_id
    store = Store.open(city.served.service.home)
    users = store.tables.read("users")
    store.tables.write("users", users.with_columns(
        pl.when(pl.col("user_id") == user_id).then(pl.lit("federal"))
        .otherwise(pl.col("organization_type")).alias("organization_type")))
    for call in (investigator.hits, investigator.outcomes, investigator.hotlist_entries,
                 investigator.cameras, investigator.read_counts):
        refusal = _refused(city, "investigator", call)
        assert "federal" in refusal.detail
        assert city.event(refusal.event_id)["organization_type"] == "federal"


# -- 3. actionable hotlist fields ------------------------------------------------------------
@pytest.mark.parametrize("role", ["analyst", "auditor"])
def test_hotlist_entries_withhold_the_actionable_fields(city, role) -> None:
    entries = city.clients[role].hotlist_entries()
    assert entries.height and "entry_id" in entries.columns
    assert not set(ACTIONABLE_FIELDS) & set(entries.columns)


# -- 4. audit record forgery -------------------------------------------------------------------
def test_query_parameters_cannot_forge_the_audit_records_keys(city) -> None:
    http, auth = city.raw("analyst")
    forged = {"source": "10.1.2.3", "service": "nothing to see", "path": "/v1/health"}
    with http:
        answer = http.get("/v1/data/cameras", params=forged, headers=auth)
    assert answer.status_code == 200
    body = json.loads(city.event(answer.headers["X-Audit-Event-Id"])["query_json"])
    assert body["service"] == "list cameras"
    assert body["source"] != "10.1.2.3"
    assert body["path"] == "/v1/data/cameras"
    assert body["params"] == forged
