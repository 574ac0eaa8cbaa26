"""The hit workflow (issue #16, item 3) through the real service, the client and the CLI.

A demo city is served in a subprocess with a few hits made new again; the demo users sign in.
A hit is worked from alert to recovery and the efficacy figures move; a role without
``work_hits`` is refused and audited; an outcome on an unconfirmed or misread hit is refused;
every step is audited with the signed-in user.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.client import ServiceError
from alpr_workbench.governance.hit_workflow import confusable_warnings
from hit_fixtures import FOREIGN_HIT, HitCity, start_hit_city, stop_hit_city

CASE = "BPD-2026-910001"
ACTIONABLE = ("reason", "originating_agency", "originating_case_number", "vin")


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    running = start_hit_city(tmp_path_factory.mktemp("hits"),
                             ("analyst", "investigator", "command_staff"))
    yield running
    stop_hit_city(running)


def _refused(city: HitCity, call, role: str) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (403, "refused")
    row = city.event(caught.value.event_id)
    assert (row["user_id"], row["outcome"]) == (city.served.accounts[role].user_id, "refused")
    return caught.value


def test_the_queue_holds_new_hits_of_the_users_networks_and_nothing_actionable(city) -> None:
    doc = city.clients["analyst"].hit_queue()
    ids = [h["hit_id"] for h in doc["hits"]]
    assert set(city.pending) <= set(ids)
    assert FOREIGN_HIT not in ids
    assert doc["timezone"] == "America/Los_Angeles"
    for hit in doc["hits"]:
        assert hit["disposition"] == "pending" and hit["is_actionable"] is False
        assert not set(ACTIONABLE) & set(hit)
        assert {"captured_at", "camera_id", "read_plate", "listed_plate", "category",
                "confusable_warnings", "confidence_pct", "image_ref"} <= set(hit)
        assert hit["confusable_warnings"] == confusable_warnings(hit["read_plate"],
                                                                 hit["listed_plate"])
    row = city.event(doc["event_id"])
    assert row["user_id"] == city.served.accounts["analyst"].user_id
    assert set(json.loads(row["query_json"])["hit_ids"]) == set(ids)


def test_a_confusable_read_carries_a_warning() -> None:
    assert confusable_warnings("BWMY415", "8WMY415")[0] == (
        "position 1: read 'B', listed '8' (confusable)")
    assert confusable_warnings("7XYZ", "7XYZ") == ["check 'Z' (could be '2')"]


def test_alert_to_recovery_moves_the_efficacy_figures(city) -> None:
    analyst = city.clients["analyst"]
    hit_id = city.pending[0]
    before = analyst.efficacy_tables()["figures"]
    assert analyst.show_hit(hit_id)["hit"]["is_actionable"] is False

    confirmed = analyst.confirm_hit(hit_id, "correct", note="plate and car match the image")
    assert confirmed["disposition"] == "confirmed" and confirmed["is_actionable"]
    shown = analyst.show_hit(hit_id)["hit"]
    assert shown["is_actionable"] and "reason" in shown
    assert shown["disposition_by"] == city.served.accounts["analyst"].user_id

    outcome_id = analyst.record_hit_outcome(hit_id, "recovery", value_usd=18_500.0,
                                            case_number=CASE)
    after = analyst.efficacy_tables()["figures"]
    assert after["confirmed_hits"] == before["confirmed_hits"] + 1
    assert after["recoveries"] == before["recoveries"] + 1
    assert after["recovered_value_usd"] == pytest.approx(before["recovered_value_usd"] + 18_500)
    stored = city.table("outcomes").filter(city.table("outcomes")["outcome_id"] == outcome_id)
    assert stored["hit_id"].to_list() == [hit_id]
    assert stored["lat"][0] is not None  # the camera's place by default

    events = city.events()
    mine = events.filter(events["event_type"] == "hotlist_change").tail(2)
    assert mine["user_id"].to_list() == [city.served.accounts["analyst"].user_id] * 2
    assert mine["outcome"].to_list() == ["allowed", "allowed"]
    decision = json.loads(mine["query_json"][0])
    assert (decision["action"], decision["decision"], decision["note"]) == (
        "record_disposition", "correct", "plate and car match the image")
    assert json.loads(mine["query_json"][1])["outcome_id"] == outcome_id
    assert hit_id not in [h["hit_id"] for h in analyst.hit_queue()["hits"]]


def test_a_role_without_work_hits_is_refused_and_audited(city) -> None:
    staff = city.clients["command_staff"]
    hit_id = city.pending[1]
    _refused(city, lambda: staff.hit_queue(), "command_staff")
    refusal = _refused(city, lambda: staff.confirm_hit(hit_id, "correct"), "command_staff")
    assert "work_hits" in refusal.detail
    assert city.table("hits").filter(city.table("hits")["hit_id"] == hit_id)[
        "disposition"].to_list() == ["pending"]


def test_an_outcome_on_an_unconfirmed_or_misread_hit_is_refused(city) -> None:
    investigator = city.clients["investigator"]
    refusal = _refused(city, lambda: investigator.record_hit_outcome(
        city.pending[2], "stop"), "investigator")
    assert "not confirmed" in refusal.detail
    refusal = _refused(city, lambda: investigator.record_hit_outcome(
        city.misread, "recovery", value_usd=9_000.0, case_number=CASE), "investigator")
    assert "misread" in refusal.detail
    outcomes = city.table("outcomes")
    assert outcomes.filter(outcomes["hit_id"].is_in([city.pending[2], city.misread])).is_empty()


def test_a_rejected_hit_never_becomes_actionable(city) -> None:
    investigator = city.clients["investigator"]
    hit_id = city.pending[3]
    assert investigator.confirm_hit(hit_id, "wrong-state")["is_actionable"] is False
    shown = investigator.show_hit(hit_id)["hit"]
    assert shown["disposition"] == "wrong_state" and not set(ACTIONABLE) & set(shown)
    _refused(city, lambda: investigator.record_hit_outcome(hit_id, "stop"), "investigator")


def test_the_cli_works_a_hit_from_alert_to_arrest(city) -> None:
    runner = CliRunner()
    session = ["--session-file", str(city.sessions["investigator"])]
    hit_id = city.pending[1]

    queue = runner.invoke(app, ["hits", "queue", *session])
    assert queue.exit_code == 0, queue.output
    assert "America/Los_Angeles" in queue.output and hit_id[:12] in queue.output

    shown = runner.invoke(app, ["hits", "show", hit_id, *session])
    assert shown.exit_code == 0, shown.output
    assert "Not actionable until a person confirms" in shown.output
    assert "PST" in shown.output or "PDT" in shown.output

    refused = runner.invoke(app, ["hits", "outcome", hit_id, "--type", "arrest", "--case", CASE,
                                  *session])
    assert refused.exit_code == 2 and "not confirmed" in " ".join(refused.output.split())

    done = runner.invoke(app, ["hits", "confirm", hit_id, "--as", "correct", "--note", "ok",
                               *session])
    assert done.exit_code == 0 and "actionable now" in done.output
    arrest = runner.invoke(app, ["hits", "outcome", hit_id, "--type", "arrest", "--case", CASE,
                                 *session])
    assert arrest.exit_code == 0, arrest.output
    shown = runner.invoke(app, ["hits", "show", hit_id, *session])
    assert "reason" in shown.output and "arrest" in shown.output
    events = city.events().filter(city.events()["event_type"] == "hotlist_change").tail(3)
    assert set(events["user_id"]) == {city.served.accounts["investigator"].user_id}
