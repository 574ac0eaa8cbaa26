"""Attacks on the gate (issue #14): each one must be refused, detected or neutralised."""

import datetime as dt
import json
import math

import polars as pl
import pytest
from pydantic import ValidationError

from alpr_workbench.governance.approvals import ApprovalRefused, grant_approval
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRefused, SearchRequest
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store
from alpr_workbench.synth import CityConfig
from conftest import PASSPHRASE
from gate_fixtures import build_small_city, city_user

CONFIG = CityConfig(days=3, scale=0.05, seed=11)
NOW = dt.datetime.combine(CONFIG.end_date, dt.time(18, 0), tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(days=10)
CASE, OTHER_CASE = "BPD-2026-910001", "BPD-2026-910002"


USERS = [
    city_user("a.analyst", "analyst", since=T0),
    city_user("a.sgt", "supervisor", "Sergeant", since=T0),
    city_user("a.sgt2", "supervisor", "Sergeant", since=T0),
    city_user("a.sgt.gone", "supervisor", "Sergeant", since=T0, is_active=False),
    city_user("dispatch1", "investigator", "Police Officer", since=T0),
]


@pytest.fixture(scope="module")
def city_home(tmp_path_factory):
    return build_small_city(
        tmp_path_factory.mktemp("attack-gate") / "home", CONFIG, USERS,
        theft=(CASE, ["a.analyst", "a.sgt", "dispatch1"]),
        robbery=(OTHER_CASE, ["a.analyst"]), opened_at=T0,
    )


@pytest.fixture
def env(city_home):
    store = Store.open(city_home, passphrase=PASSPHRASE)
    audit = AuditLog.open(store.home, store.keystore)
    yield store, audit, Gate._for_testing(store, audit, clock=lambda: NOW)
    audit.close()


def _search(gate: Gate, user: str = "a.analyst", **overrides: object):
    request = {
        "case_number": CASE,
        "reason_code": "motor_vehicle_theft",
        "reason_text": "stolen silver Civic seen near Magnolia",
        **overrides,
    }
    return gate.search(user, SearchRequest(**request))


# -- 1. a wildcard made of separators is a dragnet ------------------------------------------
@pytest.mark.parametrize(
    "pattern",
    ["---*", "   *", "\u2003\u2003\u2003*", "\u00a0\u00a0\u00a0*", "\t\n\r*", "-?-*", "ẞSS*"],
)
def test_wildcard_padded_with_separators_is_refused(env, pattern):
    _, _, gate = env
    with pytest.raises((SearchRefused, ValidationError)):
        _search(gate, plate_pattern=pattern)


@pytest.mark.parametrize("plate", ["7ABC\u2003123", "7ABC\u200b123", "７ABC123", "7abc123ß"])
def test_exact_plate_with_unicode_tricks_is_refused(plate):
    with pytest.raises(ValidationError):
        SearchRequest(case_number=CASE, reason_code="robbery", plate=plate)


def test_request_is_normalised_once_so_checks_and_query_agree():
    request = SearchRequest(
        case_number=CASE, reason_code="robbery", plate="7abc-123", plate_pattern="7ab?12*"
    )
    assert (request.plate, request.plate_pattern) == ("7ABC123", "7AB?12*")


def test_audit_flags_a_wildcard_only_or_very_broad_search():
    from alpr_workbench.reports.audit_checks import flag_search_patterns
    from alpr_workbench.schema import empty_frame

    policy = load_policy()
    rows = [
        {
            "event_id": f"e{i}",
            "occurred_at": NOW,
            "event_type": "search",
            "user_id": "a.analyst",
            "organization": "Burbank Police Department",
            "reason_code": "robbery",
            "reason_text": "robbery suspect vehicle seen leaving the bank",
            "case_number": CASE,
            "outcome": "allowed",
            "networks_searched": 1,
            "plate_queried": plate,
            "row_count": count,
            "window_from": NOW - dt.timedelta(days=2),
            "window_to": NOW,
        }
        for i, (plate, count) in enumerate(
            [("---*", 5), ("*", 5), (None, policy.broad_search_rows + 1), ("7ABC123", 3)]
        )
    ]
    events = pl.concat([empty_frame("audit_events"), pl.DataFrame(rows)], how="diagonal_relaxed")
    flags = flag_search_patterns(events, policy=policy, retention_days=30, cases=None)
    broad = flags.filter(pl.col("pattern") == "broad_search")
    assert sorted(broad["event_id"]) == ["e0", "e1", "e2"]


# -- 2. unbounded filters ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "near", [(34.18, -118.31, 1e9), (34.18, -118.31, math.inf), (34.18, -118.31, math.nan),
             (math.nan, -118.31, 100.0), (34.18, -118.31, -1.0)]
)  # fmt: skip
def test_near_with_a_huge_or_non_finite_radius_is_refused(env, near):
    _, _, gate = env
    with pytest.raises((SearchRefused, ValidationError)):
        _search(gate, near=near)


