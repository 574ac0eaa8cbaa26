"""Hotlists, hits and outcomes: import, custom lists, matching, dispositions, outcomes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from alpr_workbench.hotlist import (
    HotlistFileError,
    HotlistRefusedError,
    active_entries,
    add_entry,
    change_entry,
    create_custom_hotlist,
    delete_entry,
    load_hotlist,
    match_reads,
    read_hotlist_csv,
    record_disposition,
    record_hits,
    record_outcome,
)
from alpr_workbench.policy import load_policy
from alpr_workbench.schema import validate_frame
from alpr_workbench.store import Store
from alpr_workbench.synth import CityConfig, generate_city, generate_day

T0 = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
POLICY = load_policy()
CASE = "BPD-2026-000123"


class Audit(list[dict[str, Any]]):
    """An ``audit_append`` that keeps the events in memory."""

    def __call__(self, event: dict[str, Any]) -> None:
        self.append(event)

    def details(self, i: int = -1) -> dict[str, Any]:
        return json.loads(self[i]["query_json"])


@pytest.fixture
def audit() -> Audit:
    return Audit()


def _csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


SVS = "\n".join(
    [
        "License Plate , STATE,Plate Type,VIN,Make,Model,Colour,Date of Theft,ORI,OCA,"
        "Expiration Date,Value",
        "7abc-123,ca,PC,1HGCM82633A004352,Honda,Civic,silver,2026-09-30,Glendale PD,G26-100200,"
        '2026-12-31,"$12,500"',
        "8XYZ 999,CA,,,Toyota,Camry,white,09/15/2026,LAPD,L26-555,2027-01-15T08:00:00Z,",
    ]
)


def _reads(rows: list[tuple[str, str, dt.datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "read_id": [r[0] for r in rows],
            "camera_id": "cam-01",
            "network_id": "bpd-city",
            "captured_at": pl.Series([r[2] for r in rows], dtype=pl.Datetime("us", "UTC")),
            "plate": [r[1] for r in rows],
        }
    )


def _feed(entries: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A hand-built state list with the given entries (defaults filled in)."""
    hotlists = validate_frame(
        "hotlists",
        pl.DataFrame(
            {"hotlist_id": ["ca-svs"], "name": ["SVS"], "source": ["state_stolen"],
             "created_at": [T0 - dt.timedelta(days=30)]}
        ),
    )  # fmt: skip
    base = {
        "hotlist_id": "ca-svs",
        "category": "stolen_vehicle",
        "priority": 2,
        "added_by": "feed:ca-svs",
        "added_at": T0 - dt.timedelta(days=1),
        "expires_at": T0 + dt.timedelta(days=30),
    }
    frame = pl.DataFrame(
        [base | e for e in entries],
        schema_overrides={"priority": pl.Int32, "expires_at": pl.Datetime("us", "UTC")},
    )
    return validate_frame("hotlist_entries", frame), hotlists


# --- import -------------------------------------------------------------------------------


def test_import_recognises_header_variants(tmp_path: Path) -> None:
    imp = read_hotlist_csv(_csv(tmp_path / "svs.csv", SVS), source="state_stolen", now=T0)
    e = imp.entries.sort("plate")
    assert imp.rows_read == 2 and imp.dropped == {}
    assert e["plate"].to_list() == ["7ABC123", "8XYZ999"]
    assert e["plate_state"].to_list() == ["CA", "CA"]
    assert e["vehicle_color"][0] == "silver" and e["originating_case_number"][0] == "G26-100200"
    assert e["theft_date"].to_list() == [dt.date(2026, 9, 30), dt.date(2026, 9, 15)]
    # A bare date runs through the end of that day.
    assert e["expires_at"][0] == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert e["expires_at"][1] == dt.datetime(2027, 1, 15, 8, tzinfo=dt.UTC)
    assert e["value_usd"].to_list() == [12_500.0, None]
    assert set(e["category"]) == {"stolen_vehicle"} and set(e["hotlist_id"]) == {"ca-svs"}
    assert imp.hotlist["source"][0] == "state_stolen"


