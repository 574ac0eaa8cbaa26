"""Read-only data for the notebooks through the service (``/v1/data/...``).

The notebooks are clients (issue #15): they never open the store. Each route here needs a
session; the acting user is the session's user, never a field of the request. Each request is
checked against the policy permission of the user's role (a refusal is ``403 {"error":
"refused", "detail", "event_id"}`` and is audited), then answered by calling the package's own
functions, and audited with that user (``aggregate`` events; the gate audits its read
aggregate itself). Tables are Arrow IPC streams (``application/vnd.apache.arrow.stream``),
small documents JSON.

What leaves here:

- no read, and **no plate**: plate columns (``sensitivity: personal`` in ``data_schema/``)
  are dropped from every table; plates leave the service only through the gate's case-gated
  search. Offending rows of the annual audit are masked as in the report
  (``reports.audit_report.mask_plate``); whole plates stay behind the audited
  ``/v1/reports/audit`` export.
- where vehicles were recovered (``outcomes.lat``/``lon``, personal) only to a role that may
  ``search`` and whose ``row_columns`` in the policy show ``lat`` and ``lon``;
- read counts per camera and day only through ``Gate.read_summary`` (``view_aggregates``);
- hits and outcomes: of the networks the user's organization is alerted to
  (``governance.hit_workflow.alert_networks``), except to ``audit`` and ``administer``, who
  see the whole program (plate-free all the same);
- hotlist entries without the fields the hit workflow withholds until a person confirms a
  hit (``governance.hit_workflow.ACTIONABLE_FIELDS``: reason, originating agency and case,
  theft date, VIN);
- nothing at all to a user whose organization type the policy does not allow to receive
  the data (``allowed_recipient_types``: federal, out-of-state, private), refused and audited.

Every view is audited with the route and, apart under ``params``, the caller's query
parameters. The routes only read, so they share the service's lock (``lock.shared()``).
- cases: a searching role gets the open cases it may search in now
  (``analytics.patterns.eligible_case_assignments``), ``audit`` and ``administer`` get the
  register of every case.

See ``docs/decisions/0003-service-boundary.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.admin import actor_problem
from alpr_workbench.governance.gate import SearchRefused
from alpr_workbench.governance.hit_workflow import ACTIONABLE_FIELDS, alert_networks
from alpr_workbench.governance.registry import User
from alpr_workbench.policy import Permission
from alpr_workbench.schema import load_table

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service

__all__ = ["DATA_PATHS", "data_router"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: Every route of this router (a GET each).
DATA_PATHS = frozenset(
    {
        "/v1/data/cases", "/v1/data/cameras", "/v1/data/networks", "/v1/data/read-counts",
        "/v1/data/trend", "/v1/data/efficacy", "/v1/data/hits", "/v1/data/outcomes",
        "/v1/data/hotlist-entries", "/v1/data/audit/checks", "/v1/data/audit/offending",
        "/v1/data/audit/digest", "/v1/data/audit/mine", "/v1/data/transparency",
    }
)
#: Roles that see every case rather than the cases they may search in.
_ALL_CASES: tuple[Permission, ...] = ("audit", "administer")
_AUDITING: tuple[Permission, ...] = ("audit", "administer")
_ANY_ROLE: tuple[Permission, ...] = ("search", "view_aggregates", "audit", "administer")
#: Columns of a user's own audit trail (no query text: it may hold plates searched for).
_TRAIL = ("occurred_at", "event_type", "case_number", "reason_code", "outcome", "row_count",
          "refusal_reason")

_Work = Callable[[User], Response]


def _arrow(frame: pl.DataFrame, headers: dict[str, str] | None = None) -> Response:
    sink = io.BytesIO()
    frame.write_ipc_stream(sink)
    return Response(sink.getvalue(), media_type=ARROW_STREAM, headers=headers)


def _without_personal(
    frame: pl.DataFrame, table: str, *, keep: tuple[str, ...] = ()
) -> pl.DataFrame:
    """``frame`` without the columns ``data_schema/<table>.yaml`` declares personal."""
    personal = set(load_table(table).personal_columns) - set(keep)
    return frame.drop([c for c in frame.columns if c in personal])


def _day(value: str | None, name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{name}: not a date (YYYY-MM-DD): {value[:40]!r}") from exc


def _year(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        year = int(value)
    except ValueError as exc:
        raise ValueError(f"year: not a number: {value[:20]!r}") from exc
    if not 2000 <= year <= 2200:
        raise ValueError(f"year: between 2000 and 2200, not {year}")
    return year


def data_router(svc: _Service) -> APIRouter:
    """The ``/v1/data/...`` routes: what the notebooks show, read through the service.

    Parameters
    ----------
    svc
        What the service's routes share (``service.app._Service``).

    Returns
    -------
    fastapi.APIRouter
        The routes, to include in the service's application.
    """
    from alpr_workbench.service.app import ServiceError, _source

    router = APIRouter(prefix="/v1/data")

    async def handle(request: Request, *, permission: tuple[Permission, ...], action: str,
                     work: _Work) -> Response:
        """Authenticate, check the role and organization, run ``work``, audit the view.

        Refusals are audited too. Work that reads the read aggregate goes through the gate,
        which audits it as well. The caller's query parameters are audited under
        ``params``, never beside the record's own keys.
        """
        source = _source(request)
        details = {"path": request.url.path, "params": dict(request.query_params)}

        def run() -> Response:
            with svc.lock.shared():
                user, _ = svc.authenticate(request, source)
                policy = svc.gate.policy
                problems = [
                    actor_problem(svc.store, actor=user.user_id, permission=p, action=action,
                                  policy=policy, now=svc.now())
                    for p in permission
                ]
                reason: str | None = None
                if all(p is not None for p in problems):
                    reason = str(problems[0])
                elif user.organization_type not in policy.allowed_recipient_types:
                    reason = (f"organization {user.organization!r} ({user.organization_type}) "
                              "may not receive California ALPR data (Civil Code 1798.90.55, "
                              "SB 54)")
                if reason is not None:
                    event_id = svc.record("aggregate", action=action, source=source,
                                          user_id=user.user_id, problem=reason, details=details)
                    raise ServiceError(403, "refused", reason, event_id=event_id)
                try:
                    response = work(user)
                except SearchRefused as exc:
                    raise ServiceError(403, "refused", exc.reason,
                                       event_id=exc.event_id) from exc
                except (WorkbenchError, ValueError) as exc:
                    event_id = svc.record("aggregate", action=action, source=source,
                                          user_id=user.user_id, problem=str(exc),
                                          details=details)
                    raise ServiceError(400, "invalid_request", str(exc),
                                       event_id=event_id) from exc
                event_id = svc.record("aggregate", action=action, source=source,
                                      user_id=user.user_id, problem=None, details=details)
                response.headers["X-Audit-Event-Id"] = event_id
                return response

        return await run_in_threadpool(run)

    def may(user: User, permission: Permission) -> bool:
        return svc.gate.policy.may(user.role, permission)

    def hits_shown(user: User) -> pl.DataFrame:
        """The hits ``user`` may see.

        The whole program to ``audit`` and ``administer``; to others, the hits of the
        networks the user's organization is alerted to now.
        """
        table = svc.store.tables.read("hits")
        if any(may(user, p) for p in _AUDITING):
            return table
        networks = alert_networks(svc.store, organization=user.organization,
                                  policy=svc.gate.policy, at=svc.now())
        return table.filter(pl.col("network_id").is_in(networks))

    def summary(user: User, start: str | None, end: str | None) -> Any:
        from alpr_workbench.reports import default_period

        first, last = default_period(svc.store)
        return svc.gate.read_summary(user.user_id, start=_day(start, "start") or first,
                                     end=_day(end, "end") or last)

    # -- the registry --------------------------------------------------------------------
    @router.get("/cases")
    async def cases(request: Request) -> Response:
        """Open cases the user may search in now, or (``audit``, ``administer``) every case."""

        def work(user: User) -> Response:
            from alpr_workbench.analytics.patterns import eligible_case_assignments

            table = svc.store.tables.read("cases")
            if any(may(user, p) for p in _ALL_CASES):
                return _arrow(table)
            pairs = eligible_case_assignments(table, svc.store.tables.read("users"),
                                              policy=svc.gate.policy, now=svc.now())
            return _arrow(pairs.filter(pl.col("user_id") == user.user_id))

        return await handle(request, permission=("search", *_ALL_CASES), action="list cases",
                            work=work)

    @router.get("/cameras")
    async def cameras(request: Request) -> Response:
        """Every camera: where it is and its network (no read)."""
        return await handle(request, permission=_ANY_ROLE, action="list cameras",
                            work=lambda user: _arrow(svc.store.tables.read("cameras")))

    @router.get("/networks")
    async def networks(request: Request) -> Response:
        """Every camera network and its owner (no read)."""
        return await handle(request, permission=_ANY_ROLE, action="list networks",
                            work=lambda user: _arrow(svc.store.tables.read("networks")))

    # -- aggregates ----------------------------------------------------------------------
    @router.get("/read-counts")
    async def read_counts(request: Request, start: str | None = None,
                          end: str | None = None) -> Response:
        """Reads per camera per UTC day (``Gate.read_summary``): counts, never a plate.

        ``start``/``end`` default to the first and last stored day; the answer's
        ``X-Unique-Vehicles`` header holds the distinct vehicles of the period.
        """

        def work(user: User) -> Response:
            found = summary(user, start, end)
            return _arrow(found.reads_daily,
                          headers={"X-Unique-Vehicles": str(found.unique_vehicles)})

        return await handle(request, permission=("view_aggregates",), action="read counts",
                            work=work)

    @router.get("/trend")
    async def trend(request: Request, start: str | None = None, end: str | None = None,
                    every: str = "1mo") -> Response:
        """Reads, hits, confirmed hits, recoveries, arrests per day, week or month (UTC)."""

        def work(user: User) -> Response:
            from alpr_workbench.analytics.efficacy import trend as make_trend

            if every not in ("1d", "1w", "1mo"):
                raise ValueError(f"every: one of 1d, 1w, 1mo, not {every[:20]!r}")
            found = summary(user, start, end)
            return _arrow(make_trend(reads_daily=found.reads_daily,
                                     hits=svc.store.tables.read("hits"),
                                     outcomes=svc.store.tables.read("outcomes"), every=every))

        return await handle(request, permission=("view_aggregates",), action="read the trend",
                            work=work)

    @router.get("/efficacy")
    async def efficacy(request: Request, start: str | None = None,
                       end: str | None = None) -> Response:
        """The efficacy report's figures, funnel and hits by source (JSON; aggregates only)."""

        def work(user: User) -> Response:
            from alpr_workbench.reports import build_efficacy_report

            report = build_efficacy_report(svc.store, svc.audit, user_id=user.user_id,
                                           start=_day(start, "start"), end=_day(end, "end"),
                                           gate=svc.gate)
            body = {"start": report.start, "end": report.end, "period_days": report.period_days,
                    "figures": report.to_dict(), "funnel": [list(s) for s in report.funnel],
                    "hits_by_source": report.hits_by_source.to_dicts(),
                    "staff_hours_assumption": report.staff_hours_assumption}
            return Response(json.dumps(body, default=str), media_type="application/json")

        return await handle(request, permission=("view_aggregates",), action="read efficacy",
                            work=work)

    # -- hits and outcomes (for the recoveries map) ----------------------------------------
    @router.get("/hits")
    async def hits(request: Request) -> Response:
        """Hits placed at their camera, without the plates (read and listed).

        Those of the networks the user's organization is alerted to; every hit to ``audit``
        and ``administer``.
        """
        return await handle(
            request, permission=("view_aggregates",), action="list hits without plates",
            work=lambda user: _arrow(_without_personal(hits_shown(user), "hits")))

    @router.get("/outcomes")
    async def outcomes(request: Request) -> Response:
        """Stops, recoveries, arrests; where they happened only to roles that see locations.

        Those of the hits :func:`hits` shows the user.
        """

        def work(user: User) -> Response:
            shown = svc.gate.policy.row_columns.get(user.role, ())
            sees_places = may(user, "search") and (
                shown == "all" or {"lat", "lon"} <= set(shown))
            keep = ("lat", "lon") if sees_places else ()
            table = svc.store.tables.read("outcomes")
            if not any(may(user, p) for p in _AUDITING):
                table = table.filter(pl.col("hit_id").is_in(hits_shown(user)["hit_id"]))
            frame = _without_personal(table, "outcomes", keep=keep)
            return _arrow(frame, headers={"X-Locations": "true" if sees_places else "false"})

        return await handle(request, permission=("view_aggregates",), action="list outcomes",
                            work=work)

    @router.get("/hotlist-entries")
    async def hotlist_entries(request: Request) -> Response:
        """Hotlist entries without plate, plate state or VIN, nor the actionable fields.

        The actionable fields (``hit_workflow.ACTIONABLE_FIELDS``: reason, originating
        agency and case, theft date) are the hit workflow's to show, after a person confirms
        a hit.
        """

        def work(user: User) -> Response:
            frame = _without_personal(svc.store.tables.read("hotlist_entries"),
                                      "hotlist_entries")
            return _arrow(frame.drop([c for c in frame.columns if c in ACTIONABLE_FIELDS]))

        return await handle(
            request, permission=("view_aggregates",),
            action="list hotlist entries without plates", work=work)

    # -- the annual audit ------------------------------------------------------------------
    def audit_results(asked: str | None) -> tuple[int, list[Any]]:
        from alpr_workbench.reports import collect_audit_inputs, run_checks

        year = _year(asked)
        if year is None:
            events = svc.audit.events()
            if events.is_empty():
                raise ValueError("the audit log holds no record yet: give a year")
            year = int(events["occurred_at"].max().year)  # type: ignore[union-attr]
        inputs = collect_audit_inputs(svc.store, svc.audit, year=year)
        return year, run_checks(inputs, policy=svc.gate.policy)

    @router.get("/audit/checks")
    async def audit_checks(request: Request, year: str | None = None) -> Response:
        """Every annual check of ``year`` (default: the latest record's): plates masked."""

        def work(user: User) -> Response:
            from alpr_workbench.reports.audit_report import plate_masker

            year_, results = audit_results(year)
            mask = plate_masker([r.offending for r in results])
            frame = pl.DataFrame(
                {"check_id": [r.check_id for r in results],
                 "title": [r.title for r in results],
                 "passed": [r.passed for r in results],
                 "offending": [r.offending.height for r in results],
                 "explanation": [mask(r.explanation) for r in results]},
                schema={"check_id": pl.String, "title": pl.String, "passed": pl.Boolean,
                        "offending": pl.Int64, "explanation": pl.String},
            )
            return _arrow(frame, headers={"X-Year": str(year_)})

        return await handle(request, permission=_AUDITING, action="run the annual checks",
                            work=work)

    @router.get("/audit/offending")
    async def audit_offending(request: Request, check_id: str = "",
                              year: str | None = None) -> Response:
        """The offending records of one check, every plate masked (as in the report)."""

        def work(user: User) -> Response:
            from alpr_workbench.reports.audit_report import mask_plate, plate_masker

            year_, results = audit_results(year)
            found = [r for r in results if r.check_id == check_id]
            if not found:
                raise ValueError(f"check_id: no check {check_id[:20]!r}")
            mask = plate_masker([r.offending for r in results])
            rows = found[0].offending
            masked = rows.with_columns(
                [pl.col(c).map_elements(mask_plate if "plate" in c.lower() else mask,
                                        return_dtype=pl.String)
                 for c, kind in rows.schema.items() if kind == pl.String]
            )
            return _arrow(masked, headers={"X-Year": str(year_)})

        return await handle(request, permission=_AUDITING, action="list offending records",
                            work=work)

    @router.get("/audit/digest")
    async def audit_digest(request: Request, year: str | None = None) -> Response:
        """The year's signed digest and, apart, the log's public key (to verify it)."""

        def work(user: User) -> Response:
            chosen = _year(year)
            if chosen is None:
                raise ValueError("year: give the year of the digest")
            digest = svc.audit.digest(chosen)
            return JSONResponse({"digest": json.loads(digest.to_json()),
                                 "public_key_pem": svc.audit.public_key_pem()})

        return await handle(request, permission=(*_AUDITING, "view_aggregates"),
                            action="read the audit digest", work=work)

    @router.get("/audit/mine")
    async def audit_mine(request: Request, limit: str = "50") -> Response:
        """The signed-in user's own audit trail, latest last (no query text)."""

        def work(user: User) -> Response:
            count = int(limit) if limit.isdigit() else 0
            if not 1 <= count <= 10_000:
                raise ValueError(f"limit: a number from 1 to 10000, not {limit[:20]!r}")
            events = svc.audit.events().filter(pl.col("user_id") == user.user_id)
            return _arrow(events.select(_TRAIL).tail(count))

        return await handle(request, permission=_ANY_ROLE, action="read my audit trail",
                            work=work)

    # -- the transparency page's findings ------------------------------------------------
    @router.get("/transparency")
    async def transparency(request: Request, as_of: str | None = None) -> Response:
        """What the public page flags (grants, hotlists) and the portal comparison (JSON)."""

        def work(user: User) -> Response:
            from alpr_workbench.reports import collect_transparency

            when = dt.datetime.fromisoformat(as_of) if as_of else svc.now()
            if when.tzinfo is None:
                raise ValueError("as_of needs a time zone")
            data = collect_transparency(svc.store, svc.audit, user_id=user.user_id, as_of=when)
            body = {
                "as_of": data.as_of, "period_start": data.period_start,
                "period_end": data.period_end,
                "flagged_organizations": [
                    {"organization": o.organization, "recipient_type": o.recipient_type,
                     "problems": list(o.problems)} for o in data.flagged_organizations],
                "flagged_hotlists": [
                    {"name": h.name, "source": h.source, "problems": list(h.problems)}
                    for h in data.hotlists if h.problems],
                "portal": {"available": data.portal.available, "note": data.portal.note,
                           "agencies": data.portal.agencies,
                           "rows": [dataclasses.asdict(r) for r in data.portal.rows]},
            }
            return Response(json.dumps(body, default=str), media_type="application/json")

        return await handle(request, permission=("view_aggregates",),
                            action="read the transparency findings", work=work)

    return router
