"""Audited administrative actions: retention purges, legal holds, key rotation, user changes.

Each function first checks that the acting user exists, is in good standing and holds the
policy permission for the action (:func:`actor_problem`), does the work through the store and
leaves an audit record, allowed or refused, so the annual audit sees every path
(docs/policy.md#a4).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from alpr_workbench.config import load_department_settings, write_department_settings
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.registry import get_case, get_user, same_person, user_problem
from alpr_workbench.hotlist import (
    HotlistImport,
    HotlistLoad,
    add_entry,
    change_entry,
    create_custom_hotlist,
    delete_entry,
    load_hotlist,
)
from alpr_workbench.policy import Permission, Policy, load_policy
from alpr_workbench.store import PurgeReport, Store

if TYPE_CHECKING:
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.governance.vendor_import import VendorImport

__all__ = [
    "AdminRefused",
    "PurgePlan",
    "actor_problem",
    "add_hotlist_entry",
    "change_hotlist_entry",
    "change_user",
    "configured_retention_days",
    "create_hotlist",
    "delete_hotlist_entry",
    "import_hotlist",
    "import_vendor_audit",
    "place_legal_hold",
    "plan_purge",
    "purge_expired",
    "release_legal_hold",
    "rotate_master_keys",
    "set_retention_days",
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


def actor_problem(
    store: Store, *, actor: str, permission: Permission, action: str, policy: Policy,
    now: dt.datetime,
) -> str | None:
    """Why ``actor`` may not do ``action`` now, or None when they may.

    The actor must be a known user in good standing (:func:`user_problem`) whose role holds
    ``permission`` in the policy's ``roles``.

    Parameters
    ----------
    store
        The store holding the users.
    actor
        The acting user id.
    permission
        The policy permission the action needs.
    action
        The action in words, for the message ("purge", "manage grants"...).
    policy
        The policy giving the roles.
    now
        Current time (UTC).

    Returns
    -------
    str or None
        The reason for a refusal, naming the actor, or None.
    """
    user = get_user(store, actor)
    problem = user_problem(user, policy=policy, now=now)
    if problem is not None:
        return f"{actor!r} may not {action}: {problem}"
    assert user is not None  # user_problem refuses an unknown user
    if not policy.may(user.role, permission):
        return (
            f"{actor!r} may not {action}: role {user.role!r} lacks the {permission!r} "
            "permission"
        )
    return None


def configured_retention_days(store: Store) -> int:
    """The department's retention period in days (the one place a purge reads it).

    It comes from the store's authenticated department settings, never from an argument or
    the environment.
    """
    return load_department_settings(store.home, store.keystore).retention_days


def set_retention_days(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    retention_days: int,
    policy: Policy,
    now: dt.datetime,
) -> int:
    """Change the department's retention period (audited with the old and new values).

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    actor
        The acting user; needs the ``configure`` permission.
    retention_days
        The new period, within the policy's ``retention_days_range``.
    policy
        The policy giving the roles and the allowed range.
    now
        Current time (UTC).

    Returns
    -------
    int
        The retention period it replaced.

    Raises
    ------
    AdminRefused
        When the actor may not configure, or the value lies outside the range (audited as a
        refused ``settings_change``).
    """
    old = configured_retention_days(store)
    details: dict[str, Any] = {
        "action": "set_retention",
        "old": {"retention_days": old},
        "new": {"retention_days": retention_days},
    }
    problem = actor_problem(
        store, actor=actor, permission="configure", action="change the department's settings",
        policy=policy, now=now,
    )
    low, high = policy.retention_days_range
    if problem is None and not low <= retention_days <= high:
        problem = (
            f"a retention of {retention_days} days is refused: the policy allows between "
            f"{low} and {high} days"
        )
    if problem is not None:
        raise _refuse(audit, "settings_change", actor, now, details, problem)
    write_department_settings(store.home, store.keystore, retention_days=retention_days)
    _audit(audit, "settings_change", actor, now, details)
    return old


@dataclass(frozen=True)
class PurgePlan:
    """What a purge would shred: each expired day with its read count.

    Attributes
    ----------
    as_of, retention_days
        The purge's date and retention period.
    cutoff
        Days strictly before it are shredded.
    days
        ``(day, reads)`` for each day that would be shredded, oldest first.
    """

    as_of: dt.date
    retention_days: int
    cutoff: dt.date
    days: tuple[tuple[dt.date, int], ...]

    @property
    def reads(self) -> int:
        """Reads that would be shredded."""
        return sum(n for _, n in self.days)


def _checked_purge(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    as_of: dt.date,
    retention_days: int | None,
    policy: Policy,
    now: dt.datetime,
    dry_run: bool,
) -> PurgePlan:
    configured = configured_retention_days(store)
    days = configured if retention_days is None else retention_days
    details = {"as_of": as_of, "retention_days": days, "dry_run": dry_run}
    problem = actor_problem(
        store, actor=actor, permission="purge", action="purge", policy=policy, now=now
    )
    if problem is None and as_of > now.date():
        problem = f"--as-of {as_of} is in the future (today is {now.date()})"
    if problem is None and days < configured:
        problem = (
            f"a retention of {days} days would shred days still inside retention "
            f"({configured} days: nothing on or after {now.date() - dt.timedelta(days=configured)}"
            " may be shredded)"
        )
    if problem is not None:
        raise _refuse(audit, "purge", actor, now, details, problem)
    cutoff = as_of - dt.timedelta(days=days)
    expired = tuple(
        (day, rows) for day, rows in store.reads.day_row_counts().items() if day < cutoff
    )
    return PurgePlan(as_of, days, cutoff, expired)


def plan_purge(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    as_of: dt.date,
    policy: Policy,
    now: dt.datetime,
    retention_days: int | None = None,
) -> PurgePlan:
    """List what :func:`purge_expired` would shred, shredding nothing (audited as a dry run).

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    actor
        The acting user; needs the ``purge`` permission.
    as_of
        Purge relative to this date; not after today.
    policy
        The policy giving the roles.
    now
        Current time (UTC).
    retention_days
        Default: the configured retention; never shorter.

    Returns
    -------
    PurgePlan
        The days and read counts that would be shredded.

    Raises
    ------
    AdminRefused
        When the actor may not purge, ``as_of`` is in the future or the retention is shorter
        than configured (audited).
    """
    plan = _checked_purge(
        store, audit, actor=actor, as_of=as_of, retention_days=retention_days, policy=policy,
        now=now, dry_run=True,
    )
    _audit(
        audit,
        "purge",
        actor,
        now,
        {
            "as_of": as_of,
            "retention_days": plan.retention_days,
            "dry_run": True,
            "days_to_purge": {d.isoformat(): n for d, n in plan.days},
        },
        rows=0,
    )
    return plan


def purge_expired(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    as_of: dt.date,
    policy: Policy,
    now: dt.datetime,
    retention_days: int | None = None,
) -> PurgeReport:
    """Crypto-shred every day older than retention, and audit what was destroyed.

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    actor
        The acting user; needs the ``purge`` permission.
    as_of
        Purge relative to this date; not after today.
    policy
        The policy giving the roles.
    now
        Current time (UTC).
    retention_days
        Default: the configured retention (:func:`configured_retention_days`); a longer
        period is allowed, a shorter one is refused.

    Returns
    -------
    PurgeReport
        What was destroyed and what legal holds kept.

    Raises
    ------
    AdminRefused
        When the actor may not purge, ``as_of`` is in the future or the retention is shorter
        than configured (audited).
    """
    plan = _checked_purge(
        store, audit, actor=actor, as_of=as_of, retention_days=retention_days, policy=policy,
        now=now, dry_run=False,
    )
    report = store.reads.purge(as_of=as_of, retention_days=plan.retention_days)
    _audit(
        audit,
        "purge",
        actor,
        now,
        {
            "as_of": as_of,
            "retention_days": plan.retention_days,
            "days_purged": [d.isoformat() for d in report.days_purged],
            "rows_kept_under_hold": report.rows_kept_under_hold,
            "hold_ids": list(report.hold_ids),
        },
        rows=report.rows_destroyed,
    )
    return report


def _hold_problem(
    store: Store,
    *,
    actor: str,
    case_number: str,
    approver_user_id: str,
    reason: str,
    review_by_date: dt.date,
    read_ids: Sequence[str],
    policy: Policy,
    now: dt.datetime,
) -> str | None:
    """Why a legal hold may not be placed as asked (the actor aside), or None."""
    approver = get_user(store, approver_user_id)
    case = (
        get_case(store, case_number)
        if re.fullmatch(policy.case_number_pattern, case_number)
        else None
    )
    if approver_user_id == actor:
        return f"{actor!r} may not approve their own legal hold"
    acting = get_user(store, actor)
    if approver is not None and acting is not None and same_person(approver, acting):
        return (f"{approver_user_id!r} may not approve a legal hold placed by {actor!r}: both "
                "accounts are one person's (the same person id)")
    if (
        user_problem(approver, policy=policy, now=now) is not None
        or approver is None
        or not policy.may(approver.role, "approve")
    ):
        return f"{approver_user_id!r} may not approve a legal hold"
    if case is None or case.status != "open":
        return f"case {case_number!r} is not an open case"
    if not reason.strip():
        return "a legal hold needs a reason"
    if review_by_date <= now.date():
        return "the review date must be in the future"
    if not read_ids:
        return "no reads to hold"
    return None


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

    The actor needs the ``manage_legal_holds`` permission; the approver must be another user
    in good standing allowed to ``approve``; the case must be open; the review date must be in
    the future. Returns the number of reads held.

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
    problem = actor_problem(
        store, actor=actor, permission="manage_legal_holds", action="place a legal hold",
        policy=policy, now=now,
    ) or _hold_problem(
        store, actor=actor, case_number=case_number, approver_user_id=approver_user_id,
        reason=reason, review_by_date=review_by_date, read_ids=read_ids, policy=policy, now=now,
    )
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
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    hold_id: str,
    now: dt.datetime,
    policy: Policy | None = None,
) -> None:
    """Release a hold: its reads are crypto-shredded and the record marked released.

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    actor
        The acting user; needs the ``manage_legal_holds`` permission.
    hold_id
        The hold to release; it must exist and not be released already.
    now
        Current time (UTC).
    policy
        The policy giving the roles (default: the department policy).

    Raises
    ------
    AdminRefused
        When the actor may not manage legal holds, or the hold is unknown or already released
        (audited).
    """
    policy = policy if policy is not None else load_policy()
    details = {"release": hold_id}
    problem = actor_problem(
        store, actor=actor, permission="manage_legal_holds", action="release a legal hold",
        policy=policy, now=now,
    )
    holds = store.tables.read("legal_holds")
    row = holds.filter(pl.col("hold_id") == hold_id)
    if problem is None and row.is_empty():
        problem = "unknown hold"
    elif problem is None and row["released_at"].is_not_null().any():
        problem = f"legal hold {hold_id!r} was already released"
    if problem is not None:
        raise _refuse(audit, "hold", actor, now, details, problem)
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
    _audit(audit, "hold", actor, now, details)


def rotate_master_keys(
    store: Store, audit: AuditAppend, *, actor: str, policy: Policy, now: dt.datetime
) -> int:
    """Rotate every master key without rewriting data; audit how many files were re-wrapped.

    Raises
    ------
    AdminRefused
        When the actor lacks the ``rotate_keys`` permission (audited).
    """
    problem = actor_problem(
        store, actor=actor, permission="rotate_keys", action="rotate keys", policy=policy,
        now=now,
    )
    if problem is not None:
        raise _refuse(audit, "key_rotation", actor, now, {}, problem)
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
    problem = actor_problem(
        store, actor=actor, permission="administer", action="change users", policy=policy,
        now=now,
    )
    if problem is not None:
        raise _refuse(audit, "user_change", actor, now, details, problem)
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


def import_vendor_audit(
    store: Store,
    log: AuditLog,
    imported: VendorImport,
    *,
    actor: str,
    policy: Policy,
    now: dt.datetime,
) -> int:
    """Append a vendor's search log to the audit log, skipping events already imported.

    Parameters
    ----------
    store
        The store holding the users.
    log
        The audit log receiving the events (and any refusal).
    imported
        From :func:`~alpr_workbench.governance.read_vendor_audit`.
    actor
        The acting user; needs the ``import_vendor_audit`` permission.
    policy
        The policy giving the roles.
    now
        Current time (UTC).

    Returns
    -------
    int
        Events newly appended.

    Raises
    ------
    AdminRefused
        When the actor may not import vendor logs (audited).

    Notes
    -----
    The import itself is recorded as an ``ingest`` event (who imported what), never as a
    ``vendor_search``, so it is not counted as a search.
    """
    details: dict[str, Any] = {
        "action": "import_vendor_audit",
        "format": imported.format,
        "rows_read": imported.rows_read,
        "rows_rejected": imported.rejected.height,
    }
    problem = actor_problem(
        store, actor=actor, permission="import_vendor_audit", action="import vendor audit logs",
        policy=policy, now=now,
    )
    if problem is not None:
        raise _refuse(log.append, "ingest", actor, now, details, problem)
    known = set(log.events()["event_id"])
    fresh = imported.events.filter(~pl.col("event_id").is_in(list(known)))
    log.append_many(fresh.to_dicts())
    _audit(log.append, "ingest", actor, now, details, rows=fresh.height)
    return fresh.height


def import_hotlist(
    store: Store,
    audit: AuditAppend,
    imported: HotlistImport,
    *,
    actor: str,
    policy: Policy,
    now: dt.datetime,
) -> HotlistLoad:
    """Load (or reload, replacing) a hotlist for ``actor``, who needs ``manage_hotlists``.

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    imported
        From :func:`~alpr_workbench.hotlist.read_hotlist_csv`.
    actor
        The acting user.
    policy
        The policy giving the roles and the never-alert categories.
    now
        Current time (UTC).

    Returns
    -------
    HotlistLoad
        Entries loaded, and those the reload removed.

    Raises
    ------
    AdminRefused
        When the actor may not manage hotlists (audited as a refused ``hotlist_add``).
    """
    problem = actor_problem(
        store, actor=actor, permission="manage_hotlists", action="load a hotlist",
        policy=policy, now=now,
    )
    if problem is not None:
        details = {
            "action": "load_hotlist",
            "hotlist_id": imported.hotlist["hotlist_id"][0],
            "rows_read": imported.rows_read,
        }
        raise _refuse(audit, "hotlist_add", actor, now, details, problem)
    return load_hotlist(store, audit, imported, actor=actor, now=now, policy=policy)


def _hotlist_refusal(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    event_type: str,
    details: dict[str, Any],
    policy: Policy,
    now: dt.datetime,
) -> None:
    """Refuse (audited) unless ``actor`` holds ``manage_hotlists``."""
    problem = actor_problem(
        store, actor=actor, permission="manage_hotlists", action="manage hotlists",
        policy=policy, now=now,
    )
    if problem is not None:
        raise _refuse(audit, event_type, actor, now, details, problem)


def create_hotlist(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    name: str,
    case_number: str,
    reason: str,
    expires_at: dt.datetime,
    policy: Policy,
    now: dt.datetime,
) -> str:
    """Create a custom hotlist for ``actor``, who needs ``manage_hotlists``.

    The list's own rules (case, reason, expiry) are
    :func:`~alpr_workbench.hotlist.create_custom_hotlist`'s.

    Returns
    -------
    str
        The new ``hotlist_id``.

    Raises
    ------
    AdminRefused
        When the actor may not manage hotlists (audited as a refused ``hotlist_add``).
    """
    details = {"action": "create_custom_hotlist", "name": name, "case_number": case_number}
    _hotlist_refusal(
        store, audit, actor=actor, event_type="hotlist_add", details=details, policy=policy,
        now=now,
    )
    return create_custom_hotlist(
        store, audit, actor=actor, name=name, case_number=case_number, reason=reason,
        expires_at=expires_at, now=now, policy=policy,
    )


def add_hotlist_entry(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    hotlist_id: str,
    plate: str,
    policy: Policy,
    now: dt.datetime,
    **entry: Any,
) -> str:
    """Add a plate to a custom list for ``actor``, who needs ``manage_hotlists``.

    ``entry`` takes :func:`~alpr_workbench.hotlist.add_entry`'s optional details
    (``plate_state``, ``category``, ``reason``, ``priority``, ``expires_at``, ``vehicle``).

    Returns
    -------
    str
        The new ``entry_id``.

    Raises
    ------
    AdminRefused
        When the actor may not manage hotlists (audited as a refused ``hotlist_add``).
    """
    details = {"action": "add_entry", "hotlist_id": hotlist_id, "plate": plate}
    _hotlist_refusal(
        store, audit, actor=actor, event_type="hotlist_add", details=details, policy=policy,
        now=now,
    )
    return add_entry(
        store, audit, actor=actor, hotlist_id=hotlist_id, plate=plate, now=now, policy=policy,
        **entry,
    )


def change_hotlist_entry(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    entry_id: str,
    changes: dict[str, Any],
    policy: Policy,
    now: dt.datetime,
) -> None:
    """Change an entry for ``actor``, who needs ``manage_hotlists``.

    Raises
    ------
    AdminRefused
        When the actor may not manage hotlists (audited as a refused ``hotlist_change``).
    """
    details = {"action": "change_entry", "entry_id": entry_id, "after": dict(changes)}
    _hotlist_refusal(
        store, audit, actor=actor, event_type="hotlist_change", details=details, policy=policy,
        now=now,
    )
    change_entry(store, audit, actor=actor, entry_id=entry_id, changes=changes, now=now)


def delete_hotlist_entry(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    entry_id: str,
    reason: str,
    policy: Policy,
    now: dt.datetime,
) -> None:
    """Delete an entry for ``actor``, who needs ``manage_hotlists``.

    Raises
    ------
    AdminRefused
        When the actor may not manage hotlists (audited as a refused ``hotlist_delete``).
    """
    details = {"action": "delete_entry", "entry_id": entry_id, "reason": reason}
    _hotlist_refusal(
        store, audit, actor=actor, event_type="hotlist_delete", details=details, policy=policy,
        now=now,
    )
    delete_entry(store, audit, actor=actor, entry_id=entry_id, reason=reason, now=now)
