"""The hit workflow through the service (``/v1/hits/...``): queue, show, confirm, outcome.

Every route needs a session; the acting user is the session's user, never a field of the
request (the body models forbid unknown fields, so a smuggled ``actor`` is a 422, audited).
The governance functions (:mod:`alpr_workbench.governance.hit_workflow`) check the user's
standing and the ``work_hits`` permission, the hit's network against the user's
organization, and audit every step with that user, refusals included. Refusals are
``403 {"error": "refused", "detail", "event_id"}``. Confirmations and outcomes change the
store, so they run alone under the service's lock; views share it. See
``docs/decisions/0003-service-boundary.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance import hit_workflow as workflow
from alpr_workbench.governance.hit_workflow import HitWorkflowRefused
from alpr_workbench.governance.registry import User
from alpr_workbench.service.routes_admin import _Body, _Recorder, _Work

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service

__all__ = ["HIT_PATHS", "hits_router"]

#: The routes of this router (``{hit_id}`` stands for a hit).
HIT_PATHS = frozenset({"/v1/hits/queue", "/v1/hits/{hit_id}", "/v1/hits/{hit_id}/confirm",
                       "/v1/hits/{hit_id}/outcome"})

class _ConfirmBody(_Body):
    decision: str = Field(max_length=40)
    note: str = Field(default="", max_length=workflow.NOTE_MAX_CHARS)


class _OutcomeBody(_Body):
    outcome_type: str = Field(max_length=40)
    occurred_at: dt.datetime | None = None
    # Strict: a JSON true or "12000" is not a price or a place (lax mode would take them).
    value_usd: float | None = Field(default=None, strict=True)
    case_number: str | None = Field(default=None, max_length=80)
    lat: float | None = Field(default=None, strict=True)
    lon: float | None = Field(default=None, strict=True)


class _Malformed(ValueError):
    """A body that does not fit its model (answered 422)."""


def _parse(model: type[_Body], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise _Malformed(f"{where}: {first['msg']}") from exc


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


_Handler = Callable[..., Awaitable[Response]]


def json_handler(svc: _Service, *, refused: type[WorkbenchError]) -> _Handler:
    """The one way a JSON route of the hit queue or of approvals runs its ``work``.

    ``handle(request, action=..., event_type=..., work=..., changes=...)`` authenticates the
    session under the service lock (exclusive when it ``changes`` anything), runs
    ``work(user, recorder)`` and answers its dict as JSON with the last audit record's id. A
    malformed body is audited as ``event_type`` and answered 422; ``refused`` (already audited
    by the governance function) 403; any other workbench error or bad value 400.
    """
    from alpr_workbench.service.app import ServiceError, _source

    async def handle(request: Request, *, action: str, event_type: str, work: _Work,
                     changes: bool) -> Response:
        source = _source(request)

        def run() -> Response:
            with svc.lock if changes else svc.lock.shared():
                user, _ = svc.authenticate(request, source)
                recorder = _Recorder(svc.audit.append)
                try:
                    result = work(user, recorder)
                except _Malformed as exc:
                    event_id = svc.record(event_type, action=action, source=source,
                                          user_id=user.user_id, problem=f"malformed: {exc}",
                                          details={"path": request.url.path})
                    raise ServiceError(422, "malformed_request", str(exc),
                                       event_id=event_id) from exc
                except refused as exc:
                    raise ServiceError(403, "refused", getattr(exc, "reason", None) or str(exc),
                                       event_id=recorder.last) from exc
                except (WorkbenchError, ValueError) as exc:
                    raise ServiceError(400, "invalid_request", str(exc),
                                       event_id=recorder.last) from exc
                result.setdefault("event_id", recorder.last)
                return JSONResponse(_json(result))

        return await run_in_threadpool(run)

    return handle


def hits_router(svc: _Service) -> APIRouter:
    """The ``/v1/hits/...`` routes over the service's store and audit log.

    Parameters
    ----------
    svc
        What the service's routes share (``service.app._Service``).

    Returns
    -------
    fastapi.APIRouter
        The routes, to include in the service's application.
    """
    router = APIRouter(prefix="/v1/hits")

    handle = json_handler(svc, refused=HitWorkflowRefused)

    def policy_now() -> dict[str, Any]:
        return {"policy": svc.gate.policy, "now": svc.now()}

    @router.get("/queue")
    async def queue(request: Request, limit: int = workflow.MAX_QUEUE) -> Response:
        """New (pending) hits the user may work; no actionable entry field (``work_hits``)."""

        def work(user: User, audit: _Recorder) -> dict[str, Any]:
            hits = workflow.hit_queue(svc.store, audit, actor=user.user_id, limit=limit,
                                      **policy_now())
            return {"hits": hits, "timezone": svc.gate.policy.timezone}

        return await handle(request, action="hit queue", event_type="aggregate", work=work,
                            changes=False)

    @router.get("/{hit_id}")
    async def show(hit_id: str, request: Request) -> Response:
        """One hit and its outcomes; actionable fields once confirmed correct."""

        def work(user: User, audit: _Recorder) -> dict[str, Any]:
            hit = workflow.show_hit(svc.store, audit, actor=user.user_id, hit_id=hit_id,
                                    **policy_now())
            return {"hit": hit, "timezone": svc.gate.policy.timezone}

        return await handle(request, action="show hit", event_type="aggregate", work=work,
                            changes=False)

    @router.post("/{hit_id}/confirm")
    async def confirm(hit_id: str, request: Request) -> Response:
        """Record the person's decision: correct, wrong_state, misread or not_actionable."""
        raw = await request.body()

        def work(user: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_ConfirmBody, raw)
            disposition = workflow.confirm_hit(
                svc.store, audit, actor=user.user_id, hit_id=hit_id, decision=body.decision,
                note=body.note, **policy_now())
            return {"hit_id": hit_id, "disposition": disposition,
                    "is_actionable": disposition == "confirmed"}

        return await handle(request, action="confirm hit", event_type="hotlist_change",
                            work=work, changes=True)

    @router.post("/{hit_id}/outcome")
    async def outcome(hit_id: str, request: Request) -> Response:
        """Record a stop, recovery, arrest or cleared case against a confirmed hit."""
        raw = await request.body()

        def work(user: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_OutcomeBody, raw)
            outcome_id = workflow.record_hit_outcome(
                svc.store, audit, actor=user.user_id, hit_id=hit_id,
                outcome_type=body.outcome_type, occurred_at=body.occurred_at,
                value_usd=body.value_usd, case_number=body.case_number, lat=body.lat,
                lon=body.lon, **policy_now())
            return {"hit_id": hit_id, "outcome_id": outcome_id}

        return await handle(request, action="record hit outcome",
                            event_type="hotlist_change", work=work, changes=True)

    return router
