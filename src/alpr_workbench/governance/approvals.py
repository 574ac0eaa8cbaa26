"""Supervisors' approvals of larger search results: granted through the service, used once.

A search returns at most the policy's ``max_rows``. A supervisor, signed in with their own
session, may grant one named searcher an approval for one case (:func:`grant_approval`): up
to ``max_rows`` rows (at most the policy's ``max_rows_approved``), valid for at most
:data:`MAX_APPROVAL_HOURS` hours, for one search. The approval is a row of the store's
``search_approvals`` table, and the grant is audited (``approval``). The searcher gives its
``approval_id`` with the search; the gate checks it (:func:`approval_problem`) and, once every
other rule has passed, consumes it (:func:`use_approval`, audited) before any row is read. A
user id typed into a request approves nothing (docs/policy.md#approvals-of-larger-results).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.registry import (
    User,
    get_case,
    get_user,
    same_person,
    user_problem,
)
from alpr_workbench.policy import Policy
from alpr_workbench.store import Store

__all__ = [
    "MAX_APPROVAL_HOURS",
    "Approval",
    "ApprovalRefused",
    "approval_problem",
    "grant_approval",
    "list_approvals",
    "use_approval",
]

#: An approval lapses at most this many hours after it is granted (one shift).
MAX_APPROVAL_HOURS = 8.0
_TABLE = "search_approvals"
_APPROVAL_ID = re.compile(r"^apr-[0-9a-f]{24}$")
# Check-and-consume of an approval is one step: two searches in flight with the same id
# cannot both use it (the service is the only writer of the store).
_CONSUME = threading.Lock()

AuditAppend = Callable[[dict[str, Any]], Any]


class ApprovalRefused(WorkbenchError):
    """An approval may not be granted or used as asked (the refusal was audited)."""


@dataclass(frozen=True)
class Approval:
    """One supervisor's approval (a row of ``search_approvals``)."""

    approval_id: str
    searcher_user_id: str
    case_number: str
    max_rows: int
    granted_by: str
    granted_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None
    used_event_id: str | None = None


def _audit(
    audit: AuditAppend,
    *,
    actor: str,
    now: dt.datetime,
    action: str,
    details: dict[str, Any],
    case_number: str | None,
    problem: str | None = None,
    event_id: str | None = None,
) -> Any:
    event: dict[str, Any] = {
        "event_type": "approval",
        "occurred_at": now,
        "user_id": actor,
        "case_number": case_number,
        "query_json": json.dumps({**details, "approval": action}, default=str, sort_keys=True),
        "outcome": "refused" if problem else "allowed",
        "refusal_reason": problem,
    }
    if event_id is not None:
        event["event_id"] = event_id
    return audit(event)


def _approver_problem(approver: User | None, searcher: User | None, *, policy: Policy,
                      now: dt.datetime) -> str | None:
    """Why ``approver`` may not approve a larger result for ``searcher``, or None."""
    if approver is None:
        return "the approver is not a known user"
    standing = user_problem(approver, policy=policy, now=now)
    if standing is not None:
        return f"{approver.user_id!r} may not approve: {standing}"
    if not policy.may(approver.role, "approve"):
        return (
            f"{approver.user_id!r} may not approve searches: role {approver.role!r} lacks "
            "the 'approve' permission"
        )
    if searcher is not None:
        if searcher.user_id == approver.user_id:
            return f"{approver.user_id!r} may not approve their own search"
        if same_person(searcher, approver):
            # One person's second account (a supervisor who also holds an analyst account)
            # would otherwise approve their own search: the administrator recorded one
            # person id on both (users.person_id).
            return (f"{approver.user_id!r} may not approve a search by {searcher.user_id!r}: "
                    "both accounts are one person's (the same person id)")
        if _same_person(searcher.full_name, approver.full_name):
            # The second line, for accounts whose person id was never recorded.
            return (f"{approver.user_id!r} may not approve a search by {searcher.user_id!r}: "
                    "both accounts carry the same person's name")
        if searcher.organization != approver.organization:
            return f"{approver.user_id!r} may not approve searches of another organization"
    return None


def _same_person(a: str | None, b: str | None) -> bool:
    """Whether two accounts' full names name one person (case and spacing aside)."""
    def norm(name: str | None) -> str:
        return " ".join((name or "").casefold().replace(".", " ").split())

    return bool(norm(a)) and norm(a) == norm(b)