@pytest.mark.parametrize("header", ["License Plate", "LIC", "Plate Number", "plate_no", " Tag# "])
def test_plate_header_synonyms(tmp_path: Path, header: str) -> None:
    path = _csv(tmp_path / "l.csv", f"{header},Lic State\n7ABC123,CA\n")
    imp = read_hotlist_csv(path, source="state_stolen", now=T0)
    assert imp.entries.select("plate", "plate_state").row(0) == ("7ABC123", "CA")


def test_entry_ids_are_stable_across_reloads(tmp_path: Path) -> None:
    path = _csv(tmp_path / "svs.csv", SVS)
    a = read_hotlist_csv(path, source="state_stolen", now=T0)
    b = read_hotlist_csv(path, source="state_stolen", now=T0 + dt.timedelta(days=1))
    assert a.entries["entry_id"].to_list() == b.entries["entry_id"].to_list()


def test_immigration_categories_dropped_and_counted(
    tmp_path: Path, store: Store, audit: Audit
) -> None:
    path = _csv(
        tmp_path / "ncic.csv",
        """
LIC,LIS,Category,OCA
7ABC123,CA,Stolen Vehicle,A1
5IMM001,AZ,Immigration Violator,ICE-1
5IMM002,AZ,IMMIGRATION_VIOLATOR,ICE-2
5IMM003,TX,immigration violator - civil,ICE-3
6WAR001,NV,Felony Warrant,B2
""",
    )
    imp = read_hotlist_csv(path, source="ncic", now=T0)
    assert imp.rows_read == 5
    assert sum(imp.dropped.values()) == 3
    assert sorted(imp.entries["plate"]) == ["6WAR001", "7ABC123"]
    assert imp.entries.filter(pl.col("category") == "felony_warrant")["priority"][0] == 1
    assert load_hotlist(store, audit, imp, actor="admin-1", now=T0).entries_loaded == 2
    event = audit[-1]
    assert event["event_type"] == "hotlist_add" and event["outcome"] == "allowed"
    assert audit.details()["dropped_never_alert_total"] == 3
    assert audit.details()["dropped_never_alert"] == {
        "immigration_violator": 2,
        "immigration_violator_civil": 1,
    }
    stored = store.tables.read("hotlist_entries")
    assert not stored["category"].str.contains("immigra").any()


def test_city_ncic_feed_imports_without_immigration_rows(
    tmp_path: Path, store: Store, audit: Audit
) -> None:
    city = generate_city(CityConfig(days=1, scale=0.02))
    feed = city.ncic_feed
    path = tmp_path / "ncic.csv"
    feed.drop("entered_at").write_csv(path)
    imp = read_hotlist_csv(path, source="ncic", now=T0)
    n_imm = feed.filter(pl.col("category") == "immigration_violator").height
    assert n_imm > 0 and imp.dropped == {"immigration_violator": n_imm}
    assert imp.entries.height == feed.height - n_imm
    load_hotlist(store, audit, imp, actor="admin-1", now=T0)
    assert audit.details()["dropped_never_alert_total"] == n_imm


def test_bad_file_names_lines_and_fields_and_changes_nothing(
    tmp_path: Path, store: Store, audit: Audit
) -> None:
    good = read_hotlist_csv(_csv(tmp_path / "svs.csv", SVS), source="state_stolen", now=T0)
    load_hotlist(store, audit, good, actor="admin-1", now=T0)
    before = store.tables.read("hotlist_entries")
    bad = _csv(
        tmp_path / "bad.csv",
        """
Plate,State,Date of Theft
7ABC123,CA,2026-09-30
7ABC124,CA,2026-13-45
7AB!C@1,CA,2026-09-01
,CA,2026-09-02
""",
    )
    with pytest.raises(HotlistFileError) as info:
        read_hotlist_csv(bad, source="state_stolen", now=T0)
    text = str(info.value)
    assert "line 3, field 'theft_date'" in text and "'2026-13-45'" in text
    assert "line 4, field 'plate'" in text and "7AB!C@1" in text
    assert "line 5, field 'plate': plate is missing" in text
    assert [(line, field) for line, field, _ in info.value.problems] == [
        (3, "theft_date"),
        (4, "plate"),
        (5, "plate"),
    ]
    assert store.tables.read("hotlist_entries").equals(before)


