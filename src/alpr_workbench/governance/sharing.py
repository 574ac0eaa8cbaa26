"""Sharing grants between networks: who may search which network, and drift detection.

Only California public agencies may receive a grant (Civil Code 1798.90.55, AG bulletin
2023-DLE-06). Private networks are invisible to the police until their owner grants access,
and a revocation takes effect on the very next query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.policy import Policy
from alpr_workbench.store import Store

__all__ = [
    "SharingRefused",
    "add_grant",
    "grants_digest",
    "revoke_grant",
    "sharing_drift",
    "snapshot_sharing",
    "visible_networks",
]


AuditAppend = Callable[[dict[str, Any]], object]


class SharingRefused(WorkbenchError):
    """A sharing change the law or the policy does not allow (it was audited)."""


def grants_digest(grants: pl.DataFrame) -> str:
    """A stable SHA-256 of the grants table, recorded with every audited change."""
    rows = grants.sort("grant_id").to_dicts()
    canonical = json.dumps(rows, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def active_grants(store: Store, *, at: dt.datetime) -> pl.DataFrame:
    """Grants in force at ``at``."""
    grants = store.tables.read("sharing_grants")
    return grants.filter(
        (pl.col("granted_at") <= at)
        & (pl.col("revoked_at").is_null() | (pl.col("revoked_at") > at))
    )


def visible_networks(
    store: Store, *, organization: str, policy: Policy, at: dt.datetime
) -> list[str]:
    """Networks ``organization`` may search at ``at``.

    Its own networks (for the department: the networks it operates) plus networks whose owner
    granted it access, only through grants to an allowed recipient type.
    """
    visible = set()
    if organization == policy.agency_name:
        networks = store.tables.read("networks")
        visible.update(networks.filter(pl.col("is_department_owned"))["network_id"].to_list())
    # A handful of rows, checked on every search: plain Python is faster than a query here.
    for grant in store.tables.read("sharing_grants").iter_rows(named=True):
        revoked = grant["revoked_at"]
        if (
            grant["recipient_org"] == organization
            and grant["recipient_type"] in policy.allowed_recipient_types
            and grant["scope"] in ("search", "search_and_alerts")
            and grant["granted_at"] <= at
            and (revoked is None or revoked > at)
        ):
            visible.add(grant["network_id"])
    return sorted(visible)


def add_grant(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    network_id: str,
    recipient_org: str,
    recipient_type: str,
    scope: str,
    approved_by: str,
    basis: str,
    review_by_date: dt.date,
    policy: Policy,
    now: dt.datetime,
) -> str:
    """Record an owner's grant; refuse (and audit) any recipient the law does not allow.

    Returns
    -------
    str
        The new grant id.

    Raises
    ------
    SharingRefused
        For a federal, out-of-state or private recipient, an unknown network or a grant
        without an approver or basis.
    """
    query = {
        "action": "add_grant",
        "network_id": network_id,
        "recipient_org": recipient_org,
        "recipient_type": recipient_type,
        "scope": scope,
        "approved_by": approved_by,
        "basis": basis,
        "review_by_date": review_by_date.isoformat(),
    }
    problem = None
    if recipient_type not in policy.allowed_recipient_types:
        problem = (
            f"recipient type {recipient_type!r} may not receive ALPR data; only "
            f"{', '.join(policy.allowed_recipient_types)} may (Civil Code 1798.90.55)"
        )
    elif network_id not in store.tables.read("networks")["network_id"].to_list():
        problem = f"unknown network {network_id!r}"
    elif not approved_by.strip() or not basis.strip():
        problem = "a grant needs a named approver and a basis"
    if problem is not None:
        audit(_event(actor, query, "refused", problem, now))
        raise SharingRefused(problem)
    grant_id = f"grant-{uuid.uuid4().hex[:12]}"
    row = pl.DataFrame(
        {
            "grant_id": [grant_id],
            "network_id": [network_id],
            "recipient_org": [recipient_org],
            "recipient_type": [recipient_type],
            "scope": [scope],
            "approved_by": [approved_by],
            "basis": [basis],
            "granted_at": [now],
            "review_by_date": [review_by_date],
        }
    )
    store.tables.append("sharing_grants", row)
    query["grant_id"] = grant_id
    query["grants_digest"] = grants_digest(store.tables.read("sharing_grants"))
    audit(_event(actor, query, "allowed", None, now))
    return grant_id


def revoke_grant(
    store: Store, audit: AuditAppend, *, actor: str, grant_id: str, now: dt.datetime
) -> None:
    """Revoke a grant; it stops applying on the next query."""
    grants = store.tables.read("sharing_grants")
    if grant_id not in grants["grant_id"].to_list():
        audit(
            _event(
                actor,
                {"action": "revoke_grant", "grant_id": grant_id},
                "refused",
                "unknown grant",
                now,
            )
        )
        raise SharingRefused(f"unknown grant {grant_id!r}")
    updated = grants.with_columns(
        pl.when((pl.col("grant_id") == grant_id) & pl.col("revoked_at").is_null())
        .then(pl.lit(now, dtype=pl.Datetime("us", "UTC")))
        .otherwise(pl.col("revoked_at"))
        .alias("revoked_at")
    )
    store.tables.write("sharing_grants", updated)
    query = {
        "action": "revoke_grant",
        "grant_id": grant_id,
        "grants_digest": grants_digest(store.tables.read("sharing_grants")),
    }
    audit(_event(actor, query, "allowed", None, now))


def sharing_drift(store: Store, audited_changes: pl.DataFrame) -> str | None:
    """Compare the grants table with the state the last audited change left.

    Parameters
    ----------
    audited_changes
        Audit events of type ``sharing_change`` (oldest first).

    Returns
    -------
    str or None
        A description of the drift, or None when the table is what the audit trail says.
    """
    digests = [
        json.loads(q).get("grants_digest")
        for q, outcome in audited_changes.select("query_json", "outcome").iter_rows()
        if outcome == "allowed" and q
    ]
    digests = [d for d in digests if d]
    current = grants_digest(store.tables.read("sharing_grants"))
    if not digests:
        return (
            None
            if store.tables.read("sharing_grants").is_empty()
            else ("sharing grants exist but no audited change ever recorded them")
        )
    if digests[-1] != current:
        return (
            "sharing grants changed without an audited, approved action "
            f"(table digest {current[:12]}, last audited {digests[-1][:12]})"
        )
    return None


def _event(
    actor: str, query: dict[str, Any], outcome: str, problem: str | None, now: dt.datetime
) -> dict[str, Any]:
    return {
        "event_type": "sharing_change",
        "occurred_at": now,
        "user_id": actor,
        "query_json": json.dumps(query, sort_keys=True, default=str),
        "outcome": outcome,
        "refusal_reason": problem,
        "row_count": 0 if outcome == "refused" else 1,
    }


def snapshot_sharing(
    store: Store,
    audit: AuditAppend,
    audited_changes: pl.DataFrame,
    *,
    actor: str,
    now: dt.datetime,
) -> str | None:
    """Record today's sharing settings in the audit log and report drift (run daily).

    The snapshot holds the full grants table and its digest, so consecutive snapshots can be
    compared by the annual audit; drift is judged against the last audited change only.

    Returns
    -------
    str or None
        The drift found, if any (also recorded in the snapshot).
    """
    grants = store.tables.read("sharing_grants")
    drift = sharing_drift(store, audited_changes)
    audit(
        {
            "event_type": "sharing_snapshot",
            "occurred_at": now,
            "user_id": actor,
            "query_json": json.dumps(
                {
                    "grants_digest": grants_digest(grants),
                    "drift": drift,
                    "grants": grants.to_dicts(),
                },
                default=str,
                sort_keys=True,
            ),
            "outcome": "allowed",
            "row_count": grants.height,
        }
    )
    return drift
