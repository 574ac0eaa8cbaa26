"""Attacks on the gated pattern searches (issue #16, item 4): "seen at A and B", repeats.

A pattern search is a search: each place is bounded as one search would be, the reads it
looks at are capped like a search's rows, and a refusal is audited with the user. These are
the ways a hostile analyst would try to turn one into a dump of the city's plates.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from alpr_workbench.analytics.patterns import repeat_sightings, seen_at_both
from alpr_workbench.cli import app
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import (
    Gate,
    Place,
    RepeatSightingsRequest,
    SearchRefused,
    SeenAtBothRequest,
)
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store
from service_fixtures import CASE, PASSPHRASE, build_home

POLICY = load_policy()
USER = "t.analyst"
REASON = "motor_vehicle_theft"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    home = tmp_path_factory.mktemp("attack-patterns") / "home"
    build_home(home)
    return Store.open(home, passphrase=PASSPHRASE)


def _window() -> dict[str, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return {"window_from": now - dt.timedelta(days=5), "window_to": now}


def _both(store: Store, place_a: dict, place_b: dict, **extra: object):
    request = SeenAtBothRequest(case_number=CASE, reason_code=REASON, place_a=place_a,
                                place_b=place_b, within_minutes=60, **_window(), **extra)
    return Gate(store).seen_at_both(USER, request, pair=seen_at_both)


def _repeats(store: Store, place: dict, **extra: object):
    request = RepeatSightingsRequest(case_number=CASE, reason_code=REASON, place=place,
                                     **_window(), **extra)  # fmt: skip
    return Gate(store).repeat_sightings(USER, request, count=repeat_sightings)


def _refused_and_audited(store: Store, caught: pytest.ExceptionInfo[SearchRefused]) -> str:
    with AuditLog.open(store.home, store.keystore) as log:
        record = log.events().filter(pl.col("event_id") == caught.value.event_id)
    row = record.row(0, named=True)
    assert (row["user_id"], row["event_type"], row["outcome"]) == (USER, "search", "refused")
    assert json.loads(row["query_json"])["pattern"] in ("seen_at_both", "repeat_sightings")
    return caught.value.reason


def _busiest_circle(store: Store) -> tuple[float, float, float, int]:
    """A circle of the policy's largest radius around the camera with the most neighbours."""
    cams = store.tables.read("cameras").filter(pl.col("network_id") == "bpd-city")
    lat, lon = np.radians(cams["lat"].to_numpy()), np.radians(cams["lon"].to_numpy())
    a = (np.sin((lat[:, None] - lat[None, :]) / 2) ** 2
         + np.cos(lat[:, None]) * np.cos(lat[None, :])
         * np.sin((lon[:, None] - lon[None, :]) / 2) ** 2)  # fmt: skip
    within = (2 * 6_371_000 * np.arcsin(np.sqrt(a)) <= POLICY.max_radius_m * 0.99).sum(axis=1)
    i = int(within.argmax())
    return float(cams["lat"][i]), float(cams["lon"][i]), POLICY.max_radius_m * 0.99, int(
        within[i]
    )


def test_two_city_sized_circles_cannot_enumerate_every_plate(store):
    centre = {"near": (34.18, -118.33, 50_000.0)}
    with pytest.raises(SearchRefused) as caught:
        _both(store, centre, centre)
    assert "place A: an area of radius 50000 m is too broad" in _refused_and_audited(
        store, caught
    )


def test_two_circles_inside_the_radius_but_full_of_cameras_are_refused(store):
    lat, lon, radius, cameras = _busiest_circle(store)
    assert cameras > POLICY.max_cameras_per_search  # the attack needs a dense circle
    small = {"camera_ids": [store.tables.read("cameras")["camera_id"][0]]}
    with pytest.raises(SearchRefused) as caught:
        _both(store, small, {"near": (lat, lon, radius)})
    assert "place B: the area holds" in _refused_and_audited(store, caught)


def test_every_camera_split_between_the_two_places_is_refused(store):
    cams = store.tables.read("cameras").filter(pl.col("network_id") == "bpd-city")["camera_id"]
    half = cams.len() // 2
    assert half > POLICY.max_cameras_per_search
    with pytest.raises(SearchRefused) as caught:
        _both(store, {"camera_ids": cams[:half].to_list()},
              {"camera_ids": cams[half:].to_list()})  # fmt: skip
    assert "cameras are too many for one search" in _refused_and_audited(store, caught)


def test_a_city_wide_polygon_as_the_second_place_is_refused(store):
    small = {"camera_ids": [store.tables.read("cameras")["camera_id"][0]]}
    city = {"polygon": [(-118.40, 34.14), (-118.26, 34.14), (-118.26, 34.22), (-118.40, 34.22)]}
    with pytest.raises(SearchRefused) as caught:
        _both(store, small, city)
    assert "place B: an area of" in _refused_and_audited(store, caught)