def test_many_bad_rows_are_all_kept_and_the_message_shows_the_first(tmp_path: Path) -> None:
    rows = "\n".join(f"TOOLONGPLATE{i},CA" for i in range(30))
    with pytest.raises(HotlistFileError) as info:
        read_hotlist_csv(_csv(tmp_path / "b.csv", f"plate,state\n{rows}"), source="state_stolen")
    assert len(info.value.problems) == 30
    assert "line 2," in str(info.value) and "and 10 more" in str(info.value)


def test_file_without_plate_column_or_ncic_without_category(tmp_path: Path) -> None:
    with pytest.raises(HotlistFileError, match="line 1, field 'plate'"):
        read_hotlist_csv(_csv(tmp_path / "a.csv", "vin,state\nX,CA"), source="state_stolen")
    with pytest.raises(HotlistFileError, match="category"):
        read_hotlist_csv(_csv(tmp_path / "b.csv", "plate,state\n7ABC123,CA"), source="ncic")


def test_reload_replaces_only_that_list(tmp_path: Path, store: Store, audit: Audit) -> None:
    svs = read_hotlist_csv(_csv(tmp_path / "svs.csv", SVS), source="state_stolen", now=T0)
    ncic = read_hotlist_csv(
        _csv(tmp_path / "n.csv", "plate,category\n9NCI001,stolen_vehicle"), source="ncic", now=T0
    )
    load_hotlist(store, audit, svs, actor="admin-1", now=T0)
    load_hotlist(store, audit, ncic, actor="admin-1", now=T0)
    smaller = read_hotlist_csv(
        _csv(tmp_path / "svs2.csv", "plate\n1NEW001"), source="state_stolen", now=T0
    )
    assert load_hotlist(store, audit, smaller, actor="admin-1", now=T0).entries_loaded == 1
    stored = store.tables.read("hotlist_entries").sort("plate")
    assert stored.select("hotlist_id", "plate").rows() == [
        ("ca-svs", "1NEW001"),
        ("ncic-extract", "9NCI001"),
    ]
    assert [e["event_type"] for e in audit] == ["hotlist_add", "hotlist_add", "hotlist_change"]
    assert audit.details()["entries_replaced"] == 2


# --- custom lists ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"actor": ""}, "owner"),
        ({"case_number": ""}, "case number"),
        ({"case_number": "2026-123"}, "format"),
        ({"reason": "  "}, "reason"),
        ({"reason": "Investigation."}, "says nothing"),
        ({"expires_at": None}, "expiry"),
        ({"expires_at": T0 - dt.timedelta(hours=1)}, "not in the future"),
        ({"expires_at": T0 + dt.timedelta(days=400)}, "days ahead"),
        ({"expires_at": dt.datetime(2026, 11, 1)}, "time-zone"),
    ],
)
def test_custom_list_refusals_are_audited(
    store: Store, audit: Audit, kwargs: dict[str, Any], why: str
) -> None:
    args: dict[str, Any] = {
        "actor": "det-1",
        "name": "Robbery series suspect vehicles",
        "case_number": CASE,
        "reason": "Vehicles seen at three robberies on Olive Ave",
        "expires_at": T0 + dt.timedelta(days=60),
        "now": T0,
    }
    with pytest.raises(HotlistRefusedError, match=why):
        create_custom_hotlist(store, audit, **(args | kwargs))
    assert audit[-1]["outcome"] == "refused" and why in audit[-1]["refusal_reason"]
    assert audit[-1]["event_type"] == "hotlist_add"
    assert store.tables.read("hotlists").height == 0


def _custom(store: Store, audit: Audit, days: int = 60) -> str:
    return create_custom_hotlist(
        store,
        audit,
        actor="det-1",
        name="Robbery series suspect vehicles",
        case_number=CASE,
        reason="Vehicles seen at three robberies on Olive Ave",
        expires_at=T0 + dt.timedelta(days=days),
        now=T0,
    )


