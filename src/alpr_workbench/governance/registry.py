"""Users, cases and networks as the gate sees them: frozen records read from the store."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from alpr_workbench.policy import Permission, Policy
from alpr_workbench.store import Store

__all__ = [
    "PERSON_ID_PATTERN",
    "SPLIT_DUTIES",
    "Case",
    "User",
    "get_case",
    "get_user",
    "person_id_problem",
    "person_roles_problem",
    "same_person",
    "user_problem",
]

#: A person id (``users.person_id``): letters, digits, ``.``, ``_``, ``-``; at most 64.
PERSON_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Two-person rules, as (permission of who acts, permission of the other person who
#: approves), whose two sides one person's accounts may not hold at all. A legal hold's check
#: (``governance/admin.py``) also refuses one person's two accounts where they are applied;
#: this keeps the accounts from being set up that way in the first place. The approval of a
#: larger search (``search`` / ``approve``) is not listed: its check refuses one person's
#: accounts by their person id (``governance/approvals.py``), so a supervisor may keep a
#: second, analyst account.
SPLIT_DUTIES: tuple[tuple[Permission, Permission], ...] = (("manage_legal_holds", "approve"),)


class User(BaseModel):
    """A workbench user (frozen; unknown fields are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    full_name: str
    role: str
    organization: str
    organization_type: str
    job_title: str
    is_active: bool
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    trained_at: dt.datetime | None = None
    separated_at: dt.datetime | None = None
    last_active_at: dt.datetime | None = None
    person_id: str | None = None


class Case(BaseModel):
    """A case in the registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_number: str
    title: str
    offense_type: str
    status: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None = None
    assigned_user_ids: tuple[str, ...] | None = None


_Rows = dict[str, dict[str, Any]]
#: Per store and table: the table frame last read, and its rows by key. The store hands back
#: the same frame object until the table changes (``TableStore.read``), so a changed table is
#: indexed again on the very next lookup.
_INDEXES: dict[tuple[int, str], tuple[pl.DataFrame, _Rows]] = {}


def _rows_by_key(store: Store, table: str, key: str) -> _Rows:
    frame = store.tables.read(table)
    cached = _INDEXES.get((id(store.tables), table))
    if cached is not None and cached[0] is frame:
        return cached[1]
    rows: _Rows = {}
    for row in frame.iter_rows(named=True):
        rows.setdefault(row[key], row)  # the first, as a filter's first row was
    _INDEXES[(id(store.tables), table)] = (frame, rows)
    return rows


def get_user(store: Store, user_id: str) -> User | None:
    """The user ``user_id``, or None when unknown."""
    row = _rows_by_key(store, "users", "user_id").get(user_id)
    return User(**row) if row is not None else None


def get_case(store: Store, case_number: str) -> Case | None:
    """The case ``case_number``, or None when unknown."""
    row = _rows_by_key(store, "cases", "case_number").get(case_number)
    if row is None:
        return None
    assigned = row["assigned_user_ids"]
    return Case(**{**row, "assigned_user_ids": tuple(assigned) if assigned is not None else None})


def user_problem(user: User | None, *, policy: Policy, now: dt.datetime) -> str | None:
    """Why ``user`` may not use the system now, or None when they may.

    Checks that the account exists, is enabled and approved, the person is not separated,
    holds an allowed job title and completed training within the refresher period.
    """
    if user is None:
        return "unknown user"
    if not user.is_active:
        return f"account {user.user_id!r} is disabled"
    if user.separated_at is not None and user.separated_at <= now:
        return f"{user.user_id!r} has separated from the organization"
    if user.approved_at is None:
        return f"access for {user.user_id!r} was never approved"
    if user.job_title not in policy.job_titles:
        return f"job title {user.job_title!r} is not allowed to use the system"
    if user.trained_at is None:
        return f"{user.user_id!r} has no recorded ALPR training"
    if now - user.trained_at > dt.timedelta(days=policy.training_refresh_days):
        return f"{user.user_id!r} is overdue for refresher training"
    if policy.is_generic_account(user.user_id, user.full_name):
        return f"{user.user_id!r} looks like a shared or generic account"
    return None


def same_person(a: User, b: User) -> bool:
    """Whether two accounts are one person's: one user id, or one recorded person id.

    Person ids are compared without case (``E-1001`` and ``e-1001`` are one person); an
    account with no person id recorded matches only itself.

    Examples
    --------
    >>> base = dict(full_name="A", role="analyst", organization="O",
    ...             organization_type="ca_local_agency", job_title="Detective", is_active=True)
    >>> same_person(User(user_id="a.one", person_id="E-1", **base),
    ...             User(user_id="a.two", person_id="e-1", **base))
    True
    >>> same_person(User(user_id="a.one", **base), User(user_id="a.two", **base))
    False
    """
    if a.user_id == b.user_id:
        return True
    return bool(a.person_id and b.person_id) and (
        str(a.person_id).casefold() == str(b.person_id).casefold()
    )


def person_id_problem(person_id: str | None) -> str | None:
    """Why ``person_id`` is not a valid person id, or None (None itself clears it).

    Examples
    --------
    >>> person_id_problem("E-1001") is None
    True
    >>> person_id_problem("E 1001")
    "person id 'E 1001' is not valid: use 1 to 64 letters, digits, '.', '_' or '-'"
    """
    if person_id is None or PERSON_ID_PATTERN.fullmatch(person_id):
        return None
    return (f"person id {person_id[:80]!r} is not valid: use 1 to 64 letters, digits, '.', "
            "'_' or '-'")


def person_roles_problem(accounts: Iterable[User], *, policy: Policy) -> str | None:
    """Why one person's ``accounts`` may not hold their roles together, or None.

    Two accounts of one person may not hold the two sides of a two-person rule in
    :data:`SPLIT_DUTIES` (one account acting, the other approving it).

    Parameters
    ----------
    accounts
        The accounts of one person (as they would be after a change).
    policy
        The department policy (the permissions of each role).

    Returns
    -------
    str or None
        The reason, naming both accounts and the rule; None when they may.
    """
    people = list(accounts)
    for acts, approves in SPLIT_DUTIES:
        for actor in people:
            for other in people:
                if (actor.user_id != other.user_id and policy.may(actor.role, acts)
                        and policy.may(other.role, approves)):
                    return (f"{actor.user_id!r} ({actor.role}, may {acts!r}) and "
                            f"{other.user_id!r} ({other.role}, may {approves!r}) would be one "
                            f"person's accounts: the two sides of the {acts!r}/{approves!r} "
                            "two-person rule")
    return None
