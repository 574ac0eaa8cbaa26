"""The service's OIDC flow as the dashboard's "Sign in with <provider>" (in-process).

The dashboard runs in the service's process (``service/run.py``), so it shares the very
:class:`~alpr_workbench.service.oidc.OidcFlow` that ``/v1/oidc/...`` uses rather than calling
the API over loopback: the flow's source is the *browser's* address, so one person cannot
use up the service's own address's flows in progress, or its back-off, for everybody
(``docs/decisions/0006-oidc-sign-in.md``). The provider still sends the browser to the API's
one registered callback, where the ID token, the account's standing, its role and its
binding to the provider's subject are checked for both front ends alike; the dashboard keeps
the flow secret in the browser's signed cookie and redeems the one-time code here, through
the same steps as ``POST /v1/oidc/redeem`` (``service/oidc_redeem.py``) with the dashboard's
own standing check (:func:`~alpr_workbench.dashboard.auth.dashboard_user_problem`). Refusals
back the browser's address off and are ``login`` events with action ``oidc``
(``"login": "dashboard"``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from alpr_workbench.dashboard.auth import DashboardRefused, dashboard_user_problem
from alpr_workbench.service.oidc import OidcFlow, OidcRefused
from alpr_workbench.service.oidc_redeem import redeem_session

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service

__all__ = ["DashboardOidc", "dashboard_oidc"]


def dashboard_oidc(svc: _Service) -> DashboardOidc | None:
    """The dashboard's sign-in through the service's OIDC flow; None when OIDC is off.

    Parameters
    ----------
    svc
        What the service's routes share (``app.state.service`` of ``create_app``'s app).

    Returns
    -------
    DashboardOidc or None
        An ``alpr_workbench.dashboard.oidc.OidcSignIn`` for ``start_dashboard``.
    """
    return DashboardOidc(svc, svc.oidc) if svc.oidc is not None else None


class DashboardOidc:
    """Start and redeem the service's OIDC flows for dashboard browsers.

    Parameters
    ----------
    svc
        The service's shared state (throttle, audit, sessions, lock, store).
    flow
        The service's flow (the API's ``/v1/oidc`` routes use the same one).
    """

    def __init__(self, svc: _Service, flow: OidcFlow) -> None:
        self._svc = svc
        self._flow = flow

    @property
    def display_name(self) -> str:
        """The provider's name for the login page (``name`` in ``oidc.toml``)."""
        return self._flow.config.name

    def start(self, source: str) -> tuple[str, str]:
        """Start a flow for the browser at ``source``: (authorization URL, flow secret).

        Parameters
        ----------
        source
            The browser's address: its flows in progress are capped, and its refusals back
            it off, as for ``GET /v1/oidc/start`` from that address.

        Returns
        -------
        tuple of str
            The provider's authorization URL and the secret that redeems the flow's code.

        Raises
        ------
        DashboardRefused
            While ``source`` backs off, or when the flow is refused (too many in progress
            from ``source``, the provider unreadable); audited.
        """
        self._backoff_check(source)
        try:
            started = self._flow.start(source)
        except OidcRefused as exc:
            raise self._refuse(source, exc.reason, None, "start") from exc
        return started.authorization_url, started.flow_secret

    def redeem(self, flow_secret: str, code: str, source: str) -> tuple[str, str]:
        """Redeem a one-time code with its flow's secret: (user id, session token).

        Parameters
        ----------
        flow_secret
            The secret this browser's cookie holds ("" when it holds none).
        code
            The one-time code the callback page showed.
        source
            The browser's address.

        Returns
        -------
        tuple of str
            The user the code was granted to and the token of a new service session.

        Raises
        ------
        DashboardRefused
            For an unknown, used or expired code, a code of another browser's flow (the code
            is used up either way), or a user who may not open the dashboard now; audited,
            and ``source`` backs off.
        """
        self._backoff_check(source)
        svc = self._svc

        def standing(user_id: str) -> tuple[str | None, None]:
            problem = dashboard_user_problem(svc.store, user_id, policy=svc.gate.policy,
                                             now=svc.now())
            return problem, None

        redeemed = redeem_session(svc, self._flow, flow_secret, code, source,
                                  standing=standing, refuse=self._refuse,
                                  details={"login": "dashboard"})
        return redeemed.user_id, redeemed.token

    def _backoff_check(self, source: str) -> None:
        wait = self._svc.throttle.wait_s(source)
        if wait > 0:
            raise DashboardRefused(
                f"too many failed attempts from your address: try again in {math.ceil(wait)} s"
            )

    def _refuse(self, source: str, reason: str, user_id: str | None, stage: str,
                details: dict[str, Any] | None = None) -> DashboardRefused:
        """Back ``source`` off, audit the refusal, and return the error to raise."""
        svc = self._svc
        delay = svc.throttle.failed(source)
        audited = reason if delay == 0 else f"{reason}; back off {delay:.0f} s"
        with svc.lock.shared():
            svc.record("login", action="oidc", source=source, user_id=user_id,
                       problem=audited,
                       details={"stage": stage, "login": "dashboard", **(details or {})})
        shown = f"sign-in refused: {reason}"
        if delay:
            shown += f"; too many failed attempts: try again in {math.ceil(delay)} s"
        return DashboardRefused(shown)
