"""Audited administrative actions: retention purges, legal holds, key rotation, user changes.

Each function does the work through the store and leaves an audit record, allowed or refused,
so the annual audit sees every path (docs/policy.md#a4).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.registry import get_case, get_user, user_problem
from alpr_workbench.policy import Policy
from alpr_workbench.store import PurgeReport, Store

__all__ = [
    "AdminRefused",
    "change_user",
    "place_legal_hold",
    "purge_expired",
    "release_legal_hold",
    "rotate_master_keys",
]

AuditAppend = Callable[[dict[str, Any]], Any]


class AdminRefused(WorkbenchError):
    """An administrative action the policy does not allow (it was audited)."""


def _audit(
    audit: AuditAppend,
    event_type: str,
    actor: str,
    now: dt.datetime,
    details: dict[str, Any],
    *,
    problem: str | None = None,
    rows: int | None = None,
    case_number: str | None = None,
) -> None:
    audit(
        {
            "event_type": event_type,
            "occurred_at": now,
            "user_id": actor,
            "case_number": case_number,
            "query_json": json.dumps(details, default=str, sort_keys=True),
            "outcome": "refused" if problem else "allowed",
            "refusal_reason": problem,
            "row_count": rows,
        }
    )


def _refuse(
    audit: AuditAppend,
    event_type: str,
    actor: str,
    now: dt.datetime,
    details: dict[str, Any],
    problem: str,
    case_number: str | None = None,
) -> AdminRefused:
    _audit(audit, event_type, actor, now, details, problem=problem, case_number=case_number)
    return AdminRefused(problem)


def purge_expired(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    as_of: dt.date,
    retention_days: int,
    now: dt.datetime,
) -> PurgeReport:
    """Crypto-shred every day older than retention, and audit what was destroyed."""
    report = store.reads.purge(as_of=as_of, retention_days=retention_days)
    _audit(
        audit,
        "purge",
        actor,
        now,
        {
            "as_of": as_of,
            "retention_days": retention_days,
            "days_purged": [d.isoformat() for d in report.days_purged],
            "rows_kept_under_hold": report.rows_kept_under_hold,
            "hold_ids": list(report.hold_ids),
        },
        rows=report.rows_destroyed,
    )
    return report


def place_legal_hold(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    hold_id: str,
    case_number: str,
    approver_user_id: str,
    reason: str,
    review_by_date: dt.date,
    read_ids: Sequence[str],
    policy: Policy,
    now: dt.datetime,
) -> int:
    """Keep reads past retention for a case: copy them under the hold's own key, then record it.

    The approver must be a supervisor allowed to approve; the case must be open; the review
    date must be in the future. Returns the number of reads held.

    Raises
    ------
    AdminRefused
        When any rule is broken (audited).
    """
    details = {
        "hold_id": hold_id,
        "approver": approver_user_id,
        "reason": reason,
        "review_by_date": review_by_date,
        "reads": len(read_ids),
    }
    approver = get_user(store, approver_user_id)
    case = (
        get_case(store, case_number)
        if re.fullmatch(policy.case_number_pattern, case_number)
        else None
    )
    problem = None
    if (
        user_problem(approver, policy=policy, now=now) is not None
        or approver is None
        or not policy.may(approver.role, "approve")
    ):
        problem = f"{approver_user_id!r} may not approve a legal hold"
    elif case is None or case.status != "open":
        problem = f"case {case_number!r} is not an open case"
    elif not reason.strip():
        problem = "a legal hold needs a reason"
    elif review_by_date <= now.date():
        problem = "the review date must be in the future"
    elif not read_ids:
        problem = "no reads to hold"
    if problem is not None:
        raise _refuse(audit, "hold", actor, now, details, problem, case_number)
    held = store.reads.place_hold(hold_id, list(read_ids))
    store.tables.append(
        "legal_holds",
        pl.DataFrame(
            {
                "hold_id": [hold_id],
                "case_number": [case_number],
                "approver_user_id": [approver_user_id],
                "reason": [reason],
                "created_at": [now],
                "review_by_date": [review_by_date],
                "read_count": [held],
            }
        ),
    )
    _audit(audit, "hold", actor, now, details, rows=held, case_number=case_number)
    return held


def release_legal_hold(
    store: Store, audit: AuditAppend, *, actor: str, hold_id: str, now: dt.datetime
) -> None:
    """Release a hold: its reads are crypto-shredded and the record marked released."""
    holds = store.tables.read("legal_holds")
    if hold_id not in holds["hold_id"].to_list():
        raise _refuse(audit, "hold", actor, now, {"release": hold_id}, "unknown hold")
    store.reads.release_hold(hold_id)
    store.tables.write(
        "legal_holds",
        holds.with_columns(
            pl.when(pl.col("hold_id") == hold_id)
            .then(pl.lit(now, dtype=pl.Datetime("us", "UTC")))
            .otherwise(pl.col("released_at"))
            .alias("released_at")
        ),
    )
    _audit(audit, "hold", actor, now, {"release": hold_id})


def rotate_master_keys(store: Store, audit: AuditAppend, *, actor: str, now: dt.datetime) -> int:
    """Rotate every master key without rewriting data; audit how many files were re-wrapped."""
    files = store.rotate_master_keys()
    _audit(audit, "key_rotation", actor, now, {"files_rewrapped": files}, rows=files)
    return files


def change_user(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    user_id: str,
    changes: dict[str, Any],
    policy: Policy,
    now: dt.datetime,
) -> None:
    """Create or change a user (role, training, separation...); administrators only.

    Raises
    ------
    AdminRefused
        When the actor may not administer users, or the change is invalid (audited).
    """
    details = {"user_id": user_id, "changes": changes}
    admin = get_user(store, actor)
    if (
        user_problem(admin, policy=policy, now=now) is not None
        or admin is None
        or not policy.may(admin.role, "administer")
    ):
        raise _refuse(audit, "user_change", actor, now, details, f"{actor!r} may not change users")
    users = store.tables.read("users")
    current = users.filter(pl.col("user_id") == user_id)
    unknown = set(changes) - set(users.columns)
    if unknown:
        raise _refuse(
            audit, "user_change", actor, now, details, f"unknown user fields {sorted(unknown)}"
        )
    row = current.row(0, named=True) if current.height else {"user_id": user_id}
    row.update(changes)
    others = users.filter(pl.col("user_id") != user_id)
    try:
        store.tables.write(
            "users", pl.concat([others, pl.DataFrame([row], schema=users.schema)], how="vertical")
        )
    except WorkbenchError as exc:
        raise _refuse(audit, "user_change", actor, now, details, str(exc)) from exc
    _audit(audit, "user_change", actor, now, details, rows=1)
