"""Patterns inside a case: pure functions on search rows, and picking a case and a user."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alpr_workbench.analytics.patterns import (
    eligible_case_assignments,
    repeat_sightings,
    seen_at_both,
    sightings_by_hour,
    sightings_by_weekday,
)
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.policy import load_policy

T0 = dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC)  # Monday 10:00 in Los Angeles
MIN = dt.timedelta(minutes=1)


def _rows(*reads: tuple[str, str, dt.datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "read_id": [f"r{i}" for i in range(len(reads))],
            "plate": [p for p, _, _ in reads],
            "camera_id": [c for _, c, _ in reads],
            "captured_at": pl.Series([t for _, _, t in reads], dtype=pl.Datetime("us", "UTC")),
            "vehicle_make": ["Honda"] * len(reads),
            "vehicle_color": [None] * len(reads),
        }
    )


def test_hour_and_weekday_in_local_time() -> None:
    rows = _rows(
        ("7ABC123", "a", T0),
        ("7ABC123", "a", T0 + dt.timedelta(hours=1)),
        ("8XYZ999", "b", T0 + dt.timedelta(hours=10)),  # 04:00 UTC Tuesday = Monday 20:00 LA
    )
    hours = sightings_by_hour(rows, timezone="America/Los_Angeles")
    assert hours.height == 24 and hours["reads"].sum() == 3
    assert dict(hours.filter(pl.col("reads") > 0).iter_rows()) == {10: 1, 11: 1, 20: 1}
    days = sightings_by_weekday(rows, timezone="America/Los_Angeles")
    assert days["day"].to_list()[0] == "Monday" and days.height == 7
    assert days.filter(pl.col("reads") > 0).rows() == [(1, "Monday", 3)]
    utc = sightings_by_weekday(rows)
    assert utc.filter(pl.col("reads") > 0).select("day", "reads").rows() == [
        ("Monday", 2),
        ("Tuesday", 1),
    ]


def test_empty_rows_give_zero_counts() -> None:
    empty = _rows()
    assert sightings_by_hour(empty)["reads"].sum() == 0
    assert sightings_by_weekday(empty)["reads"].sum() == 0
    assert repeat_sightings(empty).is_empty()
    assert seen_at_both(empty, place_a=["a"], place_b=["b"], within=MIN).is_empty()


def test_repeat_sightings() -> None:
    rows = _rows(
        ("7ABC123", "a", T0),
        ("7ABC123", "b", T0 + dt.timedelta(days=1)),
        ("7ABC123", "a", T0 + dt.timedelta(days=1, minutes=5)),
        ("5DEF456", "a", T0),
        ("5DEF456", "a", T0 + MIN),
        ("8XYZ999", "b", T0),
    )
    got = repeat_sightings(rows)
    assert got["plate"].to_list() == ["7ABC123", "5DEF456"]
    first = got.row(0, named=True)
    assert (first["sightings"], first["cameras"], first["days"]) == (3, 2, 2)
    assert first["first_seen_at"] == T0
    assert first["last_seen_at"] == T0 + dt.timedelta(days=1, minutes=5)
    assert first["vehicle_make"] == "Honda" and first["vehicle_color"] is None
    assert repeat_sightings(rows, min_sightings=1).height == 3
    assert repeat_sightings(rows, min_sightings=3)["plate"].to_list() == ["7ABC123"]
    with pytest.raises(WorkbenchError):
        repeat_sightings(rows, min_sightings=0)
    with pytest.raises(WorkbenchError, match="plate"):
        repeat_sightings(rows.drop("plate"))


def test_seen_at_both_places() -> None:
    rows = _rows(
        ("7ABC123", "a1", T0),
        ("7ABC123", "b1", T0 + 40 * MIN),
        ("7ABC123", "b2", T0 + 20 * MIN),  # the closer pair is kept
        ("5DEF456", "b1", T0),
        ("5DEF456", "a2", T0 + 10 * MIN),  # B first: negative gap
        ("8XYZ999", "a1", T0),
        ("8XYZ999", "b1", T0 + 3 * dt.timedelta(hours=1)),  # too far apart
        ("9QQQ000", "a1", T0),  # only at A
    )
    got = seen_at_both(rows, place_a=["a1", "a2"], place_b=["b1", "b2"], within=30 * MIN)
    assert got.columns == ["plate", "a_camera_id", "a_at", "b_camera_id", "b_at", "gap"]
    assert got.select("plate", "b_camera_id", "gap").rows() == [
        ("5DEF456", "b1", -10 * MIN),
        ("7ABC123", "b2", 20 * MIN),
    ]
    four_hours = 4 * dt.timedelta(hours=1)
    wider = seen_at_both(rows, place_a=["a1", "a2"], place_b=["b1"], within=four_hours)
    assert set(wider["plate"]) == {"7ABC123", "5DEF456", "8XYZ999"}
    with pytest.raises(WorkbenchError):
        seen_at_both(rows, place_a=["a1"], place_b=["b1"], within=-MIN)


def test_seen_at_both_never_pairs_a_read_with_itself() -> None:
    rows = _rows(("7ABC123", "a", T0), ("5DEF456", "a", T0), ("5DEF456", "a", T0 + 5 * MIN))
    got = seen_at_both(rows, place_a=["a"], place_b=["a"], within=30 * MIN)
    assert got["plate"].to_list() == ["5DEF456"]
    assert got["gap"].abs().to_list() == [5 * MIN]


def _registry(now: dt.datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    cases = pl.DataFrame(
        {
            "case_number": [f"BPD-2026-00000{i}" for i in range(1, 6)],
            "title": [
                "Burglary - Olive Ave",
                "Robbery - Main St",
                "Locate for ICE detainer",  # a prohibited purpose in the title
                "Other - see notes",  # "other" needs free text
                "Fraud - Elm St",
            ],
            "offense_type": ["burglary", "robbery", "burglary", "other", "fraud"],
            "status": ["open", "open", "open", "open", "closed"],
            "opened_at": [now - dt.timedelta(days=d) for d in (5, 1, 2, 3, 4)],
            "assigned_user_ids": [
                ["ana", "aud", "fed", "old"],
                ["ana", "cmd"],
                ["ana"],
                ["ana"],
                ["ana"],
            ],
        }
    )
    n = 5
    users = pl.DataFrame(
        {
            "user_id": ["ana", "aud", "fed", "old", "cmd"],
            "full_name": ["A", "B", "C", "D", "E"],
            "role": ["analyst", "auditor", "investigator", "investigator", "command_staff"],
            "organization": ["Burbank Police Department"] * 2
            + ["Homeland Security Investigations"]
            + ["Burbank Police Department"] * 2,
            "organization_type": ["ca_local_agency", "ca_local_agency", "federal"]
            + ["ca_local_agency"] * 2,
            "job_title": ["Crime Analyst", "Auditor", "Detective", "Detective", "Captain"],
            "is_active": [True] * n,
            "approved_by": ["sup"] * n,
            "approved_at": [now - dt.timedelta(days=30)] * n,
            "trained_at": [now - dt.timedelta(days=30)] * 3 + [now - dt.timedelta(days=4000)]
            + [now - dt.timedelta(days=30)],
            "separated_at": pl.Series([None] * n, dtype=pl.Datetime("us", "UTC")),
            "last_active_at": [now] * n,
        }
    )
    return cases, users


def test_eligible_case_assignments() -> None:
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    cases, users = _registry(now)
    got = eligible_case_assignments(cases, users, policy=load_policy(), now=now)
    assert got.select("case_number", "reason_code", "user_id", "role").rows() == [
        ("BPD-2026-000002", "robbery", "ana", "analyst"),
        ("BPD-2026-000002", "robbery", "cmd", "command_staff"),
        ("BPD-2026-000001", "burglary", "ana", "analyst"),
    ]


def test_eligible_assignments_are_searchable(tmp_path) -> None:
    """The first pair the helper offers passes the gate on the synthetic city."""
    from alpr_workbench.demo import build_demo
    from alpr_workbench.governance import AuditLog, Gate, SearchRequest
    from alpr_workbench.store import Store

    home = tmp_path / "home"
    build_demo(home, days=2, scale=0.05)
    store = Store.open(home)
    audit = AuditLog.open(home, store.keystore)
    gate = Gate(store, audit)
    now = dt.datetime.now(dt.UTC)
    pairs = eligible_case_assignments(
        store.tables.read("cases"), store.tables.read("users"), policy=gate.policy, now=now
    )
    assert pairs.height > 0
    camera = store.tables.read("cameras")["camera_id"][0]
    for case, _, reason, user, _ in pairs.head(5).iter_rows():
        result = gate.search(
            user,
            SearchRequest(
                case_number=case,
                reason_code=reason,
                camera_ids=(camera,),
                window_from=now - dt.timedelta(days=2),
                window_to=now,
            ),
        )
        by_hour = sightings_by_hour(result.rows, timezone=gate.policy.timezone)
        assert by_hour["reads"].sum() == result.rows.height
    audit.close()