def test_custom_entries_add_change_delete_are_audited(store: Store, audit: Audit) -> None:
    hl = _custom(store, audit)
    row = store.tables.read("hotlists").row(0, named=True)
    assert row["owner_user_id"] == "det-1" and row["case_number"] == CASE
    assert audit[-1]["event_type"] == "hotlist_add" and audit[-1]["case_number"] == CASE

    eid = add_entry(store, audit, actor="det-1", hotlist_id=hl, plate="7 abc-123", now=T0)
    entry = store.tables.read("hotlist_entries").row(0, named=True)
    assert entry["plate"] == "7ABC123" and entry["originating_case_number"] == CASE
    assert entry["expires_at"] == T0 + dt.timedelta(days=60) and entry["added_by"] == "det-1"
    assert audit[-1]["event_type"] == "hotlist_add" and audit.details()["entry_id"] == eid

    for kwargs, why in (
        ({"category": "Immigration Violator"}, "never alert"),
        ({"plate": "TOO-LONG-PLATE"}, "not a plate"),
        ({"expires_at": T0 + dt.timedelta(days=90)}, "not after the list"),
        ({"hotlist_id": "nope"}, "no hotlist"),
    ):
        args = {"actor": "det-1", "hotlist_id": hl, "plate": "8XYZ999", "now": T0} | kwargs
        with pytest.raises(HotlistRefusedError, match=why):
            add_entry(store, audit, **args)
        assert audit[-1]["outcome"] == "refused"
    assert store.tables.read("hotlist_entries").height == 1

    change_entry(store, audit, actor="det-2", entry_id=eid, changes={"priority": 1}, now=T0)
    assert store.tables.read("hotlist_entries")["priority"][0] == 1
    assert audit[-1]["event_type"] == "hotlist_change"
    assert audit.details()["before"] == {"priority": 3}
    assert audit.details()["after"] == {"priority": 1}
    with pytest.raises(HotlistRefusedError, match="cannot be changed"):
        change_entry(store, audit, actor="det-2", entry_id=eid, changes={"plate": "X1"}, now=T0)
    with pytest.raises(HotlistRefusedError, match="outlast"):
        change_entry(
            store,
            audit,
            actor="det-2",
            entry_id=eid,
            changes={"expires_at": T0 + dt.timedelta(days=61)},
            now=T0,
        )
    assert audit[-1]["outcome"] == "refused"

    with pytest.raises(HotlistRefusedError, match="reason"):
        delete_entry(store, audit, actor="det-1", entry_id=eid, reason="", now=T0)
    delete_entry(store, audit, actor="det-1", entry_id=eid, reason="vehicle recovered", now=T0)
    assert store.tables.read("hotlist_entries").height == 0
    assert audit[-1]["event_type"] == "hotlist_delete" and audit[-1]["outcome"] == "allowed"
    assert audit.details()["entry"]["plate"] == "7ABC123"


def test_feed_lists_change_only_by_reloading(tmp_path: Path, store: Store, audit: Audit) -> None:
    svs = read_hotlist_csv(_csv(tmp_path / "svs.csv", SVS), source="state_stolen", now=T0)
    load_hotlist(store, audit, svs, actor="admin-1", now=T0)
    with pytest.raises(HotlistRefusedError, match="feed"):
        add_entry(store, audit, actor="det-1", hotlist_id="ca-svs", plate="1ABC234", now=T0)


# --- matching -------------------------------------------------------------------------------