def grant_approval(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    searcher_user_id: str,
    case_number: str,
    max_rows: int | None = None,
    hours: float | None = None,
    policy: Policy,
    now: dt.datetime,
) -> Approval:
    """Grant ``searcher_user_id`` one search of ``case_number`` with a larger result.

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    actor
        The supervisor, from their own session: a user in good standing whose role may
        ``approve``, of the searcher's organization, and not the searcher (nor an account
        with the searcher's person id or full name).
    searcher_user_id
        Who may use it: a user in good standing who may search and is assigned to the case.
    case_number
        The open case the search must name.
    max_rows
        Rows the search may return, more than the policy's ``max_rows`` and at most its
        ``max_rows_approved`` (default: ``max_rows_approved``).
    hours
        How long it stays usable, more than 0 and at most :data:`MAX_APPROVAL_HOURS`
        (default: that maximum).
    policy
        The department policy.
    now
        Current time (UTC).

    Returns
    -------
    Approval
        The stored approval; the searcher gives its ``approval_id`` with the search.

    Raises
    ------
    ApprovalRefused
        When any rule is broken (audited).
    """
    rows = policy.max_rows_approved if max_rows is None else max_rows
    span = MAX_APPROVAL_HOURS if hours is None else hours
    details: dict[str, Any] = {"searcher": searcher_user_id, "max_rows": rows, "hours": span}
    approver = get_user(store, actor)
    searcher = get_user(store, searcher_user_id)
    problem = _approver_problem(approver, searcher, policy=policy, now=now)
    if problem is None:
        problem = _grant_problem(store, searcher, searcher_user_id, case_number, rows, span,
                                 policy=policy, now=now)
    if problem is not None:
        _audit(audit, actor=actor, now=now, action="grant", details=details,
               case_number=case_number, problem=problem)
        raise ApprovalRefused(problem)
    approval = Approval(
        approval_id=f"apr-{secrets.token_hex(12)}",
        searcher_user_id=searcher_user_id,
        case_number=case_number,
        max_rows=rows,
        granted_by=actor,
        granted_at=now,
        expires_at=now + dt.timedelta(hours=span),
    )
    with _CONSUME:
        store.tables.append(_TABLE, pl.DataFrame([_row(approval)], schema=_schema(store)))
    _audit(audit, actor=actor, now=now, action="grant",
           details={**details, "approval_id": approval.approval_id,
                    "expires_at": approval.expires_at.isoformat()},
           case_number=case_number)
    return approval


def _grant_problem(
    store: Store,
    searcher: User | None,
    searcher_user_id: str,
    case_number: str,
    rows: int,
    hours: float,
    *,
    policy: Policy,
    now: dt.datetime,
) -> str | None:
    standing = user_problem(searcher, policy=policy, now=now)
    if standing is not None or searcher is None:
        return f"searcher {searcher_user_id!r} may not receive an approval: {standing}"
    if not policy.may(searcher.role, "search"):
        return f"searcher {searcher_user_id!r} may not search reads"
    case = (
        get_case(store, case_number)
        if re.fullmatch(policy.case_number_pattern, case_number or "")
        else None
    )
    if case is None or case.status != "open":
        return f"case {case_number!r} is not an open case"
    if searcher_user_id not in (case.assigned_user_ids or ()):
        return f"{searcher_user_id!r} is not assigned to case {case.case_number}"
    if not policy.max_rows < rows <= policy.max_rows_approved:
        return (
            f"an approval covers more than the policy's {policy.max_rows:,} rows and at most "
            f"{policy.max_rows_approved:,}; {rows:,} is outside that"
        )
    if not 0 < hours <= MAX_APPROVAL_HOURS:
        return (
            f"an approval lasts more than 0 and at most {MAX_APPROVAL_HOURS:g} hours; "
            f"{hours:g} is outside that"
        )
    return None


def _schema(store: Store) -> dict[str, Any]:
    return dict(store.tables.read(_TABLE).schema)


def _row(approval: Approval) -> dict[str, Any]:
    return {
        "approval_id": approval.approval_id,
        "searcher_user_id": approval.searcher_user_id,
        "case_number": approval.case_number,
        "max_rows": approval.max_rows,
        "granted_by": approval.granted_by,
        "granted_at": approval.granted_at,
        "expires_at": approval.expires_at,
        "used_at": approval.used_at,
        "used_event_id": approval.used_event_id,
    }