def test_polygon_covering_the_world_is_refused(env):
    _, _, gate = env
    world = ((-180.0, -90.0), (180.0, -90.0), (180.0, 90.0), (-180.0, 90.0))
    with pytest.raises(SearchRefused, match="area"):
        _search(gate, polygon=world)
    with pytest.raises(ValidationError):
        _search(gate, polygon=((0.0, 0.0), (math.inf, 0.0), (0.0, 1.0)))


def test_every_camera_at_once_is_refused(env):
    store, _, gate = env
    cameras = tuple(store.tables.read("cameras")["camera_id"])
    assert len(cameras) > load_policy().max_cameras_per_search
    with pytest.raises(SearchRefused, match="cameras"):
        _search(gate, camera_ids=cameras)


def test_a_large_result_is_cut_and_says_so(env):
    store, audit, _ = env
    policy = load_policy().model_copy(update={"max_rows": 50})  # the test city is small
    gate = Gate._for_testing(store, audit, clock=lambda: NOW, policy=policy)
    camera = store.reads.query(columns=["camera_id"])["camera_id"].mode()[0]
    result = _search(gate, camera_ids=(camera,))
    assert result.total_rows > policy.max_rows
    assert result.truncated and result.rows.height == policy.max_rows
    assert audit.events().row(-1, named=True)["row_count"] == policy.max_rows


def test_larger_results_need_a_real_supervisor_and_are_audited_as_such(env):
    store, audit, gate = env
    camera = store.reads.query(columns=["camera_id"])["camera_id"].mode()[0]
    # Approvals come from the supervisor's own session (see test_attack_approvals.py).
    def grant(actor: str, searcher: str = "a.analyst"):
        return grant_approval(store, audit.append, actor=actor, searcher_user_id=searcher,
                              case_number=CASE, policy=gate.policy, now=NOW)

    for bad in ("a.analyst", "a.sgt.gone", "nobody"):
        with pytest.raises(ApprovalRefused, match="approv"):
            grant(bad)
    with pytest.raises(ApprovalRefused, match="approv"):  # a supervisor cannot approve themself
        grant("a.sgt", "a.sgt")
    approval = grant("a.sgt2")
    result = _search(gate, camera_ids=(camera,), approval_id=approval.approval_id)
    assert not result.truncated and result.rows.height == result.total_rows
    last = audit.events().row(-1, named=True)
    assert last["outcome"] == "allowed"
    assert json.loads(last["query_json"])["approval_id"] == approval.approval_id


# -- 3. retention from the searcher's environment -----------------------------------------------
def test_retention_in_the_environment_does_not_widen_the_window(env, monkeypatch):
    _, _, gate = env
    monkeypatch.setenv("ALPR_WORKBENCH_RETENTION_DAYS", "3650")
    plate = "7ABC123"
    with pytest.raises(SearchRefused, match="retention"):
        _search(gate, plate=plate, window_from=NOW - dt.timedelta(days=400))
    gate = Gate._for_testing(gate._store, AuditLog.open(gate._store.home, gate._store.keystore),
                             clock=lambda: NOW)  # fmt: skip
    with pytest.raises(SearchRefused, match="retention"):
        _search(gate, plate=plate, window_from=NOW - dt.timedelta(days=400))


def test_retention_in_workbench_toml_does_not_widen_the_window(env):
    store, _, gate = env
    toml = store.home / "workbench.toml"
    toml.write_text("retention_days = 3650\n")
    try:
        with pytest.raises(SearchRefused, match="30-day retention"):
            _search(gate, plate="7ABC123", window_from=NOW - dt.timedelta(days=400))
    finally:
        toml.unlink()


