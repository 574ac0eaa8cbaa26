"""Who may open the dashboard, which pages they see, and how they prove it: the service's accounts.

The dashboard is served by the service process (``alpr-workbench serve``, issue #15) and signs
users in with the service's accounts (:class:`~alpr_workbench.service.accounts.AccountStore`):
a password (argon2id) *and* a TOTP code, which is accepted once. There is no password file of
the dashboard's own any more. Access needs, at sign-in *and* again for every session:

1. the credentials: the password and a fresh TOTP code of an enrolled account;
2. the workbench user exists, may use the system now (:func:`user_problem`: enabled, approved,
   trained, not separated, allowed job title), works for an organization that may receive
   California ALPR data, and holds one of :data:`DASHBOARD_ROLES` with the permission of at
   least one page (:func:`dashboard_pages`: the program's aggregates need ``view_aggregates``,
   the hit queue ``work_hits``). The pages a role may not use are not built for it.

Failed attempts slow down the *source* that makes them (:class:`LoginThrottle`, exponential
back-off per client address, shared with the service's API), never the account: an attacker
guessing the chief's password from one machine cannot keep the chief out from hers. Every
sign-in, failure and back-off is an audit event (``event_type`` ``login``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.registry import User, get_user, user_problem
from alpr_workbench.policy import Permission, Policy, load_policy
from alpr_workbench.store import Store

__all__ = [
    "DASHBOARD_PAGES",
    "DASHBOARD_ROLES",
    "Credentials",
    "DashboardRefused",
    "LoginThrottle",
    "SessionKeeper",
    "allowed_dashboard_users",
    "attempt_login",
    "dashboard_pages",
    "dashboard_user_problem",
    "record_logout",
]

#: Roles that may sign in to the dashboard; each sees only the pages its permissions allow
#: (:data:`DASHBOARD_PAGES`). The roles that work hits (analyst, investigator, supervisor:
#: ``work_hits`` in the policy) sign in for the hit queue (issue #16).
DASHBOARD_ROLES: tuple[str, ...] = (
    "command_staff", "auditor", "administrator", "analyst", "investigator", "supervisor",
)
#: The dashboard's pages and the policy permission each one needs.
DASHBOARD_PAGES: dict[str, Permission] = {"program": "view_aggregates", "hits": "work_hits"}


def dashboard_pages(role: str, *, policy: Policy) -> list[str]:
    """The dashboard pages ``role`` may use: those whose permission the policy gives it.

    Parameters
    ----------
    role
        A workbench role.
    policy
        The department policy.

    Returns
    -------
    list of str
        Keys of :data:`DASHBOARD_PAGES`, in their order (empty: no page; and no role outside
        :data:`DASHBOARD_ROLES` gets a page).

    Examples
    --------
    >>> policy = load_policy()
    >>> dashboard_pages("command_staff", policy=policy), dashboard_pages("analyst", policy=policy)
    (['program'], ['program', 'hits'])
    >>> dashboard_pages("vendor", policy=policy)
    []
    """
    if role not in DASHBOARD_ROLES:
        return []
    return [page for page, permission in DASHBOARD_PAGES.items() if policy.may(role, permission)]

class DashboardRefused(WorkbenchError):
    """The user may not open the dashboard.

    Attributes
    ----------
    reason
        Why, in words the user can act on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"dashboard refused: {reason}")
        self.reason = reason


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _problem_for(user: User | None, *, policy: Policy, now: dt.datetime) -> str | None:
    problem = user_problem(user, policy=policy, now=now)
    if problem is not None or user is None:
        return problem
    if user.organization_type not in policy.allowed_recipient_types:
        return (
            f"organization {user.organization!r} ({user.organization_type}) may not receive "
            "California ALPR data"
        )
    if user.role not in DASHBOARD_ROLES:
        return (
            f"role {user.role!r} may not open the dashboard "
            f"(only {', '.join(DASHBOARD_ROLES)})"
        )
    if not dashboard_pages(user.role, policy=policy):
        wanted = " or ".join(sorted(set(DASHBOARD_PAGES.values())))
        return f"role {user.role!r} may use no dashboard page (needs {wanted})"
    return None


