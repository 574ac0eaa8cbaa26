"""The dashboard's state object, without a browser: figures, filters, refusals.

Signing in (the service's accounts: password and TOTP) is tested against the real service in
tests/attacks/test_attack_dashboard_service.py and tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.analytics import efficacy_report, monthly_trend, trend
from alpr_workbench.dashboard import (
    PLATE_LEVEL_COLUMNS,
    DashboardRefused,
    DashboardSource,
    DashboardState,
    allowed_dashboard_users,
)
from alpr_workbench.dashboard.auth import DASHBOARD_ROLES
from alpr_workbench.dashboard.views import DashboardApp, create_app
from alpr_workbench.demo import build_demo
from alpr_workbench.reports import build_efficacy_report

COMMAND, AUDITOR, ADMIN = "sjohnson", "kdavis", "pjohnson"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dashboard") / "home"
    build_demo(home, days=7, scale=0.05)
    return home


@pytest.fixture(scope="module")
def source(home: Path):
    src = DashboardSource.open(home)
    yield src
    src.close()


@pytest.fixture
def state(source: DashboardSource) -> DashboardState:
    return DashboardState(source=source, user_id=COMMAND, default_days=None)


def _reference(source: DashboardSource, state: DashboardState, networks=None) -> dict:
    if networks is None:
        return build_efficacy_report(
            source.store, source.audit, user_id=COMMAND, start=state.start, end=state.end
        ).to_dict()
    summary = source.gate.read_summary(COMMAND, start=state.start, end=state.end)
    return efficacy_report(
        reads_daily=summary.reads_daily,
        unique_vehicles=summary.unique_vehicles,
        hits=source.store.tables.read("hits"),
        outcomes=source.store.tables.read("outcomes"),
        audit_events=source.audit.events(),
        networks=source.store.tables.read("networks"),
        start=state.start,
        end=state.end,
        program_budget_usd=source.settings.program_budget_usd,
        staff_hours_saved_per_recovery=source.settings.staff_hours_saved_per_recovery,
        network_ids=networks,
    ).to_dict()


def test_figures_equal_the_efficacy_report(source, state):
    assert state.figures == _reference(source, state)
    assert state.figures["reads"] > 0 and state.figures["hits"] > 0
    assert state.start == state.first_day and state.end == state.last_day
    assert state.message == ""


def test_changing_the_period_recomputes(source, state):
    whole = state.figures
    state.set_last_days(2)
    assert (state.end - state.start).days == 1
    assert state.figures == _reference(source, state)
    assert state.figures["reads"] < whole["reads"]
    assert state.trend_every == "1d" and state.trend_frame.height == 2
    state.set_period(state.first_day + dt.timedelta(days=1), state.first_day + dt.timedelta(3))
    assert state.figures == _reference(source, state)
    assert state.trend_frame["reads"].sum() == state.figures["reads"]


def test_changing_the_network_recomputes(source, state):
    whole = state.figures
    state.network_ids = ["bpd-city"]
    assert state.figures == _reference(source, state, ["bpd-city"])
    assert state.figures["reads"] < whole["reads"]
    assert set(state.camera_points["network_id"]) == {"bpd-city"}
    assert state.camera_points["reads"].sum() == state.figures["reads"]
    state.network_ids = []
    assert state.figures == whole


def test_recovery_heat_map_counts_the_recoveries(state):
    assert state.recovery_cells["recoveries"].sum() == state.figures["recoveries"]
    assert state.recovery_cells.height == state.recovery_cells["cell_id"].n_unique()
    assert state.coverage_cells["is_covered"].any()
    assert 0 < state.coverage_share_pct < 100
    assert state.outline.height > 3


def test_an_inverted_period_is_reported_not_computed(state):
    before = state.figures
    state.param.update(start=state.last_day, end=state.first_day)
    assert "before it starts" in state.message
    assert state.figures == before


def test_no_exposed_frame_has_plate_or_read_level_columns(state):
    state.set_last_days(3)
    frames = state.exposed_frames()
    assert {"trend_frame", "camera_points", "recovery_cells", "audit_health"} <= set(frames)
    for name, frame in frames.items():
        assert not set(frame.columns) & set(PLATE_LEVEL_COLUMNS), name


def test_trend_matches_monthly_trend(source):
    summary = source.gate.read_summary(
        COMMAND, start=source.tables().first_day, end=source.tables().last_day
    )
    t = source.tables()
    monthly = trend(reads_daily=summary.reads_daily, hits=t.hits, outcomes=t.outcomes, every="1mo")
    expected = monthly_trend(reads_daily=summary.reads_daily, hits=t.hits, outcomes=t.outcomes)
    assert monthly.rename({"period_start": "month"}).equals(expected)
    daily = trend(reads_daily=summary.reads_daily, hits=t.hits, outcomes=t.outcomes, every="1d")
    assert daily["hits"].sum() == t.hits.height
    assert daily["reads"].sum() == summary.reads_daily["reads"].sum()


def test_audit_health_default_checks(state):
    health = state.audit_health
    assert {"check_id", "title", "passed", "flagged"} <= set(health.columns)
    by_id = {r["check_id"]: r for r in health.iter_rows(named=True)}
    assert by_id["audit_log_chain"]["passed"] is True
    assert by_id["sharing_drift"]["passed"] is True
    assert by_id["searches_refused_30d"]["passed"] is None


def test_audit_health_is_injectable(home):
    def checks() -> pl.DataFrame:
        return pl.DataFrame(
            {"check_id": ["x"], "title": ["Planted check"], "passed": [False], "flagged": [3]}
        )

    src = DashboardSource.open(home, audit_health=checks)
    try:
        state = DashboardState(source=src, user_id=AUDITOR)
        assert state.audit_health.row(0, named=True)["flagged"] == 3
    finally:
        src.close()


@pytest.mark.parametrize(
    ("user_id", "why"),
    [
        ("nobody-here", "unknown user"),
        ("hsi.agent", "job title"),  # federal agent (refused on several counts)
        ("", "nobody is logged in"),
    ],
)
def test_unknown_absent_and_outside_users_are_refused(source, user_id, why):
    with pytest.raises(DashboardRefused, match=why):
        DashboardState(source=source, user_id=user_id)
    page = create_app(source, user_id=user_id)
    assert "Access refused" in page.main[0].object


def test_auditor_and_administrator_get_in(source):
    for user_id in (AUDITOR, ADMIN):
        assert DashboardState(source=source, user_id=user_id, default_days=1).figures["reads"] > 0


def test_allowed_users_are_the_dashboard_roles_in_good_standing(source):
    """Command staff, auditors and administrators see the program; those who work hits too."""
    users = source.store.tables.read("users")
    allowed = allowed_dashboard_users(source.store)
    roles = set(users.filter(pl.col("user_id").is_in(allowed))["role"])
    assert roles == set(DASHBOARD_ROLES)
    assert set(DASHBOARD_ROLES) == {"command_staff", "auditor", "administrator", "analyst",
                                    "investigator", "supervisor"}
    assert COMMAND in allowed and "egarcia" in allowed  # an analyst: the hit queue
    assert "hsi.agent" not in allowed


def test_the_page_assembles_for_an_allowed_user(source):
    from bokeh.document import Document

    state = DashboardState(source=source, user_id=COMMAND, default_days=3)
    page = DashboardApp(state=state).template()
    page.server_doc(Document())
    state.set_last_days(1)
    assert state.compute_s < 5


@pytest.mark.parametrize("every", ["1w", "1mo"])
def test_longer_periods_trend_by_week_or_month(monkeypatch, source, every):
    import alpr_workbench.dashboard.state as state_module

    monkeypatch.setattr(state_module, "_trend_every", lambda start, end: every)
    state = DashboardState(source=source, user_id=COMMAND, default_days=None)
    assert state.trend_every == every
    assert state.trend_frame["reads"].sum() == state.figures["reads"]
    assert state.trend_frame["hits"].sum() == state.figures["hits"]