def test_a_tampered_settings_file_is_a_clear_error(tmp_path):
    from alpr_workbench.config import (
        DEPARTMENT_SETTINGS_FILE,
        load_department_settings,
        write_department_settings,
    )
    from alpr_workbench.errors import WorkbenchError

    store = Store.create(tmp_path / "home", passphrase=PASSPHRASE)
    assert load_department_settings(store.home, store.keystore).retention_days == 30
    write_department_settings(store.home, store.keystore, retention_days=14)
    assert load_department_settings(store.home, store.keystore).retention_days == 14
    path = store.home / DEPARTMENT_SETTINGS_FILE
    path.write_text(path.read_text().replace("14", "3650"))
    with pytest.raises(WorkbenchError, match="tampered"):
        load_department_settings(store.home, store.keystore)
    path.unlink()  # removing it does not restore the default either
    with pytest.raises(WorkbenchError, match="missing"):
        load_department_settings(store.home, store.keystore)


# -- 4. meaningless "other" reasons; supervisors outside their cases -------------------------
@pytest.mark.parametrize(
    "text", ["x", "asdf", "asdf qwer zxcv", "aaaaaaaaaaaaaaaaaaaa", "jkl; jkl; jkl;", "sdfg hjkl"]
)
def test_other_with_meaningless_text_is_refused(env, text):
    _, _, gate = env
    with pytest.raises(SearchRefused, match="specific"):
        _search(gate, plate="7ABC123", reason_code="other", reason_text=text)


def test_other_with_a_real_explanation_passes(env):
    _, _, gate = env
    text = "welfare check on an elderly driver reported lost by family"
    assert _search(gate, plate="7ABC123", reason_code="other", reason_text=text).total_rows >= 0


def test_supervisor_cannot_search_a_case_not_assigned_to_them(env):
    _, _, gate = env
    with pytest.raises(SearchRefused, match="not assigned"):
        _search(gate, "a.sgt", plate="7ABC123", case_number=OTHER_CASE)


# -- 5. gate inputs the caller controls ----------------------------------------------------
class _Blackhole:
    def append(self, event):
        return type("R", (), {"event_id": "nothing-recorded"})()


def test_caller_cannot_pass_a_policy_clock_or_settings(env):
    store, audit, _ = env
    for kwargs in (
        {"clock": lambda: NOW},
        {"policy": load_policy()},
        {"settings": None},
    ):
        with pytest.raises(TypeError):
            Gate(store, audit, **kwargs)


def test_an_audit_sink_that_records_nothing_is_refused(env, tmp_path):
    store, _, _ = env
    with pytest.raises(TypeError, match="AuditLog"):
        Gate(store, _Blackhole())
    other = Store.create(tmp_path / "elsewhere", passphrase=PASSPHRASE)
    elsewhere = AuditLog.open(other.home, other.keystore)
    with pytest.raises(ValueError, match="audit log"):
        Gate(store, elsewhere)


# -- 6. one generic-account rule ------------------------------------------------------------
def test_generic_account_the_audit_flags_cannot_search(env):
    _, _, gate = env
    with pytest.raises(SearchRefused, match="generic"):
        _search(gate, "dispatch1", plate="7ABC123")


# -- the command line says when a result was cut ------------------------------------------------
def test_cli_dragnet_is_refused_and_a_cut_result_says_so(tmp_path):
    from typer.testing import CliRunner

    from alpr_workbench.cli import app
    from demo_service_fixtures import start_demo_service
    from service_fixtures import stop_service

    runner = CliRunner()
    home = tmp_path / "home"
    built = runner.invoke(
        app, ["demo", "--data-dir", str(home), "--days", "2", "--scale", "0.05", "--no-serve"]
    )
    assert built.exit_code == 0, built.output
    store, policy = Store.open(home), load_policy()
    counts = store.reads.query(columns=["camera_id"])["camera_id"].value_counts(sort=True)
    top = counts["camera_id"].head(policy.max_cameras_per_search)
    cameras = [arg for camera in top for arg in ("--camera", camera)]
    served = start_demo_service(home)  # the search runs in the service, as the signed-in user
    try:
        session = tmp_path / "session.json"
        account = served.sign_in("analyst", session)
        case = account.search[account.search.index("--case") + 1]
        base = ["search", "--session-file", str(session), "--case", case, "--reason",
                "motor_vehicle_theft", "--reason-text", "stolen silver Civic on Olive"]  # fmt: skip
        dragnet = runner.invoke(app, [*base, "--pattern", "---*"])
        cut = runner.invoke(app, [*base, *cameras])
    finally:
        stop_service(served.service)
    assert dragnet.exit_code != 0 and "read(s)" not in dragnet.output
    assert cut.exit_code == 0, cut.output
    assert "showing 200 of" in cut.output