def test_exact_and_confusable_tiers() -> None:
    entries, hotlists = _feed(
        [
            {"entry_id": "e1", "plate": "7ABC123", "priority": 1},
            {"entry_id": "e2", "plate": "ABC0123"},
        ]
    )
    at = T0 + dt.timedelta(hours=1)
    reads = _reads(
        [
            ("r1", "7ABC123", at),  # exact
            ("r2", "7A8C123", at),  # B read as 8
            ("r3", "7ABC1Z3", at),  # 2 read as Z
            ("r4", "ABCO123", at),  # 0 read as O
            ("r5", "7ABD123", at),  # D is not confusable here
            ("r6", "7A8C1Z3", at),  # two confusions: still the same key
        ]
    )
    hits = match_reads(reads, entries, hotlists, policy=POLICY)
    validate_frame("hits", hits)
    assert hits.select("read_id", "entry_id", "match_tier").rows() == [
        ("r1", "e1", "exact"),
        ("r2", "e1", "confusable"),
        ("r3", "e1", "confusable"),
        ("r4", "e2", "confusable"),
        ("r6", "e1", "confusable"),
    ]
    assert hits["hit_id"][0] == "hit-r1-e1"
    assert hits["priority"][0] == 1 and hits["hotlist_source"][0] == "state_stolen"
    assert set(hits["disposition"]) == {"pending"}
    assert hits["disposition_at"].is_null().all()
    assert hits["listed_plate"].to_list() == ["7ABC123", "7ABC123", "7ABC123", "ABC0123", "7ABC123"]


def test_expiry_stops_alerting() -> None:
    entries, hotlists = _feed(
        [
            {"entry_id": "e1", "plate": "7ABC123", "expires_at": T0 + dt.timedelta(days=2)},
            {"entry_id": "late", "plate": "8XYZ999", "added_at": T0 + dt.timedelta(days=1)},
        ]
    )
    reads = _reads(
        [
            ("before", "7ABC123", T0 + dt.timedelta(days=1)),
            ("at-expiry", "7ABC123", T0 + dt.timedelta(days=2)),
            ("after", "7ABC123", T0 + dt.timedelta(days=3)),
            ("pre-add", "8XYZ999", T0),
            ("post-add", "8XYZ999", T0 + dt.timedelta(days=1, hours=1)),
        ]
    )
    hits = match_reads(reads, entries, hotlists, policy=POLICY)
    assert sorted(hits["read_id"]) == ["before", "post-add"]
    assert active_entries(entries, hotlists, at=T0 + dt.timedelta(days=3), policy=POLICY)[
        "entry_id"
    ].to_list() == ["late"]
    # The list's own expiry ends every entry on it, whatever the entry says.
    expired_list = hotlists.with_columns(
        pl.lit(T0 + dt.timedelta(hours=12)).cast(pl.Datetime("us", "UTC")).alias("expires_at")
    )
    assert match_reads(reads, entries, expired_list, policy=POLICY).height == 0


def test_never_alert_categories_and_incomplete_custom_lists_never_hit() -> None:
    entries, hotlists = _feed(
        [
            {"entry_id": "imm1", "plate": "5IMM001", "category": "immigration_violator"},
            {"entry_id": "imm2", "plate": "5IMM002", "category": "Immigration Violator"},
            {"entry_id": "ice", "plate": "5IMM003", "category": "ice_detainer"},
            {"entry_id": "ok", "plate": "7ABC123"},
            {"entry_id": "watch", "plate": "6WAT001", "hotlist_id": "custom-x"},
        ]
    )
    # No case number, reason or expiry: docs/policy.md#r4 says such a list must not alert.
    watch_list = validate_frame(
        "hotlists",
        pl.DataFrame(
            {"hotlist_id": ["custom-x"], "name": ["Watch list"], "source": ["custom"],
             "owner_user_id": ["det-1"], "created_at": [T0]}
        ),
    )  # fmt: skip
    hotlists = pl.concat([hotlists, watch_list])
    at = T0 + dt.timedelta(hours=1)
    reads = _reads([(f"r{i}", p, at) for i, p in enumerate(entries["plate"])])
    hits = match_reads(reads, entries, hotlists, policy=POLICY)
    assert hits["entry_id"].to_list() == ["ok"]
    assert active_entries(entries, hotlists, at=at, policy=POLICY)["entry_id"].to_list() == ["ok"]


