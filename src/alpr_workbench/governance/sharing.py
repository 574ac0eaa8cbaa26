"""Sharing grants between networks: who may search which network, and drift detection.

Only California public agencies may receive a grant (Civil Code 1798.90.55, AG bulletin
2023-DLE-06), and a recipient's type comes from the registry of known agencies
(:mod:`alpr_workbench.agencies`), never from whoever records the grant. Only users whose role
holds ``manage_grants`` may change grants or the registry. Private networks are invisible to
the police until their owner grants access, and a revocation takes effect on the very next
query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import polars as pl

from alpr_workbench.agencies import (
    Agency,
    find_agency,
    load_agencies,
    write_department_agencies,
)
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.admin import actor_problem
from alpr_workbench.policy import Policy
from alpr_workbench.store import Store
from alpr_workbench.termmatch import fold_text, within_edits

__all__ = [
    "SharingRefused",
    "add_agency",
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
    granted it access, only when the registry of known agencies lists ``organization`` as an
    allowed recipient type. The ``recipient_type`` stored with a grant is never trusted: a row
    claiming "local" for a federal agency grants nothing.
    """
    visible = set()
    agency = find_agency(load_agencies(store.home, store.keystore), organization)
    grantable = agency is not None and agency.organization_type in policy.allowed_recipient_types
    if organization == policy.agency_name:
        networks = store.tables.read("networks")
        visible.update(networks.filter(pl.col("is_department_owned"))["network_id"].to_list())
    # A handful of rows, checked on every search: plain Python is faster than a query here.
    for grant in store.tables.read("sharing_grants").iter_rows(named=True):
        revoked = grant["revoked_at"]
        if (
            grantable
            and grant["recipient_org"] == organization
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
    scope: str,
    approved_by: str,
    basis: str,
    review_by_date: dt.date,
    policy: Policy,
    now: dt.datetime,
    recipient_type: str | None = None,
) -> str:
    """Record an owner's grant; refuse (and audit) any recipient the law does not allow.

    The actor needs the ``manage_grants`` permission. The recipient must be in the registry of
    known agencies, which gives its type; ``recipient_type``, when given, must agree with it.

    Returns
    -------
    str
        The new grant id.

    Raises
    ------
    SharingRefused
        For an actor who may not manage grants, a recipient not in the registry (or of another
        type than claimed), a federal, out-of-state or private recipient, an unknown network or
        a grant without an approver or basis.
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
    problem = actor_problem(
        store, actor=actor, permission="manage_grants", action="manage grants", policy=policy,
        now=now,
    )
    agency = find_agency(load_agencies(store.home, store.keystore), recipient_org)
    if problem is not None:
        pass
    elif agency is None:
        problem = (
            f"{recipient_org!r} is not a known agency; a grant names an agency from the "
            "registry (add it with `alpr-workbench grants add-agency`)"
        )
    elif agency.organization_type not in policy.allowed_recipient_types:
        problem = (
            f"{agency.name!r} is listed as {agency.organization_type} in the registry of known "
            f"agencies and may not receive ALPR data; only "
            f"{', '.join(policy.allowed_recipient_types)} may (Civil Code 1798.90.55)"
        )
    elif recipient_type is not None and recipient_type != agency.organization_type:
        problem = (
            f"{agency.name!r} is listed as {agency.organization_type} in the registry of known "
            f"agencies, not {recipient_type}"
        )
    elif network_id not in store.tables.read("networks")["network_id"].to_list():
        problem = f"unknown network {network_id!r}"
    elif not approved_by.strip() or not basis.strip():
        problem = "a grant needs a named approver and a basis"
    if problem is not None:
        audit(_event(actor, query, "refused", problem, now))
        raise SharingRefused(problem)
    assert agency is not None  # refused above otherwise
    grant_id = f"grant-{uuid.uuid4().hex[:12]}"
    row = pl.DataFrame(
        {
            "grant_id": [grant_id],
            "network_id": [network_id],
            "recipient_org": [agency.name],
            "recipient_type": [agency.organization_type],
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
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    grant_id: str,
    policy: Policy,
    now: dt.datetime,
) -> None:
    """Revoke a grant; it stops applying on the next query.

    Raises
    ------
    SharingRefused
        When the actor lacks ``manage_grants`` or the grant is unknown (audited).
    """
    grants = store.tables.read("sharing_grants")
    problem = actor_problem(
        store, actor=actor, permission="manage_grants", action="manage grants", policy=policy,
        now=now,
    )
    if problem is None and grant_id not in grants["grant_id"].to_list():
        problem = f"unknown grant {grant_id!r}"
    if problem is not None:
        query = {"action": "revoke_grant", "grant_id": grant_id}
        audit(_event(actor, query, "refused", problem, now))
        raise SharingRefused(problem)
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


def add_agency(
    store: Store,
    audit: AuditAppend,
    *,
    actor: str,
    name: str,
    organization_type: str,
    state: str,
    policy: Policy,
    now: dt.datetime,
) -> None:
    """Add an agency to the department's registry (``<data dir>/agencies.yaml``), audited.

    Parameters
    ----------
    store, audit
        The store (its data directory holds the file) and the audit sink.
    actor
        The acting user; needs ``manage_grants``.
    name, organization_type, state
        The agency: its official name, its kind (``ca_local_agency``, ``federal``...) and
        its state (two letters, ``US`` for a federal body).
    policy
        The policy giving the roles.
    now
        Current time (UTC).

    Raises
    ------
    SharingRefused
        When the actor may not manage grants, a field is blank, the name is already known,
        holds other than plain ASCII characters or lies within one edit of a known agency's
        name (folded like screened text), the type is not one of the policy's
        ``organization_type_states`` exactly, or the state does not agree with the type
        (audited).
    """
    query: dict[str, Any] = {
        "action": "add_agency",
        "name": name,
        "organization_type": organization_type,
        "state": state,
    }
    agencies = load_agencies(store.home, store.keystore)
    problem = actor_problem(
        store, actor=actor, permission="manage_grants", action="manage grants", policy=policy,
        now=now,
    ) or _agency_problem(agencies, name, organization_type, state, policy=policy)
    if problem is not None:
        audit(_event(actor, query, "refused", problem, now))
        raise SharingRefused(problem)
    agency = Agency(name=name.strip(), organization_type=organization_type, state=state)
    generation, entries = write_department_agencies(store.home, store.keystore, agency)
    query["registry_generation"] = generation
    query["registry_entries"] = entries
    audit(_event(actor, query, "allowed", None, now))


def _agency_problem(
    agencies: dict[str, Agency], name: str, organization_type: str, state: str, *,
    policy: Policy,
) -> str | None:
    """Why ``name`` may not join the registry as given, or None."""
    if not (name.strip() and organization_type.strip() and state.strip()):
        return "an agency needs a name, a type and a state"
    if find_agency(agencies, name) is not None:
        return f"{name!r} is already a known agency"
    if not re.fullmatch(policy.agency_name_pattern, name.strip()):
        return (
            f"{name!r} is not a plain agency name (ASCII letters, digits, spaces and . , ' & "
            "( ) / - only; no invisible or look-alike characters)"
        )
    folded = " ".join(re.findall(r"[a-z0-9]+", fold_text(name)))
    for known in agencies.values():
        if within_edits(folded, " ".join(re.findall(r"[a-z0-9]+", fold_text(known.name)))):
            return f"{name!r} looks like the known agency {known.name!r}"
    states = policy.organization_type_states.get(organization_type)
    if states is None:
        return (
            f"{organization_type!r} is not a known organization type (one of "
            f"{sorted(policy.organization_type_states)})"
        )
    if not re.fullmatch(states, state):
        return f"state {state!r} does not agree with the type {organization_type!r}"
    return None


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
