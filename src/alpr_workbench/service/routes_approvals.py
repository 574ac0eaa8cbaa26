"""Supervisors' approvals of larger search results through the service (``/v1/approvals``).

``POST /v1/approvals`` grants one named searcher one search of one case with more rows than
the policy's cap; the approving supervisor is the session's user, never a field of the
request. ``GET /v1/approvals`` lists the approvals the user granted or received (every one
for the ``audit`` role). The rules are :mod:`alpr_workbench.governance.approvals`'s; every
grant, refused or allowed, is an ``approval`` audit event. A grant changes the store, so it
runs alone under the service's lock; the list shares it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from alpr_workbench.governance.approvals import ApprovalRefused, grant_approval, list_approvals
from alpr_workbench.governance.registry import User
from alpr_workbench.service.routes_admin import _Body, _Recorder
from alpr_workbench.service.routes_hits import _parse, json_handler

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service

__all__ = ["APPROVAL_PATHS", "approvals_router"]

#: The routes of this router.
APPROVAL_PATHS = frozenset({"/v1/approvals"})


class _GrantApprovalBody(_Body):
    searcher_user_id: str = Field(max_length=64)
    case_number: str = Field(max_length=80)
    max_rows: int | None = Field(default=None, strict=True)
    hours: float | None = Field(default=None, allow_inf_nan=False)


def approvals_router(svc: _Service) -> APIRouter:
    """The ``/v1/approvals`` routes over the service's store and audit log.

    Parameters
    ----------
    svc
        What the service's routes share (``service.app._Service``).

    Returns
    -------
    fastapi.APIRouter
        The routes, to include in the service's application.
    """
    router = APIRouter(prefix="/v1/approvals")

    handle = json_handler(svc, refused=ApprovalRefused)

    @router.post("")
    async def grant(request: Request) -> Response:
        """Supervisors: grant a searcher one larger search of one case (audited)."""
        raw = await request.body()

        def work(user: User, audit: _Recorder) -> dict[str, Any]:
            body = _parse(_GrantApprovalBody, raw)
            approval = grant_approval(
                svc.store, audit, actor=user.user_id, searcher_user_id=body.searcher_user_id,
                case_number=body.case_number, max_rows=body.max_rows, hours=body.hours,
                policy=svc.gate.policy, now=svc.now(),
            )
            return dict(vars(approval))  # the handler writes datetimes as ISO text

        return await handle(request, action="grant approval", event_type="approval", work=work,
                            changes=True)

    @router.get("")
    async def listed(request: Request) -> Response:
        """The approvals the user granted or received (every one for auditors)."""

        def work(user: User, audit: _Recorder) -> dict[str, Any]:
            rows = list_approvals(svc.store, actor=user, policy=svc.gate.policy)
            return {"approvals": list(rows.iter_rows(named=True))}

        return await handle(request, action="list approvals", event_type="approval", work=work,
                            changes=False)

    return router
