"""Users, cases and networks as the gate sees them: frozen records read from the store."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from alpr_workbench.policy import Policy
from alpr_workbench.store import Store

__all__ = ["Case", "User", "get_case", "get_user", "user_problem"]


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
