"""The synthetic city: determinism, schema conformance, magnitudes and planted ground truth."""

import datetime as dt
import re

import polars as pl
import pytest

from alpr_workbench.schema import load_table, validate_frame
from alpr_workbench.synth import (
    CIVIL_USE_TERMS,
    DEPARTMENT,
    IMMIGRATION_TERMS,
    JOB_TITLES,
    PATTERNS,
    PROTECTED_ACTIVITY_TERMS,
    REASON_CODES,
    RETENTION_DAYS,
    VAGUE_REASONS,
    CityConfig,
    generate_city,
    generate_day,
    iter_days,
)

TABLES = (
    "networks", "cameras", "users", "cases", "sharing_grants", "hotlists", "hotlist_entries",
    "legal_holds", "audit_events",
)  # fmt: skip


@pytest.fixture(scope="module")
def small():
    city = generate_city(CityConfig(days=30, scale=0.05))
    return city, list(iter_days(city))


@pytest.fixture(scope="module")
def week():
    city = generate_city(CityConfig(days=7, scale=1.0))
    return city, list(iter_days(city))


def _cat(batches, name):
    return pl.concat([getattr(b, name) for b in batches])


def test_same_seed_same_city_other_seed_other_city():
    cfg = CityConfig(days=4, scale=0.02)
    a, b, c = (
        generate_city(cfg),
        generate_city(cfg),
        generate_city(CityConfig(days=4, scale=0.02, seed=8)),
    )
    for name in (*TABLES, "ncic_feed", "planted"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert not a.audit_events.equals(c.audit_events)
    day = cfg.end_date
    da, db, dc = generate_day(a, day), generate_day(b, day), generate_day(c, day)
    for name in ("reads", "hits", "outcomes"):
        assert getattr(da, name).equals(getattr(db, name)), name
    assert not da.reads["plate"].equals(dc.reads["plate"])


def test_every_frame_conforms_to_its_schema(small):
    city, batches = small
    for name in TABLES:
        frame = getattr(city, name)
        assert frame.height > 0, name
        assert validate_frame(name, frame).equals(frame), name
    for name in ("reads", "hits", "outcomes"):
        frame = _cat(batches, name)
        assert frame.height > 0, name
        assert validate_frame(name, frame).equals(frame), name
    assert city.config.start_date == dt.date(2026, 10, 2)
    assert [b.day for b in batches][-1] == city.config.end_date


def test_magnitudes_at_scale_one(week):
    city, batches = week
    reads = _cat(batches, "reads")
    hits = _cat(batches, "hits")
    per_camera_day = reads.height / city.cameras.height / len(batches)
    assert 500 <= per_camera_day <= 1000
    assert 0.001 <= hits.height / reads.height <= 0.006
    misread = (hits["disposition"] == "misread").mean()
    assert 0.05 <= misread <= 0.35
    assert set(hits["disposition"]) >= {"confirmed", "wrong_state", "misread", "stale_entry"}
    assert set(hits["match_tier"]) == {"exact", "confusable"}
    assert reads["plate"].n_unique() < reads.height * 0.8  # vehicles come back
    assert 0.9 < (reads["plate_state"] == "CA").mean() < 0.99


def test_recoveries_per_year_and_outcome_chain():
    city = generate_city(CityConfig(days=365, scale=0.02))
    batches = list(iter_days(city))
    hits, outcomes = _cat(batches, "hits"), _cat(batches, "outcomes")
    rec = outcomes.filter(pl.col("outcome_type") == "recovery")
    assert 60 <= rec.height <= 100
    assert rec["value_usd"].is_between(3_000, 40_000).all()
    assert rec["case_number"].is_in(city.cases["case_number"].implode()).all()
    joined = outcomes.join(hits, on="hit_id")
    assert joined.height == outcomes.height
    assert (joined["occurred_at"] > joined["captured_at"]).all()
    stops = joined.filter(pl.col("outcome_type") == "stop")
    assert stops.filter(pl.col("is_misread_stop"))["disposition"].eq("misread").all()
    assert stops.filter(~pl.col("is_misread_stop"))["disposition"].eq("confirmed").all()
    assert stops.filter(pl.col("is_misread_stop")).height >= 1
    by_type = outcomes.pivot("outcome_type", index="hit_id", values="occurred_at")
    chained = by_type.filter(pl.col("recovery").is_not_null())
    assert (chained["recovery"] > chained["stop"]).all()
    arrests = chained.filter(pl.col("arrest").is_not_null())
    assert 0 < arrests.height < chained.height
    assert (arrests["arrest"] > arrests["stop"]).all()
    assert by_type.filter(pl.col("case_cleared").is_not_null())["arrest"].is_not_null().all()
    # one recovery per stolen vehicle
    assert joined.filter(pl.col("outcome_type") == "recovery")["listed_plate"].is_unique().all()


def test_ids_are_unique_and_references_hold(small):
    _, batches = small
    reads = _cat(batches, "reads")
    assert reads["read_id"].is_unique().all()
    for b in batches:
        assert (b.reads["captured_at"].dt.date() == b.day).all()
        joined = b.hits.join(b.reads, on="read_id", how="left")
        assert joined["plate"].is_not_null().all()
        assert (joined["plate"] == joined["read_plate"]).all()
        assert (joined["captured_at"] == joined["captured_at_right"]).all()
        assert b.outcomes["hit_id"].is_in(b.hits["hit_id"].implode()).all()
    hits = _cat(batches, "hits")
    assert hits["hit_id"].is_unique().all()
    checked = hits.filter(pl.col("disposition") != "pending")
    assert (checked["disposition_at"] > checked["captured_at"]).all()


def test_immigration_records_are_in_the_feed_but_never_alert(small):
    city, batches = small
    feed = city.ncic_feed
    imm = feed.filter(pl.col("category") == "immigration_violator")
    assert imm.height > 0
    assert "immigration_violator" not in city.hotlist_entries["category"].to_list()
    hits = _cat(batches, "hits")
    assert not hits["listed_plate"].is_in(imm["plate"].implode()).any()
    # ...although those vehicles do drive through the city
    reads = _cat(batches, "reads")
    assert reads["plate"].is_in(imm["plate"].implode()).any()


def test_planted_covers_every_pattern_and_points_at_real_records(small):
    city, _ = small
    planted = city.planted
    assert set(PATTERNS) <= set(planted["pattern"])
    for table, group in planted.group_by("table"):
        key = load_table(table[0]).primary_key[0]
        frame = getattr(city, table[0])
        assert group["record_id"].is_in(frame[key].implode()).all(), table
    events = city.audit_events
    share = (
        planted.filter(pl.col("table") == "audit_events")["record_id"].n_unique() / events.height
    )
    assert 0.03 <= share <= 0.12


def _term_hit(text: str) -> bool:
    low = text.lower()
    for term in (*IMMIGRATION_TERMS, *PROTECTED_ACTIVITY_TERMS, *CIVIL_USE_TERMS):
        if re.search(rf"\b{re.escape(term)}\b", low) if len(term) <= 3 else term in low:
            return True
    return False


def test_legitimate_searches_match_no_pattern(small):
    city, _ = small
    end = dt.datetime.combine(city.config.end_date, dt.time(23, 59), dt.UTC)
    bad_ids = city.planted.filter(pl.col("table") == "audit_events")["record_id"].implode()
    ok = (
        city.audit_events.filter(~pl.col("event_id").is_in(bad_ids))
        .join(city.users, on="user_id", how="left", suffix="_user")
        .join(city.cases, on="case_number", how="left")
    )
    assert ok.height > 100
    bad_users = city.planted.filter(pl.col("table") == "users")["record_id"].to_list()
    pattern = re.compile(r"^BPD-[0-9]{4}-[0-9]{6}$")
    for r in ok.iter_rows(named=True):
        assert r["user_id"] not in bad_users
        assert r["organization"] == DEPARTMENT and r["organization_type"] == "ca_local_agency"
        assert r["is_active"] and r["trained_at"] is not None and r["separated_at"] is None
        assert r["job_title"] in JOB_TITLES
        assert r["last_active_at"] > end - dt.timedelta(days=90)
        assert r["reason_code"] in REASON_CODES and r["reason_code"] != "other"
        assert r["reason_text"] and r["reason_text"] not in VAGUE_REASONS
        assert not _term_hit(r["reason_text"]), r["reason_text"]
        assert pattern.match(r["case_number"]) and r["status"] is not None
        assert r["opened_at"] < r["occurred_at"]
        assert r["closed_at"] is None or r["closed_at"] > r["occurred_at"]
        assert r["window_to"] <= r["occurred_at"]
        assert r["window_from"] >= r["occurred_at"] - dt.timedelta(days=RETENTION_DAYS)
        assert 1 <= r["networks_searched"] <= 4
        assert 7 <= r["occurred_at"].astimezone(_LA).hour <= 22
    assert ok["plate_queried"].is_unique().all()
    # every planted improper search really shows its pattern
    for r in city.audit_events.join(
        city.planted, left_on="event_id", right_on="record_id"
    ).iter_rows(named=True):
        text = r["reason_text"] or ""
        if r["pattern"] in ("immigration_term", "protected_activity", "civil_use"):
            assert _term_hit(text)
        if r["pattern"] == "blank_reason":
            assert not text and r["reason_code"] is None
        if r["pattern"] == "lookback_past_retention":
            assert r["window_from"] < r["occurred_at"] - dt.timedelta(days=RETENTION_DAYS)
        if r["pattern"] == "off_hours_burst":
            assert r["occurred_at"].astimezone(_LA).hour < 5


def test_expired_entry_keeps_alerting_and_no_other_does(week):
    city, batches = week
    hits = _cat(batches, "hits").join(
        city.hotlist_entries.select("entry_id", "expires_at"), on="entry_id"
    )
    late = hits.filter(pl.col("captured_at") > pl.col("expires_at"))
    expected = city.planted.filter(pl.col("pattern") == "entry_past_expiry")["record_id"]
    assert late.height > 0
    assert set(late["entry_id"]) == set(expected)


def test_daily_rhythm(week):
    _, batches = week
    hour = (
        _cat(batches, "reads")["captured_at"].dt.convert_time_zone("America/Los_Angeles").dt.hour()
    )
    counts = hour.value_counts().sort("captured_at")
    by_hour = dict(zip(counts["captured_at"], counts["count"], strict=True))
    assert by_hour[8] > 3 * by_hour[3]
    assert by_hour[17] > by_hour[12]


def test_weekends_are_quieter(week):
    _, batches = week
    n = {b.day.weekday(): b.reads.height for b in batches}
    assert n[6] < n[2]


_LA = __import__("zoneinfo").ZoneInfo("America/Los_Angeles")
