"""Attacks from the second independent red team (after the issue #14 fixes).

Legal holds placed or released by anyone, a thin "comb" polygon reaching every camera, an old
copy of the signed settings restored, a hand-written agency registry, look-alike agency names,
and prohibited purposes phrased around the screening's term lists. Each test is the attack as
a hostile user would run it, against real stores in a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from admin_fixtures import build_demo_home
from alpr_workbench.agencies import AGENCIES_FILE
from alpr_workbench.config import DEPARTMENT_SETTINGS_FILE, load_department_settings
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.admin import (
    AdminRefused,
    place_legal_hold,
    release_legal_hold,
    set_retention_days,
)
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRefused, SearchRequest
from alpr_workbench.governance.registry import get_user, user_problem
from alpr_workbench.governance.screening import screen_text
from alpr_workbench.governance.sharing import SharingRefused, add_agency, add_grant
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store

runner = CliRunner()
TODAY = dt.datetime.now(dt.UTC).date()
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo city for the whole module (each test leaves what it changes consistent)."""
    return build_demo_home(tmp_path_factory.mktemp("redteam2") / "home")


@pytest.fixture
def opened(city: Path):  # noqa: ANN201 - a generator of (store, audit)
    store = Store.open(city)
    audit = AuditLog.open(city, store.keystore)
    yield store, audit
    audit.close()


def _member(store: Store, role: str, *, but: tuple[str, ...] = ()) -> str:
    policy = load_policy()
    for user_id in store.tables.read("users").filter(pl.col("role") == role)["user_id"]:
        if user_id not in but and user_problem(
            get_user(store, user_id), policy=policy, now=NOW
        ) is None:
            return str(user_id)
    raise AssertionError(f"no {role} in good standing")


def _last(audit: AuditLog, event_type: str) -> dict[str, object]:
    events = audit.events().filter(pl.col("event_type") == event_type)
    return events.row(-1, named=True)


def _hold_args(store: Store, hold_id: str, approver: str) -> dict[str, object]:
    case = store.tables.read("cases").filter(pl.col("status") == "open")["case_number"][0]
    reads = store.reads.query(TODAY - dt.timedelta(days=3), TODAY, where=None, plates=None)
    return {
        "hold_id": hold_id,
        "case_number": case,
        "approver_user_id": approver,
        "reason": "evidence for trial",
        "review_by_date": TODAY + dt.timedelta(days=30),
        "read_ids": reads["read_id"].to_list()[:20],
        "policy": load_policy(),
        "now": NOW,
    }


# -- S1, S2: legal holds -----------------------------------------------------------------------
@pytest.mark.parametrize("actor", ["nobody", "hsi.agent", "analyst"])
def test_an_outsider_cannot_place_a_legal_hold(opened, actor: str) -> None:  # noqa: ANN001
    store, audit = opened
    if actor == "analyst":
        actor = _member(store, "analyst")
    approver = _member(store, "supervisor")
    before = store.tables.read("legal_holds").height
    with pytest.raises(AdminRefused, match="legal hold"):
        place_legal_hold(store, audit.append, actor=actor, **_hold_args(store, "H-x", approver))
    assert store.tables.read("legal_holds").height == before
    last = _last(audit, "hold")
    assert (last["user_id"], last["outcome"]) == (actor, "refused")


def test_a_supervisor_cannot_approve_their_own_legal_hold(opened) -> None:  # noqa: ANN001
    store, audit = opened
    sgt = _member(store, "supervisor")
    with pytest.raises(AdminRefused, match="approve"):
        place_legal_hold(store, audit.append, actor=sgt, **_hold_args(store, "H-self", sgt))
    assert _last(audit, "hold")["outcome"] == "refused"


def test_an_outsider_cannot_release_a_legal_hold_nor_release_one_twice(opened) -> None:  # noqa: ANN001
    store, audit = opened
    sgt = _member(store, "supervisor")
    approver = _member(store, "supervisor", but=(sgt,))
    held = place_legal_hold(store, audit.append, actor=sgt, **_hold_args(store, "H-1", approver))
    assert held > 0
    for actor in ("nobody", _member(store, "analyst")):
        with pytest.raises(AdminRefused, match="legal hold"):
            release_legal_hold(store, audit.append, actor=actor, hold_id="H-1",
                               policy=load_policy(), now=NOW)
        last = _last(audit, "hold")
        assert (last["user_id"], last["outcome"]) == (actor, "refused")
    holds = store.tables.read("legal_holds").filter(pl.col("hold_id") == "H-1")
    assert holds["released_at"][0] is None
    release_legal_hold(store, audit.append, actor=sgt, hold_id="H-1", policy=load_policy(),
                       now=NOW)
    with pytest.raises(AdminRefused, match="already released"):
        release_legal_hold(store, audit.append, actor=sgt, hold_id="H-1",
                           policy=load_policy(), now=NOW)
    assert _last(audit, "hold")["outcome"] == "refused"


