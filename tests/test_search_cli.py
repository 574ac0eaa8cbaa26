"""Analyst search that fits the work (issue #16, item 4), through a real service.

The CLI's vehicle and area filters reach the gate; tables show the department's local time
and rounded confidences, ``--json`` full precision in UTC; a cut result says so; and the
pattern searches ("seen at A and B", repeat sightings) are gated, audited searches that
return what ``analytics.patterns`` computes on the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
import shapely
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from alpr_workbench.analytics.patterns import repeat_sightings, seen_at_both
from alpr_workbench.cli import app
from alpr_workbench.client import ServiceError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store
from service_fixtures import (
    ADMIN,
    CASE,
    CONFIG,
    PASSPHRASE,
    build_home,
    enroll_and_login,
    start_service,
    stop_service,
)

runner = CliRunner()
POLICY = load_policy()
ZONE = ZoneInfo(POLICY.timezone)
REASON = "motor_vehicle_theft"
PAIR_PLATES = ("7PAT001", "7PAT002", "7PAT003")
LOCAL_PLATE = "7LOC001"
BUSY_READS = POLICY.max_rows + 50  # more than one search may return
DAY1 = CONFIG.start_date
DAY2 = CONFIG.start_date + dt.timedelta(days=1)


def _at(day: dt.date, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second, micro), tzinfo=dt.UTC)


def _plant(store: Store, cameras: dict[str, dict[str, object]]) -> None:
    """Reads the tests know: pairs at A then B, a local-time read, a busy camera."""
    template = store.reads.query().row(0, named=True)
    specs: list[dict[str, object]] = []

    def read(camera: str, plate: str, at: dt.datetime, **extra: object) -> None:
        cam = cameras[camera]
        specs.append({
            **template, "read_id": f"planted-{len(specs):05d}", "camera_id": cam["camera_id"],
            "network_id": cam["network_id"], "lat": cam["lat"], "lon": cam["lon"],
            "plate": plate, "captured_at": at, "alternate_plates": [], **extra,
        })  # fmt: skip

    for day in (DAY1, DAY2):
        for i, plate in enumerate(PAIR_PLATES):
            read("A", plate, _at(day, 18, 5 * i))
            read("B", plate, _at(day, 18, 5 * i + 20))
    read("A", LOCAL_PLATE, _at(DAY2, 7, 30, 5, 654321), confidence_pct=91.3)
    read("A", LOCAL_PLATE, _at(DAY2, 9, 30, 33, 123456), confidence_pct=93.4567)
    for i in range(BUSY_READS):
        read("BUSY", f"6BSY{i % 100:03d}", _at(DAY2, 0) + dt.timedelta(seconds=60 * i))
    frame = pl.DataFrame(specs, schema=store.reads.query().schema)
    store.reads.ingest(frame)


def _pick_cameras(store: Store) -> dict[str, dict[str, object]]:
    """Three cameras of the department's own network, far enough apart to be separate places."""
    cams = store.tables.read("cameras").filter(pl.col("network_id") == "bpd-city")
    rows = cams.sort("camera_id").to_dicts()
    a = rows[0]

    def far(row: dict[str, object], *others: dict[str, object]) -> bool:
        return all(_metres(row, o) > 1000 for o in others)

    b = next(r for r in rows if far(r, a))
    busy = next(r for r in rows if far(r, a, b))
    return {"A": a, "B": b, "BUSY": busy}


def _metres(p: dict[str, object], q: dict[str, object]) -> float:
    return float(_haversine(p["lat"], p["lon"], np.array([q["lat"]]), np.array([q["lon"]]))[0])


