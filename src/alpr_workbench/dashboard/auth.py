"""Who may open the command-staff dashboard, and how they prove it.

Access needs two things, both checked at login *and* again by the app for every session:

1. the workbench user exists, may use the system now (:func:`user_problem`: enabled, approved,
   trained, not separated, allowed job title), works for an organization that may receive
   California ALPR data, and holds one of :data:`DASHBOARD_ROLES`;
2. the password matches the scrypt hash kept in ``<home>/dashboard/passwords.json``
   (mode 0600). There are no default passwords: :func:`issue_passwords` draws a random one per
   user, shows it once and keeps only its hash.

An issued password is one-time: it opens a session only together with a new password of the
user's choosing, which replaces it in the same step (:func:`attempt_login`), so it can never be
used twice. Failed attempts slow down the *source* that makes them (:class:`LoginThrottle`,
exponential back-off per client address), never the account: an attacker guessing the chief's
password from one machine cannot keep the chief out from hers. Every sign-in, failure and
back-off is an audit event (``event_type`` ``login``) when an audit log is given.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from alpr_workbench._fsutil import atomic_write_bytes, exclusive_lock
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.registry import User, get_user, user_problem
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.store import Store

__all__ = [
    "DASHBOARD_ROLES",
    "PASSWORD_FILE",
    "DashboardRefused",
    "LoginThrottle",
    "allowed_dashboard_users",
    "attempt_login",
    "check_login",
    "dashboard_user_problem",
    "issue_passwords",
    "password_file",
    "set_password",
    "users_with_passwords",
    "verify_password",
]

#: Roles that may open the dashboard (aggregates only, whatever the role).
DASHBOARD_ROLES: tuple[str, ...] = ("command_staff", "auditor", "administrator")
#: Password hashes, relative to the data directory.
PASSWORD_FILE = Path("dashboard") / "passwords.json"

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_DKLEN = 32
_MIN_PASSWORD_CHARS = 12
# Verified when the user is unknown, so a wrong user name costs as long as a wrong password.
_DUMMY: dict[str, Any] = {"salt": base64.b64encode(b"\0" * 16).decode(), "hash": "", **_SCRYPT}


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
            f"role {user.role!r} may not open the command-staff dashboard "
            f"(only {', '.join(DASHBOARD_ROLES)})"
        )
    if not policy.may(user.role, "view_aggregates"):
        return f"role {user.role!r} may not view aggregates"
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
    >>> users = allowed_dashboard_users(Store.open(home))
    >>> len(users) > 0, "egarcia" in users
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


def password_file(home: Path) -> Path:
    """Where the dashboard's password hashes live for data directory ``home``."""
    return Path(home) / PASSWORD_FILE


def _load(home: Path) -> dict[str, dict[str, Any]]:
    path = password_file(home)
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkbenchError(f"cannot read the dashboard password file {path}: {exc}") from exc
    users = doc.get("users") if isinstance(doc, dict) else None
    if doc.get("version") != 1 or not isinstance(users, dict):
        raise WorkbenchError(f"{path} is not a version-1 dashboard password file")
    return users


def users_with_passwords(home: Path) -> set[str]:
    """User ids that have a dashboard password hash in ``home``."""
    return set(_load(home))


def _save(home: Path, users: Mapping[str, Mapping[str, Any]]) -> None:
    doc = {"version": 1, "users": dict(sorted(users.items()))}
    atomic_write_bytes(password_file(home), json.dumps(doc, indent=1).encode(), mode=0o600)


def _hash(password: str, salt: bytes, *, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=64 * 2**20
    )


def _record(password: str, *, one_time: bool) -> dict[str, Any]:
    salt = secrets.token_bytes(16)
    digest = _hash(password, salt, **_SCRYPT)
    return {
        "salt": base64.b64encode(salt).decode(),
        "hash": base64.b64encode(digest).decode(),
        **_SCRYPT,
        "set_at": _now().isoformat(timespec="seconds"),
        "one_time": one_time,
    }


