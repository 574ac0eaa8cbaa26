"""The gate: every read of reads passes here, is checked against the policy, and is audited.

A search names an open case the user may work, a reason from the policy's list, a time window
inside retention and at least one filter. It covers only the department's own networks and the
networks whose owners granted access. Refusals say why and are audited with the full query.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alpr_workbench._csvsafe import csv_bytes
from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import PatternTooBroad, WorkbenchError
from alpr_workbench.governance.admin import configured_retention_days
from alpr_workbench.governance.approvals import ApprovalRefused, approval_problem, use_approval
from alpr_workbench.governance.audit_log import AUDIT_DIR, AuditLog
from alpr_workbench.governance.registry import User, get_case, get_user, user_problem
from alpr_workbench.governance.screening import is_vague_reason, screen_text
from alpr_workbench.governance.sharing import visible_networks
from alpr_workbench.plates import (
    canonical_pattern,
    canonical_plate,
    pattern_literals,
    plate_pattern_filter,
)
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.store import Store

__all__ = [
    "CountSightings",
    "Gate",
    "PairSightings",
    "PatternResult",
    "Place",
    "ReadSummary",
    "RepeatSightingsRequest",
    "SearchRefused",
    "SearchRequest",
    "SearchResult",
    "SeenAtBothRequest",
]

_EARTH_RADIUS_M = 6_371_000.0
_KM_PER_DEGREE_LAT = 110.574
_KM_PER_DEGREE_LON_AT_EQUATOR = 111.320
_CLOCK_SKEW = dt.timedelta(minutes=5)
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# "Repeat" means seen more than once: a minimum of 1 would list every plate at a place.
_MIN_REPEAT_SIGHTINGS = 2


class SearchRefused(WorkbenchError):
    """The gate refused a request; the refusal was audited.

    Attributes
    ----------
    reason
        Why, in words a user can act on.
    event_id
        The audit record of the refusal.
    """

    def __init__(self, reason: str, event_id: str) -> None:
        super().__init__(f"search refused: {reason}")
        self.reason = reason
        self.event_id = event_id


class SearchRequest(BaseModel):
    """What a user asks the gate for. Unknown fields are errors, not silently ignored.

    Plates and partial plates are normalised here, once, as the request enters: every check
    and the query see the same value. Text that would change under normalisation other than
    case and ASCII spaces or hyphens (Unicode spaces, full-width or look-alike characters) is
    refused, and so are non-finite or out-of-range coordinates.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_number: str
    reason_code: str
    reason_text: str | None = None
    plate: str | None = None
    plates: tuple[str, ...] = ()  # several exact plates (retro-matching a hotlist)
    plate_pattern: str | None = None
    window_from: dt.datetime | None = None
    window_to: dt.datetime | None = None
    camera_ids: tuple[str, ...] = ()
    network_ids: tuple[str, ...] = ()
    near: tuple[float, float, float] | None = None  # lat, lon, radius in metres
    polygon: tuple[tuple[float, float], ...] | None = None  # (lon, lat) vertices
    vehicle_make: str | None = None
    vehicle_color: str | None = None
    vehicle_type: str | None = None
    # A supervisor's approval of more rows than the policy's cap, granted through the service
    # (governance/approvals.py): its id, never a user id.
    approval_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _no_typed_approver(cls, data: Any) -> Any:
        return _refuse_typed_approver(data)

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str | None) -> str | None:
        return None if value is None else canonical_plate(value)

    @field_validator("plates")
    @classmethod
    def _plates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(canonical_plate(p) for p in value)

    @field_validator("plate_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return None if value is None else canonical_pattern(value)

    @field_validator("near")
    @classmethod
    def _near(cls, value: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        return _valid_near(value)

    @field_validator("polygon")
    @classmethod
    def _polygon(
        cls, value: tuple[tuple[float, float], ...] | None
    ) -> tuple[tuple[float, float], ...] | None:
        return _valid_polygon(value)

    @field_validator("window_from", "window_to")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (UTC) with the time window")
        return value

    def has_filter(self) -> bool:
        """True when the request narrows the reads by more than the time window."""
        return any(
            [
                self.plate,
                self.plates,
                self.plate_pattern,
                self.camera_ids,
                self.near,
                self.polygon,
                self.vehicle_make,
                self.vehicle_color,
                self.vehicle_type,
            ]
        )


@dataclass(frozen=True)
class SearchResult:
    """Rows a search returned (only the columns the role may see) and its audit record."""

    rows: pl.DataFrame
    event_id: str
    user_id: str
    case_number: str
    networks: tuple[str, ...]
    window_from: dt.datetime
    window_to: dt.datetime
    total_rows: int  # rows that matched, before the policy's cap
    truncated: bool  # True when ``rows`` holds fewer than ``total_rows``


class Place(BaseModel):
    """One place of a pattern search: a list of cameras, a circle or an area (exactly one).

    Each place is checked as one search would be: its cameras must be in the user's scope, a
    circle's radius, an area's size and extent and the cameras inside it are bounded by the
    policy (``max_radius_m``, ``max_polygon_area_km2``, ``max_polygon_extent_m``,
    ``max_cameras_per_search``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    camera_ids: tuple[str, ...] = ()
    near: tuple[float, float, float] | None = None  # lat, lon, radius in metres
    polygon: tuple[tuple[float, float], ...] | None = None  # (lon, lat) vertices

    @field_validator("near")
    @classmethod
    def _near(cls, value: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        return _valid_near(value)

    @field_validator("polygon")
    @classmethod
    def _polygon(
        cls, value: tuple[tuple[float, float], ...] | None
    ) -> tuple[tuple[float, float], ...] | None:
        return _valid_polygon(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Place:
        given = [bool(self.camera_ids), self.near is not None, self.polygon is not None]
        if sum(given) != 1:
            raise ValueError(
                "a place is cameras (camera_ids), a circle (near) or an area (polygon): "
                "give exactly one of them"
            )
        return self


class _PatternRequest(BaseModel):
    """What every pattern search names: the case, the reason, the window, narrowing filters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_number: str
    reason_code: str
    reason_text: str | None = None
    window_from: dt.datetime | None = None
    window_to: dt.datetime | None = None
    plate_pattern: str | None = None
    vehicle_make: str | None = None
    vehicle_color: str | None = None
    vehicle_type: str | None = None
    approval_id: str | None = Field(default=None, max_length=64)  # see SearchRequest

    @model_validator(mode="before")
    @classmethod
    def _no_typed_approver(cls, data: Any) -> Any:
        return _refuse_typed_approver(data)

    @field_validator("plate_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return None if value is None else canonical_pattern(value)

    @field_validator("window_from", "window_to")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (UTC) with the time window")
        return value


class SeenAtBothRequest(_PatternRequest):
    """Plates read at place A and at place B within ``within_minutes`` of each other.

    Unknown fields are errors. See :meth:`Gate.seen_at_both`.
    """

    place_a: Place
    place_b: Place
    within_minutes: float = Field(gt=0, allow_inf_nan=False)


class RepeatSightingsRequest(_PatternRequest):
    """Plates read at one place at least ``min_sightings`` times, on ``min_days`` local days.

    Unknown fields are errors. See :meth:`Gate.repeat_sightings`.
    """

    place: Place
    min_sightings: int = Field(default=2, ge=1)
    min_days: int = Field(default=1, ge=1)


class PairSightings(Protocol):
    """The analysis of "seen at A and B" (``analytics.patterns.seen_at_both``)."""

    def __call__(
        self,
        rows: pl.DataFrame,
        *,
        place_a: Sequence[str],
        place_b: Sequence[str],
        within: dt.timedelta,
    ) -> pl.DataFrame:
        """Plates of ``rows`` read at a camera of A and one of B within ``within``."""
        ...


class CountSightings(Protocol):
    """The analysis of repeat sightings (``analytics.patterns.repeat_sightings``)."""

    def __call__(
        self, rows: pl.DataFrame, *, min_sightings: int, min_days: int, timezone: str
    ) -> pl.DataFrame:
        """Plates of ``rows`` read at least ``min_sightings`` times on ``min_days`` days."""
        ...


@dataclass(frozen=True)
class PatternResult:
    """What a pattern search found (one row per plate), its audit record, the reads it used.

    ``truncated`` is True when the reads at the places were more than the policy lets one
    search return: the pattern was computed from the first ``reads_considered`` of them (by
    time) and may miss plates.
    """

    rows: pl.DataFrame
    event_id: str
    user_id: str
    case_number: str
    networks: tuple[str, ...]
    window_from: dt.datetime
    window_to: dt.datetime
    reads_matched: int  # reads at the places in the window, before the policy's cap
    reads_considered: int  # reads the pattern was computed from (at most the cap)
    truncated: bool


@dataclass(frozen=True)
class ReadSummary:
    """Aggregates of reads with no plate in them."""

    reads_daily: pl.DataFrame  # camera_id, network_id, day, reads
    unique_vehicles: int


class Gate:
    """The only way to read reads.

    Everything the gate judges by belongs to the store, not to the caller: the department
    policy, the retention period (the store's authenticated settings,
    :func:`~alpr_workbench.config.load_department_settings`), the clock and the audit log.

    Parameters
    ----------
    store
        The encrypted store.
    audit
        The store's own :class:`~alpr_workbench.governance.audit_log.AuditLog` (default: the
        gate opens it).

    Raises
    ------
    TypeError
        If ``audit`` is not an :class:`~alpr_workbench.governance.audit_log.AuditLog`.
    ValueError
        If ``audit`` is the audit log of another data directory.
    """

    def __init__(self, store: Store, audit: AuditLog | None = None) -> None:
        self._bind(store, audit, policy=load_policy(), clock=_utc_now)

    @classmethod
    def _for_testing(
        cls,
        store: Store,
        audit: AuditLog | None = None,
        *,
        clock: Callable[[], dt.datetime],
        policy: Policy | None = None,
    ) -> Gate:
        """TESTS ONLY: a gate with a pinned clock (and optionally another policy)."""
        gate = cls.__new__(cls)
        gate._bind(store, audit, policy=policy or load_policy(), clock=clock)
        return gate

    def _bind(
        self,
        store: Store,
        audit: AuditLog | None,
        *,
        policy: Policy,
        clock: Callable[[], dt.datetime],
    ) -> None:
        if audit is None:
            audit = AuditLog.open(store.home, store.keystore)
        if not isinstance(audit, AuditLog):
            raise TypeError(
                f"the gate records to the store's AuditLog, not to {type(audit).__name__}"
            )
        if audit.records_path.parent.resolve() != (store.home / AUDIT_DIR).resolve():
            raise ValueError(
                f"the audit log {audit.records_path.parent} is not the store's "
                f"({store.home / AUDIT_DIR})"
            )
        self._store = store
        self._audit = audit
        self.policy = policy
        self._clock = clock

    def retention_days(self) -> int:
        """The department's retention period, from the store's authenticated settings."""
        return configured_retention_days(self._store)

    # -- search --------------------------------------------------------------------------
    def search(
        self, user_id: str, request: SearchRequest, *, event_type: str = "search"
    ) -> SearchResult:
        """Run a case-gated search, or refuse it.

        Returns
        -------
        SearchResult
            Matching reads in scope, with only the columns the user's role may see.

        Raises
        ------
        SearchRefused
            With the reason; the refusal is in the audit log with the full query.
        """
        now = self._clock()
        retention_days = self.retention_days()
        user = get_user(self._store, user_id)
        window_from = request.window_from or now - dt.timedelta(days=retention_days)
        window_to = request.window_to or now
        base = self._event(event_type, user, user_id, request, window_from, window_to, now)
        problem, networks = self._check(user, request, window_from, window_to, now, retention_days)
        if problem is not None:
            record = self._audit.append({**base, "outcome": "refused", "refusal_reason": problem})
            raise SearchRefused(problem, record.event_id)
        assert user is not None
        if request.approval_id is None:
            cap, problem = self.policy.max_rows, None
            rows = self._run(user, request, networks, window_from, window_to)
        else:
            # The approval is consumed (a table write and its audit record: disk syncs) on a
            # second thread while the search runs; no row leaves unless it was.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="approval") as pool:
                consumed = pool.submit(self._approved_cap, user, request, now)
                try:
                    rows = self._run(user, request, networks, window_from, window_to)
                finally:
                    cap, problem = consumed.result()
        if problem is not None:
            record = self._audit.append({**base, "outcome": "refused", "refusal_reason": problem})
            raise SearchRefused(problem, record.event_id)
        total = rows.height
        rows = rows.head(cap)
        record = self._audit.append(
            {
                **base,
                "outcome": "allowed",
                "row_count": rows.height,
                "networks_searched": len(networks),
            }
        )
        return SearchResult(
            rows,
            record.event_id,
            user_id,
            request.case_number,
            tuple(networks),
            window_from,
            window_to,
            total_rows=total,
            truncated=total > rows.height,
        )

    def _check(
        self,
        user: User | None,
        request: SearchRequest,
        window_from: dt.datetime,
        window_to: dt.datetime,
        now: dt.datetime,
        retention_days: int,
    ) -> tuple[str | None, list[str]]:
        policy = self.policy
        problem = user_problem(user, policy=policy, now=now)
        if problem is not None or user is None:
            return problem, []
        if user.organization_type not in policy.allowed_recipient_types:
            return (
                f"organization {user.organization!r} ({user.organization_type}) may not search "
                "California ALPR data (Civil Code 1798.90.55, SB 54)"
            ), []
        if not policy.may(user.role, "search"):
            return f"role {user.role!r} may not search reads", []
        if not re.fullmatch(policy.case_number_pattern, request.case_number or ""):
            return (
                f"case number {request.case_number!r} is not in the department's format "
                f"({policy.case_number_pattern})"
            ), []
        case = get_case(self._store, request.case_number)
        if case is None:
            return f"no case {request.case_number} in the registry", []
        if case.status != "open":
            return f"case {case.case_number} is {case.status}", []
        if user.user_id not in (case.assigned_user_ids or ()):
            return f"{user.user_id!r} is not assigned to case {case.case_number}", []
        if request.reason_code not in policy.reason_codes:
            return f"reason {request.reason_code!r} is not on the policy's list", []
        if request.reason_code in policy.reasons_requiring_text and not _is_specific(
            request.reason_text, policy=policy
        ):
            return (
                f"reason {request.reason_code!r} needs a specific free-text explanation (at "
                f"least {policy.reason_text_min_chars} characters and "
                f"{policy.reason_text_min_words} distinct real words)"
            ), []
        screen = screen_text(
            {"reason_text": request.reason_text, "case_title": case.title}, policy=policy
        )
        if screen.verdict == "refuse":
            return (
                f"{screen.field} names a prohibited purpose ({screen.category}: {screen.term!r})"
            ), []
        if screen.verdict == "review":
            return (
                f"{screen.field} holds {screen.term!r}, which needs a supervisor's review "
                "before any search"
            ), []
        if window_from >= window_to:
            return "the time window is empty (from must be before to)", []
        if window_to > now + _CLOCK_SKEW:
            return "the time window reaches into the future", []
        oldest = now - dt.timedelta(days=retention_days)
        if window_from < oldest:
            return (
                f"the time window starts {window_from:%Y-%m-%d}, beyond the "
                f"{retention_days}-day retention period"
            ), []
        if not request.has_filter():
            return (
                "a search needs a filter: a plate, a partial plate, cameras, an area or "
                "vehicle attributes"
            ), []
        problem = self._bounds_problem(request) or self._approval_problem(user, request, now)
        if problem is not None:
            return problem, []
        networks = visible_networks(
            self._store, organization=user.organization, policy=policy, at=now
        )
        outside = [n for n in request.network_ids if n not in networks]
        if outside:
            return f"networks {outside} are not shared with {user.organization}", []
        if request.network_ids:
            networks = [n for n in networks if n in request.network_ids]
        if len(networks) > policy.max_networks_per_search:
            return f"scope of {len(networks)} networks exceeds the policy's limit", []
        if request.camera_ids:
            cameras = self._store.tables.read("cameras")
            in_scope = set(cameras.filter(pl.col("network_id").is_in(networks))["camera_id"])
            unknown = [c for c in request.camera_ids if c not in in_scope]
            if unknown:
                return f"cameras {unknown} are unknown or not in this user's scope", []
        in_area = self._cameras_in_area(request, networks)
        if in_area is not None and in_area > policy.max_cameras_per_search:
            return (
                f"the area holds {in_area} cameras, too many for one search "
                f"(the policy allows {policy.max_cameras_per_search})"
            ), []
        if not networks:
            return "no network is in scope for this user", []
        return None, networks

    def _cameras_in_area(self, request: SearchRequest, networks: list[str]) -> int | None:
        """Cameras of ``networks`` inside the request's area (near or polygon); None: no area."""
        if request.near is None and request.polygon is None:
            return None
        cameras = self._store.tables.read("cameras").filter(pl.col("network_id").is_in(networks))
        if request.near is not None:
            lat, lon, radius = request.near
            cameras = cameras.filter(_haversine_m(lat, lon) <= radius)
        if request.polygon is None:
            return cameras.height
        import shapely

        inside = shapely.contains_xy(
            shapely.Polygon(request.polygon), cameras["lon"].to_numpy(), cameras["lat"].to_numpy()
        )
        return int(inside.sum())

    def _bounds_problem(self, request: SearchRequest) -> str | None:
        """Why a filter is too broad for the policy's limits, or None."""
        policy = self.policy
        pattern = request.plate_pattern
        if pattern is not None and pattern_literals(pattern) < policy.min_pattern_literals:
            return (
                f"partial plate {pattern!r} is too broad (give at least "
                f"{policy.min_pattern_literals} known characters)"
            )
        if request.near is not None and request.near[2] > policy.max_radius_m:
            return (
                f"an area of radius {request.near[2]:g} m is too broad (the policy allows "
                f"{policy.max_radius_m:g} m)"
            )
        if request.polygon is not None:
            import shapely

            shape = shapely.Polygon(request.polygon)
            if not shape.is_valid:
                return "the area's outline crosses itself; give a simple polygon"
            lat0 = math.radians(shape.centroid.y)
            area_km2 = (
                shape.area
                * _KM_PER_DEGREE_LAT
                * _KM_PER_DEGREE_LON_AT_EQUATOR
                * max(math.cos(lat0), 0.0)
            )
            if area_km2 > policy.max_polygon_area_km2:
                return (
                    f"an area of {area_km2:,.1f} km² is too broad (the policy allows "
                    f"{policy.max_polygon_area_km2:g} km²)"
                )
            lon_min, lat_min, lon_max, lat_max = shape.bounds
            extent_m = 1000 * math.hypot(
                (lat_max - lat_min) * _KM_PER_DEGREE_LAT,
                (lon_max - lon_min) * _KM_PER_DEGREE_LON_AT_EQUATOR * max(math.cos(lat0), 0.0),
            )
            if extent_m > policy.max_polygon_extent_m:
                return (
                    f"an area {extent_m:,.0f} m across is too broad (the policy allows "
                    f"{policy.max_polygon_extent_m:g} m)"
                )
        if len(request.camera_ids) > policy.max_cameras_per_search:
            return (
                f"{len(request.camera_ids)} cameras are too many for one search (the policy "
                f"allows {policy.max_cameras_per_search})"
            )
        return None

    def _approval_problem(self, user: User, request: SearchRequest, now: dt.datetime) -> str | None:
        """Why ``request.approval_id`` does not approve a larger result, or None."""
        if request.approval_id is None:
            return None
        problem, _ = approval_problem(
            self._store, approval_id=request.approval_id, user=user,
            case_number=request.case_number, policy=self.policy, now=now,
        )
        return problem

    def _approved_cap(
        self, user: User, request: SearchRequest | _PatternRequest, now: dt.datetime
    ) -> tuple[int, str | None]:
        """The row cap of a search that passed every check: consume its approval, if any.

        Returns ``(cap, None)``, or ``(0, reason)`` when the approval no longer holds (used
        meanwhile by another search in flight, or expired).
        """
        if request.approval_id is None:
            return self.policy.max_rows, None
        try:
            approval = use_approval(
                self._store, self._audit.append, approval_id=request.approval_id, user=user,
                case_number=request.case_number, policy=self.policy, now=now,
            )
        except ApprovalRefused as exc:
            return 0, str(exc)
        return min(approval.max_rows, self.policy.max_rows_approved), None

    def _run(
        self,
        user: User,
        request: SearchRequest,
        networks: list[str],
        window_from: dt.datetime,
        window_to: dt.datetime,
    ) -> pl.DataFrame:
        where = (
            pl.col("network_id").is_in(networks)
            & (pl.col("captured_at") >= window_from)
            & (pl.col("captured_at") <= window_to)
        )
        if request.plate_pattern is not None:
            where &= plate_pattern_filter(request.plate_pattern)

        if request.camera_ids:
            where &= pl.col("camera_id").is_in(list(request.camera_ids))
        for column in ("vehicle_make", "vehicle_color", "vehicle_type"):
            value = getattr(request, column)
            if value is not None:
                # Case-insensitive: the rows whose value lowercases to ``value.lower()``.
                variants = _case_variants(value.lower())
                if variants is not None:  # a lookup, instead of lowercasing every row
                    where &= pl.col(column).is_in(pl.Series(variants, dtype=pl.String))
                else:
                    where &= pl.col(column).str.to_lowercase() == value.lower()
        if request.near is not None:
            lat, lon, radius = request.near
            where &= _haversine_m(lat, lon) <= radius
        if request.polygon is not None:
            lons = [p[0] for p in request.polygon]
            lats = [p[1] for p in request.polygon]
            where &= pl.col("lon").is_between(min(lons), max(lons)) & pl.col("lat").is_between(
                min(lats), max(lats)
            )
        wanted = [request.plate] if request.plate else []
        plates = [*wanted, *request.plates] or None
        columns = self._columns_for(user.role)
        # Only the columns the role sees (and those sorted or clipped on) are gathered.
        needed = [*columns, "captured_at", *(("lon", "lat") if request.polygon else ())]
        rows = self._store.reads.query(
            window_from.date(), window_to.date(), where=where, plates=plates,
            columns=list(dict.fromkeys(needed)), sort_by="captured_at",
        )
        if request.polygon is not None and rows.height:
            import shapely

            inside = shapely.contains_xy(
                shapely.Polygon(request.polygon), rows["lon"].to_numpy(), rows["lat"].to_numpy()
            )
            rows = rows.filter(pl.Series(inside))
        if not rows.get_column("captured_at").is_sorted():  # sorted by the query already
            rows = rows.sort("captured_at")
        return rows.select(columns)

    def _columns_for(self, role: str) -> list[str]:
        allowed = self.policy.row_columns.get(role)
        if allowed is None:
            return []
        return self._store.reads.spec.columns if allowed == "all" else list(allowed)

    def retro_match(self, user_id: str, request: SearchRequest) -> SearchResult:
        """Match new hotlist plates against stored reads: a case-gated search, audited as such.

        Give the plates in ``request.plates``; every rule of :meth:`search` applies.
        """
        return self.search(user_id, request, event_type="retro_match")

    # -- pattern searches ----------------------------------------------------------------
    # The analyses are passed in because they live in ``analytics`` (a layer above this one,
    # docs/architecture.md#layers); they see only the rows the gate's own search returned.
    def seen_at_both(
        self, user_id: str, request: SeenAtBothRequest, *, pair: PairSightings
    ) -> PatternResult:
        """Plates read at place A and at place B within a gap: a case-gated, audited search.

        Each place is checked as one search (:meth:`search`'s rules and limits); the reads
        at both places, capped at the policy's ``max_rows`` (``max_rows_approved`` with a
        supervisor's approval), are passed to ``pair``. The whole is one ``search`` record
        in the audit log, allowed or refused, with the pattern request as its query.

        Parameters
        ----------
        user_id
            The signed-in user.
        request
            The case, reason, window, the two places and the largest gap.
        pair
            ``analytics.patterns.seen_at_both``.

        Returns
        -------
        PatternResult
            One row per plate: its closest pair of reads (``plate``, ``a_camera_id``,
            ``a_at``, ``b_camera_id``, ``b_at``, ``gap``).

        Raises
        ------
        SearchRefused
            With the reason (naming the place); the refusal is audited.
        """
        within_s = request.within_minutes * 60

        def problem(window_from: dt.datetime, window_to: dt.datetime) -> str | None:
            span_s = (window_to - window_from).total_seconds()
            if within_s > span_s:
                return (
                    f"a gap of {request.within_minutes:g} minutes is longer than the time "
                    f"window ({span_s / 60:,.0f} minutes)"
                )
            return None

        def analyse(rows: pl.DataFrame, cameras: list[list[str]]) -> pl.DataFrame:
            return pair(
                rows, place_a=cameras[0], place_b=cameras[1],
                within=dt.timedelta(seconds=within_s),
            )  # fmt: skip

        places = {"place A": request.place_a, "place B": request.place_b}
        return self._pattern_search(user_id, request, "seen_at_both", places, problem, analyse)

    def repeat_sightings(
        self, user_id: str, request: RepeatSightingsRequest, *, count: CountSightings
    ) -> PatternResult:
        """Plates read at one place again and again: a case-gated, audited search.

        The place is checked as one search (:meth:`search`'s rules and limits); its reads,
        capped at the policy's ``max_rows`` (``max_rows_approved`` with a supervisor's
        approval), are passed to ``count`` with the department's time zone. A minimum of one
        sighting is refused: it would list every plate read at the place (a plate dump, not
        a repeat). One ``search`` record in the audit log, allowed or refused.

        Parameters
        ----------
        user_id
            The signed-in user.
        request
            The case, reason, window, the place, ``min_sightings`` (2 or more) and
            ``min_days`` (distinct local days).
        count
            ``analytics.patterns.repeat_sightings``.

        Returns
        -------
        PatternResult
            One row per plate (``plate``, ``sightings``, ``cameras``, ``days``,
            ``first_seen_at``, ``last_seen_at`` and the vehicle description).

        Raises
        ------
        SearchRefused
            With the reason; the refusal is audited.
        """

        def problem(window_from: dt.datetime, window_to: dt.datetime) -> str | None:
            if request.min_sightings < _MIN_REPEAT_SIGHTINGS:
                return (
                    f"repeat sightings need at least {_MIN_REPEAT_SIGHTINGS} sightings of a "
                    f"plate; {request.min_sightings} would list every plate read at the place"
                )
            return None

        def analyse(rows: pl.DataFrame, cameras: list[list[str]]) -> pl.DataFrame:
            return count(
                rows, min_sightings=request.min_sightings, min_days=request.min_days,
                timezone=self.policy.timezone,
            )  # fmt: skip

        places = {"the place": request.place}
        return self._pattern_search(user_id, request, "repeat_sightings", places, problem, analyse)

    def _pattern_search(
        self,
        user_id: str,
        request: _PatternRequest,
        kind: str,
        places: dict[str, Place],
        extra_problem: Callable[[dt.datetime, dt.datetime], str | None],
        analyse: Callable[[pl.DataFrame, list[list[str]]], pl.DataFrame],
    ) -> PatternResult:
        """Check each place as a search, read them, cap the reads, analyse; one audit record."""
        now = self._clock()
        retention_days = self.retention_days()
        user = get_user(self._store, user_id)
        window_from = request.window_from or now - dt.timedelta(days=retention_days)
        window_to = request.window_to or now
        searches = {label: _place_search(request, place) for label, place in places.items()}
        first = next(iter(searches.values()))
        base = self._event("search", user, user_id, first, window_from, window_to, now)
        base["plate_queried"] = request.plate_pattern
        base["query_json"] = json.dumps(
            {"pattern": kind, **json.loads(request.model_dump_json())}, sort_keys=True
        )
        problem: str | None = None
        networks: list[str] = []
        for label, search in searches.items():
            problem, networks = self._check(
                user, search, window_from, window_to, now, retention_days
            )
            if problem is not None:
                problem = f"{label}: {problem}" if len(searches) > 1 else problem
                break
        if problem is None:
            problem = extra_problem(window_from, window_to)
        found = pl.DataFrame()
        matched = considered = cap = 0
        if problem is None:
            assert user is not None
            cap, problem = self._approved_cap(user, request, now)
        if problem is None:
            assert user is not None
            parts = [
                self._run(user, search, networks, window_from, window_to)
                for search in searches.values()
            ]
            cameras = [
                sorted(set(part["camera_id"].to_list())) if "camera_id" in part.columns else []
                for part in parts
            ]
            reads = pl.concat(parts, how="vertical")
            if "read_id" in reads.columns:  # a read at a camera of both places counts once
                reads = reads.unique("read_id", keep="first", maintain_order=True)
            if "captured_at" in reads.columns:
                reads = reads.sort("captured_at")
            matched = reads.height
            reads = reads.head(cap)
            considered = reads.height
            try:
                found = analyse(reads, cameras)
            except WorkbenchError as exc:
                problem = (
                    str(exc) if isinstance(exc, PatternTooBroad)
                    else f"role {user.role!r} does not see what this pattern needs: {exc}"
                )
        if problem is not None:
            record = self._audit.append({**base, "outcome": "refused", "refusal_reason": problem})
            raise SearchRefused(problem, record.event_id)
        record = self._audit.append(
            {
                **base,
                "outcome": "allowed",
                "row_count": found.height,
                "networks_searched": len(networks),
            }
        )
        return PatternResult(
            found,
            record.event_id,
            user_id,
            request.case_number,
            tuple(networks),
            window_from,
            window_to,
            reads_matched=matched,
            reads_considered=considered,
            truncated=matched > considered,
        )

    # -- exports -------------------------------------------------------------------------
    def export(self, user_id: str, result: SearchResult, path: Path) -> Path:
        """Write a search result to CSV; a separate, audited action.

        Raises
        ------
        SearchRefused
            When the user may not export, or did not run the search being exported.
        """
        now = self._clock()
        user = get_user(self._store, user_id)
        query = {"search_event_id": result.event_id, "path": str(path), "rows": result.rows.height}
        base = {
            "event_type": "export",
            "occurred_at": now,
            "user_id": user_id,
            "organization": user.organization if user else None,
            "case_number": result.case_number,
            "query_json": json.dumps(query),
        }
        problem = user_problem(user, policy=self.policy, now=now)
        if problem is None and user is not None and not self.policy.may(user.role, "export"):
            problem = f"role {user.role!r} may not export reads"
        if problem is None and user_id != result.user_id:
            problem = "only the user who ran a search may export its results"
        if problem is not None:
            record = self._audit.append({**base, "outcome": "refused", "refusal_reason": problem})
            raise SearchRefused(problem, record.event_id)
        frame = result.rows.with_columns(
            pl.col(c).list.join(";")
            for c, t in result.rows.schema.items()
            if isinstance(t, pl.List)
        )
        atomic_write_bytes(Path(path), csv_bytes(frame))
        self._audit.append({**base, "outcome": "allowed", "row_count": result.rows.height})
        return Path(path)

    # -- aggregates (no plate-level rows) ------------------------------------------------
    def read_summary(self, user_id: str, *, start: dt.date, end: dt.date) -> ReadSummary:
        """Reads per camera per day and distinct vehicles in ``start``..``end``: counts only.

        This is what command staff and the efficacy figures see: never a plate.

        Raises
        ------
        SearchRefused
            When the user may not view aggregates.
        """
        now = self._clock()
        user = get_user(self._store, user_id)
        problem = user_problem(user, policy=self.policy, now=now)
        if (
            problem is None
            and user is not None
            and not self.policy.may(user.role, "view_aggregates")
        ):
            problem = f"role {user.role!r} may not view aggregates"
        base = {
            "event_type": "aggregate",
            "occurred_at": now,
            "user_id": user_id,
            "organization": user.organization if user else None,
            "query_json": json.dumps(
                {"aggregate": "read_summary", "start": str(start), "end": str(end)}
            ),
        }
        if problem is not None:
            record = self._audit.append({**base, "outcome": "refused", "refusal_reason": problem})
            raise SearchRefused(problem, record.event_id)
        lazy = self._store.reads.scan(
            start,
            end,
            include_holds=False,
            columns=["camera_id", "network_id", "captured_at", "plate"],
        )
        daily, vehicles = pl.collect_all(
            [
                lazy.group_by(
                    "camera_id", "network_id", pl.col("captured_at").dt.date().alias("day")
                )
                .agg(pl.len().cast(pl.Int64).alias("reads"))
                .sort("day", "camera_id"),
                lazy.select(pl.col("plate").n_unique()),
            ]
        )
        self._audit.append({**base, "outcome": "allowed", "row_count": daily.height})
        return ReadSummary(daily, int(vehicles.item()) if daily.height else 0)

    # -- helpers -------------------------------------------------------------------------
    def _event(
        self,
        event_type: str,
        user: User | None,
        user_id: str,
        request: SearchRequest,
        window_from: dt.datetime,
        window_to: dt.datetime,
        now: dt.datetime,
    ) -> dict[str, Any]:
        return {
            "event_id": f"evt-{uuid.uuid4().hex}",
            "event_type": event_type,
            "occurred_at": now,
            "user_id": user_id,
            "organization": user.organization if user else None,
            "organization_type": user.organization_type if user else None,
            "case_number": request.case_number,
            "reason_code": request.reason_code,
            "reason_text": request.reason_text,
            "plate_queried": request.plate
            or request.plate_pattern
            or ",".join(request.plates)
            or None,
            "window_from": window_from,
            "window_to": window_to,
            "query_json": request.model_dump_json(),
        }


def _place_search(request: _PatternRequest, place: Place) -> SearchRequest:
    """The search one place of a pattern request stands for (what the gate checks and runs)."""
    return SearchRequest(
        case_number=request.case_number,
        reason_code=request.reason_code,
        reason_text=request.reason_text,
        plate_pattern=request.plate_pattern,
        window_from=request.window_from,
        window_to=request.window_to,
        camera_ids=place.camera_ids,
        near=place.near,
        polygon=place.polygon,
        vehicle_make=request.vehicle_make,
        vehicle_color=request.vehicle_color,
        vehicle_type=request.vehicle_type,
        approval_id=request.approval_id,
    )


def _refuse_typed_approver(data: Any) -> Any:
    """Refuse ``approved_by``: a typed user id approves nothing (a clear error, not a typo)."""
    if isinstance(data, dict) and "approved_by" in data:
        raise ValueError(
            "approved_by is not accepted: a supervisor grants an approval through the service "
            "(alpr-workbench approvals grant) and the search gives its approval_id"
        )
    return data


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_point(lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"({lon!r}, {lat!r}) is not a (lon, lat) point on Earth")


def _valid_near(value: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
    """``(lat, lon, radius_m)`` when it is a point on Earth and a finite radius > 0."""
    if value is not None:
        _check_point(value[1], value[0])
        if not (math.isfinite(value[2]) and value[2] > 0):
            raise ValueError(f"radius {value[2]!r} must be a finite number of metres > 0")
    return value


def _valid_polygon(
    value: tuple[tuple[float, float], ...] | None,
) -> tuple[tuple[float, float], ...] | None:
    """``(lon, lat)`` vertices when there are 3 or more and each is a point on Earth."""
    if value is not None:
        if len(value) < 3:
            raise ValueError("an area needs at least 3 (lon, lat) vertices")
        for lon, lat in value:
            _check_point(lon, lat)
    return value


def _is_keyboard_run(word: str) -> bool:
    return len(word) >= 3 and any(word in row or word in row[::-1] for row in _KEYBOARD_ROWS)


def _is_specific(text: str | None, *, policy: Policy) -> bool:
    """True when a free-text reason says something: long enough, real words, no key mash.

    A real word has 2+ letters, more than one distinct letter, a vowel, and is not a run of
    keys along one keyboard row ("asdf", "qwer").
    """
    if text is None or is_vague_reason(text, policy=policy):
        return False
    words = {
        w
        for w in re.findall(r"[a-z]+", text.lower())
        if len(set(w)) > 1 and re.search(r"[aeiouy]", w) and not _is_keyboard_run(w)
    }
    return (
        len(text.strip()) >= policy.reason_text_min_chars
        and len(words) >= policy.reason_text_min_words
    )


def _case_variants(lowered: str, limit: int = 1024) -> list[str] | None:
    """Every string whose lowercase is the ASCII ``lowered``; None if not ASCII or over ``limit``.

    The only characters that lowercase to an ASCII letter other than themselves are A-Z and
    the Kelvin sign (U+212A, to k); checked against Polars' ``str.to_lowercase`` over every
    code point (``tests/test_gate_speed_paths.py`` holds the awkward cases).

    Examples
    --------
    >>> _case_variants("ab")
    ['ab', 'aB', 'Ab', 'AB']
    >>> len(_case_variants("k")), _case_variants("é"), _case_variants("abcdefghijk")
    (3, None, None)
    """
    if not lowered.isascii():
        return None
    variants = [""]
    for char in lowered:
        options = [char, *([char.upper()] if char.islower() else []),
                   *(["\u212a"] if char == "k" else [])]
        variants = [v + o for v in variants for o in options]
        if len(variants) > limit:
            return None
    return variants


def _haversine_m(lat: float, lon: float) -> pl.Expr:
    lat1, lon1 = math.radians(lat), math.radians(lon)
    lat2, lon2 = pl.col("lat").radians(), pl.col("lon").radians()
    a = ((lat2 - lat1) / 2).sin() ** 2 + math.cos(lat1) * lat2.cos() * (
        (lon2 - lon1) / 2
    ).sin() ** 2
    return 2 * _EARTH_RADIUS_M * a.sqrt().arcsin()


def reads_of_hits(store: Store, hits: pl.DataFrame) -> pl.DataFrame:
    """The reader's details of the reads behind ``hits`` rows, and of no other read.

    The hit workflow (:mod:`alpr_workbench.governance.hit_workflow`) shows a person the
    confidence, plate state and image reference of each hit's read. It checks the
    ``work_hits`` permission and the alerting networks and audits the view itself; this is
    its only access to reads, kept here so that every read of reads is in this module.

    Parameters
    ----------
    store
        The store.
    hits
        Rows of the ``hits`` table (``read_id``, ``captured_at``, ``read_plate``).

    Returns
    -------
    polars.DataFrame
        ``read_id``, ``read_plate_state``, ``confidence_pct``, ``image_ref`` of those reads.
    """
    schema = {"read_id": pl.String, "read_plate_state": pl.String,
              "confidence_pct": pl.Float32, "image_ref": pl.String}
    if hits.is_empty():
        return pl.DataFrame(schema=schema)
    days = hits["captured_at"].dt.date()
    found = store.reads.query(
        days.min(), days.max(),  # type: ignore[arg-type]
        where=pl.col("read_id").is_in(hits["read_id"].to_list()),
        columns=["read_id", "plate_state", "confidence_pct", "image_ref"],
        plates=sorted(set(hits["read_plate"].to_list())),
    )
    return found.rename({"plate_state": "read_plate_state"}).cast(schema)  # type: ignore[arg-type]
