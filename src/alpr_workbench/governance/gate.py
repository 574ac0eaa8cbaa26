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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, field_validator

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.config import Settings, load_settings
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.registry import User, get_case, get_user, user_problem
from alpr_workbench.governance.screening import is_vague_reason, screen_text
from alpr_workbench.governance.sharing import visible_networks
from alpr_workbench.plates import normalize_plate, plate_pattern_filter, wildcard_to_regex
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.store import Store

__all__ = ["Gate", "ReadSummary", "SearchRefused", "SearchRequest", "SearchResult"]

_EARTH_RADIUS_M = 6_371_000.0
_MIN_PATTERN_LITERALS = 3
_CLOCK_SKEW = dt.timedelta(minutes=5)


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
    """What a user asks the gate for. Unknown fields are errors, not silently ignored."""

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


@dataclass(frozen=True)
class ReadSummary:
    """Aggregates of reads with no plate in them."""

    reads_daily: pl.DataFrame  # camera_id, network_id, day, reads
    unique_vehicles: int


class Gate:
    """The only way to read reads.

    Parameters
    ----------
    store
        The encrypted store.
    audit
        Anything with ``append(event: dict)`` returning a record with ``event_id`` — the
        tamper-evident :class:`~alpr_workbench.governance.audit_log.AuditLog`.
    policy, settings
        Default: the department policy and the data directory's settings.
    clock
        Returns the current UTC time (tests pin it).
    """

    def __init__(
        self,
        store: Store,
        audit: Any,
        *,
        policy: Policy | None = None,
        settings: Settings | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._store = store
        self._audit = audit
        self.policy = policy or load_policy()
        self.settings = settings or load_settings(store.home)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

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
        user = get_user(self._store, user_id)
        window_from = request.window_from or now - dt.timedelta(days=self.settings.retention_days)
        window_to = request.window_to or now
        base = self._event(event_type, user, user_id, request, window_from, window_to, now)
        problem, networks = self._check(user, request, window_from, window_to, now)
        if problem is not None:
            record = self._audit.append({**base, "outcome": "refused", "refusal_reason": problem})
            raise SearchRefused(problem, record.event_id)
        assert user is not None
        rows = self._run(user, request, networks, window_from, window_to)
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
        )

    def _check(
        self,
        user: User | None,
        request: SearchRequest,
        window_from: dt.datetime,
        window_to: dt.datetime,
        now: dt.datetime,
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
        if user.role != "supervisor" and user.user_id not in (case.assigned_user_ids or ()):
            return f"{user.user_id!r} is not assigned to case {case.case_number}", []
        if request.reason_code not in policy.reason_codes:
            return f"reason {request.reason_code!r} is not on the policy's list", []
        if request.reason_code in policy.reasons_requiring_text and is_vague_reason(
            request.reason_text, policy=policy
        ):
            return f"reason {request.reason_code!r} needs a specific free-text explanation", []
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
        oldest = now - dt.timedelta(days=self.settings.retention_days)
        if window_from < oldest:
            return (
                f"the time window starts {window_from:%Y-%m-%d}, beyond the "
                f"{self.settings.retention_days}-day retention period"
            ), []
        if not request.has_filter():
            return (
                "a search needs a filter: a plate, a partial plate, cameras, an area or "
                "vehicle attributes"
            ), []
        if request.plate_pattern is not None:
            literals = len(re.sub(r"[?*]", "", request.plate_pattern))
            if literals < _MIN_PATTERN_LITERALS:
                return (
                    f"partial plate {request.plate_pattern!r} is too broad (give at least "
                    f"{_MIN_PATTERN_LITERALS} known characters)"
                ), []
            try:
                wildcard_to_regex(request.plate_pattern)
            except WorkbenchError as exc:
                return str(exc), []
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
        if not networks:
            return "no network is in scope for this user", []
        return None, networks

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
        plates = [normalize_plate(p) for p in (*wanted, *request.plates)] or None
        rows = self._store.reads.query(
            window_from.date(), window_to.date(), where=where, plates=plates
        )
        if request.polygon is not None and rows.height:
            import shapely

            inside = shapely.contains_xy(
                shapely.Polygon(request.polygon), rows["lon"].to_numpy(), rows["lat"].to_numpy()
            )
            rows = rows.filter(pl.Series(inside))
        return rows.sort("captured_at").select(self._columns_for(user.role))

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
        atomic_write_bytes(Path(path), frame.write_csv().encode())
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


def _haversine_m(lat: float, lon: float) -> pl.Expr:
    lat1, lon1 = math.radians(lat), math.radians(lon)
    lat2, lon2 = pl.col("lat").radians(), pl.col("lon").radians()
    a = ((lat2 - lat1) / 2).sin() ** 2 + math.cos(lat1) * lat2.cos() * (
        (lon2 - lon1) / 2
    ).sin() ** 2
    return 2 * _EARTH_RADIUS_M * a.sqrt().arcsin()