def _find(store: Store, approval_id: str) -> Approval | None:
    if not _APPROVAL_ID.fullmatch(approval_id or ""):
        return None
    found = store.tables.read(_TABLE).filter(pl.col("approval_id") == approval_id)
    if found.is_empty():
        return None
    return Approval(**found.row(0, named=True))


def approval_problem(
    store: Store,
    *,
    approval_id: str,
    user: User,
    case_number: str,
    policy: Policy,
    now: dt.datetime,
) -> tuple[str | None, Approval | None]:
    """Why ``approval_id`` does not approve ``user``'s search of ``case_number`` now.

    Parameters
    ----------
    store
        The store holding the approvals.
    approval_id
        The id the searcher gave.
    user
        The searcher (from the session).
    case_number
        The case the search names.
    policy
        The department policy.
    now
        Current time (UTC).

    Returns
    -------
    tuple
        ``(None, approval)`` when it approves the search; ``(reason, None)`` otherwise.
    """
    approval = _find(store, approval_id)
    if approval is None:
        return f"no approval {approval_id[:64]!r}: ask a supervisor to grant one", None
    if approval.used_at is not None:
        return f"approval {approval_id} was already used", None
    if now >= approval.expires_at:
        return f"approval {approval_id} expired at {approval.expires_at:%Y-%m-%d %H:%M} UTC", None
    if approval.searcher_user_id != user.user_id:
        return f"approval {approval_id} is for another searcher", None
    if approval.case_number != case_number:
        return f"approval {approval_id} is for another case", None
    approver = get_user(store, approval.granted_by)
    problem = _approver_problem(approver, user, policy=policy, now=now)
    if problem is not None:
        return f"approval {approval_id} no longer holds: {problem}", None
    return None, approval


def use_approval(
    store: Store,
    audit: AuditAppend,
    *,
    approval_id: str,
    user: User,
    case_number: str,
    policy: Policy,
    now: dt.datetime,
) -> Approval:
    """Check ``approval_id`` again and mark it used, in one step; audited (``approval``).

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    approval_id, user, case_number, policy, now
        As for :func:`approval_problem`.

    Returns
    -------
    Approval
        The approval, now used.

    Raises
    ------
    ApprovalRefused
        When it does not approve this search (used meanwhile, expired...), audited.
    """
    details = {"approval_id": approval_id[:64]}
    with _CONSUME:
        problem, approval = approval_problem(
            store, approval_id=approval_id, user=user, case_number=case_number,
            policy=policy, now=now,
        )
        if problem is not None or approval is None:
            _audit(audit, actor=user.user_id, now=now, action="use", details=details,
                   case_number=case_number, problem=problem)
            raise ApprovalRefused(problem or "no approval")
        event_id = f"evt-{secrets.token_hex(16)}"
        table = store.tables.read(_TABLE)
        mine = pl.col("approval_id") == approval_id
        store.tables.write(_TABLE, table.with_columns(
            used_at=pl.when(mine).then(pl.lit(now)).otherwise(pl.col("used_at")),
            used_event_id=pl.when(mine).then(pl.lit(event_id)).otherwise(pl.col("used_event_id")),
        ))
        _audit(audit, actor=user.user_id, now=now, action="use",
               details={**details, "granted_by": approval.granted_by,
                        "max_rows": approval.max_rows},
               case_number=case_number, event_id=event_id)
    return Approval(**{**_row(approval), "used_at": now, "used_event_id": event_id})


def list_approvals(store: Store, *, actor: User, policy: Policy) -> pl.DataFrame:
    """The approvals ``actor`` granted or received (every one, for the ``audit`` role).

    Parameters
    ----------
    store
        The store holding the approvals.
    actor
        The signed-in user.
    policy
        The department policy.

    Returns
    -------
    polars.DataFrame
        Rows of ``search_approvals``, newest first.
    """
    table = store.tables.read(_TABLE)
    if not policy.may(actor.role, "audit"):
        table = table.filter(
            (pl.col("granted_by") == actor.user_id) | (pl.col("searcher_user_id") == actor.user_id)
        )
    return table.sort("granted_at", descending=True)
