"""The dashboard's state: filters in, aggregates out (docs/conventions.md §13).

:class:`DashboardSource` is shared by every session of one server: it opens the store and the
audit log once, keeps the reference tables, the city outline and the camera coverage grid, and
caches what the gate returns per user and period. :class:`DashboardState` is one session: a
``param`` object holding the filters (``start``, ``end``, ``network_ids``) and the figures
derived from them, recomputed when a filter changes.

Everything the state exposes is an aggregate. Plate-level inputs (hits, outcomes and their
places) stay inside the source; the state hands out counts per period, network, camera or
grid cell, never a row per read, hit or outcome. Both are tested without a browser.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import param
import polars as pl

from alpr_workbench.analytics import (
    EfficacyReport,
    city_outline,
    coverage_grid,
    coverage_share,
    efficacy_report,
    heat_grid,
    trend,
)
from alpr_workbench.config import Settings, load_settings
from alpr_workbench.dashboard.auth import DashboardRefused, dashboard_user_problem
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, ReadSummary
from alpr_workbench.governance.registry import get_user
from alpr_workbench.governance.sharing import sharing_drift
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.store import Store

__all__ = [
    "AUDIT_HEALTH_COLUMNS",
    "PLATE_LEVEL_COLUMNS",
    "AuditHealth",
    "DashboardSource",
    "DashboardState",
    "default_audit_health",
]

#: A callable returning the latest audit checks (see :data:`AUDIT_HEALTH_COLUMNS`).
AuditHealth = Callable[[], pl.DataFrame]
#: Columns an audit-health callable must return; a ``detail`` column is shown when present.
AUDIT_HEALTH_COLUMNS: dict[str, pl.DataType] = {
    "check_id": pl.String(),
    "title": pl.String(),
    "passed": pl.Boolean(),
    "flagged": pl.Int64(),
}
#: Columns that would put plate- or read-level data on the dashboard; no exposed frame has one.
PLATE_LEVEL_COLUMNS: tuple[str, ...] = (
    "plate",
    "read_plate",
    "listed_plate",
    "plate_queried",
    "image_ref",
    "alternate_plates",
    "read_id",
    "hit_id",
    "outcome_id",
    "entry_id",
)

_REFUSED_WINDOW = dt.timedelta(days=30)
_CELL_M = 400.0
_COVER_RADIUS_M = 300.0


def default_audit_health(store: Store, audit: AuditLog) -> AuditHealth:
    """The audit checks that exist today, as an :data:`AuditHealth` callable.

    Checks: the audit log's hash chain verifies; searches refused by the gate in the last
    30 days (informational: a refusal is the gate working, ``passed`` is null); the sharing
    grants match the last audited change (no drift).

    Parameters
    ----------
    store, audit
        The workbench store and its audit log.

    Returns
    -------
    callable
        Returns a frame with :data:`AUDIT_HEALTH_COLUMNS` plus ``detail``.
    """

    def run() -> pl.DataFrame:
        rows: list[dict[str, Any]] = []
        verification = audit.verify()
        rows.append(
            {
                "check_id": "audit_log_chain",
                "title": "Audit log verifies (hash chain, HMAC, head anchor)",
                "passed": verification.ok,
                "flagged": 0 if verification.ok else 1,
                "detail": (
                    f"{verification.records:,} records verified"
                    if verification.ok
                    else f"record {verification.first_bad_seq}: {verification.problem}"
                ),
            }
        )
        if not verification.ok:
            # events() refuses a log that fails verification; the other checks cannot run.
            for check_id, title in (
                ("searches_refused_30d", "Searches refused by the gate, last 30 days"),
                ("sharing_drift", "Sharing grants match the audit trail"),
            ):
                rows.append(
                    {
                        "check_id": check_id,
                        "title": title,
                        "passed": None,
                        "flagged": 0,
                        "detail": "not run: the audit log failed verification",
                    }
                )
            return pl.DataFrame(rows, schema={**AUDIT_HEALTH_COLUMNS, "detail": pl.String()})
        events = audit.events()
        since = dt.datetime.now(dt.UTC) - _REFUSED_WINDOW
        refused = events.filter(
            pl.col("event_type").is_in(["search", "vendor_search", "retro_match"])
            & (pl.col("outcome") == "refused")
            & (pl.col("occurred_at") >= since)
        ).height
        rows.append(
            {
                "check_id": "searches_refused_30d",
                "title": "Searches refused by the gate, last 30 days",
                "passed": None,
                "flagged": refused,
                "detail": "each refusal is in the audit log with its reason",
            }
        )
        changes = events.filter(pl.col("event_type") == "sharing_change").sort("seq")
        drift = sharing_drift(store, changes)
        rows.append(
            {
                "check_id": "sharing_drift",
                "title": "Sharing grants match the audit trail",
                "passed": drift is None,
                "flagged": 0 if drift is None else 1,
                "detail": drift or "grants table matches the last audited change",
            }
        )
        return pl.DataFrame(rows, schema={**AUDIT_HEALTH_COLUMNS, "detail": pl.String()})

    return run


def _trend_every(start: dt.date, end: dt.date) -> str:
    days = (end - start).days + 1
    return "1d" if days <= 45 else "1w" if days <= 200 else "1mo"


def _rings(cells: Any) -> pl.DataFrame:
    """Cell rings as list columns ``lon``/``lat`` (exterior only), keyed by ``cell_id``."""
    import shapely

    lons, lats = [], []
    for geom in cells.geometry.values:
        xy = shapely.get_coordinates(geom.exterior)
        lons.append(xy[:, 0].tolist())
        lats.append(xy[:, 1].tolist())
    return pl.DataFrame(
        {"cell_id": cells["cell_id"].to_numpy(), "lon": lons, "lat": lats},
        schema={"cell_id": pl.Int64, "lon": pl.List(pl.Float64), "lat": pl.List(pl.Float64)},
    )


@dataclass(frozen=True)
class _Tables:
    hits: pl.DataFrame
    outcomes: pl.DataFrame
    networks: pl.DataFrame
    cameras: pl.DataFrame
    audit_events: pl.DataFrame
    first_day: dt.date
    last_day: dt.date
    loaded_at: float


class DashboardSource:
    """What every session of one dashboard server shares: store, audit log, gate and caches.

    Parameters
    ----------
    store, audit
        The opened store and its audit log (see :meth:`open`).
    audit_health
        Returns the latest audit checks (:data:`AUDIT_HEALTH_COLUMNS`); default
        :func:`default_audit_health`.
    settings, policy
        Default: the data directory's settings and the department policy.
    ttl_s
        Seconds before reference tables, audit events and audit health are read again (and
        the gate's cached summaries dropped), so new data shows up without a restart.
    cell_m
        Grid cell size of the maps, metres.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from alpr_workbench.demo import build_demo
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> _ = build_demo(home, days=2, scale=0.01)
    >>> from alpr_workbench.dashboard.auth import allowed_dashboard_users
    >>> source = DashboardSource.open(home)
    >>> user = allowed_dashboard_users(source.store)[0]
    >>> state = DashboardState(source=source, user_id=user)
    >>> state.figures["hits"] == state.report.hits
    True
    >>> "plate" in state.camera_points.columns
    False
    >>> source.close()
    """

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        *,
        audit_health: AuditHealth | None = None,
        settings: Settings | None = None,
        policy: Policy | None = None,
        ttl_s: float = 300.0,
        cell_m: float = _CELL_M,
    ) -> None:
        self.store = store
        self.audit = audit
        self.settings = settings or load_settings(store.home)
        self.policy = policy or load_policy(self.settings.policy_file)
        self.gate = Gate(store, audit)
        self.ttl_s = ttl_s
        self.cell_m = cell_m
        self._audit_health_fn = audit_health or default_audit_health(store, audit)
        self._lock = threading.RLock()
        self._summaries: dict[tuple[str, dt.date, dt.date], ReadSummary] = {}
        self._tables: _Tables | None = None
        self._health: tuple[float, pl.DataFrame] | None = None
        self._geo: dict[str, Any] | None = None

    @classmethod
    def open(cls, home: Path, **kwargs: Any) -> DashboardSource:
        """Open the store and audit log in ``home`` (keyword arguments as for the class)."""
        store = Store.open(Path(home))
        return cls(store, AuditLog.open(Path(home), store.keystore), **kwargs)

    @property
    def home(self) -> Path:
        """The data directory."""
        return Path(self.store.home)

    def close(self) -> None:
        """Close the audit log."""
        self.audit.close()

    def forget(self) -> None:
        """Drop the cached tables and summaries: the next request reads them again."""
        with self._lock:
            self._tables = None
            self._summaries.clear()

    # -- cached inputs -------------------------------------------------------------------
    def tables(self) -> _Tables:
        """Reference tables and audit events, read again after ``ttl_s`` seconds."""
        with self._lock:
            t = self._tables
            if t is None or time.monotonic() - t.loaded_at > self.ttl_s:
                days = self.store.reads.days()
                if not days:
                    raise DashboardRefused(
                        "the store holds no reads yet (run `alpr-workbench demo`?)"
                    )
                read = self.store.tables.read
                t = _Tables(
                    hits=read("hits"),
                    outcomes=read("outcomes"),
                    networks=read("networks"),
                    cameras=read("cameras"),
                    audit_events=self.audit.events(),
                    first_day=days[0],
                    last_day=days[-1],
                    loaded_at=time.monotonic(),
                )
                self._tables = t
                self._summaries.clear()
            return t

    def read_summary(self, user_id: str, start: dt.date, end: dt.date) -> ReadSummary:
        """The gate's read aggregate for ``user_id`` over ``start``..``end``, cached.

        The first request of each user for a period goes through the gate (checked and
        audited there); repeats within ``ttl_s`` come from the cache.
        """
        self.tables()  # drops stale summaries
        key = (user_id, start, end)
        with self._lock:
            hit = self._summaries.get(key)
        if hit is not None:
            return hit
        summary = self.gate.read_summary(user_id, start=start, end=end)
        with self._lock:
            if len(self._summaries) > 64:
                self._summaries.pop(next(iter(self._summaries)))
            self._summaries[key] = summary
        return summary

    def audit_health(self) -> pl.DataFrame:
        """The latest audit checks, run again after ``ttl_s`` seconds.

        Raises
        ------
        WorkbenchError
            If the callable's frame lacks a required column.
        """
        with self._lock:
            if self._health is not None and time.monotonic() - self._health[0] <= self.ttl_s:
                return self._health[1]
            frame = self._audit_health_fn()
            missing = [c for c in AUDIT_HEALTH_COLUMNS if c not in frame.columns]
            if missing:
                raise DashboardRefused(f"audit health lacks column(s) {', '.join(missing)}")
            frame = frame.with_columns(pl.col(c).cast(t) for c, t in AUDIT_HEALTH_COLUMNS.items())
            self._health = (time.monotonic(), frame)
            return frame

    def geo(self) -> dict[str, Any]:
        """City outline, camera coverage grid and the empty heat grid (computed once)."""
        with self._lock:
            if self._geo is not None:
                return self._geo
            import shapely

            from alpr_workbench.analytics import cameras_gdf

            cameras = self.tables().cameras
            outline = city_outline(cameras)
            points = cameras_gdf(cameras)
            cover = coverage_grid(
                points, outline=outline, cell_m=self.cell_m, radius_m=_COVER_RADIUS_M
            )
            ring = shapely.get_coordinates(outline.exterior)
            empty = heat_grid(
                pl.DataFrame(schema={"lat": pl.Float64, "lon": pl.Float64}),
                outline=outline,
                cell_m=self.cell_m,
            )
            self._geo = {
                "outline": outline,
                "outline_ring": pl.DataFrame({"lon": ring[:, 0], "lat": ring[:, 1]}),
                "coverage_cells": _rings(cover).join(
                    pl.DataFrame(
                        {
                            "cell_id": cover["cell_id"].to_numpy(),
                            "distance_m": cover["distance_m"].to_numpy(),
                            "is_covered": cover["is_covered"].to_numpy(),
                        }
                    ),
                    on="cell_id",
                ),
                "coverage_share": coverage_share(points, outline=outline, radius_m=_COVER_RADIUS_M),
                "heat_rings": _rings(empty),
            }
            return self._geo


def _network_names(networks: pl.DataFrame) -> dict[str, str]:
    return {
        f"{row['name']} ({row['network_id']})": row["network_id"]
        for row in networks.sort("network_id").iter_rows(named=True)
    }


class DashboardState(param.Parameterized):
    """One session's filters and the aggregates derived from them.

    Create it for a logged-in user; it refuses users who may not open the dashboard
    (:func:`~alpr_workbench.dashboard.auth.dashboard_user_problem`) before computing anything,
    and every read aggregate it shows comes through the gate as that user.

    Parameters
    ----------
    source
        The server's shared :class:`DashboardSource`.
    user_id
        The logged-in workbench user.
    default_days
        Initial period: the last ``default_days`` stored days (None: every stored day).

    Raises
    ------
    DashboardRefused
        If the user may not open the dashboard.
    """

    source = param.ClassSelector(class_=DashboardSource, constant=True)
    user_id = param.String(constant=True)
    role = param.String(constant=True, doc="The user's workbench role.")
    full_name = param.String(constant=True)

    start = param.CalendarDate(doc="First day of the period (UTC), inclusive.")
    end = param.CalendarDate(doc="Last day of the period (UTC), inclusive.")
    network_ids = param.ListSelector(default=[], objects=[], doc="Networks; empty = all.")

    first_day = param.CalendarDate(constant=True, doc="First stored day.")
    last_day = param.CalendarDate(constant=True, doc="Last stored day.")

    report = param.ClassSelector(class_=EfficacyReport, doc="Efficacy and impact (aggregates).")
    figures = param.Dict(default={}, doc="The report as a flat dictionary.")
    trend_frame = param.ClassSelector(class_=pl.DataFrame, doc="Counts per day/week/month.")
    trend_every = param.String(default="1d")
    funnel = param.ClassSelector(class_=pl.DataFrame, doc="Distinct hits per funnel stage.")
    hits_by_source = param.ClassSelector(class_=pl.DataFrame)
    camera_points = param.ClassSelector(
        class_=pl.DataFrame, doc="Cameras (place, network) with reads in the period."
    )
    recovery_cells = param.ClassSelector(
        class_=pl.DataFrame, doc="Grid cells with the recoveries counted in each."
    )
    coverage_cells = param.ClassSelector(class_=pl.DataFrame, doc="Grid cells, camera coverage.")
    outline = param.ClassSelector(class_=pl.DataFrame, doc="City outline ring (lon, lat).")
    coverage_share_pct = param.Number(default=None, allow_None=True)
    audit_health = param.ClassSelector(class_=pl.DataFrame, doc="Latest audit checks.")
    message = param.String(default="", doc="A problem with the filters, in words.")
    compute_s = param.Number(default=0.0, doc="Seconds the last update took.")

    def __init__(
        self,
        *,
        source: DashboardSource,
        user_id: str,
        default_days: int | None = 30,
        **params: Any,
    ) -> None:
        problem = dashboard_user_problem(source.store, user_id, policy=source.policy)
        if problem is not None:
            raise DashboardRefused(problem)
        user = get_user(source.store, user_id)
        assert user is not None
        if not source.policy.may(user.role, "view_aggregates"):
            raise DashboardRefused(f"role {user.role!r} may not view aggregates")
        tables = source.tables()
        first, last = tables.first_day, tables.last_day
        start = first if default_days is None else max(first, last - dt.timedelta(default_days - 1))
        super().__init__(
            source=source,
            user_id=user_id,
            role=user.role,
            full_name=user.full_name,
            first_day=first,
            last_day=last,
            start=params.pop("start", start),
            end=params.pop("end", last),
            **params,
        )
        self.network_choices = _network_names(tables.networks)
        self.param.network_ids.objects = list(self.network_choices.values())
        self.param.start.bounds = (first, last)
        self.param.end.bounds = (first, last)
        geo = source.geo()
        self.outline = geo["outline_ring"]
        self.coverage_cells = geo["coverage_cells"]
        self.coverage_share_pct = 100 * geo["coverage_share"]
        self.audit_health = source.audit_health()
        self._update()

    # -- actions -------------------------------------------------------------------------
    def set_last_days(self, days: int | None) -> None:
        """Set the period to the last ``days`` stored days (None: every stored day)."""
        end = self.last_day
        start = (
            self.first_day if days is None else max(self.first_day, end - dt.timedelta(days - 1))
        )
        self.param.update(start=start, end=end)

    def set_period(self, start: dt.date, end: dt.date) -> None:
        """Set both ends of the period at once (one update, not two)."""
        self.param.update(start=start, end=end)

    def refresh(self) -> None:
        """Read the store's tables again and recompute (after a hit was worked)."""
        self.source.forget()
        self._update()

    def refresh_audit_health(self) -> None:
        """Run the audit checks again (subject to the source's cache)."""
        self.audit_health = self.source.audit_health()

    # -- derived data --------------------------------------------------------------------
    @param.depends("start", "end", "network_ids", watch=True)
    def _update(self) -> None:
        if self.start is None or self.end is None:
            self.message = "choose a period"
            return
        if self.end < self.start:
            self.message = f"the period ends ({self.end}) before it starts ({self.start})"
            return
        t0 = time.perf_counter()
        networks = list(self.network_ids) or None
        report, trend_frame, every, cameras, cells = self._compute(self.start, self.end, networks)
        self.param.update(
            report=report,
            figures=report.to_dict(),
            funnel=pl.DataFrame(
                list(report.funnel), schema={"stage": pl.String, "hits": pl.Int64}, orient="row"
            ),
            hits_by_source=report.hits_by_source,
            trend_frame=trend_frame,
            trend_every=every,
            camera_points=cameras,
            recovery_cells=cells,
            message="",
            compute_s=time.perf_counter() - t0,
        )

    def _compute(
        self, start: dt.date, end: dt.date, networks: Sequence[str] | None
    ) -> tuple[EfficacyReport, pl.DataFrame, str, pl.DataFrame, pl.DataFrame]:
        source = self.source
        tables = source.tables()
        summary = source.read_summary(self.user_id, start, end)
        report = efficacy_report(
            reads_daily=summary.reads_daily,
            unique_vehicles=summary.unique_vehicles,
            hits=tables.hits,
            outcomes=tables.outcomes,
            audit_events=tables.audit_events,
            networks=tables.networks,
            start=start,
            end=end,
            program_budget_usd=source.settings.program_budget_usd,
            staff_hours_saved_per_recovery=source.settings.staff_hours_saved_per_recovery,
            network_ids=networks,
        )
        in_net = pl.col("network_id").is_in(list(networks)) if networks else pl.lit(True)
        reads_daily = summary.reads_daily.filter(pl.col("day").is_between(start, end) & in_net)
        # Internal only (never exposed): monthly_trend checks the hits' declared columns.
        hits = tables.hits.filter(pl.col("captured_at").dt.date().is_between(start, end) & in_net)
        every = _trend_every(start, end)
        trend_frame = trend(
            reads_daily=reads_daily, hits=hits, outcomes=tables.outcomes, every=every
        )
        per_camera = reads_daily.group_by("camera_id").agg(pl.col("reads").sum())
        names = tables.networks.select("network_id", pl.col("name").alias("network_name"))
        cams = tables.cameras.filter(in_net)
        cameras = (
            cams.select("camera_id", "network_id", "name", "lat", "lon")
            .join(names, on="network_id", how="left")
            .join(per_camera, on="camera_id", how="left")
            .with_columns(pl.col("reads").fill_null(0).cast(pl.Int64))
            .sort("camera_id")
        )
        recoveries = (
            tables.outcomes.filter(pl.col("outcome_type") == "recovery")
            .join(hits.select("hit_id"), on="hit_id", how="semi")
            .select("lat", "lon")
        )
        geo = source.geo()
        grid = heat_grid(recoveries, outline=geo["outline"], cell_m=source.cell_m)
        counts = pl.DataFrame(
            {"cell_id": grid["cell_id"].to_numpy(), "recoveries": grid["count"].to_numpy()}
        )
        cells = (
            geo["heat_rings"]
            .join(counts, on="cell_id", how="left")
            .with_columns(pl.col("recoveries").fill_null(0).cast(pl.Int64))
        )
        return report, trend_frame, every, cameras, cells

    # -- checks --------------------------------------------------------------------------
    def exposed_frames(self) -> dict[str, pl.DataFrame]:
        """Every frame this state hands to views (for the no-plate-level-data check)."""
        frames = {
            name: value
            for name, value in self.param.values().items()
            if isinstance(value, pl.DataFrame)
        }
        if self.report is not None:
            frames["report.hits_by_source"] = self.report.hits_by_source
        return frames

    def describe(self) -> str:
        """The filters in words (for titles and logs)."""
        nets = ", ".join(self.network_ids) if self.network_ids else "all networks"
        return f"{self.start} .. {self.end}, {nets}"

    def to_json(self) -> str:
        """The figures and filters as JSON (for exports and logs; aggregates only)."""
        return json.dumps(
            {"filters": self.describe(), "figures": self.figures}, default=str, sort_keys=True
        )
