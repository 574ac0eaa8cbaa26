"""Who may open the command-staff dashboard, and how they prove it.

Access needs two things, both checked at login *and* again by the app for every session:

1. the workbench user exists, may use the system now (:func:`user_problem`: enabled, approved,
   trained, not separated, allowed job title), works for an organization that may receive
   California ALPR data, and holds one of :data:`DASHBOARD_ROLES`;
2. the password matches the scrypt hash kept in ``<home>/dashboard/passwords.json``
   (mode 0600). There are no default passwords: :func:`issue_passwords` draws a random one per
   user, shows it once and keeps only its hash.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.registry import User, get_user, user_problem
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.store import Store

__all__ = [
    "DASHBOARD_ROLES",
    "PASSWORD_FILE",
    "DashboardRefused",
    "allowed_dashboard_users",
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
_DUMMY = {"salt": base64.b64encode(b"\0" * 16).decode(), "hash": "", **_SCRYPT}


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


def _record(password: str) -> dict[str, Any]:
    salt = secrets.token_bytes(16)
    digest = _hash(password, salt, **_SCRYPT)
    return {
        "salt": base64.b64encode(salt).decode(),
        "hash": base64.b64encode(digest).decode(),
        **_SCRYPT,
        "set_at": _now().isoformat(timespec="seconds"),
    }


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
    users = _load(home)
    users[user_id] = _record(password)
    _save(home, users)


def issue_passwords(home: Path, user_ids: Iterable[str]) -> dict[str, str]:
    """Draw a random password for each user, keep only the hashes, return the passwords.

    Show the returned passwords once (to the person who hands them out); they cannot be
    recovered later, only issued again. Existing hashes of other users are kept.

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
    users = _load(home)
    issued = {}
    for user_id in user_ids:
        password = secrets.token_urlsafe(15)  # 120 random bits, 20 characters
        users[user_id] = _record(password)
        issued[user_id] = password
    _save(home, users)
    return issued


def verify_password(home: Path, user_id: str, password: str) -> bool:
    """True when ``password`` matches the stored hash for ``user_id`` (constant-time compare)."""
    record = _load(home).get(user_id)
    entry = record if isinstance(record, dict) else _DUMMY
    try:
        salt = base64.b64decode(entry["salt"])
        expected = base64.b64decode(entry["hash"])
        got = _hash(password, salt, n=int(entry["n"]), r=int(entry["r"]), p=int(entry["p"]))
    except (KeyError, TypeError, ValueError):
        return False
    return record is not None and bool(expected) and hmac.compare_digest(got, expected)


def check_login(
    store: Store,
    user_id: str,
    password: str,
    *,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> str | None:
    """Why a login attempt fails, or None when it succeeds.

    The password is checked first (always, so timing does not reveal which users exist), then
    the user's standing and role. The reason for a wrong password never says which part was
    wrong.

    Returns
    -------
    str or None
        The reason, or None when ``user_id`` may log in.
    """
    password_ok = verify_password(store.home, user_id, password)
    if not password_ok:
        return "invalid user name or password"
    return dashboard_user_problem(store, user_id, policy=policy, now=now)