def dashboard_user_problem(
    store: Store,
    user_id: str | None,
    *,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> str | None:
    """Why ``user_id`` may not open the dashboard now, or None when they may.

    Parameters
    ----------
    store
        The workbench store (its ``users`` table is the source of truth).
    user_id
        Login name; None or empty means nobody logged in.
    policy, now
        Default: the department policy, the current UTC time.

    Returns
    -------
    str or None
        The reason, or None.
    """
    if not user_id:
        return "nobody is logged in"
    policy = policy or load_policy()
    user = get_user(store, user_id)
    return _problem_for(user, policy=policy, now=now or _now())


def allowed_dashboard_users(
    store: Store, *, policy: Policy | None = None, now: dt.datetime | None = None
) -> list[str]:
    """User ids that may open the dashboard now, sorted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from alpr_workbench.demo import build_demo
    >>> from alpr_workbench.store import Store
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> _ = build_demo(home, days=1, scale=0.01)
    >>> store = Store.open(home)
    >>> users = allowed_dashboard_users(store)
    >>> roles = store.tables.read("users").filter(pl.col("user_id").is_in(users))["role"]
    >>> sorted(set(roles)) == sorted(DASHBOARD_ROLES), "hsi.agent" in users
    (True, False)
    """
    policy = policy or load_policy()
    now = now or _now()
    rows = store.tables.read("users")
    allowed = []
    for row in rows.filter(pl.col("role").is_in(list(DASHBOARD_ROLES))).iter_rows(named=True):
        if _problem_for(User(**row), policy=policy, now=now) is None:
            allowed.append(row["user_id"])
    return sorted(allowed)


# -- sign-in: the service's accounts, back-off per source, audit -------------------------
class AuditSink(Protocol):
    """Where login events go: the workbench's audit log (anything with ``append``)."""

    def append(self, event: Mapping[str, Any]) -> Any:
        """Append one event."""


class Credentials(Protocol):
    """The service's accounts, as the dashboard uses them (``service.accounts.AccountStore``).

    The dashboard sits below the service in the layers, so it names what it needs here and
    the service hands its own object in.
    """

    def check_credentials(self, user_id: str, password: str, totp_code: str) -> bool:
        """True when the password and the TOTP code are both right (the code is used up)."""
        ...


class SessionKeeper(Protocol):
    """The service's live sessions, as the dashboard uses them (wraps ``SessionStore``)."""

    def open_session(self, user_id: str) -> str:
        """Start a session for ``user_id``; return its token (the browser keeps only that)."""
        ...

    def session_user(self, token: str) -> str | None:
        """The user of a live session (its idle timer restarted), or None."""
        ...

    def close_session(self, token: str) -> str | None:
        """End the session of ``token`` at once; return its user (None: there was none)."""
        ...


@dataclass
class LoginThrottle:
    """Exponential back-off per source (client address) after failed logins, in memory.

    The first ``free_failures`` failures from a source cost nothing; each further one makes
    the source wait ``base_delay_s * 2**k`` seconds (k = 0, 1, ...), at most ``max_delay_s``,
    before its next attempt is even checked. A success from the source clears its count. The
    account itself is never locked, so failures from one source cannot keep its owner out
    from another.

    A caller that checks the back-off, evaluates an attempt and then records its outcome
    takes :meth:`begin` first and :meth:`end` after: the check and the slot are one step, and
    while an attempt from a source is in flight, further ones from it are refused (they would
    otherwise all pass the check before any failure was counted). Other sources never wait.

    Examples
    --------
    >>> clock = iter([0.0, 0.0, 0.0, 5.0, 11.0]).__next__
    >>> throttle = LoginThrottle(free_failures=1, base_delay_s=10.0, clock=clock)
    >>> throttle.failed("10.0.0.9"), throttle.failed("10.0.0.9")
    (0.0, 10.0)
    >>> throttle.wait_s("10.0.0.8"), throttle.wait_s("10.0.0.9"), throttle.wait_s("10.0.0.9")
    (0.0, 5.0, 0.0)
    """

    free_failures: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 15 * 60.0
    max_sources: int = 10_000
    #: The wait :meth:`begin` gives while another attempt from the same source is in flight.
    busy_retry_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    # source -> (failures, time the source may try again)
    _state: dict[str, tuple[int, float]] = field(default_factory=dict, repr=False)
    # sources with an attempt between begin() and end(): at most one per source, so no larger
    # than the number of requests in flight
    _in_flight: set[str] = field(default_factory=set, repr=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def begin(self, source: str) -> float:
        """Start an attempt from ``source``, or say how long it must wait (0: go ahead).

        Checks the back-off and takes ``source``'s one attempt slot in one step. On 0.0 the
        caller evaluates the attempt, records it (:meth:`failed` or :meth:`succeeded`) and
        then calls :meth:`end`, whatever happened. Otherwise nothing was taken: the result is
        the back-off left, or :attr:`busy_retry_s` while another attempt from ``source`` is
        in flight (:meth:`wait_s` tells the two apart: it is 0 while only busy).

        Examples
        --------
        >>> throttle = LoginThrottle(free_failures=0, base_delay_s=30.0, clock=lambda: 0.0)
        >>> throttle.begin("10.0.0.9"), throttle.begin("10.0.0.9"), throttle.begin("10.0.0.8")
        (0.0, 1.0, 0.0)
        >>> throttle.failed("10.0.0.9"), throttle.end("10.0.0.9"), throttle.begin("10.0.0.9")
        (30.0, None, 30.0)
        """
        with self._mutex:
            _, until = self._state.get(source, (0, 0.0))
            wait = max(0.0, until - self.clock())
            if wait > 0:
                return wait
            if source in self._in_flight:
                return self.busy_retry_s
            self._in_flight.add(source)
            return 0.0

    def end(self, source: str) -> None:
        """Free ``source``'s attempt slot taken by :meth:`begin`."""
        with self._mutex:
            self._in_flight.discard(source)

    def wait_s(self, source: str) -> float:
        """Seconds ``source`` must still wait before an attempt is checked (0: it may try)."""
        with self._mutex:
            _, until = self._state.get(source, (0, 0.0))
            return max(0.0, until - self.clock())

    def failed(self, source: str) -> float:
        """Count a failure from ``source``; return the back-off it starts (0: none yet)."""
        with self._mutex:
            now = self.clock()
            if len(self._state) >= self.max_sources:
                self._forget_idle(now)
            count = self._state.get(source, (0, 0.0))[0] + 1
            extra = count - self.free_failures
            delay = (
                0.0 if extra <= 0 else min(self.max_delay_s, self.base_delay_s * 2 ** (extra - 1))
            )
            self._state[source] = (count, now + delay)
            return delay

    def succeeded(self, source: str) -> None:
        """Clear the failures of ``source``."""
        with self._mutex:
            self._state.pop(source, None)

    def _forget_idle(self, now: float) -> None:
        idle = [s for s, (_, until) in self._state.items() if until + self.max_delay_s < now]
        for source in idle or list(self._state)[: len(self._state) // 2]:
            del self._state[source]


_WRONG = "invalid user name, password or authentication code"


def _audit_login(
    audit: AuditSink | None,
    store: Store,
    user_id: str,
    *,
    source: str,
    problem: str | None,
) -> None:
    if audit is None:
        return
    user = get_user(store, user_id) if user_id else None
    audit.append(
        {
            "event_type": "login",
            "occurred_at": _now(),
            "user_id": user_id[:128] or None,
            "organization": user.organization if user else None,
            "organization_type": user.organization_type if user else None,
            "outcome": "allowed" if problem is None else "refused",
            "refusal_reason": problem,
            "query_json": json.dumps({"login": "dashboard", "source": source}),
        }
    )


def record_logout(
    audit: AuditSink | None, store: Store, user_id: str | None, *, source: str
) -> None:
    """Audit a sign-out from the dashboard (``login`` event, ``{"login": "dashboard", ...}``).

    Parameters
    ----------
    audit
        Where to record it (default: nowhere).
    store
        The workbench store (the user's organization goes in the record).
    user_id
        Whose session ended; None when the browser held no live session (recorded too, as
        a sign-out that ended nothing).
    source
        The client address.
    """
    if audit is None:
        return
    user = get_user(store, user_id) if user_id else None
    audit.append(
        {
            "event_type": "login",
            "occurred_at": _now(),
            "user_id": user_id[:128] if user_id else None,
            "organization": user.organization if user else None,
            "organization_type": user.organization_type if user else None,
            "outcome": "allowed",
            "refusal_reason": None,
            "query_json": json.dumps(
                {"login": "dashboard", "action": "logout", "source": source,
                 "session_ended": user_id is not None}
            ),
        }
    )


def attempt_login(
    store: Store,
    accounts: Credentials,
    user_id: str,
    password: str,
    totp_code: str,
    *,
    source: str,
    throttle: LoginThrottle,
    audit: AuditSink | None = None,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> str | None:
    """Sign in to the dashboard: why the attempt fails (words for the login page), or None.

    In order: the source must not be backing off (:class:`LoginThrottle`; such attempts are
    not checked, so they neither burn a TOTP code nor flood the audit log); the password and
    the TOTP code must be right (:meth:`AccountStore.check_credentials`, which accepts a code
    once); the user may open the dashboard (:func:`dashboard_user_problem`). A failure counts
    against the source, never against the account. Every checked attempt is appended to
    ``audit`` (``event_type`` ``login``, ``{"login": "dashboard", "source": ...}``).

    Parameters
    ----------
    store
        The workbench store (its ``users`` table).
    accounts
        The service's credentials.
    user_id, password, totp_code
        What was typed on the login page.
    source
        The client address the attempt comes from.
    throttle
        The service's throttle (shared with the API's sign-in).
    audit
        Where to record the attempt (default: nowhere).
    policy, now
        Default: the department policy, the current UTC time.

    Returns
    -------
    str or None
        None when the user is signed in.
    """
    wait = throttle.wait_s(source)
    if wait > 0:
        return f"too many failed attempts from your address: try again in {math.ceil(wait)} s"
    ok = accounts.check_credentials(user_id, password, totp_code.strip())
    problem = (
        _WRONG if not ok else dashboard_user_problem(store, user_id, policy=policy, now=now)
    )
    if problem is None:
        throttle.succeeded(source)
        _audit_login(audit, store, user_id, source=source, problem=None)
        return None
    delay = throttle.failed(source)
    audited = problem if delay == 0 else f"{problem}; source {source} must back off {delay:.0f} s"
    _audit_login(audit, store, user_id, source=source, problem=audited)
    shown = _WRONG if not ok else f"sign-in refused: {problem}"
    if delay > 0:
        shown += f"; too many failed attempts from your address: try again in {math.ceil(delay)} s"
    return shown
