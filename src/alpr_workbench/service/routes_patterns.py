"""Pattern searches through the service (``/v1/patterns/...``): gated like a search.

- ``POST /v1/patterns/seen-at-both``: plates read at place A and at place B within a gap
  (:class:`~alpr_workbench.governance.gate.SeenAtBothRequest`);
- ``POST /v1/patterns/repeats``: plates read at one place at least N times, on N distinct
  local days (:class:`~alpr_workbench.governance.gate.RepeatSightingsRequest`).

Each one is a gate operation (:meth:`Gate.seen_at_both`, :meth:`Gate.repeat_sightings`): the
case, the reason, the window and every place are checked as a search would be, the reads are
capped at the policy's ``max_rows``, and the whole is one ``search`` record in the audit log
with the session's user, allowed or refused. The analysis is the package's own
(``analytics.patterns``) over the rows the gate returned; nothing here reads the store.

Answers are Arrow IPC streams of one row per plate, with the headers ``X-Audit-Event-Id``,
``X-Reads-Matched`` (reads at the places before the cap), ``X-Reads-Considered`` (reads the
pattern was computed from) and ``X-Truncated`` (``true`` when the cap cut the reads: the
pattern may miss plates). A refusal is ``403 {"error": "search_refused", "detail",
"event_id"}``; a malformed body is 422 and audited as a malformed search. See
``docs/decisions/0003-service-boundary.md``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from alpr_workbench.analytics.patterns import repeat_sightings, seen_at_both
from alpr_workbench.governance.gate import (
    PatternResult,
    RepeatSightingsRequest,
    SearchRefused,
    SeenAtBothRequest,
)
from alpr_workbench.governance.registry import User

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service

__all__ = ["PATTERN_PATHS", "patterns_router"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: Every route of this router (a POST each).
PATTERN_PATHS = frozenset({"/v1/patterns/seen-at-both", "/v1/patterns/repeats"})


def _answer(result: PatternResult) -> Response:
    """The pattern's rows as one Arrow IPC stream body, with what the gate recorded."""
    sink = io.BytesIO()
    result.rows.write_ipc_stream(sink)
    headers = {
        "X-Audit-Event-Id": result.event_id,
        "X-Reads-Matched": str(result.reads_matched),
        "X-Reads-Considered": str(result.reads_considered),
        "X-Truncated": "true" if result.truncated else "false",
        "X-Window-From": result.window_from.isoformat(),
        "X-Window-To": result.window_to.isoformat(),
    }
    return Response(sink.getvalue(), media_type=ARROW_STREAM, headers=headers)


def patterns_router(svc: _Service) -> APIRouter:
    """The ``/v1/patterns/...`` routes: gated pattern searches as the session's user.

    Parameters
    ----------
    svc
        What the service's routes share (``service.app._Service``).

    Returns
    -------
    fastapi.APIRouter
        The routes, to include in the service's application.
    """
    from alpr_workbench.service.app import ServiceError, _json_body, _source, _validation_words

    router = APIRouter(prefix="/v1/patterns")

    async def gated(
        request: Request,
        model: type[BaseModel],
        action: str,
        run: Callable[[User, Any], PatternResult],
    ) -> Response:
        raw = await request.body()
        source = _source(request)

        def work() -> Response:
            # Searches share the service lock; a change (purge, disable) waits for them.
            with svc.lock.shared():
                user, _ = svc.authenticate(request, source)
                try:
                    body = model(**_json_body(raw))
                except (ValueError, TypeError) as exc:
                    words = (
                        _validation_words(exc) if isinstance(exc, ValidationError) else str(exc)
                    )
                    event_id = svc.record(
                        "search", action=action, source=source, user_id=user.user_id,
                        problem=f"malformed request: {words}",
                        details={"body": raw[:4096].decode("utf-8", "replace")},
                    )  # fmt: skip
                    raise ServiceError(422, "malformed_request", words, event_id=event_id) from exc
                try:
                    result = run(user, body)
                except SearchRefused as exc:
                    raise ServiceError(
                        403, "search_refused", exc.reason, event_id=exc.event_id
                    ) from exc
                # The pattern search is in the audit log; only now does its result leave.
                return _answer(result)

        return await run_in_threadpool(work)

    @router.post("/seen-at-both")
    async def seen_at_both_route(request: Request) -> Response:
        """Plates read at place A and at place B within a gap (a gated, audited search)."""

        def run(user: User, body: SeenAtBothRequest) -> PatternResult:
            return svc.gate.seen_at_both(user.user_id, body, pair=seen_at_both)

        return await gated(request, SeenAtBothRequest, "seen_at_both", run)

    @router.post("/repeats")
    async def repeats_route(request: Request) -> Response:
        """Plates read at one place again and again (a gated, audited search)."""

        def run(user: User, body: RepeatSightingsRequest) -> PatternResult:
            return svc.gate.repeat_sightings(user.user_id, body, count=repeat_sightings)

        return await gated(request, RepeatSightingsRequest, "repeat_sightings", run)

    return router
