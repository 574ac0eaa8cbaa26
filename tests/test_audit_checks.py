"""The annual audit's checks: exactly the planted improper activity, check by check."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from alpr_workbench.governance import is_vague_reason, read_vendor_audit
from alpr_workbench.governance.sharing import grants_digest
from alpr_workbench.policy import load_policy
from alpr_workbench.reports.audit_checks import (
    AuditInputs,
    CheckResult,
    flag_search_patterns,
    run_checks,
)
from alpr_workbench.schema import empty_frame
from alpr_workbench.synth import PATTERNS, CityConfig, generate_city, generate_day

POLICY = load_policy()
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flock_audit_samples"
OKALOOSA = SAMPLES / "11_1_2025-12_8_2025-Okaloosa_County_FL_SO-Audit_EXTRACTED.csv"
EUGENE = SAMPLES / "EPDSearchAuditLogs.csv"

#: The check that must find each planted pattern.
CHECK_OF = {
    "blank_reason": "A3",
    "vague_reason": "A3",
    "other_without_text": "A3",
    "immigration_term": "P1",
    "ambiguous_ice": "P1",
    "protected_activity": "P1",
    "civil_use": "P1",
    "federal_searcher": "S3",
    "out_of_state_searcher": "S3",
    "missing_case_number": "A2",
    "malformed_case_number": "A2",
    "closed_case": "A2",
    "oversized_scope": "P2",
    "lookback_past_retention": "R3",
    "repeat_tracking": "P2",
    "off_hours_burst": "P2",
    "improper_grant_federal": "S1",
    "improper_grant_out_of_state": "S1",
    "improper_grant_private": "S1",
    "grant_without_approval": "S5",
    "grant_review_overdue": "S5",
    "shared_account": "U3",
    "activity_after_separation": "U2",
    "idle_account": "U2",
    "untrained_user": "U1",
    "job_title_not_on_list": "U3",
    "hotlist_without_case": "R4",
    "hotlist_joke_name": "R4",
    "entry_past_expiry": "R4",
    "hold_review_overdue": "R2",
}
#: Checks whose findings on the synthetic city are not planted on purpose: A4 reports
#: holds and grants the city changed without an audit record (the generator logs searches
#: only), X1 the city's simulated misread stops (an efficacy harm, not a planted misuse).
UNPLANTED_OK = {"A4", "X1"}


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@pytest.fixture(scope="module")
def city_run() -> tuple[object, AuditInputs, dict[str, CheckResult]]:
    config = CityConfig(days=60, scale=0.02)
    city = generate_city(config)
    # The expired custom entry keeps alerting in the last days: their hits show it.
    batches = [generate_day(city, config.end_date - dt.timedelta(days=i)) for i in range(7)]
    inputs = AuditInputs(
        year=config.end_date.year,
        audit_events=city.audit_events,
        users=city.users,
        cases=city.cases,
        sharing_grants=city.sharing_grants,
        hotlists=city.hotlists,
        hotlist_entries=city.hotlist_entries,
        legal_holds=city.legal_holds,
        hits=pl.concat([b.hits for b in batches]),
        chain_ok=True,
        chain_problem=None,
        retention_days=30,
        days_stored=[],
        as_of=_utc(config.end_date + dt.timedelta(days=1)),
        outcomes=pl.concat([b.outcomes for b in batches]),
    )
    results = {r.check_id: r for r in run_checks(inputs, policy=POLICY)}
    return city, inputs, results


def test_the_test_city_plants_every_pattern(city_run):
    city, _, _ = city_run
    assert set(city.planted["pattern"]) == set(PATTERNS)
    assert set(CHECK_OF) == set(PATTERNS)


def test_every_check_runs_once(city_run):
    _, _, results = city_run
    expected = "A1 A2 A3 A4 A5 R1 R2 R3 R4 S1 S2 S3 S4 S5 U1 U2 U3 X1 P1 P2".split()
    assert list(results) == expected
    for r in results.values():
        assert r.offending.columns[:4] == ["table", "record_id", "pattern", "detail"]
        assert r.explanation and r.title


@pytest.mark.parametrize("pattern", PATTERNS)
def test_check_finds_exactly_what_was_planted(city_run, pattern):
    city, _, results = city_run
    result = results[CHECK_OF[pattern]]
    planted = city.planted.filter(pl.col("pattern") == pattern)
    for table in planted["table"].unique().to_list():
        want = set(planted.filter(pl.col("table") == table)["record_id"])
        got = set(
            result.offending.filter((pl.col("pattern") == pattern) & (pl.col("table") == table))[
                "record_id"
            ]
        )
        assert got == want, (table, "missed", want - got, "false", got - want)
    assert result.passed is False


def test_no_finding_on_the_legitimate_majority(city_run):
    city, _, results = city_run
    planted = set(zip(city.planted["table"], city.planted["record_id"], strict=True))
    for check_id, result in results.items():
        if check_id in UNPLANTED_OK:
            continue
        found = set(zip(result.offending["table"], result.offending["record_id"], strict=True))
        assert found <= planted, (check_id, found - planted)


def test_a1_reports_the_blank_reasons_as_missing_purpose(city_run):
    city, inputs, results = city_run
    a1 = results["A1"]
    blank = set(city.planted.filter(pl.col("pattern") == "blank_reason")["record_id"])
    assert set(a1.offending["record_id"]) == blank
    assert a1.counts["missing_purpose_pct"] == round(
        100 * len(blank) / inputs.audit_events.height, 2
    )
    assert a1.counts["missing_user_pct"] == 0.0


def test_checks_that_pass_on_the_city(city_run):
    _, _, results = city_run
    assert results["A5"].passed is True  # chain said ok, a record every day
    assert results["S4"].passed is True  # immigration rows never reach the entries
    assert results["R1"].passed is None  # no stored days given
    assert results["S2"].passed is None  # no snapshots, no audited changes
    assert results["X1"].counts["misread_rate_pct"] >= 0


def test_flags_are_one_row_per_event_and_pattern(city_run):
    _, inputs, _ = city_run
    flags = flag_search_patterns(
        inputs.audit_events, policy=POLICY, retention_days=30, cases=inputs.cases
    )
    assert flags.select("event_id", "pattern").is_duplicated().sum() == 0
    assert set(flags["event_id"]) <= set(inputs.audit_events["event_id"])


# -- hand-built cases --------------------------------------------------------------------------
T0 = dt.datetime(2026, 3, 2, 18, tzinfo=dt.UTC)


def _events(rows: list[dict]) -> pl.DataFrame:
    base = {
        "event_type": "search",
        "outcome": "allowed",
        "organization": POLICY.agency_name,
        "organization_type": "ca_local_agency",
        "reason_code": "burglary",
        "reason_text": "Burglary on Olive Ave; suspect car on video",
        "case_number": "BPD-2026-000900",
        "networks_searched": 1,
        "user_id": "dkim",
    }
    full = []
    for i, row in enumerate(rows):
        r = base | {"event_id": f"e{i:03d}", "plate_queried": f"7ABC{i:03d}"} | row
        r.setdefault("window_to", r["occurred_at"])
        r.setdefault("window_from", r["occurred_at"] - dt.timedelta(days=3))
        full.append(r)
    frame = pl.DataFrame(full, infer_schema_length=None)
    return pl.concat([empty_frame("audit_events"), frame], how="diagonal_relaxed").select(
        empty_frame("audit_events").columns
    )


def _inputs(**kw) -> AuditInputs:
    base = {
        "year": 2026,
        "audit_events": _events([{"occurred_at": T0}]),
        "users": empty_frame("users"),
        "cases": empty_frame("cases"),
        "sharing_grants": empty_frame("sharing_grants"),
        "hotlists": empty_frame("hotlists"),
        "hotlist_entries": empty_frame("hotlist_entries"),
        "legal_holds": empty_frame("legal_holds"),
        "hits": empty_frame("hits"),
        "chain_ok": True,
        "chain_problem": None,
        "retention_days": 30,
        "days_stored": [],
        "as_of": T0 + dt.timedelta(hours=1),
    }
    return AuditInputs(**(base | kw))


def _check(inputs: AuditInputs, check_id: str) -> CheckResult:
    return next(r for r in run_checks(inputs, policy=POLICY) if r.check_id == check_id)


def _grants(recipient: str = "Glendale Police Department") -> pl.DataFrame:
    row = {
        "grant_id": "grant-001",
        "network_id": "bpd-city",
        "recipient_org": recipient,
        "recipient_type": "ca_local_agency",
        "scope": "search",
        "approved_by": "captain",
        "basis": "MOU",
        "granted_at": T0 - dt.timedelta(days=400),
        "review_by_date": dt.date(2027, 1, 1),
    }
    return pl.concat([empty_frame("sharing_grants"), pl.DataFrame([row])], how="diagonal_relaxed")


def _sharing_event(i: int, kind: str, digest: str, day: int) -> dict:
    return {
        "event_id": f"s{i}",
        "seq": i,
        "event_type": kind,
        "occurred_at": T0 - dt.timedelta(days=day),
        "query_json": json.dumps({"grants_digest": digest}),
        "user_id": "admin",
    }


def test_s2_flags_a_snapshot_that_changed_without_an_audited_change():
    grants = _grants()
    now = grants_digest(grants)
    history = _events(
        [
            _sharing_event(1, "sharing_change", "aaa", 10),
            _sharing_event(2, "sharing_snapshot", "aaa", 9),
            _sharing_event(3, "sharing_snapshot", "bbb", 8),  # silent change
            _sharing_event(4, "sharing_change", now, 7),
            _sharing_event(5, "sharing_snapshot", now, 6),  # audited change: fine
        ]
    )
    s2 = _check(_inputs(sharing_grants=grants, sharing_history=history), "S2")
    assert s2.passed is False
    assert s2.offending["record_id"].to_list() == ["s3"]
    assert s2.counts["snapshots"] == 3


def test_s2_flags_a_table_that_drifted_after_the_last_audited_state():
    grants = _grants()
    history = _events([_sharing_event(1, "sharing_change", grants_digest(grants), 3)])
    assert _check(_inputs(sharing_grants=grants, sharing_history=history), "S2").passed
    edited = grants.with_columns(pl.lit("Peregrine Data Brokers Inc.").alias("recipient_org"))
    s2 = _check(_inputs(sharing_grants=edited, sharing_history=history), "S2")
    assert s2.passed is False
    assert s2.offending["record_id"].to_list() == ["current"]


def test_a5_fails_on_a_broken_chain_and_on_a_silent_stretch():
    broken = _check(_inputs(chain_ok=False, chain_problem="record 7: bad HMAC"), "A5")
    assert broken.passed is False
    assert broken.offending.row(0, named=True)["pattern"] == "chain_broken"
    assert "bad HMAC" in broken.explanation
    events = _events([{"occurred_at": T0 - dt.timedelta(days=20)}, {"occurred_at": T0}])
    gap = _check(_inputs(audit_events=events), "A5")
    assert gap.passed is False
    assert gap.offending["pattern"].to_list() == ["audit_gap"]
    assert gap.offending["detail"][0].startswith("19 days")
    assert gap.counts["gaps"] == 1
    assert _check(_inputs(), "A5").passed is True


def test_r1_flags_an_old_day_outside_a_hold_and_an_orphan_hold_partition():
    as_of = T0
    days = [as_of.date() - dt.timedelta(days=d) for d in (31, 30, 1)]
    holds = pl.concat(
        [
            empty_frame("legal_holds"),
            pl.DataFrame([{"hold_id": "hold-001", "released_at": T0 - dt.timedelta(days=1)}]),
        ],
        how="diagonal_relaxed",
    )
    r1 = _check(
        _inputs(days_stored=days, as_of=as_of, legal_holds=holds, hold_partitions=("hold-001",)),
        "R1",
    )
    assert r1.passed is False
    assert r1.offending["record_id"].to_list() == [days[0].isoformat(), "hold-001"]
    assert _check(_inputs(days_stored=days[1:], as_of=as_of), "R1").passed is True


def test_off_hours_burst_needs_observed_inactivity():
    night = dt.datetime(2026, 3, 20, 9, 30, tzinfo=dt.UTC)  # 02:30 in Los Angeles
    burst = [
        {"occurred_at": night + dt.timedelta(minutes=10 * k), "user_id": "late"} for k in range(3)
    ]
    early = {"occurred_at": night - dt.timedelta(days=20), "user_id": "someone"}
    flags = flag_search_patterns(
        _events([early, *burst]), policy=POLICY, retention_days=30, cases=None
    )
    assert (flags["pattern"] == "off_hours_burst").sum() == 3
    # The same burst two days after the log starts: the silence was not observed.
    early["occurred_at"] = night - dt.timedelta(days=2)
    flags = flag_search_patterns(
        _events([early, *burst]), policy=POLICY, retention_days=30, cases=None
    )
    assert (flags["pattern"] == "off_hours_burst").sum() == 0
    # Two searches are no burst.
    flags = flag_search_patterns(
        _events([early | {"occurred_at": night - dt.timedelta(days=20)}, *burst[:2]]),
        policy=POLICY,
        retention_days=30,
        cases=None,
    )
    assert (flags["pattern"] == "off_hours_burst").sum() == 0


def test_repeat_tracking_counts_distinct_days():
    rows = [
        {"occurred_at": T0 + dt.timedelta(days=d), "plate_queried": "8XYZ123"} for d in (0, 3, 6)
    ]
    same_day = [{"occurred_at": T0 + dt.timedelta(hours=h), "plate_queried": "8XYZ999"}
                for h in range(5)]  # fmt: skip
    flags = flag_search_patterns(
        _events(rows + same_day), policy=POLICY, retention_days=30, cases=None
    )
    assert (flags["pattern"] == "repeat_tracking").sum() == 0
    rows.append({"occurred_at": T0 + dt.timedelta(days=9), "plate_queried": "8xyz-123"})
    flags = flag_search_patterns(_events(rows), policy=POLICY, retention_days=30, cases=None)
    assert (flags["pattern"] == "repeat_tracking").sum() == 4


def test_refused_searches_are_counted_not_flagged():
    events = _events(
        [
            {"occurred_at": T0, "reason_text": "Assist ICE ERO", "outcome": "refused"},
            {"occurred_at": T0, "reason_text": "Deportation order subject"},
        ]
    )
    p1 = _check(_inputs(audit_events=events), "P1")
    assert p1.offending["record_id"].to_list() == ["e001"]
    assert p1.counts["refused_searches"] == 1


def test_home_organization_is_never_an_outside_searcher():
    events = _events(
        [
            {"occurred_at": T0, "event_type": "vendor_search", "organization": "Eugene OR PD",
             "organization_type": "out_of_state"},
        ]
    )  # fmt: skip
    ours = flag_search_patterns(events, policy=POLICY, retention_days=30, cases=None)
    assert ours["pattern"].to_list() == ["out_of_state_searcher"]
    theirs = flag_search_patterns(
        events, policy=POLICY, retention_days=30, cases=None, home_organization="Eugene OR PD"
    )
    assert theirs.is_empty()


# -- real vendor logs --------------------------------------------------------------------------
def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def _counts(flags: pl.DataFrame) -> dict[str, int]:
    return dict(flags.group_by("pattern").len().iter_rows())


@pytest.mark.skipif(not OKALOOSA.is_file(), reason="Flock audit samples not present")
def test_okaloosa_flags_match_a_count_by_hand():
    imported = read_vendor_audit(OKALOOSA)
    flags = flag_search_patterns(
        imported.events,
        policy=POLICY,
        retention_days=30,
        cases=None,
        timezone="America/Chicago",
    )
    counts = _counts(flags)
    rows = [r for r in _rows(OKALOOSA) if r["Moderation"].strip().lower() != "block"]

    def when(text: str) -> dt.datetime:
        return dt.datetime.strptime(text.replace(" UTC", ""), "%m/%d/%Y, %I:%M:%S %p")

    reasons = [r["Reason"].strip() for r in rows]
    assert counts["blank_reason"] == sum(not t for t in reasons) == 9
    vague = sum(bool(t) and is_vague_reason(t, policy=POLICY) for t in reasons)
    assert counts["vague_reason"] == vague
    bare_inv = sum(t.lower().rstrip(".+") in {"investigation", "inv", "investigative"}
                   for t in reasons)  # fmt: skip
    assert bare_inv <= vague
    assert counts["oversized_scope"] == sum(
        int(r["Total_Networks_Searched"]) > POLICY.max_networks_per_search for r in rows
    )
    lookback = sum(
        when(r["Search_Time"]) - when(r["Time_Frame_Start"]) > dt.timedelta(days=30) for r in rows
    )
    assert counts["lookback_past_retention"] == lookback == 463
    # A Florida sheriff's searches are out-of-state searches under our policy...
    assert counts["out_of_state_searcher"] == len(rows)
    # ...but not when the export is audited as that agency's own log.
    own = flag_search_patterns(
        imported.events, policy=POLICY, retention_days=30, cases=None,
        home_organization="Okaloosa County FL SO", timezone="America/Chicago",
    )  # fmt: skip
    assert "out_of_state_searcher" not in _counts(own)
    # No user, plate or case column: no per-user, plate or case-number flags.
    for pattern in ("missing_case_number", "repeat_tracking", "off_hours_burst", "per_user_volume"):
        assert pattern not in counts


@pytest.mark.skipif(not EUGENE.is_file(), reason="Flock audit samples not present")
def test_eugene_flags_match_a_count_by_hand():
    imported = read_vendor_audit(EUGENE, organization="Eugene OR PD")
    flags = flag_search_patterns(
        imported.events,
        policy=POLICY,
        retention_days=30,
        cases=None,
        home_organization="Eugene OR PD",
        timezone="America/Los_Angeles",
    )
    counts = _counts(flags)
    rows = _rows(EUGENE)
    reasons = [r["reason"].strip() for r in rows]
    assert counts["blank_reason"] == sum(not t for t in reasons) == 5
    assert counts["vague_reason"] == sum(bool(t) and is_vague_reason(t, policy=POLICY)
                                         for t in reasons)  # fmt: skip
    assert sum(t.lower() == "daytime search for best result" for t in reasons) == 182
    # Per-user volume: every search of a user-day with at least 10 searches (the median
    # user-day is 1 search).
    per_day: dict[tuple[str, dt.date], int] = {}
    for r in rows:
        t = dt.datetime.fromisoformat(r["searchDate"]).replace(tzinfo=dt.UTC)
        key = (r["userId"], t.astimezone(ZoneInfo("America/Los_Angeles")).date())
        per_day[key] = per_day.get(key, 0) + 1
    heavy = flags.filter(pl.col("pattern") == "per_user_volume")
    assert heavy.height == counts["per_user_volume"] > 0
    assert heavy.height == sum(n for n in per_day.values() if n >= 10)
    # Our department's policy: no case column, no window, no networks -> not judged.
    for pattern in ("missing_case_number", "lookback_past_retention", "oversized_scope",
                    "out_of_state_searcher", "immigration_term"):  # fmt: skip
        assert pattern not in counts
    # No burst after at least 14 quiet days in this log (night shifts search nightly).
    assert "off_hours_burst" not in counts
    loose = flag_search_patterns(
        imported.events, policy=POLICY, retention_days=30, cases=None,
        home_organization="Eugene OR PD", timezone="America/Los_Angeles", burst_idle_days=0,
    )  # fmt: skip
    assert _counts(loose)["off_hours_burst"] > 0