# -- S3: a thin comb polygon reaching every camera ---------------------------------------------
def _comb(cameras: pl.DataFrame) -> tuple[tuple[float, float], ...]:
    """A strip below the cameras with one thin tooth up to each camera (the red team's)."""
    w = 2e-5
    base_lo = float(cameras["lat"].min()) - 0.001
    base_hi = base_lo + 1e-5
    top: list[tuple[float, float]] = []
    last = -1e9
    for row in cameras.sort("lon").iter_rows(named=True):
        lon, lat = row["lon"], row["lat"]
        if lon - w <= last + w:
            lon = last + 2.5 * w
        top += [(lon - w, base_hi), (lon - w, lat + w), (lon + w, lat + w), (lon + w, base_hi)]
        last = lon
    return ((top[0][0] - w, base_lo), *top, (top[-1][0] + w, base_lo))


def _search(store: Store, audit: AuditLog, polygon: tuple[tuple[float, float], ...]) -> None:
    user = _member(store, "investigator")
    cases = store.tables.read("cases").filter(
        (pl.col("status") == "open") & pl.col("assigned_user_ids").list.contains(user)
    )
    if cases.is_empty():
        pytest.skip("no open case assigned to an investigator in this demo city")
    Gate(store, audit).search(
        user,
        SearchRequest(
            case_number=cases["case_number"][0], reason_code="kidnapping_abduction",
            reason_text="vehicle seen near the scene of the abduction", polygon=polygon,
        ),
    )


def test_a_thin_comb_polygon_over_every_camera_is_refused(opened) -> None:  # noqa: ANN001
    import shapely

    store, audit = opened
    polygon = _comb(store.tables.read("cameras"))
    shape = shapely.Polygon(polygon)
    km2 = shape.area * 110.574 * 111.32 * math.cos(math.radians(shape.centroid.y))
    assert shape.is_valid and km2 < load_policy().max_polygon_area_km2  # the area check passes
    with pytest.raises(SearchRefused, match="too broad|too many"):
        _search(store, audit, polygon)


def test_a_compact_polygon_over_too_many_cameras_is_refused(opened) -> None:  # noqa: ANN001
    store, audit = opened
    policy = load_policy()
    cameras = store.tables.read("cameras")
    # The cameras nearest the middle of the city, inside a box within the extent limit.
    lat0, lon0 = float(cameras["lat"].median()), float(cameras["lon"].median())
    half = policy.max_polygon_extent_m / 2 / math.sqrt(2) * 0.95
    dlat = half / 111_320
    dlon = half / (111_320 * math.cos(math.radians(lat0)))
    inside = cameras.filter(
        pl.col("lat").is_between(lat0 - dlat, lat0 + dlat)
        & pl.col("lon").is_between(lon0 - dlon, lon0 + dlon)
    )
    if inside.height <= policy.max_cameras_per_search:
        pytest.skip("this demo city has no dense enough block")
    box = (
        (lon0 - dlon, lat0 - dlat), (lon0 + dlon, lat0 - dlat),
        (lon0 + dlon, lat0 + dlat), (lon0 - dlon, lat0 + dlat),
    )
    with pytest.raises(SearchRefused, match="cameras"):
        _search(store, audit, box)


# -- S4: an old copy of the signed settings ----------------------------------------------------
def test_an_old_copy_of_the_settings_cannot_roll_retention_back(opened, tmp_path: Path) -> None:  # noqa: ANN001
    store, audit = opened
    admin = _member(store, "administrator")
    path = store.home / DEPARTMENT_SETTINGS_FILE
    policy = load_policy()
    set_retention_days(store, audit.append, actor=admin, retention_days=45, policy=policy, now=NOW)
    old = tmp_path / "old.json"
    shutil.copy2(path, old)
    set_retention_days(store, audit.append, actor=admin, retention_days=30, policy=policy, now=NOW)
    current = path.read_bytes()
    shutil.copy2(old, path)  # the attacker restores the 45-day copy
    try:
        with pytest.raises(WorkbenchError, match=DEPARTMENT_SETTINGS_FILE):
            load_department_settings(store.home, store.keystore)
    finally:
        path.write_bytes(current)
    assert load_department_settings(store.home, store.keystore).retention_days == 30


# -- S5: a hand-written agency registry --------------------------------------------------------
def test_a_hand_written_agency_registry_is_an_error(opened) -> None:  # noqa: ANN001
    store, audit = opened
    path = store.home / AGENCIES_FILE
    saved = path.read_bytes() if path.is_file() else None
    admin = _member(store, "administrator")
    approver = _member(store, "supervisor")
    path.write_text(
        "agencies:\n  - {name: HSI Los Angeles Task Force, organization_type: ca_local_agency,"
        " state: CA}\n"
    )
    before = store.tables.read("sharing_grants")
    try:
        with pytest.raises(WorkbenchError, match=AGENCIES_FILE):
            add_grant(
                store, audit.append, actor=admin, network_id="bpd-city",
                recipient_org="HSI Los Angeles Task Force", scope="search",
                approved_by=approver, basis="MOU", review_by_date=TODAY + dt.timedelta(days=90),
                policy=load_policy(), now=NOW,
            )
    finally:
        if saved is None:
            path.unlink()
        else:
            path.write_bytes(saved)
    assert store.tables.read("sharing_grants").equals(before)


