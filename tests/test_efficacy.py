"""Efficacy and impact metrics against hand-computed small cases and the synthetic city."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import polars as pl
import pytest

from alpr_workbench.analytics import (
    READS_DAILY_SCHEMA,
    Rate,
    efficacy_report,
    monthly_trend,
    wilson_interval,
)
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.schema import empty_frame, load_table

D = dt.date(2026, 1, 1)
START, END = D, dt.date(2026, 1, 10)  # 10 days


def _at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _day(i: int) -> dt.date:
    """Day ``i`` of the period (1 = 2026-01-01)."""
    return D + dt.timedelta(days=i - 1)


def _frame(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = load_table(table).polars_schema
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


CAMERA_NETWORK = {"c1": "city", "c2": "city", "c3": "hw"}


def _reads_daily() -> pl.DataFrame:
    rows = [("c1", _day(i), 100) for i in range(1, 11)]
    rows += [("c2", _day(i), 50) for i in range(1, 11)]
    rows += [("c3", _day(i), 100) for i in range(1, 6)]
    rows += [("c1", _day(0), 999)]  # 2025-12-31, outside the period
    return pl.DataFrame(
        [(c, CAMERA_NETWORK[c], d, n) for c, d, n in rows], schema=READS_DAILY_SCHEMA, orient="row"
    )


# hit_id: (day, camera, source, disposition, read_id)
HITS = {
    "h1": (1, "c1", "state_stolen", "confirmed", "r1"),
    "h2": (2, "c1", "state_stolen", "confirmed", "r2"),
    "h3": (3, "c2", "state_stolen", "confirmed", "r3"),
    "h4": (4, "c3", "state_stolen", "confirmed", "r4"),
    "h5": (5, "c1", "ncic", "confirmed", "r5"),
    "h6": (6, "c2", "state_stolen", "misread", "r6"),
    "h7": (7, "c3", "custom", "misread", "r7"),
    "h8": (8, "c1", "state_stolen", "wrong_state", "r8"),
    "h9": (9, "c2", "ncic", "dismissed", "r9"),
    "h10": (10, "c1", "state_stolen", "pending", "r9"),  # the same read matched two entries
    "h11": (0, "c1", "state_stolen", "confirmed", "r0"),  # before the period
}


def _hits() -> pl.DataFrame:
    return _frame(
        "hits",
        [
            {
                "hit_id": h,
                "read_id": read,
                "entry_id": f"e-{h}",
                "hotlist_id": f"l-{src}",
                "hotlist_source": src,
                "camera_id": cam,
                "network_id": CAMERA_NETWORK[cam],
                "captured_at": _at(_day(day)),
                "read_plate": "7ABC123",
                "listed_plate": "7ABC123",
                "match_tier": "exact",
                "priority": 1,
                "disposition": disp,
            }
            for h, (day, cam, src, disp, read) in HITS.items()
        ],
    )


# (hit_id, outcome_type, value_usd, is_misread_stop)
OUTCOMES = [
    ("h1", "stop", None, False),
    ("h1", "recovery", 20_000.0, False),
    ("h1", "arrest", None, False),
    ("h1", "case_cleared", None, False),
    ("h3", "stop", None, False),
    ("h3", "recovery", 12_000.0, False),
    ("h4", "stop", None, False),  # stopped, nothing more
    ("h6", "stop", None, True),  # a misread stop
    ("h11", "stop", None, False),  # hit before the period
    ("h11", "recovery", 99_999.0, False),
]


def _outcomes() -> pl.DataFrame:
    return _frame(
        "outcomes",
        [
            {
                "outcome_id": f"o{i}",
                "hit_id": h,
                "outcome_type": t,
                # Outcomes may follow long after the hit; they count with their hit.
                "occurred_at": _at(_day(25)),
                "value_usd": v,
                "is_misread_stop": m,
            }
            for i, (h, t, v, m) in enumerate(OUTCOMES)
        ],
    )


def _audit() -> pl.DataFrame:
    rows = [
        ("a1", "search", _day(2), "allowed"),
        ("a2", "search", _day(5), "refused"),
        ("a3", "vendor_search", _day(9), "allowed"),
        ("a4", "search", _day(0), "refused"),  # outside
        ("a5", "lookup", _day(3), "allowed"),  # not a search
    ]
    return _frame(
        "audit_events",
        [
            {"event_id": e, "event_type": t, "occurred_at": _at(d), "outcome": o}
            for e, t, d, o in rows
        ],
    )


def _networks() -> pl.DataFrame:
    return _frame(
        "networks",
        [
            {"network_id": "city", "is_department_owned": True},
            {"network_id": "hw", "is_department_owned": False},
        ],
    )


def _report(**kw: Any):
    args: dict[str, Any] = {
        "reads_daily": _reads_daily(),
        "unique_vehicles": 1234,
        "hits": _hits(),
        "outcomes": _outcomes(),
        "audit_events": _audit(),
        "networks": _networks(),
        "start": START,
        "end": END,
        "program_budget_usd": 365.0,
        "staff_hours_saved_per_recovery": 6.0,
    }
    return efficacy_report(**(args | kw))


# -- Wilson ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 10, 0.0, 0.27754),
        (5, 10, 0.23659, 0.76341),
        (1, 1000, 0.00017653, 0.0056469),
        (10, 10, 0.72246, 1.0),
    ],
)
def test_wilson_interval_known_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), rel=1e-3, abs=1e-6)


@pytest.mark.parametrize(("k", "n"), [(0, 0), (-1, 5), (6, 5)])
def test_wilson_interval_rejects_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(k, n)


def test_rate_in_percent_and_empty_denominator() -> None:
    r = Rate.of(5, 10)
    assert (r.value_pct, r.numerator, r.denominator) == (50.0, 5, 10)
    assert (r.low_pct, r.high_pct) == pytest.approx((23.659, 76.341), rel=1e-4)
    assert Rate.of(3, 0) == Rate(None, None, None, 3, 0)


# -- The hand-computed case --------------------------------------------------------------


def test_reads_cameras_and_evenness() -> None:
    r = _report()
    assert r.period_days == 10
    assert r.reads == 2000  # c1 1000 + c2 500 + c3 500; the day before the period is out
    assert r.unique_vehicles == 1234
    assert r.cameras == 3
    assert r.camera_days == 25
    assert r.reads_per_camera_per_day == 80.0
    assert r.camera_uptime_pct == pytest.approx(100 * 25 / 30)
    # Gini of (1000, 500, 500) = sum|xi - xj| / (2 n^2 mean) = 2000 / 12000 = 1/6
    assert r.camera_evenness == pytest.approx(5 / 6)
    assert r.private_network_reads_pct == 25.0


def test_hits_and_dispositions() -> None:
    r = _report()
    assert r.hits == 10
    assert r.hit_rate.value_pct == pytest.approx(0.5)
    assert (r.hit_rate.numerator, r.hit_rate.denominator) == (10, 2000)
    assert r.dispositioned_hits == 9  # one pending
    assert r.confirmed_hits == 5
    assert r.confirmed_hit_rate.value_pct == pytest.approx(100 * 5 / 9)
    assert r.misread_hits == 2
    assert r.misread_rate.value_pct == pytest.approx(100 * 2 / 9)
    lo, hi = wilson_interval(2, 9)
    assert (r.misread_rate.low_pct, r.misread_rate.high_pct) == pytest.approx((100 * lo, 100 * hi))
    # 9 distinct reads matched (h9 and h10 share one)
    assert r.reads_never_matched_pct == pytest.approx(100 * (2000 - 9) / 2000)


def test_outcomes_cost_and_hours() -> None:
    r = _report()
    assert (r.stops, r.recoveries, r.arrests, r.cases_cleared) == (4, 2, 1, 1)
    assert r.recovered_value_usd == 32_000.0
    assert r.budget_prorated_usd == pytest.approx(10.0)  # 365 a year, 10 days
    assert r.cost_per_recovery_usd == pytest.approx(5.0)
    assert r.staff_hours_saved == 12.0
    assert "6 investigator hours" in r.staff_hours_assumption
    assert "assum" in r.staff_hours_assumption


def test_funnel_and_harms() -> None:
    r = _report()
    assert r.funnel == (
        ("hits", 10),
        ("confirmed", 5),
        ("stop", 3),  # h1, h3, h4; the misread stop on h6 is not in the funnel
        ("recovery_or_arrest", 2),
        ("case_cleared", 1),
    )
    assert r.misread_stops == 1
    assert r.stops_without_arrest == 3  # h3, h4, h6
    assert (r.searches, r.searches_refused) == (3, 1)


def test_misread_stop_counted_from_disposition_too() -> None:
    outcomes = _outcomes().with_columns(pl.lit(False).alias("is_misread_stop"))
    assert _report(outcomes=outcomes).misread_stops == 1


def test_hits_by_source() -> None:
    got = _report().hits_by_source
    assert got.columns == ["hotlist_source", "hits", "confirmed", "misread"]
    assert got.rows() == [
        ("state_stolen", 7, 4, 1),
        ("ncic", 2, 1, 0),
        ("custom", 1, 0, 1),
    ]


def test_to_dict_is_flat_and_json_ready() -> None:
    r = _report()
    d = r.to_dict()
    json.dumps(d)
    assert d["start"] == "2026-01-01"
    assert d["recoveries"] == 2
    assert d["cases_cleared"] == 1
    assert d["hit_rate_pct"] == pytest.approx(0.5)
    assert d["misread_rate_low_pct"] == r.misread_rate.low_pct
    assert d["confirmed_hit_rate_high_pct"] == r.confirmed_hit_rate.high_pct
    assert d["cost_per_recovery_usd"] == pytest.approx(5.0)
    assert d["funnel_recovery_or_arrest"] == 2
    assert d["source_ncic_confirmed"] == 1
    assert all(not isinstance(v, dict | list | tuple | pl.DataFrame) for v in d.values())
    assert all(k == k.lower() and " " not in k for k in d)


# -- Filters -----------------------------------------------------------------------------


def test_filter_by_period() -> None:
    r = _report(end=_day(3))
    assert r.reads == 300 + 150 + 300
    assert r.hits == 3
    assert r.recoveries == 2  # h1 and h3, counted with their hits
    assert r.cost_per_recovery_usd == pytest.approx(3.0 / 2)
    assert (r.searches, r.searches_refused) == (1, 0)


def test_filter_by_camera() -> None:
    r = _report(camera_ids=["c1"])
    assert (r.reads, r.cameras, r.camera_evenness) == (1000, 1, 1.0)
    assert r.hits == 5  # h1, h2, h5, h8, h10
    assert (r.stops, r.recoveries, r.arrests, r.recovered_value_usd) == (1, 1, 1, 20_000.0)
    assert r.stops_without_arrest == 0
    assert r.private_network_reads_pct == 0.0
    assert r.searches == 3  # searches carry no camera


def test_filter_by_network() -> None:
    r = _report(network_ids=["hw"])
    assert (r.reads, r.private_network_reads_pct) == (500, 100.0)
    assert r.hits == 2
    assert r.misread_rate.value_pct == 50.0
    assert (r.stops, r.recoveries, r.cost_per_recovery_usd) == (1, 0, None)


def test_filter_by_hotlist_source() -> None:
    r = _report(hotlist_sources=["ncic"])
    assert r.reads == 2000  # reads have no source
    assert r.hits == 2
    assert r.hit_rate.value_pct == pytest.approx(0.1)
    assert r.hits_by_source.rows() == [("ncic", 2, 1, 0)]
    assert (r.stops, r.recoveries, r.cost_per_recovery_usd) == (0, 0, None)
    assert r.funnel[-3:] == (("stop", 0), ("recovery_or_arrest", 0), ("case_cleared", 0))


# -- Edge cases --------------------------------------------------------------------------


def test_empty_inputs_with_the_right_schema() -> None:
    r = _report(
        reads_daily=pl.DataFrame(schema=READS_DAILY_SCHEMA),
        unique_vehicles=0,
        hits=empty_frame("hits"),
        outcomes=empty_frame("outcomes"),
        audit_events=empty_frame("audit_events"),
        networks=empty_frame("networks"),
    )
    assert (r.reads, r.cameras, r.hits, r.recoveries, r.searches) == (0, 0, 0, 0, 0)
    assert r.hit_rate.value_pct is None
    assert r.confirmed_hit_rate.value_pct is None
    assert r.cost_per_recovery_usd is None
    assert r.reads_per_camera_per_day is None
    assert r.camera_evenness is None
    assert r.reads_never_matched_pct is None
    assert r.recovered_value_usd == 0.0
    assert r.funnel == tuple(
        (s, 0) for s in ("hits", "confirmed", "stop", "recovery_or_arrest", "case_cleared")
    )
    assert r.hits_by_source["hits"].to_list() == [0, 0, 0]
    json.dumps(r.to_dict())


def test_reads_but_no_hits() -> None:
    r = _report(hits=empty_frame("hits"), outcomes=empty_frame("outcomes"))
    assert r.hit_rate.value_pct == 0.0
    assert r.hit_rate.high_pct is not None and 0 < r.hit_rate.high_pct < 0.5
    assert r.reads_never_matched_pct == 100.0
    assert r.cost_per_recovery_usd is None
    assert r.staff_hours_saved == 0.0


def test_reads_daily_from_the_gate_with_unsigned_counts() -> None:
    daily = _reads_daily().with_columns(pl.col("reads").cast(pl.UInt32))
    assert _report(reads_daily=daily).reads == 2000


def test_bad_period_and_missing_columns_are_errors() -> None:
    with pytest.raises(WorkbenchError, match="before it starts"):
        _report(start=END, end=START)
    with pytest.raises(WorkbenchError, match="disposition"):
        _report(hits=_hits().drop("disposition"))


def test_monthly_trend_by_hand() -> None:
    got = monthly_trend(reads_daily=_reads_daily(), hits=_hits(), outcomes=_outcomes())
    assert got.columns == ["month", "reads", "hits", "confirmed", "recoveries", "arrests"]
    assert got.rows() == [
        (dt.date(2025, 12, 1), 999, 1, 1, 1, 0),
        (dt.date(2026, 1, 1), 2000, 10, 5, 2, 1),
    ]


# -- The synthetic city ------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> dict[str, Any]:
    from alpr_workbench.synth import CityConfig, generate_city, iter_days

    city = generate_city(CityConfig(days=30, scale=0.1))
    batches = list(iter_days(city))
    reads = pl.concat([b.reads for b in batches])
    # Tests may aggregate synthetic reads; library code receives only the aggregate.
    daily = (
        reads.group_by("camera_id", "network_id", pl.col("captured_at").dt.date().alias("day"))
        .len("reads")
        .sort("day", "camera_id")
    )
    return {
        "city": city,
        "reads_daily": daily,
        "unique_vehicles": reads["plate"].n_unique(),
        "hits": pl.concat([b.hits for b in batches]),
        "outcomes": pl.concat([b.outcomes for b in batches]),
    }


def test_synthetic_city_report(synthetic: dict[str, Any]) -> None:
    city = synthetic["city"]
    r = efficacy_report(
        reads_daily=synthetic["reads_daily"],
        unique_vehicles=synthetic["unique_vehicles"],
        hits=synthetic["hits"],
        outcomes=synthetic["outcomes"],
        audit_events=city.audit_events,
        networks=city.networks,
        start=city.config.start_date,
        end=city.config.end_date,
        program_budget_usd=city.config.program_budget_usd,
        staff_hours_saved_per_recovery=6.0,
    )
    assert r.period_days == 30
    assert r.reads == synthetic["reads_daily"]["reads"].sum()
    assert 0.1 <= r.hit_rate.value_pct <= 0.6
    assert 5 <= r.misread_rate.value_pct <= 35
    assert r.recoveries > 0 and r.cost_per_recovery_usd is not None
    assert r.searches > 0
    assert 0 < r.private_network_reads_pct < 100
    assert 0 < r.camera_evenness <= 1
    stages = [n for _, n in r.funnel]
    assert stages == sorted(stages, reverse=True)
    assert r.hits_by_source["hits"].sum() == r.hits
    json.dumps(r.to_dict())
    trend = monthly_trend(
        reads_daily=synthetic["reads_daily"],
        hits=synthetic["hits"],
        outcomes=synthetic["outcomes"],
    )
    assert trend["reads"].sum() == r.reads
    assert trend["recoveries"].sum() == r.recoveries
    assert not math.isnan(r.reads_per_camera_per_day)


def test_synthetic_city_filters_partition_the_hits(synthetic: dict[str, Any]) -> None:
    city = synthetic["city"]
    kw: dict[str, Any] = {
        "reads_daily": synthetic["reads_daily"],
        "unique_vehicles": synthetic["unique_vehicles"],
        "hits": synthetic["hits"],
        "outcomes": synthetic["outcomes"],
        "audit_events": city.audit_events,
        "networks": city.networks,
        "start": city.config.start_date,
        "end": city.config.end_date,
        "program_budget_usd": 150_000.0,
        "staff_hours_saved_per_recovery": 6.0,
    }
    whole = efficacy_report(**kw)
    parts = [efficacy_report(**kw, network_ids=[n]) for n in city.networks["network_id"]]
    assert sum(p.reads for p in parts) == whole.reads
    assert sum(p.hits for p in parts) == whole.hits
    assert sum(p.recoveries for p in parts) == whole.recoveries