def _haversine(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    lat1, lon1, lat2, lon2 = map(np.radians, (lat, lon, lats.astype(float), lons.astype(float)))
    a = np.sin((lat2 - lat1) / 2) ** 2
    a += np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000.0 * np.arcsin(np.sqrt(a))


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    home = tmp_path_factory.mktemp("search-cli") / "home"
    code, cert = build_home(home)
    store = Store.open(home, passphrase=PASSPHRASE)
    cameras = _pick_cameras(store)
    _plant(store, cameras)
    running = start_service(home, code, cert)
    sessions = tmp_path_factory.mktemp("sessions")
    admin = enroll_and_login(running, ADMIN, code, sessions / "admin.json")
    analyst = enroll_and_login(
        running, "t.analyst", admin.issue_enrolment("t.analyst"), sessions / "analyst.json"
    )
    admin.close()
    yield {"home": home, "cameras": cameras, "client": analyst, "service": running,
           "session": analyst.session_file}  # fmt: skip
    analyst.close()
    stop_service(running)


def _cli(city, *args: str):
    return runner.invoke(
        app, [*args, "--session-file", str(city["session"])], env={"COLUMNS": "240"}
    )


def _search(city, *args: str):
    return _cli(city, "search", "--case", CASE, "--reason", REASON, *args)


def _json_rows(result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _said(result) -> str:
    return " ".join(result.output.split())


def _truth(city) -> pl.DataFrame:
    """Every stored read, read with the store's secret (the test's side, not the user's)."""
    return Store.open(city["home"], passphrase=PASSPHRASE).reads.query()


def _events(city) -> pl.DataFrame:
    store = Store.open(city["home"], passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events()


def _window() -> dict[str, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return {"window_from": _at(DAY1, 0) - dt.timedelta(days=1), "window_to": now}


# -- filters reach the gate ----------------------------------------------------------------
def test_vehicle_filters_reach_the_gate_and_every_row_matches(city):
    truth = _truth(city)
    described = ["vehicle_make", "vehicle_color", "vehicle_type"]
    planted = truth.filter(pl.col("read_id").str.starts_with("planted")).select(described)
    make, color, kind = (  # the commonest description the planted reads do not share
        truth.join(planted.unique(), on=described, how="anti").group_by(described).len()
        .sort("len", "vehicle_make", descending=[True, False]).row(0)[:3]
    )  # fmt: skip
    result = _search(city, "--make", make.lower(), "--color", color.upper(), "--type", kind,
                     "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _json_rows(result)
    expected = truth.filter(
        (pl.col("vehicle_make") == make) & (pl.col("vehicle_color") == color)
        & (pl.col("vehicle_type") == kind)
    )  # fmt: skip
    assert rows and {r["read_id"] for r in rows} == set(expected["read_id"])
    assert {(r["vehicle_make"], r["vehicle_color"], r["vehicle_type"]) for r in rows} == {
        (make, color, kind)
    }


def test_a_circle_reaches_the_gate_and_every_row_is_inside_it(city):
    a = city["cameras"]["A"]
    result = _search(city, "--near", f"{a['lat']},{a['lon']},150", "--json")
    assert result.exit_code == 0, result.output
    rows = pl.DataFrame(_json_rows(result))
    truth = _truth(city)
    inside = truth.filter(
        pl.Series(_haversine(a["lat"], a["lon"], truth["lat"].to_numpy(),
                             truth["lon"].to_numpy()) <= 150)  # fmt: skip
    )
    assert rows.height and set(rows["read_id"]) == set(inside["read_id"])
    distances = _haversine(a["lat"], a["lon"], rows["lat"].to_numpy(), rows["lon"].to_numpy())
    assert (distances <= 150).all()


def test_a_geojson_polygon_reaches_the_gate_and_every_row_is_inside_it(city, tmp_path):
    b = city["cameras"]["B"]
    d = 0.002
    ring = [[b["lon"] - d, b["lat"] - d], [b["lon"] + d, b["lat"] - d],
            [b["lon"] + d, b["lat"] + d], [b["lon"] - d, b["lat"] + d],
            [b["lon"] - d, b["lat"] - d]]  # fmt: skip
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps({"type": "Feature", "properties": {},
                                "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    result = _search(city, "--polygon", str(area), "--json")
    assert result.exit_code == 0, result.output
    rows = pl.DataFrame(_json_rows(result))
    truth = _truth(city)
    shape = shapely.Polygon(ring)
    inside = truth.filter(
        pl.Series(shapely.contains_xy(shape, truth["lon"].to_numpy(), truth["lat"].to_numpy()))
    )
    assert rows.height and set(rows["read_id"]) == set(inside["read_id"])
    assert b["camera_id"] in set(rows["camera_id"])


def test_a_polygon_file_that_is_not_a_polygon_is_a_clear_error(city, tmp_path):
    line = tmp_path / "line.geojson"
    line.write_text(json.dumps({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}))
    result = _search(city, "--polygon", str(line))
    assert result.exit_code == 2 and "give a GeoJSON Polygon" in _said(result)
    near = _search(city, "--near", "34.18,-118.3")
    assert near.exit_code == 2 and "LAT,LON,RADIUS_M" in _said(near)


# -- what a person reads ---------------------------------------------------------------------
def test_local_times_are_read_in_the_departments_zone(city):
    # Without an offset, --from is local: 01:00 local is 08:00 or 09:00 UTC, after the 07:30
    # UTC read and before the 09:30 one. Read as UTC it would let both through.
    result = _search(city, "--plate", LOCAL_PLATE, "--from", f"{DAY2.isoformat()}T01:00",
                     "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _json_rows(result)
    assert [r["captured_at"] for r in rows] == [f"{DAY2}T09:30:33.123456+00:00"]
    assert rows[0]["confidence_pct"] == pytest.approx(93.4567, abs=1e-4)  # full precision
    with_offset = _search(city, "--plate", LOCAL_PLATE, "--from", f"{DAY2.isoformat()}T01:00Z",
                          "--json")  # fmt: skip
    assert len(_json_rows(with_offset)) == 2


def test_the_table_shows_local_time_to_the_second_and_whole_percents(city):
    result = _search(city, "--plate", LOCAL_PLATE)
    assert result.exit_code == 0, result.output
    shown = _at(DAY2, 9, 30, 33).astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S %Z")
    assert shown in result.output and "93 %" in result.output and "91 %" in result.output
    assert "33.123456" not in result.output and "93.45" not in result.output
    assert "+00:00" not in result.output


def test_a_result_cut_by_the_policy_says_so(city):
    busy = city["cameras"]["BUSY"]["camera_id"]
    total = _truth(city).filter(pl.col("camera_id") == busy).height
    table = _search(city, "--camera", busy)
    assert table.exit_code == 0, table.output
    assert (
        f"showing 200 of {total:,} reads: the policy caps one search at {POLICY.max_rows:,} "
        "rows; narrow the window or ask a supervisor for an approval (--approval)"
    ) in _said(table)
    as_json = _search(city, "--camera", busy, "--json")
    assert len(_json_rows(as_json)) == POLICY.max_rows
    assert f"showing {POLICY.max_rows:,} of {total:,} reads" in _said(as_json)
    uncut = _search(city, "--plate", LOCAL_PLATE)
    assert "showing" not in _said(uncut)


# -- pattern searches ------------------------------------------------------------------------
def _both_places(city) -> tuple[dict[str, object], dict[str, object]]:
    a, b = city["cameras"]["A"], city["cameras"]["B"]
    return {"camera_ids": [a["camera_id"]]}, {"near": (b["lat"], b["lon"], 100.0)}


def test_seen_at_both_equals_the_analytics_on_the_same_rows(city):
    client = city["client"]
    place_a, place_b = _both_places(city)
    within = dt.timedelta(minutes=30)
    before = _events(city).filter(pl.col("event_type") == "search").height
    found = client.seen_at_both(case_number=CASE, reason_code=REASON, place_a=place_a,
                                place_b=place_b, within=within, **_window())  # fmt: skip
    after = _events(city)
    assert after.filter(pl.col("event_type") == "search").height == before + 1  # one record
    record = after.filter(pl.col("event_id") == found.event_id).row(0, named=True)
    assert record["user_id"] == "t.analyst" and record["outcome"] == "allowed"
    assert json.loads(record["query_json"])["pattern"] == "seen_at_both"

    rows_a = client.search(case_number=CASE, reason_code=REASON, **place_a, **_window()).rows
    rows_b = client.search(case_number=CASE, reason_code=REASON, **place_b, **_window()).rows
    expected = seen_at_both(
        pl.concat([rows_a, rows_b]).unique("read_id", maintain_order=True).sort("captured_at"),
        place_a=sorted(set(rows_a["camera_id"])), place_b=sorted(set(rows_b["camera_id"])),
        within=within,
    )  # fmt: skip
    assert_frame_equal(found.rows, expected)
    assert set(PAIR_PLATES) <= set(found.rows["plate"]) and not found.truncated
    assert found.reads_matched == found.reads_considered == rows_a.height + rows_b.height


def test_repeat_sightings_equals_the_analytics_on_the_same_rows(city):
    client = city["client"]
    place = {"camera_ids": [city["cameras"]["A"]["camera_id"]]}
    found = client.repeat_sightings(case_number=CASE, reason_code=REASON, place=place,
                                    min_sightings=2, min_days=2, **_window())  # fmt: skip
    rows = client.search(case_number=CASE, reason_code=REASON, **place, **_window()).rows
    expected = repeat_sightings(rows, min_sightings=2, min_days=2, timezone=POLICY.timezone)
    assert_frame_equal(found.rows, expected)
    assert set(PAIR_PLATES) <= set(found.rows["plate"])
    # Days are the department's local days: both reads of LOCAL_PLATE fall on one UTC day,
    # but in Pacific standard time 07:30 UTC is the evening before.
    local_days = {_at(DAY2, h, 30).astimezone(ZONE).date() for h in (7, 9)}
    assert (LOCAL_PLATE in set(found.rows["plate"])) == (len(local_days) == 2)
    record = _events(city).filter(pl.col("event_id") == found.event_id).row(0, named=True)
    assert record["user_id"] == "t.analyst" and record["event_type"] == "search"


def test_pattern_searches_are_refused_without_a_case_or_reason_and_audited(city):
    client = city["client"]
    place_a, place_b = _both_places(city)
    attempts = [
        lambda: client.seen_at_both(case_number="BPD-2026-999999", reason_code=REASON,
                                    place_a=place_a, place_b=place_b,
                                    within=dt.timedelta(minutes=30)),
        lambda: client.repeat_sightings(case_number=CASE, reason_code="curiosity",
                                        place=place_a),
        lambda: client.repeat_sightings(case_number="", reason_code=REASON, place=place_a),
    ]  # fmt: skip
    for attempt in attempts:
        with pytest.raises(ServiceError) as caught:
            attempt()
        assert caught.value.status == 403 and caught.value.code == "search_refused"
        record = _events(city).filter(pl.col("event_id") == caught.value.event_id)
        assert record.row(0, named=True)["user_id"] == "t.analyst"
        assert record["outcome"].to_list() == ["refused"]
    with pytest.raises(ServiceError) as malformed:  # no reason at all: 422, still audited
        client.repeat_sightings(case_number=CASE, reason_code=None, place=place_a)
    assert malformed.value.status == 422 and malformed.value.event_id
    record = _events(city).filter(pl.col("event_id") == malformed.value.event_id)
    assert record.row(0, named=True)["user_id"] == "t.analyst"


def test_a_nan_area_is_refused_by_the_service_and_the_client(city):
    token = json.loads(city["session"].read_text())["token"]
    polygon = "[[-118.3, 34.18], [NaN, 34.18], [-118.29, 34.19]]"  # json.loads takes NaN
    fields = f'"case_number": "{CASE}", "reason_code": "{REASON}"'
    body = f'{{{fields}, "place": {{"polygon": {polygon}}}}}'
    with city["service"].raw() as http:
        answer = http.post("/v1/patterns/repeats", content=body.encode(),
                           headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 422 and "not a (lon, lat) point" in answer.json()["detail"]
    assert answer.json()["event_id"]  # audited as a malformed search
    with pytest.raises(ValueError, match="not finite"):
        city["client"].repeat_sightings(
            case_number=CASE, reason_code=REASON,
            place={"polygon": [(-118.3, 34.18), (math.nan, 34.18), (-118.29, 34.19)]},
        )


def test_the_pattern_commands_show_local_time_and_say_when_cut(city):
    a, b = city["cameras"]["A"], city["cameras"]["B"]
    both = _cli(city, "patterns", "seen-at-both", "--case", CASE, "--reason", REASON,
                "--a-camera", a["camera_id"], "--b-near", f"{b['lat']},{b['lon']},100",
                "--within", "30", "--json")  # fmt: skip
    assert both.exit_code == 0, both.output
    rows = _json_rows(both)
    assert set(PAIR_PLATES) <= {r["plate"] for r in rows}
    assert all(r["gap_s"] == 1200.0 and r["a_at"].endswith("+00:00") for r in rows
               if r["plate"] in PAIR_PLATES)  # fmt: skip
    table = _cli(city, "patterns", "repeats", "--case", CASE, "--reason", REASON,
                 "--camera", a["camera_id"], "--min-days", "2")  # fmt: skip
    assert table.exit_code == 0, table.output
    first = _at(DAY1, 18).astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S %Z")
    assert "7PAT001" in table.output and first in table.output

    busy = city["cameras"]["BUSY"]["camera_id"]
    total = _truth(city).filter(pl.col("camera_id") == busy).height
    cut = _cli(city, "patterns", "repeats", "--case", CASE, "--reason", REASON,
               "--camera", busy)  # fmt: skip
    assert cut.exit_code == 0, cut.output
    assert (
        f"computed from {POLICY.max_rows:,} of {total:,} reads, so plates may be missing: the "
        f"policy caps one search at {POLICY.max_rows:,} rows"
    ) in _said(cut)
    dump = _cli(city, "patterns", "repeats", "--case", CASE, "--reason", REASON,
                "--camera", busy, "--min-sightings", "1")  # fmt: skip
    assert dump.exit_code == 3 and "would list every plate" in _said(dump)
    assert re.search(r"audit record evt-[0-9a-f]+", _said(dump))
    neither = _cli(city, "patterns", "repeats", "--case", CASE, "--reason", REASON)
    assert neither.exit_code == 2 and "exactly one of them" in _said(neither)