def test_a_gap_longer_than_any_window_is_refused_without_overflow(store):
    cams = store.tables.read("cameras")["camera_id"]
    request = SeenAtBothRequest(case_number=CASE, reason_code=REASON,
                                place_a={"camera_ids": [cams[0]]},
                                place_b={"camera_ids": [cams[1]]},
                                within_minutes=1e300, **_window())  # fmt: skip
    with pytest.raises(SearchRefused) as caught:
        Gate(store).seen_at_both(USER, request, pair=seen_at_both)
    assert "longer than the time window" in _refused_and_audited(store, caught)


def test_repeats_with_a_minimum_of_one_is_a_plate_dump_and_refused(store):
    place = {"camera_ids": [store.tables.read("cameras")["camera_id"][0]]}
    with pytest.raises(SearchRefused) as caught:
        _repeats(store, place, min_sightings=1)
    assert "would list every plate" in _refused_and_audited(store, caught)
    with pytest.raises(ValidationError):
        RepeatSightingsRequest(case_number=CASE, reason_code=REASON, place=place,
                               min_sightings=0)  # fmt: skip


def test_a_pattern_never_reads_more_than_one_search_may_return(store):
    cams = store.tables.read("cameras")
    busiest = store.reads.query().group_by("camera_id").len().sort("len").row(-1)[0]
    assert busiest in set(cams["camera_id"])
    tight = POLICY.model_copy(update={"max_rows": 5})
    gate = Gate._for_testing(store, clock=lambda: dt.datetime.now(dt.UTC), policy=tight)
    request = RepeatSightingsRequest(case_number=CASE, reason_code=REASON,
                                     place={"camera_ids": [busiest]}, **_window())
    found = gate.repeat_sightings(USER, request, count=repeat_sightings)
    assert found.truncated and found.reads_considered == 5 < found.reads_matched
    assert found.rows["sightings"].sum() <= 5


@pytest.mark.parametrize(
    "place",
    [
        {"polygon": [(-118.3, 34.18), (math.nan, 34.18), (-118.29, 34.19)]},
        {"polygon": [(-118.3, 34.18), (math.inf, 34.18), (-118.29, 34.19)]},
        {"near": (34.18, -118.3, math.nan)},
        {"near": (math.nan, -118.3, 100.0)},
        {"camera_ids": ["cam-001"], "near": (34.18, -118.3, 100.0)},  # which one is the place?
        {},
    ],
)
def test_a_place_with_nan_or_two_shapes_is_refused_where_it_enters(place):
    with pytest.raises(ValidationError):
        Place(**place)


def test_a_smuggled_acting_user_is_refused():
    with pytest.raises(ValidationError):
        RepeatSightingsRequest(case_number=CASE, reason_code=REASON,
                               place={"camera_ids": ["cam-001"]}, user_id="t.admin")


def test_the_command_line_refuses_a_nan_polygon_file_before_sending_it(tmp_path):
    ring = [[-118.3, 34.18], [float("nan"), 34.18], [-118.29, 34.19], [-118.3, 34.18]]
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))  # writes NaN
    runner = CliRunner()
    for args in (
        ["search", "--polygon", str(area)],
        ["patterns", "repeats", "--polygon", str(area)],
        ["patterns", "seen-at-both", "--a-near", "nan,-118.3,100", "--b-polygon", str(area)],
    ):
        result = runner.invoke(app, [*args, "--case", CASE, "--reason", REASON,
                                     "--session-file", str(tmp_path / "none.json")])
        said = " ".join(result.output.split())
        assert result.exit_code == 2 and "is not a finite number" in said, said


def test_seen_at_both_refuses_a_pair_explosion_before_building_it() -> None:
    """One plate read thousands of times at both places would build every pair in memory
    (the review's 20k x 20k case: a service-killing request); it is refused, naming why."""
    import datetime as dt

    import polars as pl
    import pytest

    from alpr_workbench.analytics.patterns import MAX_PAIRS, seen_at_both
    from alpr_workbench.errors import PatternTooBroad

    n = 3_000  # 3,000 x 3,000 = 9 M pairs of one parked car's reads
    assert n * n > MAX_PAIRS
    t0 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    rows = pl.DataFrame({
        "plate": ["7PARKED"] * (2 * n),
        "camera_id": ["a"] * n + ["b"] * n,
        "captured_at": [t0 + dt.timedelta(seconds=i) for i in range(2 * n)],
    })
    with pytest.raises(PatternTooBroad, match="pairs of reads"):
        seen_at_both(rows, place_a=["a"], place_b=["b"], within=dt.timedelta(hours=1))
