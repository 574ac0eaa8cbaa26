"""Reports through the service (``/v1/reports/...``): efficacy, transparency, annual audit.

The acting user is the session's user, never a field of the request (bodies forbid unknown
fields). The report functions run here, in the service, with that user: efficacy and the
transparency page read aggregates through the gate (``view_aggregates``; the gate audits
both the view and a refusal); the annual audit report needs ``audit`` or ``administer``
(``audit`` alone with whole plates, which is audited as an export, refusal included).
Refusals are ``403 {"error": "refused", "detail", "event_id"}``. Efficacy answers JSON; the
two pages answer their HTML, which the client writes locally. See
``docs/decisions/0003-service-boundary.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.admin import actor_problem
from alpr_workbench.governance.gate import SearchRefused
from alpr_workbench.governance.registry import User

if TYPE_CHECKING:
    from collections.abc import Callable

    from alpr_workbench.service.app import _Service

__all__ = ["REPORT_UPLOAD_PATHS", "reports_router"]

#: The transparency route may carry the published portal figures as a CSV body.
REPORT_UPLOAD_PATHS = frozenset({"/v1/reports/transparency"})
_HTML = "text/html; charset=utf-8"
_CSV_TYPES = {"text/csv", "application/csv", "text/plain"}


class _AuditReportBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    year: int = Field(ge=2000, le=2200)
    show_plates: bool = False


def reports_router(svc: _Service) -> APIRouter:
    """The ``/v1/reports/...`` routes over the service's store and audit log.

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

    router = APIRouter(prefix="/v1/reports")

    async def locked(request: Request, work: Callable[[User, str], Response]) -> Response:
        source = _source(request)

        def run() -> Response:
            with svc.lock:
                user, _ = svc.authenticate(request, source)
                try:
                    return work(user, source)
                except SearchRefused as exc:
                    raise ServiceError(403, "refused", exc.reason,
                                       event_id=exc.event_id) from exc
                except (WorkbenchError, ValueError, OSError) as exc:
                    raise ServiceError(400, "invalid_request", str(exc)) from exc

        return await run_in_threadpool(run)

    @router.get("/efficacy")
    async def efficacy(request: Request, start: str | None = None,
                       end: str | None = None) -> Response:
        """Efficacy and impact (``view_aggregates``, checked and audited by the gate)."""

        def work(user: User, source: str) -> Response:
            from alpr_workbench.reports import build_efficacy_report

            first = dt.date.fromisoformat(start) if start else None
            last = dt.date.fromisoformat(end) if end else None
            report = build_efficacy_report(svc.store, svc.audit, user_id=user.user_id,
                                           start=first, end=last, gate=svc.gate)
            body = {"start": report.start, "end": report.end, "figures": report.to_dict(),
                    "staff_hours_assumption": report.staff_hours_assumption}
            return Response(json.dumps(body, default=str), media_type="application/json")

        return await locked(request, work)

    @router.post("/transparency")
    async def transparency(request: Request, as_of: str | None = None) -> Response:
        """The public transparency page as HTML (``view_aggregates``, via the gate).

        An optional ``text/csv`` body holds the published portal figures to compare with
        (the columns of ``reports.transparency.PORTAL_FIGURE_COLUMNS``); without one the
        figures shipped with the package are used.
        """
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ServiceError(401, "unauthenticated",
                               "sign in first: this request carries no session token",
                               headers={"WWW-Authenticate": "Bearer"})
        raw = await request.body()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()

        def work(user: User, source: str) -> Response:
            from alpr_workbench.reports.transparency import write_transparency

            when = dt.datetime.fromisoformat(as_of) if as_of else None
            if when is not None and when.tzinfo is None:
                raise ValueError("as_of needs a time zone")
            with tempfile.TemporaryDirectory() as folder:
                portal: Path | None = None
                if raw:
                    if kind not in _CSV_TYPES:
                        raise ValueError("send the portal figures as text/csv")
                    portal = Path(folder) / "portal_figures.csv"
                    portal.write_bytes(raw)
                out = Path(folder) / "transparency.html"
                data = write_transparency(svc.store, svc.audit, user_id=user.user_id, out=out,
                                          as_of=when, portal_dir=portal)
                html = out.read_bytes()
            return Response(html, media_type=_HTML,
                            headers={"X-As-Of": data.as_of.isoformat()})

        return await locked(request, work)

    @router.post("/audit")
    async def audit_report(request: Request) -> Response:
        """The annual audit report as HTML (``audit`` or ``administer``).

        Whole plates need ``audit``, and are audited as an export (a refusal too). The
        ``X-Audit-Checks`` header lists every check as ``[check_id, title, passed,
        flagged]``: the department's (A1..P2), then the imported vendor logs' own
        (``vendor-<id>``). The service only reports the results; the client decides what
        a failure means (the command line exits 1).
        """
        raw = await request.body()

        def work(user: User, source: str) -> Response:
            from alpr_workbench.reports.audit_report import ReportRefused, write_annual_audit

            try:
                body = _AuditReportBody.model_validate_json(raw or b"{}")
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "body"
                raise ServiceError(422, "malformed_request",
                                   f"{where}: {first['msg']}") from exc
            wanted: tuple[Any, ...] = ("audit",) if body.show_plates else ("audit", "administer")
            action = ("see whole plates in the annual audit report" if body.show_plates
                      else "run the annual audit report")
            problems = [actor_problem(svc.store, actor=user.user_id, permission=p,
                                      action=action, policy=svc.gate.policy, now=svc.now())
                        for p in wanted]
            details = {"path": request.url.path, "export": "audit_report", "year": body.year,
                       "show_plates": body.show_plates}
            event_type = "export" if body.show_plates else "aggregate"
            if all(p is not None for p in problems):
                reason = str(problems[0])
                event_id = svc.record(event_type, action=action, source=source,
                                      user_id=user.user_id, problem=reason, details=details)
                raise ServiceError(403, "refused", reason, event_id=event_id)
            with tempfile.TemporaryDirectory() as folder:
                out = Path(folder) / f"alpr-audit-{body.year}.html"
                try:
                    audit = write_annual_audit(svc.store, svc.audit, year=body.year, out=out,
                                               show_plates=body.show_plates,
                                               user_id=user.user_id)
                except ReportRefused as exc:
                    raise ServiceError(403, "refused", str(exc)) from exc
                html = out.read_bytes()
            allowed_id: str | None = None
            if not body.show_plates:  # with whole plates the export was audited already
                allowed_id = svc.record(event_type, action=action, source=source,
                                        user_id=user.user_id, problem=None, details=details)
            summary: list[list[Any]] = [
                [r.check_id, r.title, r.passed, r.offending.height] for r in audit.results
            ]
            summary += [[f"vendor-{c.check_id}", f"Imported vendor logs: {c.title}", c.passed,
                         c.n_offending] for c in audit.vendor.checks]
            headers = {"X-Audit-Checks": json.dumps(summary)}
            if allowed_id:
                headers["X-Audit-Event-Id"] = allowed_id
            return Response(html, media_type=_HTML, headers=headers)

        return await locked(request, work)

    return router
