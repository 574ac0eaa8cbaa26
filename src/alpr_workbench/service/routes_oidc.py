"""OpenID Connect sign-in routes (``/v1/oidc/...``), answered only when the operator set it up.

``GET /v1/oidc/start`` returns the identity provider's authorization URL and a flow secret;
``GET /v1/oidc/callback`` (the redirect URI) exchanges the code, verifies the ID token, checks
that it names a workbench user in good standing whose role the provider's groups map to, and
shows a one-time code; ``POST /v1/oidc/redeem`` exchanges that code, with the flow secret,
once, for a session. Every refusal backs the source off (the same per-source throttle as
``/v1/login``) and is a ``login`` event with action ``oidc``. An account is bound to the
provider's (issuer, sub) at its first sign-in (``oidc_bound``) and accepted only for that
subject from then on. See ``service/oidc.py`` and
``docs/decisions/0006-oidc-sign-in.md``.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from alpr_workbench.governance.registry import get_user, user_problem
from alpr_workbench.service.oidc import (
    BINDINGS_TABLE,
    OidcFlow,
    OidcRefused,
    Verified,
    load_oidc_config,
    role_problem,
)
from alpr_workbench.service.oidc_redeem import redeem_session

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service

__all__ = ["BINDINGS_TABLE", "oidc_router"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer"><title>ALPR Workbench sign-in</title></head>
<body><h1>{title}</h1><p>{words}</p>{code}</body></html>"""


class _RedeemBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    flow_secret: str = Field(max_length=128)
    code: str = Field(max_length=128)


