"""Onboarding through the service: users, cases, cameras, networks and legal-hold reviews.

``/v1/admin/onboarding/{table}`` (``users``, ``cases``, ``cameras``, ``networks``): ``GET``
lists the table, ``POST .../import`` takes a CSV body (refused whole, every bad line named),
``POST .../{id}/edit`` changes fields of one record; ``POST .../users/{id}/separate`` and
``POST .../cases/{number}/close``. ``GET /v1/admin/holds`` lists legal holds and
``POST /v1/admin/holds/{id}/review`` sets a new review date.

As in ``routes_admin``: the acting user is the session's, never a field of the request (bodies
forbid unknown fields); each request is checked first against the policy permission of the
user's role (a refusal is audited here), then handed to
:mod:`alpr_workbench.governance.onboarding`, which checks again and audits the action. See
``docs/decisions/0003-service-boundary.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance import onboarding
from alpr_workbench.governance.admin import AdminRefused, actor_problem
from alpr_workbench.governance.registry import User
from alpr_workbench.policy import Permission
from alpr_workbench.service.routes_admin import (
    _CSV_TYPES,
    _Body,
    _frame,
    _Malformed,
    _parse,
    _Recorder,
    _Work,
)

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service

__all__ = ["onboarding_router"]


class _EditBody(_Body):
    changes: dict[str, str] = Field(max_length=20)
    reason: str = Field(default="", max_length=500)


class _SeparateBody(_Body):
    separated_at: dt.datetime | None = None
    reason: str = Field(default="", max_length=500)


class _CloseBody(_Body):
    reason: str = Field(default="", max_length=500)


class _ReviewBody(_Body):
    review_by_date: dt.date
    reason: str = Field(max_length=1000)


#: The CSV imports, whose bodies may be as large as the other uploads (``MAX_UPLOAD_BYTES``).
ONBOARDING_UPLOAD_PATHS = frozenset(f"/v1/admin/onboarding/{t}/import" for t in onboarding.KEYS)


def _table(table: str) -> onboarding.Table:
    if table not in onboarding.KEYS:
        raise ValueError(f"unknown table {table[:40]!r}: one of {', '.join(onboarding.KEYS)}")
    return table  # type: ignore[return-value]


def onboarding_router(svc: _Service) -> APIRouter:
    """The onboarding routes over the service's store, audit log and sessions.

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

    router = APIRouter(prefix="/v1/admin")

    async def handle(request: Request, *, event_type: str,
                     permission: Permission | tuple[Permission, ...], action: str,
                     work: _Work, read_only: bool = False) -> Response:
        """Authenticate, check the role's permission (refusal audited), run ``work``."""
        source = _source(request)

        def locked() -> Response:
            with svc.lock:
                actor, _ = svc.authenticate(request, source)
                wanted = permission if isinstance(permission, tuple) else (permission,)
                problems = [
                    actor_problem(svc.store, actor=actor.user_id, permission=p, action=action,
                                  policy=svc.gate.policy, now=svc.now())
                    for p in wanted
                ]
                if all(p is not None for p in problems):
                    reason = str(problems[0])
                    event_id = svc.record(event_type, action=action, source=source,
                                          user_id=actor.user_id, problem=reason,
                                          details={"path": request.url.path})
                    raise ServiceError(403, "refused", reason, event_id=event_id)
                recorder = _Recorder(svc.audit.append)
                try:
                    result = work(actor, recorder)
                except _Malformed as exc:
                    raise ServiceError(422, "malformed_request", str(exc),
                                       event_id=recorder.last) from exc
                except AdminRefused as exc:
                    raise ServiceError(403, "refused", str(exc), event_id=recorder.last) from exc
                except (WorkbenchError, ValueError) as exc:
                    raise ServiceError(400, "invalid_request", str(exc),
                                       event_id=recorder.last) from exc
                if read_only:
                    recorder.last = svc.record("aggregate", action=action, source=source,
                                               user_id=actor.user_id, problem=None,
                                               details={"path": request.url.path})
                result.setdefault("event_id", recorder.last)
                return JSONResponse(result)

        return await run_in_threadpool(locked)

    def event_of(table: str) -> str:
        return onboarding.IMPORT_EVENT_TYPES.get(table, "user_change")

    @router.get("/onboarding/{table}")
    async def records_list(table: str, request: Request) -> Response:
        """Administrators: every record of ``users``, ``cases``, ``cameras`` or ``networks``."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            frame = onboarding.list_records(svc.store, _table(table))
            return {"table": table, "records": _frame(frame)}

        return await handle(request, event_type="aggregate", permission="administer",
                            action=f"list {table[:40]}", work=work, read_only=True)

    @router.post("/onboarding/{table}/import")
    async def records_import(table: str, request: Request, name: str | None = None) -> Response:
        """Import a CSV body (``administer``): every line, or none with every bad line named."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in _CSV_TYPES:
                raise ValueError("send the file as text/csv")
            if not raw:
                raise ValueError("the CSV body is empty")
            result = onboarding.import_csv(
                svc.store, audit, _table(table), raw, actor=actor.user_id,
                policy=svc.gate.policy, now=svc.now(),
                name=(name or f"{table}.csv")[:200],
            )
            return result.to_dict()

        return await handle(request, event_type=event_of(table), permission="administer",
                            action=f"import {table[:40]}", work=work)

    @router.post("/onboarding/{table}/{key}/edit")
    async def records_edit(table: str, key: str, request: Request) -> Response:
        """Change fields of one record (``administer``; audited before and after)."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_EditBody, raw)
            result = onboarding.edit_record(
                svc.store, audit, _table(table), key, dict(body.changes), actor=actor.user_id,
                policy=svc.gate.policy, now=svc.now(), reason=body.reason,
            )
            doc = result.to_dict()
            if table == "users":
                changed = result.changed.get(key.lower(), {})
                if changed.get("is_active", [None, None])[1] == "False":
                    doc["sessions_ended"] = svc.sessions.revoke_user(key.lower())
            return doc

        return await handle(request, event_type=event_of(table), permission="administer",
                            action=f"edit {table[:40]}", work=work)

    @router.post("/onboarding/users/{user_id}/separate")
    async def users_separate(user_id: str, request: Request) -> Response:
        """Record that a user left (``administer``): separated, disabled, sessions ended."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_SeparateBody, raw)
            if body.separated_at is not None and body.separated_at.tzinfo is None:
                raise _Malformed("separated_at: give a time zone")
            result = onboarding.separate_user(
                svc.store, audit, user_id, actor=actor.user_id, policy=svc.gate.policy,
                now=svc.now(), separated_at=body.separated_at, reason=body.reason,
            )
            return {**result.to_dict(),
                    "sessions_ended": svc.sessions.revoke_user(user_id.lower())}

        return await handle(request, event_type="user_change", permission="administer",
                            action="separate users", work=work)

    @router.post("/onboarding/cases/{case_number}/close")
    async def cases_close(case_number: str, request: Request) -> Response:
        """Close an open case now (``administer``); no search may name it afterwards."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_CloseBody, raw)
            result = onboarding.close_case(
                svc.store, audit, case_number, actor=actor.user_id, policy=svc.gate.policy,
                now=svc.now(), reason=body.reason,
            )
            return result.to_dict()

        return await handle(request, event_type=event_of("cases"), permission="administer",
                            action="close cases", work=work)

    @router.get("/holds")
    async def holds_list(request: Request) -> Response:
        """Every legal hold, in force or released (``manage_legal_holds``, ``audit``)."""

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            holds = svc.store.tables.read("legal_holds").sort("created_at")
            return {"holds": _frame(holds)}

        return await handle(request, event_type="aggregate",
                            permission=("manage_legal_holds", "audit"),
                            action="list legal holds", work=work, read_only=True)

    @router.post("/holds/{hold_id}/review")
    async def holds_review(hold_id: str, request: Request) -> Response:
        """Review a legal hold (``manage_legal_holds``): a new review date and why."""
        raw = await request.body()

        def work(actor: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_ReviewBody, raw)
            old = onboarding.review_legal_hold(
                svc.store, audit, hold_id, review_by_date=body.review_by_date,
                reason=body.reason, actor=actor.user_id, policy=svc.gate.policy, now=svc.now(),
            )
            return {"hold_id": hold_id, "old_review_by_date": old.isoformat(),
                    "review_by_date": body.review_by_date.isoformat()}

        return await handle(request, event_type="hold", permission="manage_legal_holds",
                            action="review a legal hold", work=work)

    return router