def _expected_exact(city: Any, hits: pl.DataFrame) -> pl.DataFrame:
    """The city's hits minus those our rules must not raise.

    The city plants one custom entry that is past its expiry yet still alerts
    (``entry_past_expiry``) and a "Watch list" without case, reason or expiry
    (``hotlist_without_case``); the workbench must not alert on either. The city, like the
    workbench, ignores the plate state when matching (a state mismatch is the
    ``wrong_state`` disposition), so no other difference is expected.
    """
    lists = city.hotlists.select(
        "hotlist_id",
        pl.col("expires_at").alias("list_expires_at"),
        (
            (pl.col("source") != "custom")
            | (pl.col("case_number").is_not_null() & pl.col("expires_at").is_not_null())
        ).alias("list_ok"),
    )
    return (
        hits.join(city.hotlist_entries.select("entry_id", "expires_at"), on="entry_id")
        .join(lists, on="hotlist_id")
        .filter(
            pl.col("list_ok")
            & (pl.col("expires_at").is_null() | (pl.col("captured_at") < pl.col("expires_at")))
            & (
                pl.col("list_expires_at").is_null()
                | (pl.col("captured_at") < pl.col("list_expires_at"))
            )
        )
    )


def test_synthetic_city_hits_are_all_found() -> None:
    city = generate_city(CityConfig(days=4, scale=0.15))
    no_case = (pl.col("source") == "custom") & pl.col("case_number").is_null()
    incomplete = city.hotlists.filter(no_case)["hotlist_id"].to_list()
    assert incomplete  # the city plants a list without case number
    total = 0
    for i in range(city.config.days):
        batch = generate_day(city, city.config.start_date + dt.timedelta(days=i))
        ours = match_reads(batch.reads, city.hotlist_entries, city.hotlists, policy=POLICY)
        validate_frame("hits", ours)
        for tier in ("exact", "confusable"):
            theirs = _expected_exact(city, batch.hits.filter(pl.col("match_tier") == tier))
            mine = ours.filter(pl.col("match_tier") == tier)
            assert set(mine.select("read_id", "entry_id").rows()) == set(
                theirs.select("read_id", "entry_id").rows()
            ), (batch.day, tier)
        total += batch.hits.height
        # The planted expired entry never alerts here, though the city lets it.
        assert not ours["entry_id"].is_in(["cust-0000"]).any()
        assert not ours["hotlist_id"].is_in(incomplete).any()
    assert total > 10


# --- dispositions and outcomes ---------------------------------------------------------------


@pytest.fixture
def stored_hits(store: Store) -> list[str]:
    entries, hotlists = _feed([{"entry_id": f"e{i}", "plate": f"7ABC12{i}"} for i in range(5)])
    reads = _reads([(f"r{i}", f"7ABC12{i}", T0 + dt.timedelta(hours=1)) for i in range(5)])
    hits = match_reads(reads, entries, hotlists, policy=POLICY)
    assert record_hits(store, hits) == 5
    assert record_hits(store, hits) == 0  # idempotent
    return hits["hit_id"].to_list()


LATER = T0 + dt.timedelta(hours=2)
NOW = T0 + dt.timedelta(days=1)


def _outcome(store: Store, audit: Audit, hit_id: str, kind: str, **kw: Any) -> str:
    args: dict[str, Any] = {"occurred_at": LATER, "actor": "ofc-1", "now": NOW} | kw
    return record_outcome(store, audit, hit_id=hit_id, outcome_type=kind, **args)


