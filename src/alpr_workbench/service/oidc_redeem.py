"""Redeem an OIDC one-time code for a service session: one path for the API and the dashboard.

``POST /v1/oidc/redeem`` (``service/routes_oidc.py``) and the dashboard's "Sign in with
<provider>" (``service/oidc_dashboard.py``) end a sign-in the same way: the flow redeems the
code with its flow secret (:meth:`~alpr_workbench.service.oidc.OidcFlow.redeem`, once), the
account's standing and its binding to the subject the callback verified are checked again
(an administrator may have disabled or unbound it since), a session is opened and the sign-in
is audited (a ``login`` event with action ``oidc``, stage ``redeem``).
Each front end gives its own standing check and its own refusal: the API answers a
``ServiceError``, the dashboard a ``DashboardRefused`` (``docs/decisions/0006-oidc-sign-in.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from alpr_workbench.service.oidc import OidcFlow, OidcRefused, find_binding

if TYPE_CHECKING:
    from alpr_workbench.service.app import _Service
    from alpr_workbench.service.sessions import Session

__all__ = ["Redeemed", "Refuse", "redeem_session"]

_T = TypeVar("_T")


class Refuse(Protocol):
    """Back ``source`` off, audit the refusal, and return the front end's error to raise."""

    def __call__(self, source: str, reason: str, user_id: str | None, stage: str,
                 details: dict[str, Any] | None = None) -> Exception:
        """The error to raise for ``reason`` (``user_id`` when known) at ``stage``."""


@dataclass(frozen=True)
class Redeemed(Generic[_T]):
    """A redeemed code: whom it signed in, the new session, and what the standing check found.

    Attributes
    ----------
    user_id, flow_id
        The user the code was granted to and the flow it ended.
    token, session
        The new service session's bearer token and record.
    standing
        What the front end's standing check returned beside its problem (the API: the role).
    """

    user_id: str
    flow_id: str
    token: str
    session: Session
    standing: _T


def redeem_session(
    svc: _Service,
    flow: OidcFlow,
    flow_secret: str,
    code: str,
    source: str,
    *,
    standing: Callable[[str], tuple[str | None, _T]],
    refuse: Refuse,
    details: Mapping[str, Any] | None = None,
    busy: Callable[[str, float], Exception] | None = None,
) -> Redeemed[_T]:
    """Redeem ``code`` with ``flow_secret``, check the user again, and open a session.

    The caller may check early that ``source`` is not backing off; the check that counts is
    made here, with ``source``'s one attempt slot (:meth:`LoginThrottle.begin
    <alpr_workbench.dashboard.auth.LoginThrottle.begin>`), held until the outcome is
    recorded, as for a password sign-in (``tests/attacks/test_attack_login_race.py``).

    Parameters
    ----------
    svc
        The service's shared state (throttle, audit, sessions, lock).
    flow
        The service's OIDC flow.
    flow_secret, code
        The secret of the flow that this client started, and the callback's one-time code.
    source
        The client's address: a refusal backs it off, a success clears its failures.
    standing
        ``user_id -> (problem, anything)``, called under the service's shared lock: a problem
        (a user who may not sign in now) is refused; the other value comes back in
        :attr:`Redeemed.standing`.
    refuse
        The front end's refusal (stage ``redeem``, with ``{"flow_id": ...}`` once the code
        was redeemed).
    details
        Audit details of this front end, written after ``"stage"`` in the success record
        (the dashboard's ``{"login": "dashboard"}``).
    busy
        ``(source, seconds) -> error`` for a redemption refused before it starts (``source``
        backs off, or has another attempt in flight): nothing is counted or consumed. Without
        it, such a redemption is refused through ``refuse`` (counted, audited).

    Returns
    -------
    Redeemed
        The user, the flow, the session and what ``standing`` returned.

    Raises
    ------
    Exception
        What ``refuse`` returns, for an unknown, used or expired code, a code of another
        flow (used up either way), or a user whose standing is refused; what ``busy``
        returns when the redemption may not start.
    """
    wait = svc.throttle.begin(source)
    if wait > 0:
        if busy is not None:
            raise busy(source, wait)
        reason = ("too many failed attempts from your address"
                  if svc.throttle.wait_s(source) > 0
                  else "another sign-in attempt from your address is in progress")
        raise refuse(source, f"{reason}: try again in {max(1, round(wait))} s", None, "redeem")
    try:
        return _redeem(svc, flow, flow_secret, code, source, standing=standing,
                       refuse=refuse, details=details)
    finally:
        svc.throttle.end(source)


def _redeem(
    svc: _Service,
    flow: OidcFlow,
    flow_secret: str,
    code: str,
    source: str,
    *,
    standing: Callable[[str], tuple[str | None, _T]],
    refuse: Refuse,
    details: Mapping[str, Any] | None,
) -> Redeemed[_T]:
    try:
        user_id, flow_id, subject = flow.redeem(flow_secret, code)
    except OidcRefused as exc:
        raise refuse(source, exc.reason, exc.user_id, "redeem") from exc
    # Standing and binding may have changed since the callback. The session opens under the
    # same shared lock as the checks, so a disable or an unbind (which end the account's
    # sessions under the exclusive lock) cannot fall between the check and the session.
    with svc.lock.shared():
        problem, found = standing(user_id)
        if problem is None:
            problem = _binding_problem(svc, flow.config.issuer, user_id, subject)
        if problem is None:
            svc.throttle.succeeded(source)
            token, session = svc.sessions.open(user_id)
            svc.record("login", action="oidc", source=source, user_id=user_id, problem=None,
                       details={"stage": "redeem", **(details or {}), "flow_id": flow_id,
                                "session_id": session.session_id})
            return Redeemed(user_id, flow_id, token, session, found)
    raise refuse(source, problem, user_id, "redeem", {"flow_id": flow_id})


def _binding_problem(svc: _Service, issuer: str, user_id: str, subject: str) -> str | None:
    """Why the account is no longer bound to the (issuer, subject) its code was granted to.

    The callback bound the account (or found it bound) before granting the code; an
    administrator may have unbound it since (``POST /v1/admin/users/{id}/unbind-oidc``), and
    another identity may have bound it again (``tests/attacks/test_attack_oidc_unbind_grant.py``).
    """
    bound = find_binding(svc.store, user_id)
    if bound is not None and bound["issuer"] == issuer and bound["subject"] == subject:
        return None
    return ("this account's binding to the identity provider changed after the one-time code "
            "was shown (an administrator unbound it): sign in again")