def _lock(home: Path) -> Any:
    """Serialise changes to the password file (issue, set, consume a one-time password)."""
    return exclusive_lock(password_file(home).with_name(".passwords.lock"))


def _is_one_time(record: Mapping[str, Any]) -> bool:
    # Records written before the flag existed were all issued: treat them as one-time.
    return bool(record.get("one_time", True))


def set_password(home: Path, user_id: str, password: str) -> None:
    """Store the scrypt hash of ``password`` for ``user_id`` (never the password itself).

    Raises
    ------
    WorkbenchError
        If the password is shorter than 12 characters.
    """
    if len(password) < _MIN_PASSWORD_CHARS:
        raise WorkbenchError(
            f"a dashboard password needs at least {_MIN_PASSWORD_CHARS} characters"
        )
    with _lock(home):
        users = _load(home)
        users[user_id] = _record(password, one_time=False)
        _save(home, users)


def issue_passwords(home: Path, user_ids: Iterable[str]) -> dict[str, str]:
    """Draw a random one-time password for each user, keep only the hashes, return them.

    Show the returned passwords once (to the person who hands them out); they cannot be
    recovered later, only issued again. Each opens the dashboard once, together with the
    user's new password (:func:`attempt_login`). Existing hashes of other users are kept.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> issued = issue_passwords(home, ["kdavis"])
    >>> verify_password(home, "kdavis", issued["kdavis"]), verify_password(home, "kdavis", "x")
    (True, False)
    >>> issued["kdavis"] in password_file(home).read_text()
    False
    """
    issued = {}
    with _lock(home):
        users = _load(home)
        for user_id in user_ids:
            password = secrets.token_urlsafe(15)  # 120 random bits, 20 characters
            users[user_id] = _record(password, one_time=True)
            issued[user_id] = password
        _save(home, users)
    return issued


def _matching_record(home: Path, user_id: str, password: str) -> dict[str, Any] | None:
    """The stored record of ``user_id`` when ``password`` matches it, else None."""
    record = _load(home).get(user_id)
    entry = record if isinstance(record, dict) else _DUMMY
    try:
        salt = base64.b64decode(entry["salt"])
        expected = base64.b64decode(entry["hash"])
        got = _hash(password, salt, n=int(entry["n"]), r=int(entry["r"]), p=int(entry["p"]))
    except (KeyError, TypeError, ValueError):
        return None
    ok = isinstance(record, dict) and bool(expected) and hmac.compare_digest(got, expected)
    return record if ok else None


def verify_password(home: Path, user_id: str, password: str) -> bool:
    """True when ``password`` matches the stored hash for ``user_id`` (constant-time compare).

    A one-time password matches until it is replaced (:func:`attempt_login` replaces it).
    """
    return _matching_record(home, user_id, password) is not None