def test_outcomes_need_a_confirmed_hit(store: Store, audit: Audit, stored_hits: list[str]) -> None:
    h = stored_hits[0]
    with pytest.raises(HotlistRefusedError, match="not confirmed"):
        _outcome(store, audit, h, "stop")
    assert audit[-1]["outcome"] == "refused"
    with pytest.raises(HotlistRefusedError, match="not one of"):
        record_disposition(store, audit, hit_id=h, disposition="pending", actor="a", now=LATER)
    record_disposition(store, audit, hit_id=h, disposition="confirmed", actor="sgt-1", now=LATER)
    hit = store.tables.read("hits").filter(pl.col("hit_id") == h).row(0, named=True)
    assert hit["disposition"] == "confirmed" and hit["disposition_by"] == "sgt-1"
    assert hit["disposition_at"] == LATER and audit[-1]["outcome"] == "allowed"

    _outcome(store, audit, h, "stop")
    with pytest.raises(HotlistRefusedError, match="case number"):
        _outcome(store, audit, h, "recovery", lat=34.18, lon=-118.3, value_usd=9_000.0)
    with pytest.raises(HotlistRefusedError, match="where"):
        _outcome(store, audit, h, "recovery", case_number=CASE)
    with pytest.raises(HotlistRefusedError, match="format"):
        _outcome(store, audit, h, "arrest", case_number="123")
    oid = _outcome(
        store, audit, h, "recovery", lat=34.18, lon=-118.3, value_usd=9_000.0, case_number=CASE
    )
    assert oid == f"out-{h}-recovery"
    _outcome(store, audit, h, "arrest", case_number=CASE)
    _outcome(store, audit, h, "case_cleared", case_number=CASE, occurred_at=NOW)
    with pytest.raises(HotlistRefusedError, match="already recorded"):
        _outcome(store, audit, h, "stop")
    with pytest.raises(HotlistRefusedError, match="precede"):
        _outcome(store, audit, h, "case_cleared", occurred_at=T0)
    with pytest.raises(HotlistRefusedError, match="future"):
        _outcome(store, audit, stored_hits[0], "stop", occurred_at=NOW + dt.timedelta(days=1))
    out = validate_frame("outcomes", store.tables.read("outcomes"))
    assert sorted(out["outcome_type"]) == ["arrest", "case_cleared", "recovery", "stop"]
    assert not out["is_misread_stop"].any()
    assert out.filter(pl.col("outcome_type") == "recovery")["value_usd"][0] == 9_000.0
    # A hit with a recovery on record cannot quietly become "dismissed".
    with pytest.raises(HotlistRefusedError, match="has outcomes"):
        record_disposition(store, audit, hit_id=h, disposition="dismissed", actor="a", now=NOW)

    for h2, disposition in zip(
        stored_hits[1:4], ("wrong_state", "dismissed", "stale_entry"), strict=True
    ):
        record_disposition(store, audit, hit_id=h2, disposition=disposition, actor="a", now=LATER)
        with pytest.raises(HotlistRefusedError, match="not actionable"):
            _outcome(store, audit, h2, "stop")


def test_misread_stop_rule(store: Store, audit: Audit, stored_hits: list[str]) -> None:
    h = stored_hits[0]
    stop_at = T0 + dt.timedelta(hours=1, minutes=5)
    found_at = T0 + dt.timedelta(hours=1, minutes=20)
    record_disposition(store, audit, hit_id=h, disposition="misread", actor="sgt-1", now=found_at)
    # The stop happened before anyone found the misread: recorded, flagged.
    _outcome(store, audit, h, "stop", occurred_at=stop_at)
    assert store.tables.read("outcomes")["is_misread_stop"].to_list() == [True]
    assert audit.details()["is_misread_stop"] is True
    with pytest.raises(HotlistRefusedError, match="only the stop"):
        _outcome(store, audit, h, "arrest", case_number=CASE)
    # A stop after the misread was known is never justified by this hit.
    h2 = stored_hits[1]
    record_disposition(store, audit, hit_id=h2, disposition="misread", actor="sgt-1", now=found_at)
    with pytest.raises(HotlistRefusedError, match="before this stop"):
        _outcome(store, audit, h2, "stop", occurred_at=found_at + dt.timedelta(minutes=1))

    # A confirmed hit later found to be a misread: its stop becomes a misread stop.
    h3 = stored_hits[2]
    record_disposition(store, audit, hit_id=h3, disposition="confirmed", actor="sgt-1", now=LATER)
    _outcome(store, audit, h3, "stop")
    record_disposition(store, audit, hit_id=h3, disposition="misread", actor="sgt-2", now=NOW)
    out = store.tables.read("outcomes").filter(pl.col("hit_id") == h3)
    assert out["is_misread_stop"].to_list() == [True]
    assert audit.details()["previous"] == "confirmed"
