"""Try to get around the gate: every attempt must be refused and audited."""

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRefused, SearchRequest
from alpr_workbench.governance.sharing import (
    SharingRefused,
    add_grant,
    revoke_grant,
    sharing_drift,
)
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store
from alpr_workbench.synth import CityConfig, generate_city, generate_day
from conftest import PASSPHRASE

CONFIG = CityConfig(days=3, scale=0.05, seed=11)
NOW = dt.datetime.combine(CONFIG.end_date, dt.time(18, 0), tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(days=10)
OPEN, CLOSED, OTHER = "BPD-2026-900001", "BPD-2026-900002", "BPD-2026-900003"


def _user(
    user_id,
    role,
    *,
    org="Burbank Police Department",
    org_type="ca_local_agency",
    title="Crime Analyst",
    **extra,
):
    row = {
        "user_id": user_id,
        "full_name": user_id,
        "role": role,
        "organization": org,
        "organization_type": org_type,
        "job_title": title,
        "is_active": True,
        "approved_by": "dlee",
        "approved_at": T0,
        "trained_at": T0,
    }
    row.update(extra)
    return row


TEST_USERS = [
    _user("t.analyst", "analyst"),
    _user("t.other", "analyst"),
    _user("t.cmd", "command_staff", title="Captain"),
    _user("t.auditor", "auditor", title="Auditor"),
    _user("t.admin", "administrator", title="IT Administrator"),
    _user("t.disabled", "analyst", is_active=False),
    _user("t.gone", "analyst", separated_at=NOW - dt.timedelta(days=1)),
    _user("t.untrained", "analyst", trained_at=None),
    _user("t.stale", "analyst", trained_at=NOW - dt.timedelta(days=900)),
    _user("t.clerk", "analyst", title="Records Clerk"),
    _user("patrol7", "investigator", title="Police Officer"),
    _user(
        "t.fed",
        "investigator",
        org="Homeland Security Investigations",
        org_type="federal",
        title="Detective",
    ),
    _user(
        "t.az",
        "investigator",
        org="Phoenix Police Department",
        org_type="out_of_state",
        title="Detective",
    ),
    _user("t.glendale", "investigator", org="Glendale Police Department", title="Detective"),
]


@pytest.fixture(scope="module")
def city_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("gate") / "home"
    store = Store.create(home, passphrase=PASSPHRASE)
    city = generate_city(CONFIG)
    for table in ("networks", "cameras", "sharing_grants"):
        store.tables.write(table, getattr(city, table))
    store.tables.write("users", pl.DataFrame(TEST_USERS, schema=store.tables.read("users").schema))
    cases = pl.DataFrame(
        {
            "case_number": [OPEN, CLOSED, OTHER],
            "title": ["Stolen Honda Civic", "Old burglary", "Robbery on Olive Ave"],
            "offense_type": ["motor_vehicle_theft", "burglary", "robbery"],
            "status": ["open", "closed", "open"],
            "opened_at": [T0, T0, T0],
            "assigned_user_ids": [
                [
                    "t.analyst",
                    "t.cmd",
                    "t.disabled",
                    "t.gone",
                    "t.untrained",
                    "t.stale",
                    "t.clerk",
                    "patrol7",
                    "t.fed",
                    "t.az",
                    "t.auditor",
                    "t.glendale",
                ],
                ["t.analyst"],
                ["t.other"],
            ],
        }
    )
    store.tables.write("cases", cases)
    for i in range(CONFIG.days):
        store.reads.ingest(generate_day(city, CONFIG.start_date + dt.timedelta(days=i)).reads)
    return home


@pytest.fixture
def env(city_home, tmp_path):
    store = Store.open(city_home, passphrase=PASSPHRASE)
    audit = AuditLog.open(store.home, store.keystore)
    yield store, audit, Gate._for_testing(store, audit, clock=lambda: NOW)
    audit.close()


def _request(**overrides):
    base = {
        "case_number": OPEN,
        "reason_code": "motor_vehicle_theft",
        "reason_text": "stolen silver Civic seen near Magnolia",
    }
    base.update(overrides)
    return SearchRequest(**base)


def _some_plate(store: Store, network: str = "bpd-city") -> str:
    rows = store.reads.query(where=pl.col("network_id") == network, columns=["plate"])
    return rows["plate"][rows.height // 2]


def test_allowed_exact_plate_search_is_audited(env):
    store, audit, gate = env
    plate = _some_plate(store)
    result = gate.search("t.analyst", _request(plate=plate))
    assert result.rows.height >= 1 and set(result.rows["plate"]) == {plate}
    events = audit.events()
    last = events.row(-1, named=True)
    assert last["event_id"] == result.event_id and last["outcome"] == "allowed"
    assert last["plate_queried"] == plate and last["row_count"] == result.rows.height
    assert last["case_number"] == OPEN and last["user_id"] == "t.analyst"
    assert json.loads(last["query_json"])["plate"] == plate


def test_partial_plate_search(env):
    store, _, gate = env
    plate = _some_plate(store)
    pattern = plate[:3] + "?" + plate[4:6] + "*"
    rows = gate.search("t.analyst", _request(plate_pattern=pattern)).rows
    regex = "^" + pattern.replace("?", ".").replace("*", ".*") + "$"
    assert plate in set(rows["plate"]) and all(re.match(regex, p) for p in rows["plate"])


def test_area_and_camera_filters(env):
    store, _, gate = env
    cameras = store.tables.read("cameras").filter(pl.col("network_id") == "bpd-city")
    cam = cameras.row(0, named=True)
    near = gate.search("t.analyst", _request(near=(cam["lat"], cam["lon"], 50.0))).rows
    assert near.height > 0 and set(near["camera_id"]) == {cam["camera_id"]}
    by_cam = gate.search("t.analyst", _request(camera_ids=(cam["camera_id"],))).rows
    assert by_cam.height == near.height
    d = 0.0005
    square = (
        (cam["lon"] - d, cam["lat"] - d),
        (cam["lon"] + d, cam["lat"] - d),
        (cam["lon"] + d, cam["lat"] + d),
        (cam["lon"] - d, cam["lat"] + d),
    )
    assert gate.search("t.analyst", _request(polygon=square)).rows.height == near.height


REFUSALS = [
    ("nobody", {}, "unknown user"),
    ("t.disabled", {}, "disabled"),
    ("t.gone", {}, "separated"),
    ("t.untrained", {}, "no recorded ALPR training"),
    ("t.stale", {}, "refresher training"),
    ("t.clerk", {}, "job title"),
    ("patrol7", {}, "shared or generic"),
    ("t.fed", {}, "may not search California ALPR data"),
    ("t.az", {}, "may not search California ALPR data"),
    ("t.auditor", {}, "may not search"),
    ("t.analyst", {"case_number": "BPD-2026-999999"}, "no case"),
    ("t.analyst", {"case_number": "2026-123"}, "not in the department's format"),
    ("t.analyst", {"case_number": ""}, "not in the department's format"),
    ("t.analyst", {"case_number": CLOSED}, "is closed"),
    ("t.analyst", {"case_number": OTHER}, "not assigned"),
    ("t.analyst", {"reason_code": "curiosity"}, "not on the policy's list"),
    ("t.analyst", {"reason_code": "other", "reason_text": ""}, "needs a specific"),
    ("t.analyst", {"reason_code": "other", "reason_text": "inv"}, "needs a specific"),
    ("t.analyst", {"reason_text": "assist ICE ERO with a detainer"}, "prohibited purpose"),
    ("t.analyst", {"reason_text": "who attended the protest at city hall"}, "prohibited purpose"),
    ("t.analyst", {"reason_text": "custody dispute, find my ex"}, "prohibited purpose"),
    ("t.analyst", {"reason_text": "ice"}, "review"),
    ("t.analyst", {"window_from": NOW - dt.timedelta(days=45)}, "retention"),
    ("t.analyst", {"window_to": NOW + dt.timedelta(days=2)}, "future"),
    ("t.analyst", {"window_from": NOW, "window_to": NOW - dt.timedelta(days=1)}, "empty"),
    ("t.analyst", {"plate": None}, "needs a filter"),
    ("t.analyst", {"plate": None, "plate_pattern": "*"}, "too broad"),
    ("t.analyst", {"plate": None, "plate_pattern": "7A*"}, "too broad"),
    ("t.analyst", {"network_ids": ("somebody-else",)}, "not shared"),
    ("t.analyst", {"plate": None, "camera_ids": ("no-such-camera",)}, "not in this user's scope"),
]


@pytest.mark.parametrize(
    ("user", "overrides", "why"), REFUSALS, ids=[f"{u}-{w}" for u, _, w in REFUSALS]
)
def test_refusals_say_why_and_are_audited(env, user, overrides, why):
    _, audit, gate = env
    request = _request(**{"plate": "7ABC123", **overrides})
    with pytest.raises(SearchRefused, match=why) as info:
        gate.search(user, request)
    last = audit.events().row(-1, named=True)
    assert last["event_id"] == info.value.event_id
    assert last["outcome"] == "refused" and why.split()[0] in last["refusal_reason"]
    assert last["user_id"] == user and last["event_type"] == "search"
    assert json.loads(last["query_json"]) == json.loads(request.model_dump_json())


def test_a_typo_in_a_request_is_an_error_not_a_silent_gap():
    with pytest.raises(ValidationError):
        SearchRequest(case_number=OPEN, reason_code="robbery", plaet="7ABC123")
    with pytest.raises(ValidationError, match="time zone"):
        SearchRequest(case_number=OPEN, reason_code="robbery", window_from=dt.datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="may hold only"):
        SearchRequest(case_number=OPEN, reason_code="robbery", plate_pattern="7A$%12")


def test_private_network_needs_a_grant_and_revocation_is_immediate(env):
    store, audit, gate = env
    plate = _some_plate(store, network="hw-magnolia")
    seen = gate.search("t.analyst", _request(plate=plate)).rows
    assert "hw-magnolia" in set(seen["network_id"])
    grant = store.tables.read("sharing_grants").filter(
        (pl.col("network_id") == "hw-magnolia")
        & (pl.col("recipient_org") == "Burbank Police Department")
    )["grant_id"][0]
    revoke_grant(
        store,
        audit.append,
        actor="t.admin",
        grant_id=grant,
        policy=load_policy(),
        now=NOW - dt.timedelta(hours=1),
    )
    after = gate.search("t.analyst", _request(plate=plate)).rows
    assert "hw-magnolia" not in set(after["network_id"])
    with pytest.raises(SearchRefused, match="not shared"):
        gate.search("t.analyst", _request(plate=plate, network_ids=("hw-magnolia",)))
    add_grant(
        store,
        audit.append,
        actor="t.admin",
        network_id="hw-magnolia",
        recipient_org="Burbank Police Department",
        recipient_type="ca_local_agency",
        scope="search_and_alerts",
        approved_by="Store manager",
        basis="MOU 2026-04",
        review_by_date=dt.date(2027, 6, 1),
        policy=load_policy(),
        now=NOW - dt.timedelta(hours=1),
    )
    again = gate.search("t.analyst", _request(plate=plate)).rows
    assert "hw-magnolia" in set(again["network_id"])


def test_outside_agency_sees_only_what_was_granted_to_it(env):
    store, _, gate = env
    plate = _some_plate(store, network="hw-magnolia")
    rows = gate.search("t.glendale", _request(plate=plate)).rows
    assert set(rows["network_id"]) <= {"bpd-city"}  # Glendale's HOA grant was revoked


@pytest.mark.parametrize("recipient_type", ["federal", "out_of_state", "private"])
def test_grants_to_federal_out_of_state_or_private_recipients_are_refused(env, recipient_type):
    store, audit, _ = env
    before = store.tables.read("sharing_grants")
    with pytest.raises(SharingRefused, match="may not receive"):
        add_grant(
            store,
            audit.append,
            actor="t.admin",
            network_id="bpd-city",
            recipient_org="U.S. Immigration and Customs Enforcement",
            recipient_type=recipient_type,
            scope="search",
            approved_by="Chief",
            basis="request",
            review_by_date=dt.date(2027, 1, 1),
            policy=load_policy(),
            now=NOW,
        )
    assert store.tables.read("sharing_grants").equals(before)
    last = audit.events().row(-1, named=True)
    assert last["event_type"] == "sharing_change" and last["outcome"] == "refused"


def test_silent_sharing_change_is_reported_as_drift(env):
    store, audit, _ = env
    add_grant(
        store,
        audit.append,
        actor="t.admin",
        network_id="hoa-rancho",
        recipient_org="Pasadena Police Department",
        recipient_type="ca_local_agency",
        scope="search",
        approved_by="HOA board",
        basis="board vote 2026-10",
        review_by_date=dt.date(2027, 10, 1),
        policy=load_policy(),
        now=NOW,
    )
    changes = audit.events().filter(pl.col("event_type") == "sharing_change")
    assert sharing_drift(store, changes) is None
    grants = store.tables.read("sharing_grants")
    store.tables.write("sharing_grants", grants.with_columns(pl.lit("search").alias("scope")))
    assert "without an audited" in sharing_drift(store, changes)


def test_command_staff_see_fewer_columns_and_aggregates_without_plates(env):
    store, audit, gate = env
    plate = _some_plate(store)
    rows = gate.search("t.cmd", _request(plate=plate)).rows
    assert "image_ref" not in rows.columns and "alternate_plates" not in rows.columns
    summary = gate.read_summary("t.cmd", start=CONFIG.start_date, end=CONFIG.end_date)
    counts = summary.reads_daily
    assert "plate" not in counts.columns and counts["reads"].sum() == store.reads.row_count()
    all_plates = store.reads.query(columns=["plate"])["plate"]  # test-side ground truth
    assert summary.unique_vehicles == all_plates.n_unique()
    assert audit.events().row(-1, named=True)["event_type"] == "aggregate"
    with pytest.raises(SearchRefused, match="may not view aggregates"):
        Gate._for_testing(
            store,
            audit,
            clock=lambda: NOW,
            policy=load_policy().model_copy(update={"roles": {"command_staff": ("search",)}}),
        ).read_summary("t.cmd", start=CONFIG.start_date, end=CONFIG.end_date)


def test_export_is_a_separate_audited_action(env, tmp_path):
    store, audit, gate = env
    result = gate.search("t.analyst", _request(plate=_some_plate(store)))
    out = gate.export("t.analyst", result, tmp_path / "export.csv")
    assert pl.read_csv(out).height == result.rows.height
    last = audit.events().row(-1, named=True)
    assert last["event_type"] == "export" and last["row_count"] == result.rows.height
    with pytest.raises(SearchRefused, match="only the user who ran"):
        gate.export("t.other", result, tmp_path / "stolen.csv")
    assert not (tmp_path / "stolen.csv").exists()


def test_nothing_but_the_gate_reads_reads():
    src = Path(__file__).resolve().parents[1] / "src" / "alpr_workbench"
    offenders = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src).as_posix()
        if rel.startswith("store/") or rel == "governance/gate.py":
            continue
        text = path.read_text()
        if re.search(r"\.reads\.(query|scan|partition|hold_partition)\(", text):
            offenders.append(rel)
    assert offenders == []


def test_retro_match_is_a_gated_audited_search(env):
    store, audit, gate = env
    plates = tuple(store.reads.query(columns=["plate"])["plate"].unique().sort().head(3))
    result = gate.retro_match("t.analyst", _request(plates=plates))
    assert set(result.rows["plate"]) == set(plates)
    last = audit.events().row(-1, named=True)
    assert last["event_type"] == "retro_match" and last["plate_queried"] == ",".join(plates)
    with pytest.raises(SearchRefused, match="not assigned"):
        gate.retro_match("t.analyst", _request(plates=plates, case_number=OTHER))


# -- audited administrative paths: holds, purge, key rotation, users, sharing snapshots -------
@pytest.fixture
def private_env(city_home, tmp_path):
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(city_home, home)
    store = Store.open(home, passphrase=PASSPHRASE)
    audit = AuditLog.open(home, store.keystore)
    supervisor = _user("t.sgt", "supervisor", title="Sergeant")
    store.tables.append(
        "users", pl.DataFrame([supervisor], schema=store.tables.read("users").schema)
    )
    return store, audit, Gate._for_testing(store, audit, clock=lambda: NOW)


def test_hold_from_a_search_survives_the_audited_purge(private_env):
    from alpr_workbench.governance.admin import AdminRefused, place_legal_hold, purge_expired

    store, audit, gate = private_env
    result = gate.search("t.analyst", _request(plate=_some_plate(store)))
    kwargs = dict(
        actor="t.admin",
        hold_id="H-7",
        case_number=OPEN,
        reason="evidence",
        review_by_date=dt.date(2027, 6, 1),
        read_ids=result.rows["read_id"].to_list(),
        policy=load_policy(),
        now=NOW,
    )
    with pytest.raises(AdminRefused, match="may not approve"):
        place_legal_hold(store, audit.append, approver_user_id="t.analyst", **kwargs)
    held = place_legal_hold(store, audit.append, approver_user_id="t.sgt", **kwargs)
    assert held == result.rows.height
    hold = store.tables.read("legal_holds").row(0, named=True)
    assert (hold["case_number"], hold["approver_user_id"]) == (OPEN, "t.sgt")
    report = purge_expired(
        store,
        audit.append,
        actor="t.admin",
        as_of=NOW.date() + dt.timedelta(days=90),
        retention_days=30,
        policy=load_policy(),
        now=NOW + dt.timedelta(days=90),  # a purge may not be dated in the future
    )
    assert store.reads.days() == [] and report.rows_kept_under_hold == held
    events = audit.events()
    assert events.filter(pl.col("event_type") == "hold")["outcome"].to_list() == [
        "refused",
        "allowed",
    ]
    purge = events.filter(pl.col("event_type") == "purge").row(0, named=True)
    assert purge["row_count"] == report.rows_destroyed > 0


def test_key_rotation_and_user_changes_are_audited(private_env):
    from alpr_workbench.governance.admin import AdminRefused, change_user, rotate_master_keys

    store, audit, _ = private_env
    assert (
        rotate_master_keys(store, audit.append, actor="t.admin", policy=load_policy(), now=NOW)
        > 0
    )
    change_user(
        store,
        audit.append,
        actor="t.admin",
        user_id="t.other",
        changes={"role": "investigator", "job_title": "Detective"},
        policy=load_policy(),
        now=NOW,
    )
    assert (
        store.tables.read("users").filter(pl.col("user_id") == "t.other")["role"][0]
        == "investigator"
    )
    with pytest.raises(AdminRefused, match="may not change users"):
        change_user(
            store,
            audit.append,
            actor="t.analyst",
            user_id="t.analyst",
            changes={"role": "administrator"},
            policy=load_policy(),
            now=NOW,
        )
    with pytest.raises(AdminRefused, match="is not one of"):
        change_user(
            store,
            audit.append,
            actor="t.admin",
            user_id="t.other",
            changes={"role": "overlord"},
            policy=load_policy(),
            now=NOW,
        )
    kinds = audit.events().select("event_type", "outcome").rows()
    assert ("key_rotation", "allowed") in kinds and kinds.count(("user_change", "refused")) == 2


def test_daily_sharing_snapshot_reports_drift(private_env):
    from alpr_workbench.governance.sharing import grants_digest, snapshot_sharing

    store, audit, _ = private_env
    audit.append(
        {
            "event_type": "sharing_change",
            "user_id": "t.admin",
            "outcome": "allowed",
            "query_json": json.dumps(
                {"grants_digest": grants_digest(store.tables.read("sharing_grants"))}
            ),
        }
    )
    changes = lambda: audit.events().filter(pl.col("event_type") == "sharing_change")  # noqa: E731
    assert snapshot_sharing(store, audit.append, changes(), actor="cron", now=NOW) is None
    grants = store.tables.read("sharing_grants")
    store.tables.write("sharing_grants", grants.with_columns(pl.lit(None).alias("revoked_at")))
    drift = snapshot_sharing(store, audit.append, changes(), actor="cron", now=NOW)
    assert drift and "without an audited" in drift
    snaps = audit.events().filter(pl.col("event_type") == "sharing_snapshot")
    assert snaps.height == 2 and json.loads(snaps["query_json"][1])["drift"] == drift
