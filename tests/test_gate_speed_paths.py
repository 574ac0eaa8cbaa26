"""The gate's fast paths give exactly the rows of the plain ones.

A colour or make filter matches case-insensitively without lowercasing every row, and the
query sorts each file's rows by time as it filters them, sorting the whole result again only
when it is out of order (reads under a legal hold). These tests store awkward values and hold
copies in a real encrypted store and compare the gate's and the store's answers with the
plain filter and sort, done by hand on every stored read.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alpr_workbench.errors import StoreError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRequest
from alpr_workbench.store import Store
from alpr_workbench.store._readcache import READ_CACHE
from alpr_workbench.synth import generate_city
from conftest import PASSPHRASE, make_reads
from test_gate import CONFIG, NOW, OPEN, T0, TEST_USERS

START = NOW.date() - dt.timedelta(days=2)
# Stored spellings: every case mix, look-alikes whose lowercase is not ASCII (dotted capital
# I, fullwidth letters, an accented e, German sharp s) and the Kelvin sign, whose lowercase is k.
COLORS = [
    "white", "White", "WHITE", "wHiTe", "whitE", "whíte", "WHİTE", "ｗｈｉｔｅ", "Ｗhite",
    "white ", " white", "whit", "whitee", "black", "BLACK", "Black", "", "gray", "GRAY",
    "grAy", "ſilver", "SILVER", "silver", "straße", "STRASSE", "Straße",
]
MAKES = [
    "kia", "KIA", "Kia", "\u212aia", "\u212aIA", "kIa", "k1a", "ki", "honda", "HONDA",
    "Honda", "hOnDa", "ＨＯＮＤＡ", "HONDA\u0307", "mercedes-benz", "Mercedes-Benz",
    "MERCEDES-BENZ", "mercedes benz", "volkswagen", "VOLKSWAGEN", "Σίσυφος", "ΣΊΣΥΦΟΣ",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("gate_speed") / "home"
    store = Store.create(home, passphrase=PASSPHRASE)
    city = generate_city(CONFIG)
    for table in ("networks", "cameras", "sharing_grants"):
        store.tables.write(table, getattr(city, table))
    store.tables.write("users", pl.DataFrame(TEST_USERS, schema=store.tables.read("users").schema))
    store.tables.write(
        "cases",
        pl.DataFrame(
            {
                "case_number": [OPEN],
                "title": ["Stolen Honda Civic"],
                "offense_type": ["motor_vehicle_theft"],
                "status": ["open"],
                "opened_at": [T0],
                "assigned_user_ids": [["t.analyst"]],
            }
        ),
    )
    n = 3_000
    reads = make_reads(n, start=START, days=3, seed=3).with_columns(
        pl.Series("vehicle_color", [COLORS[i % len(COLORS)] for i in range(n)]),
        pl.Series("vehicle_make", [MAKES[(i * 7) % len(MAKES)] for i in range(n)]),
    )
    store.reads.ingest(reads.slice(0, 2_000))
    store.reads.ingest(reads.slice(2_000))  # a second file in each day
    # A hold on some reads of every day: the copies interleave with the days' reads.
    store.reads.place_hold("H-1", reads.filter(pl.col("read_id").str.ends_with("7"))["read_id"])
    return home


@pytest.fixture(params=["read cache", "no read cache"])
def env(home, request):
    budget = READ_CACHE.budget
    READ_CACHE.set_budget(budget if request.param == "read cache" else 0)
    store = Store.open(home, passphrase=PASSPHRASE)
    audit = AuditLog.open(store.home, store.keystore)
    try:
        yield store, Gate._for_testing(store, audit, clock=lambda: NOW)
    finally:
        audit.close()
        READ_CACHE.set_budget(budget)


def _request(**filters: str) -> SearchRequest:
    return SearchRequest(
        case_number=OPEN,
        reason_code="motor_vehicle_theft",
        reason_text="stolen silver Civic seen near Magnolia",
        window_from=dt.datetime.combine(START, dt.time(), tzinfo=dt.UTC),
        window_to=NOW,
        **filters,
    )


def _by_hand(store: Store, column: str, value: str) -> pl.DataFrame:
    window = pl.col("captured_at").is_between(
        dt.datetime.combine(START, dt.time(), tzinfo=dt.UTC), NOW
    )
    everything = store.reads.scan().filter(window).collect()
    return everything.filter(pl.col(column).str.to_lowercase() == value.lower())


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("vehicle_color", "white"),
        ("vehicle_color", "WHITE"),
        ("vehicle_color", "Black"),
        ("vehicle_color", "whíte"),  # not ASCII: lowercased row by row
        ("vehicle_color", "WHİTE"),
        ("vehicle_color", "straße"),
        ("vehicle_color", "silver"),
        ("vehicle_color", "GRAY"),
        ("vehicle_make", "kia"),
        ("vehicle_make", "\u212aIA"),  # lowercases to "kia"
        ("vehicle_make", "Honda"),
        ("vehicle_make", "MERCEDES-BENZ"),  # 4096 case variants: lowercased row by row
        ("vehicle_make", "volkswagen"),
        ("vehicle_make", "σίσυφος"),
        ("vehicle_make", "nosuchmake"),
    ],
)
def test_a_case_insensitive_filter_matches_exactly_what_lowercasing_matches(
    env, column, value
):
    store, gate = env
    result = gate.search("t.analyst", _request(**{column: value}))
    want = _by_hand(store, column, value)
    assert not result.truncated
    assert sorted(result.rows["read_id"]) == sorted(want["read_id"])
    assert result.rows["captured_at"].is_sorted()


def test_the_kelvin_sign_and_every_case_mix_are_found(env):
    store, gate = env
    rows = gate.search("t.analyst", _request(vehicle_make="KIA")).rows
    assert set(rows["vehicle_make"]) == {"kia", "KIA", "Kia", "\u212aia", "\u212aIA", "kIa"}
    rows = gate.search("t.analyst", _request(vehicle_color="White")).rows
    assert set(rows["vehicle_color"]) == {"white", "White", "WHITE", "wHiTe", "whitE"}


def test_a_sorted_query_returns_the_rows_of_a_plain_query_sorted_by_time(env):
    store, _ = env
    assert store.reads.hold_ids() == ["H-1"]
    for start, end, where in [
        (None, None, None),
        (START, START, None),
        (START + dt.timedelta(days=1), None, pl.col("camera_id").is_in(["cam-01", "cam-02"])),
        (None, None, pl.col("vehicle_color") == "no such colour"),
    ]:
        got = store.reads.query(start, end, where=where, sort_by="captured_at")
        plain = store.reads.query(start, end, where=where)
        assert got["captured_at"].is_sorted()
        assert got.sort("captured_at", "read_id").equals(plain.sort("captured_at", "read_id"))
        assert got.columns == plain.columns
    some = store.reads.query(columns=["plate"], sort_by="captured_at")
    assert some.columns == ["plate"] and some.height == store.reads.query().height


def test_hold_copies_out_of_order_are_sorted_into_place(env):
    store, _ = env
    held = store.reads.hold_partition("H-1").read()
    # The hold's copies follow the days' reads: the concatenation is out of time order,
    # and each read comes back once.
    assert not store.reads.query()["captured_at"].is_sorted()
    rows = store.reads.query(sort_by="captured_at")
    assert rows["captured_at"].is_sorted()
    assert rows["read_id"].is_unique().all()
    assert set(held["read_id"]) <= set(rows["read_id"])


def test_sorting_by_an_unknown_column_is_an_error_naming_it(env):
    store, _ = env
    with pytest.raises(StoreError, match="no_such_column"):
        store.reads.query(sort_by="no_such_column")
