"""Attacks on the hit workflow (``/v1/hits/...``) against the real service.

Another agency's hit, a hit confirmed twice to inflate the figures, outcome values that are
not a number, negative or absurd, a recovery recorded twice, a smuggled acting user.
"""

from __future__ import annotations

import math

import pytest

from alpr_workbench.client import ServiceError
from hit_fixtures import FOREIGN_HIT, start_hit_city, stop_hit_city

CASE = "BPD-2026-910001"


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    running = start_hit_city(tmp_path_factory.mktemp("hit-attacks"), ("analyst",))
    yield running
    stop_hit_city(running)


def _refused(city, call) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (403, "refused")
    row = city.event(caught.value.event_id)
    assert (row["user_id"], row["outcome"]) == (city.served.accounts["analyst"].user_id,
                                                "refused")
    return caught.value


def test_another_agencys_hit_cannot_be_seen_confirmed_or_acted_on(city) -> None:
    analyst = city.clients["analyst"]
    for call in (lambda: analyst.show_hit(FOREIGN_HIT),
                 lambda: analyst.confirm_hit(FOREIGN_HIT, "correct"),
                 lambda: analyst.record_hit_outcome(FOREIGN_HIT, "stop")):
        refusal = _refused(city, call)
        # The same words as for a hit that does not exist: its existence is not disclosed.
        unknown = _refused(city, lambda: analyst.show_hit("hit-that-does-not-exist"))
        assert refusal.detail.replace(FOREIGN_HIT, "X") == unknown.detail.replace(
            "hit-that-does-not-exist", "X")
    hits = city.table("hits")
    assert hits.filter(hits["hit_id"] == FOREIGN_HIT)["disposition"].to_list() == ["pending"]


def test_confirming_a_hit_twice_does_not_count_it_twice(city) -> None:
    analyst = city.clients["analyst"]
    hit_id = city.pending[0]
    before = analyst.efficacy_tables()["figures"]["confirmed_hits"]
    analyst.confirm_hit(hit_id, "correct")
    refusal = _refused(city, lambda: analyst.confirm_hit(hit_id, "correct"))
    assert "already confirmed" in refusal.detail
    assert analyst.efficacy_tables()["figures"]["confirmed_hits"] == before + 1


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "-1", "1e12", "true", '"12000"'])
def test_an_outcome_value_that_is_no_price_is_refused(city, value) -> None:
    hit_id = city.pending[1]
    analyst = city.clients["analyst"]
    if analyst.show_hit(hit_id)["hit"]["disposition"] == "pending":
        analyst.confirm_hit(hit_id, "correct")
    http, auth = city.raw("analyst")
    body = f'{{"outcome_type": "recovery", "case_number": "{CASE}", "value_usd": {value}}}'
    with http:
        answer = http.post(f"/v1/hits/{hit_id}/outcome", content=body,
                           headers=auth | {"Content-Type": "application/json"})
    assert answer.status_code in (403, 422), answer.text
    row = city.event(answer.json()["event_id"])
    assert (row["user_id"], row["outcome"]) == (city.served.accounts["analyst"].user_id,
                                                "refused")
    outcomes = city.table("outcomes")
    assert outcomes.filter(outcomes["hit_id"] == hit_id).is_empty()
    values = city.table("outcomes")["value_usd"].drop_nulls().to_list()
    assert all(math.isfinite(v) and 0 <= v <= 10_000_000 for v in values)


def test_a_recovery_is_recorded_once(city) -> None:
    analyst = city.clients["analyst"]
    hit_id = city.pending[2]
    analyst.confirm_hit(hit_id, "correct")
    analyst.record_hit_outcome(hit_id, "recovery", value_usd=12_000.0, case_number=CASE)
    before = analyst.efficacy_tables()["figures"]["recoveries"]
    _refused(city, lambda: analyst.record_hit_outcome(hit_id, "recovery", value_usd=12_000.0,
                                                      case_number=CASE))
    assert analyst.efficacy_tables()["figures"]["recoveries"] == before


def test_a_smuggled_actor_is_refused_and_audited(city) -> None:
    hit_id = city.pending[3]
    http, auth = city.raw("analyst")
    with http:
        answer = http.post(f"/v1/hits/{hit_id}/confirm",
                           json={"decision": "correct", "actor": "someone.else"},
                           headers=auth)
    assert answer.status_code == 422
    row = city.event(answer.json()["event_id"])
    assert (row["user_id"], row["outcome"]) == (city.served.accounts["analyst"].user_id,
                                                "refused")
    hits = city.table("hits")
    assert hits.filter(hits["hit_id"] == hit_id)["disposition"].to_list() == ["pending"]