def oidc_router(svc: _Service) -> APIRouter:
    """The ``/v1/oidc/...`` routes; each answers 404 while OIDC sign-in is not configured.

    Parameters
    ----------
    svc
        What the service's routes share (``service.app._Service``).

    Returns
    -------
    fastapi.APIRouter
        The routes, to include in the service's application.

    Raises
    ------
    alpr_workbench.errors.WorkbenchError
        When ``<data dir>/service/oidc.toml`` exists but is wrong: the service does not start
        with a sign-in it cannot trust.
    """
    from alpr_workbench.service.app import ServiceError, _json_body, _source, _validation_words

    config = load_oidc_config(svc.store.home, roles=svc.gate.policy.roles)
    flow = OidcFlow(config) if config is not None else None
    svc.oidc = flow  # shared with the dashboard's sign-in (service/oidc_dashboard.py)
    router = APIRouter(prefix="/v1/oidc")

    def need_flow() -> OidcFlow:
        if flow is None:
            raise ServiceError(404, "oidc_off",
                               "sign-in through an identity provider is not configured")
        return flow

    def refuse(source: str, reason: str, user_id: str | None, stage: str,
               details: dict[str, Any] | None = None) -> ServiceError:
        """Back the source off, audit the refusal, and return the error to raise."""
        delay = svc.throttle.failed(source)
        audited = reason if delay == 0 else f"{reason}; back off {delay:.0f} s"
        with svc.lock.shared():
            event_id = svc.record("login", action="oidc", source=source, user_id=user_id,
                                  problem=audited, details={"stage": stage, **(details or {})})
        shown = f"sign-in refused: {reason}"
        if delay:
            shown += f"; too many failed attempts: try again in {delay:.0f} s"
        return ServiceError(401, "login_refused", shown, event_id=event_id)

    def standing(user_id: str) -> tuple[str | None, str | None]:
        """(problem, the user's role): the user must exist and be in good standing."""
        from alpr_workbench.service.app import _USER_ID

        user = get_user(svc.store, user_id) if _USER_ID.match(user_id) else None
        problem = user_problem(user, policy=svc.gate.policy, now=svc.now())
        return problem, (user.role if user is not None else None)

    def bind(verified: Verified, source: str) -> str | None:
        """Bind the account to the provider's (issuer, sub) at its first sign-in; then match.

        The claim only finds the account: from its first sign-in through the provider on,
        the account is accepted only for that (issuer, subject), so a different person at
        the provider who is given the same user name or e-mail claim is refused. A subject
        already bound to another account is refused too. A new binding is audited
        (``oidc_bound``). Returns the reason for a refusal, or None.
        """
        assert config is not None
        with svc.lock:  # check-and-bind is one step (a binding changes the store)
            table = svc.store.tables.read(BINDINGS_TABLE)
            mine = table.filter(pl.col("user_id") == verified.user_id)
            if mine.height:
                row = mine.row(0, named=True)
                if row["issuer"] == config.issuer and row["subject"] == verified.subject:
                    return None
                return ("this account is bound to another identity at the identity provider "
                        "(a different subject presented its user claim)")
            taken = table.filter((pl.col("issuer") == config.issuer)
                                 & (pl.col("subject") == verified.subject))
            if taken.height:
                return "this identity at the provider is bound to another workbench account"
            svc.store.tables.append(BINDINGS_TABLE, pl.DataFrame(
                [{"user_id": verified.user_id, "issuer": config.issuer,
                  "subject": verified.subject, "bound_at": svc.now()}], schema=table.schema))
            svc.record("login", action="oidc_bound", source=source, user_id=verified.user_id,
                       problem=None, details={"issuer": config.issuer,
                                              "subject": verified.subject[:128],
                                              "flow_id": verified.flow_id})
        return None

    @router.get("/start")
    async def start(request: Request) -> Response:
        """Start a sign-in: the URL to open in a browser, and this flow's secret."""
        source = _source(request)

        def work() -> Response:
            oidc = need_flow()
            svc.backoff_check(source)
            try:
                started = oidc.start(source)
            except OidcRefused as exc:
                raise refuse(source, exc.reason, None, "start") from exc
            return JSONResponse(
                {"authorization_url": started.authorization_url,
                 "flow_secret": started.flow_secret,
                 "expires_at": started.expires_at.isoformat()},
                headers=_NO_STORE,
            )

        return await run_in_threadpool(work)

    @router.get("/callback")
    async def callback(request: Request) -> Response:
        """The redirect URI: verify the provider's answer; show a one-time code."""
        source = _source(request)
        params = request.query_params

        def work() -> Response:
            oidc = need_flow()
            svc.backoff_check(source)
            state, code = params.get("state", ""), params.get("code", "")
            if params.get("error"):
                error = params.get("error", "")[:100]
                # The state is consumed all the same, so it cannot be used again.
                try:
                    oidc.complete(state, "")
                except OidcRefused:
                    pass
                raise refuse(source, f"the identity provider answered {error!r}", None,
                             "callback")
            try:
                verified: Verified = oidc.complete(state, code)
            except OidcRefused as exc:
                raise refuse(source, exc.reason, exc.user_id, "callback") from exc
            details = {"subject": verified.subject[:128], "flow_id": verified.flow_id,
                       "roles": sorted(verified.roles)}
            with svc.lock.shared():
                problem, role = standing(verified.user_id)
            if problem is None and role is not None:
                problem = role_problem(verified.roles, role)
            if problem is None:
                problem = bind(verified, source)
            if problem is not None:
                raise refuse(source, problem, verified.user_id, "callback", details)
            one_time = oidc.grant(verified)
            svc.throttle.succeeded(source)
            with svc.lock.shared():
                svc.record("login", action="oidc", source=source, user_id=verified.user_id,
                           problem=None, details={"stage": "callback", **details})
            page = _PAGE.format(
                title="Signed in with your identity provider",
                words=("Paste this one-time code where you started the sign-in (the "
                       "dashboard's sign-in page, or <code>alpr-workbench login --oidc</code>)"
                       f" within two minutes, as {html.escape(verified.user_id)}; never give "
                       "it to anyone:"),
                code=f'<p><code id="one-time-code">{html.escape(one_time)}</code></p>',
            )
            return HTMLResponse(page, headers=_NO_STORE)

        return await run_in_threadpool(work)

    @router.post("/redeem")
    async def redeem(request: Request) -> Response:
        """Exchange the one-time code, with the flow secret, once, for a session token."""
        raw = await request.body()
        source = _source(request)

        def work() -> Response:
            oidc = need_flow()
            svc.backoff_check(source)
            try:
                body = _RedeemBody(**_json_body(raw))
            except (ValueError, TypeError) as exc:
                words = _validation_words(exc) if isinstance(exc, ValidationError) else str(exc)
                raise ServiceError(422, "malformed_request", words) from exc
            redeemed = redeem_session(svc, oidc, body.flow_secret, body.code, source,
                                      standing=standing, refuse=refuse,
                                      busy=svc.attempt_refusal)
            return JSONResponse(
                {"token": redeemed.token, "user_id": redeemed.user_id,
                 "role": redeemed.standing,
                 "expires_at": redeemed.session.expires_at.isoformat()},
                headers=_NO_STORE,
            )

        return await run_in_threadpool(work)

    return router