def test_a_hand_edit_of_an_audited_registry_is_an_error(opened) -> None:  # noqa: ANN001
    store, audit = opened
    admin = _member(store, "administrator")
    add_agency(store, audit.append, actor=admin, name="Burbank Unified School District Police",
               organization_type="ca_local_agency", state="CA", policy=load_policy(), now=NOW)
    path = store.home / AGENCIES_FILE
    genuine = path.read_bytes()
    path.write_bytes(genuine.replace(b"Burbank Unified School District Police",
                                     b"HSI Los Angeles Task Force"))
    try:
        with pytest.raises(WorkbenchError, match=AGENCIES_FILE):
            add_agency(store, audit.append, actor=admin, name="Glendale Unified Police",
                       organization_type="ca_local_agency", state="CA", policy=load_policy(),
                       now=NOW)
    finally:
        path.write_bytes(genuine)


# -- S6: look-alike names, unknown types, states that contradict the type ----------------------
@pytest.mark.parametrize(
    ("name", "organization_type", "state"),
    [
        ("Homeland Security Investigations\u200b", "ca_local_agency", "CA"),
        ("Homeland Security Inv\u0435stigations", "ca_local_agency", "CA"),
        ("Homeland Security Investigation", "ca_local_agency", "CA"),
        ("Federal Bureau of lnvestigation", "ca_local_agency", "CA"),
        ("Phoenix Police Dept", "ca_local_agency", "AZ"),
        ("Foo Agency", "ca_local_agency ", "CA"),
        ("Bar Agency", "local", "CA"),
        ("Foo Federal Office", "federal", "CA"),
    ],
)
def test_a_look_alike_or_inconsistent_agency_is_refused(
    opened, name: str, organization_type: str, state: str,  # noqa: ANN001
) -> None:
    store, audit = opened
    admin = _member(store, "administrator")
    with pytest.raises(SharingRefused):
        add_agency(store, audit.append, actor=admin, name=name,
                   organization_type=organization_type, state=state, policy=load_policy(),
                   now=NOW)
    last = _last(audit, "sharing_change")
    assert (last["outcome"], json.loads(str(last["query_json"]))["name"]) == ("refused", name)


# -- S7: prohibited purposes phrased around the term lists --------------------------------------
REDTEAM_PHRASES = [
    "person lacks lawful presence in the country",
    "subject is an alien with no lawful status",
    "DHS requested location of vehicle",
    "target is out of status, notify feds for removal",
    "migrants",
    "migrant workers vans",
    "non-citizen driver",
    "noncitizen",
    "foreign national without visa",
    "expired visa",
    "greencard",
    "work permit check",
    "expulsión del país",
    "remoción del país",
    "Einwanderung Kontrolle",
    "kiểm tra di trú",
    "移民 check",
    "immi gration case",
    "the masjid on fridays",
    "vehicles at the gurdwara",
    "kingdom hall",
    "identify attendees of the sit-in",
    "vigil outside the clinic",
    "strikers at the plant",
    "the gay bar patrons",
    "press photographer at the scene",
    "blogger who criticized the mayor",
]


@pytest.mark.parametrize("phrase", REDTEAM_PHRASES)
def test_a_paraphrased_prohibited_purpose_is_refused(phrase: str) -> None:
    verdict = screen_text({"reason_text": phrase}, policy=load_policy()).verdict
    assert verdict == "refuse", phrase


def test_a_near_search_over_too_many_cameras_is_refused(opened) -> None:  # noqa: ANN001
    """A radius within the policy's limit may still reach more cameras than one search may."""
    store, audit = opened
    policy = load_policy()
    cameras = store.tables.read("cameras")
    radius = float(policy.max_radius_m)

    def reached(lat: float, lon: float) -> int:
        dlat = (cameras["lat"] - lat) * 111_320
        dlon = (cameras["lon"] - lon) * 111_320 * math.cos(math.radians(lat))
        return int(((dlat**2 + dlon**2) <= (radius * 0.95) ** 2).sum())

    lat, lon = max(
        zip(cameras["lat"], cameras["lon"], strict=True), key=lambda p: reached(p[0], p[1])
    )
    if reached(lat, lon) <= policy.max_cameras_per_search:
        pytest.skip("this demo city has no dense enough neighbourhood")
    user = _member(store, "investigator")
    cases = store.tables.read("cases").filter(
        (pl.col("status") == "open") & pl.col("assigned_user_ids").list.contains(user)
    )
    if cases.is_empty():
        pytest.skip("no open case assigned to an investigator in this demo city")
    with pytest.raises(SearchRefused, match="cameras"):
        Gate(store, audit).search(
            user,
            SearchRequest(
                case_number=cases["case_number"][0], reason_code="kidnapping_abduction",
                reason_text="vehicle seen near the scene of the abduction",
                near=(lat, lon, radius),
            ),
        )