def check_login(
    store: Store,
    user_id: str,
    password: str,
    *,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> str | None:
    """Why these credentials fail, or None when they are valid (this signs nobody in).

    The dashboard signs users in with :func:`attempt_login`, which also consumes one-time
    passwords, throttles the source and audits the attempt. The password is checked first
    (always, so timing does not reveal which users exist), then the user's standing and role.
    The reason for a wrong password never says which part was wrong.

    Returns
    -------
    str or None
        The reason, or None when ``user_id`` may log in.
    """
    password_ok = verify_password(store.home, user_id, password)
    if not password_ok:
        return "invalid user name or password"
    return dashboard_user_problem(store, user_id, policy=policy, now=now)


# -- sign-in: one-time passwords, back-off per source, audit ---------------------------------
class AuditSink(Protocol):
    """Where login events go: the workbench's audit log (anything with ``append``)."""

    def append(self, event: Mapping[str, Any]) -> Any:
        """Append one event."""


@dataclass
class LoginThrottle:
    """Exponential back-off per source (client address) after failed logins, in memory.

    The first ``free_failures`` failures from a source cost nothing; each further one makes
    the source wait ``base_delay_s * 2**k`` seconds (k = 0, 1, ...), at most ``max_delay_s``,
    before its next attempt is even checked. A success from the source clears its count. The
    account itself is never locked, so failures from one source cannot keep its owner out
    from another.

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
    clock: Callable[[], float] = time.monotonic
    # source -> (failures, time the source may try again)
    _state: dict[str, tuple[int, float]] = field(default_factory=dict, repr=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)

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


_WRONG = "invalid user name or password"


def _audit_login(
    audit: AuditSink | None,
    store: Store,
    user_id: str,
    *,
    source: str,
    problem: str | None,
    details: Mapping[str, Any],
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
            "outcome": "allowed" if problem is None else "refused",
            "refusal_reason": problem,
            "query_json": json.dumps({"login": "dashboard", "source": source, **details}),
        }
    )


def _consume_one_time(home: Path, user_id: str, used: Mapping[str, Any], new_password: str) -> bool:
    """Replace the one-time record ``used`` by ``new_password``; False if it is already gone."""
    with _lock(home):
        users = _load(home)
        if users.get(user_id) != used:  # another login consumed it first
            return False
        users[user_id] = _record(new_password, one_time=False)
        _save(home, users)
    return True


def attempt_login(
    store: Store,
    user_id: str,
    password: str,
    *,
    source: str,
    throttle: LoginThrottle,
    new_password: str = "",
    audit: AuditSink | None = None,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> str | None:
    """Sign in to the dashboard: why the attempt fails (words for the login page), or None.

    In order: the source must not be backing off (:class:`LoginThrottle`); the password must
    match and the user may open the dashboard (:func:`check_login`); a one-time password
    must come with a new password (at least 12 characters, not the same), which replaces it
    at once, so the one-time password never works again. A wrong password or a refused user
    counts against the source, never against the account. Every outcome is appended to
    ``audit`` (``event_type`` ``login``, with the source address).

    Parameters
    ----------
    store
        The workbench store (users, and the password file in its home).
    user_id, password
        What was typed on the login page.
    source
        The client address the attempt comes from.
    throttle
        The server's throttle.
    new_password
        The new password, required with a one-time password.
    audit
        Where to record the attempt (default: nowhere).
    policy, now
        Default: the department policy, the current UTC time.

    Returns
    -------
    str or None
        None when the user is signed in.
    """
    details: dict[str, Any] = {}
    wait = throttle.wait_s(source)
    if wait > 0:
        return f"too many failed attempts from your address: try again in {math.ceil(wait)} s"
    used = _matching_record(store.home, user_id, password)
    problem = (
        _WRONG if used is None else dashboard_user_problem(store, user_id, policy=policy, now=now)
    )
    if problem is None and used is not None and _is_one_time(used):
        details["one_time"] = True
        if len(new_password) < _MIN_PASSWORD_CHARS or new_password == password:
            reason = (
                "this is a one-time password: choose a new password of at least "
                f"{_MIN_PASSWORD_CHARS} characters to log in"
            )
            _audit_login(audit, store, user_id, source=source, problem=reason, details=details)
            return reason
        if not _consume_one_time(store.home, user_id, used, new_password):
            problem = _WRONG
        else:
            details["password_changed"] = True
    if problem is None:
        throttle.succeeded(source)
        _audit_login(audit, store, user_id, source=source, problem=None, details=details)
        return None
    delay = throttle.failed(source)
    if delay > 0:
        problem = f"{problem}; source {source} must back off {delay:.0f} s"
    _audit_login(audit, store, user_id, source=source, problem=problem, details=details)
    return (
        _WRONG
        if delay == 0
        else (
            f"{_WRONG}; too many failed attempts from your address: try again in "
            f"{math.ceil(delay)} s"
        )
    )
