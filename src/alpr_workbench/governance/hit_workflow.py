"""The hit workflow: a queue of new hits, a person's confirmation, then the outcome.

A hotlist hit is a lead, not evidence (docs/policy.md#x1). The people who work hits (roles
holding the policy's ``work_hits`` permission) see the new, unconfirmed hits of the networks
their organization receives alerts from, captured within the department's retention
period (an older hit is refused like any other, audited): the read (time, camera, plate, the
reader's confidence, the image reference when there is one), the hotlist entry it matched
(category, priority, plate state, vehicle), and a warning for every character the reader
may have confused (0/O, 1/I, 8/B, 5/S, 2/Z). Nothing actionable about the entry (why it is
listed, the originating agency and case) is shown until a person confirms the hit *correct*.
Then the outcome (a stop, a recovery with the vehicle's value, an arrest, a cleared case) is
recorded against the confirmed hit, and the efficacy figures (``analytics.efficacy``) move
with it.

Every step checks the acting user's standing and permission and is audited with that user,
refusals included: confirmations and outcomes through
:func:`~alpr_workbench.hotlist.record_disposition` and
:func:`~alpr_workbench.hotlist.record_outcome` (``hotlist_change`` events), views of the queue
and of one hit as ``aggregate`` events naming the hits shown.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import polars as pl

from alpr_workbench.agencies import find_agency, load_agencies
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.admin import actor_problem, configured_retention_days
from alpr_workbench.governance.gate import reads_of_hits
from alpr_workbench.governance.registry import User, get_user
from alpr_workbench.hotlist import (
    CONFUSABLE,
    OUTCOME_TYPES,
    HotlistRefusedError,
    record_disposition,
    record_outcome,
)
from alpr_workbench.policy import Permission, Policy
from alpr_workbench.store import Store

__all__ = [
    "ACTIONABLE_FIELDS",
    "DECISIONS",
    "MAX_QUEUE",
    "NOTE_MAX_CHARS",
    "HitWorkflowRefused",
    "alert_networks",
    "confirm_hit",
    "confusable_warnings",
    "hit_queue",
    "record_hit_outcome",
    "show_hit",
]

AuditAppend = Callable[[dict[str, Any]], Any]

#: What a person may decide about a hit, and the disposition each one records.
DECISIONS: dict[str, str] = {
    "correct": "confirmed",
    "wrong_state": "wrong_state",
    "misread": "misread",
    "not_actionable": "dismissed",
}
#: Hits one queue view lists at most (highest priority, then oldest, first).
MAX_QUEUE = 500
#: A note with a decision is kept in the audit record, up to this many characters.
NOTE_MAX_CHARS = 500
#: Grant scopes that carry hotlist alerts to the recipient.
_ALERT_SCOPES = ("hotlist_alerts", "search_and_alerts")
#: Hotlist entry fields shown only once a person confirmed a hit correct (here), and never
#: by the notebooks' data routes (``service.routes_data``): why a vehicle is listed, the
#: originating agency and case, the theft date, the VIN.
ACTIONABLE_FIELDS: tuple[str, ...] = (
    "reason", "originating_agency", "originating_case_number", "theft_date", "vin")
#: Entry fields that help a person decide (shown from the start).
_DESCRIPTIVE = ("category", "plate_state", "plate_type", "vehicle_make", "vehicle_model",
                "vehicle_color")
_PERMISSION: Permission = "work_hits"
_EVENT = "hotlist_change"
_CONFUSED_WITH = {**CONFUSABLE, **{v: k for k, v in CONFUSABLE.items()}}


class HitWorkflowRefused(WorkbenchError):
    """A step of the hit workflow that was refused (the refusal is in the audit log).

    Parameters
    ----------
    reason
        Why, in words (the audit record's ``refusal_reason``).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def confusable_warnings(read_plate: str, listed_plate: str) -> list[str]:
    """Warnings for the characters of a hit a reader may have confused.

    One warning per position where the read and the listed plate differ by a confusable
    pair, and one for every confusable character the two share (the reader may have read
    either way even on an exact match).

    Parameters
    ----------
    read_plate, listed_plate
        The plate as read and as listed.

    Returns
    -------
    list of str
        Empty when no character is confusable.

    Examples
    --------
    >>> confusable_warnings("7OA5", "70A5")
    ["position 2: read 'O', listed '0' (confusable)", "check '5' (could be 'S')"]
    >>> confusable_warnings("7ABC123", "7ABC123")
    ["check 'B' (could be '8'), '1' (could be 'I'), '2' (could be 'Z')"]
    >>> confusable_warnings("7ACA", "7ACA")
    []
    """
    out: list[str] = []
    same: list[str] = []
    for i, (got, listed) in enumerate(zip(read_plate, listed_plate, strict=False), start=1):
        if got != listed and _CONFUSED_WITH.get(got) == listed:
            out.append(f"position {i}: read {got!r}, listed {listed!r} (confusable)")
        elif got == listed and got in _CONFUSED_WITH and got not in same:
            same.append(got)
    if same:
        out.append("check " + ", ".join(f"{c!r} (could be {_CONFUSED_WITH[c]!r})" for c in same))
    return out


def alert_networks(store: Store, *, organization: str, policy: Policy,
                   at: dt.datetime) -> list[str]:
    """Networks whose hits ``organization`` is alerted to at ``at``.

    The department's own networks (for the department), plus networks whose owner granted
    ``organization`` hotlist alerts (scope ``hotlist_alerts`` or ``search_and_alerts``), in
    force at ``at``, when the registry of known agencies lists the organization as an
    allowed recipient type (the type stored with a grant is never trusted).

    Parameters
    ----------
    store
        The store (networks, grants, the agency registry).
    organization
        The user's organization.
    policy
        The policy (the department's name, the allowed recipient types).
    at
        The moment (UTC).

    Returns
    -------
    list of str
        Network ids, sorted.
    """
    visible: set[str] = set()
    if organization == policy.agency_name:
        networks = store.tables.read("networks")
        visible.update(networks.filter(pl.col("is_department_owned"))["network_id"].to_list())
    agency = find_agency(load_agencies(store.home, store.keystore), organization)
    if agency is None or agency.organization_type not in policy.allowed_recipient_types:
        return sorted(visible)
    for grant in store.tables.read("sharing_grants").iter_rows(named=True):
        revoked = grant["revoked_at"]
        if (grant["recipient_org"] == organization and grant["scope"] in _ALERT_SCOPES
                and grant["granted_at"] <= at and (revoked is None or revoked > at)):
            visible.add(grant["network_id"])
    return sorted(visible)


# -- shared checks --------------------------------------------------------------------------
def _sink(audit_append: AuditAppend, user: User | None) -> AuditAppend:
    """``audit_append`` that names the acting user's organization in every record."""

    def append(event: dict[str, Any]) -> Any:
        if user is not None:
            event = {"organization": user.organization,
                     "organization_type": user.organization_type, **event}
        return audit_append(event)

    return append


def _record(audit_append: AuditAppend, *, event_type: str, actor: str, now: dt.datetime,
            details: dict[str, Any], problem: str | None = None, rows: int | None = None,
            case_number: str | None = None) -> None:
    audit_append({
        "event_type": event_type,
        "occurred_at": now,
        "user_id": actor[:128],
        "case_number": case_number[:128] if case_number else None,
        "query_json": json.dumps(details, default=str, sort_keys=True),
        "outcome": "refused" if problem else "allowed",
        "refusal_reason": problem,
        "row_count": rows,
    })


def _allowed(store: Store, audit_append: AuditAppend, *, actor: str, action: str,
             event_type: str, details: dict[str, Any], policy: Policy,
             now: dt.datetime) -> tuple[User, AuditAppend]:
    """The acting user, when in good standing with ``work_hits``; else audit and refuse."""
    user = get_user(store, actor)
    sink = _sink(audit_append, user)
    problem = actor_problem(store, actor=actor, permission=_PERMISSION, action=action,
                            policy=policy, now=now)
    if problem is not None:
        _record(sink, event_type=event_type, actor=actor, now=now, details=details,
                problem=problem)
        raise HitWorkflowRefused(problem)
    assert user is not None  # actor_problem refuses an unknown user
    return user, sink


def _retained_since(store: Store, now: dt.datetime) -> tuple[dt.datetime, int]:
    """The oldest capture time still within the configured retention, and the period."""
    days = configured_retention_days(store)
    return now - dt.timedelta(days=days), days


def _visible_hit(store: Store, sink: AuditAppend, user: User, *, hit_id: str,
                 event_type: str, details: dict[str, Any], policy: Policy,
                 now: dt.datetime) -> dict[str, Any]:
    """The hit, when it is on a network the user's organization is alerted to and retained."""
    found = store.tables.read("hits").filter(pl.col("hit_id") == hit_id)
    networks = alert_networks(store, organization=user.organization, policy=policy, at=now)
    problem: str | None = None
    if found.is_empty() or found["network_id"][0] not in networks:
        # One answer for both: whether another agency's hit exists is not the user's to learn.
        problem = f"no hit {hit_id[:80]!r} among the hits {user.organization!r} is alerted to"
    else:
        oldest, days = _retained_since(store, now)
        captured = found["captured_at"][0]
        if captured is None or captured < oldest:
            problem = (f"hit {hit_id[:80]!r} was captured before the {days}-day retention "
                       "period: it is no longer shown")
    if problem is not None:
        _record(sink, event_type=event_type, actor=user.user_id, now=now, details=details,
                problem=problem)
        raise HitWorkflowRefused(problem)
    row: dict[str, Any] = found.row(0, named=True)
    return row


def _enrich(store: Store, hits: pl.DataFrame) -> pl.DataFrame:
    """Hits with their entry's fields, camera name, the read's confidence and image."""
    entries = store.tables.read("hotlist_entries").select(
        "entry_id", *_DESCRIPTIVE, *ACTIONABLE_FIELDS)
    cameras = store.tables.read("cameras").select(
        "camera_id", pl.col("name").alias("camera_name"),
        pl.col("lat").alias("camera_lat"), pl.col("lon").alias("camera_lon"))
    out = hits.join(entries, on="entry_id", how="left").join(cameras, on="camera_id",
                                                              how="left")
    reads = reads_of_hits(store, out)
    out = out.join(reads, on="read_id", how="left")
    warnings = [confusable_warnings(r, li) for r, li in
                zip(out["read_plate"].to_list(), out["listed_plate"].to_list(), strict=True)]
    return out.with_columns(pl.Series("confusable_warnings", warnings,
                                      dtype=pl.List(pl.String)))


def _round(value: Any) -> Any:
    return round(float(value), 1) if isinstance(value, float) and math.isfinite(value) else value


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """One hit as shown: actionable entry fields only once it is confirmed correct."""
    shown = {k: _round(v) for k, v in row.items() if not k.startswith("_")}
    shown["is_actionable"] = row["disposition"] == "confirmed"
    if not shown["is_actionable"]:
        for key in ACTIONABLE_FIELDS:
            shown.pop(key, None)
    return shown


# -- the steps ------------------------------------------------------------------------------
def hit_queue(store: Store, audit_append: AuditAppend, *, actor: str, policy: Policy,
              now: dt.datetime, limit: int = MAX_QUEUE) -> list[dict[str, Any]]:
    """The new (pending) hits ``actor`` may work, highest priority and oldest first.

    Only hits of networks the actor's organization is alerted to (:func:`alert_networks`),
    captured within the department's retention period (``configured_retention_days``).
    Each hit carries the read (``captured_at``, ``camera_id``, ``camera_name``,
    ``read_plate``, ``confidence_pct``, ``image_ref`` when there is one), the entry it
    matched (``listed_plate``, ``match_tier``, ``priority``, ``hotlist_source`` and the
    descriptive fields such as ``category`` and ``plate_state``) and its
    ``confusable_warnings``; never the entry's actionable fields (``reason``, originating
    agency and case, VIN): those follow confirmation (:func:`show_hit`). The view is audited.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    actor
        The acting user (needs ``work_hits``).
    policy
        The department policy.
    now
        Current time (UTC).
    limit
        Hits listed at most (1 to :data:`MAX_QUEUE`).

    Returns
    -------
    list of dict
        One dict per hit.

    Raises
    ------
    HitWorkflowRefused
        When the actor may not work hits (audited).
    """
    details: dict[str, Any] = {"action": "hit_queue", "limit": limit}
    user, sink = _allowed(store, audit_append, actor=actor, action="work hits",
                          event_type="aggregate", details=details, policy=policy, now=now)
    if not 1 <= limit <= MAX_QUEUE:
        problem = f"limit: a number from 1 to {MAX_QUEUE}, not {limit}"
        _record(sink, event_type="aggregate", actor=actor, now=now, details=details,
                problem=problem)
        raise HitWorkflowRefused(problem)
    networks = alert_networks(store, organization=user.organization, policy=policy, at=now)
    oldest, _ = _retained_since(store, now)
    pending = (store.tables.read("hits")
               .filter((pl.col("disposition") == "pending") & pl.col("network_id").is_in(networks)
                       & (pl.col("captured_at") >= oldest))
               .sort(["priority", "captured_at", "hit_id"]).head(limit))
    rows = [_public(r) for r in _enrich(store, pending).sort(
        ["priority", "captured_at", "hit_id"]).iter_rows(named=True)]
    _record(sink, event_type="aggregate", actor=actor, now=now,
            details=details | {"hit_ids": [r["hit_id"] for r in rows]}, rows=len(rows))
    return rows


def show_hit(store: Store, audit_append: AuditAppend, *, actor: str, hit_id: str,
             policy: Policy, now: dt.datetime) -> dict[str, Any]:
    """One hit as :func:`hit_queue` shows it, with its outcomes (audited).

    The entry's actionable fields are shown only once a person confirmed the hit correct.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    actor
        The acting user (needs ``work_hits``).
    hit_id
        The hit (of a network the actor's organization is alerted to).
    policy
        The department policy.
    now
        Current time (UTC).

    Returns
    -------
    dict
        The hit, ``is_actionable`` and ``outcomes`` (a list of dicts).

    Raises
    ------
    HitWorkflowRefused
        When the actor may not work hits, the hit is not theirs to see, or it was captured
        before the retention period (audited).
    """
    details: dict[str, Any] = {"action": "show_hit", "hit_id": hit_id[:80]}
    user, sink = _allowed(store, audit_append, actor=actor, action="work hits",
                          event_type="aggregate", details=details, policy=policy, now=now)
    hit = _visible_hit(store, sink, user, hit_id=hit_id, event_type="aggregate",
                       details=details, policy=policy, now=now)
    frame = _enrich(store, store.tables.read("hits").filter(pl.col("hit_id") == hit["hit_id"]))
    shown = _public(frame.row(0, named=True))
    outcomes = store.tables.read("outcomes").filter(pl.col("hit_id") == hit["hit_id"])
    shown["outcomes"] = outcomes.drop("hit_id").to_dicts()
    _record(sink, event_type="aggregate", actor=actor, now=now, details=details, rows=1)
    return shown


def confirm_hit(store: Store, audit_append: AuditAppend, *, actor: str, hit_id: str,
                decision: str, policy: Policy, now: dt.datetime, note: str = "") -> str:
    """Record what a person decided after looking at a hit (audited, refusals included).

    ``correct`` confirms the hit (it becomes actionable); ``wrong_state``, ``misread`` and
    ``not_actionable`` reject it (:data:`DECISIONS` gives the disposition recorded). A hit
    already decided may be changed only to a different decision, under
    :func:`~alpr_workbench.hotlist.record_disposition`'s rules (no change once an outcome
    other than a stop is recorded); deciding the same thing again is refused, so a hit is
    never counted twice.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    actor
        The acting user (needs ``work_hits``).
    hit_id
        The hit (of a network the actor's organization is alerted to).
    decision
        One of :data:`DECISIONS` (``-`` may stand for ``_``).
    policy
        The department policy.
    now
        Current time (UTC).
    note
        Why, in the actor's words (kept in the audit record; at most
        :data:`NOTE_MAX_CHARS` characters).

    Returns
    -------
    str
        The disposition recorded.

    Raises
    ------
    HitWorkflowRefused
        When a rule above is broken (audited).
    """
    key = decision.strip().lower().replace("-", "_")
    details: dict[str, Any] = {"action": "confirm_hit", "hit_id": hit_id[:80],
                               "decision": decision[:40], "note": note[:NOTE_MAX_CHARS]}
    user, sink = _allowed(store, audit_append, actor=actor, action="work hits",
                          event_type=_EVENT, details=details, policy=policy, now=now)

    def no(problem: str) -> HitWorkflowRefused:
        _record(sink, event_type=_EVENT, actor=actor, now=now, details=details,
                problem=problem)
        return HitWorkflowRefused(problem)

    if key not in DECISIONS:
        raise no(f"decision {decision[:40]!r} is not one of {sorted(DECISIONS)}")
    if len(note) > NOTE_MAX_CHARS:
        raise no(f"the note is longer than {NOTE_MAX_CHARS} characters")
    hit = _visible_hit(store, sink, user, hit_id=hit_id, event_type=_EVENT, details=details,
                       policy=policy, now=now)
    disposition = DECISIONS[key]
    if hit["disposition"] == disposition:
        raise no(f"hit {hit_id!r} is already {disposition} (by {hit['disposition_by']})")

    def with_note(event: dict[str, Any]) -> Any:
        body = json.loads(event.get("query_json") or "{}")
        body.update({"decision": key, "note": note, "via": "hit_workflow"})
        return sink(event | {"query_json": json.dumps(body, default=str, sort_keys=True)})

    try:
        record_disposition(store, with_note, hit_id=hit_id, disposition=disposition,
                           actor=actor, now=now)
    except HotlistRefusedError as exc:
        raise HitWorkflowRefused(exc.reason) from exc
    return disposition


def record_hit_outcome(
    store: Store,
    audit_append: AuditAppend,
    *,
    actor: str,
    hit_id: str,
    outcome_type: str,
    policy: Policy,
    now: dt.datetime,
    occurred_at: dt.datetime | None = None,
    value_usd: float | None = None,
    case_number: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> str:
    """Record what followed a confirmed hit: a stop, a recovery, an arrest, a cleared case.

    The rules of :func:`~alpr_workbench.hotlist.record_outcome` apply (a confirmed hit takes
    any outcome, a misread only the stop it caused; a recovery, an arrest and a cleared case
    need the department case number; each kind once per hit). Here, in addition: the actor
    needs ``work_hits`` and the hit must be one their organization is alerted to; a value
    must be a finite number of dollars within the declared range (``outcomes.value_usd`` in
    ``data_schema/``); a recovery's place defaults to the camera that read the vehicle.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    actor
        The acting user.
    hit_id
        The hit.
    outcome_type
        One of :data:`~alpr_workbench.hotlist.OUTCOME_TYPES` (``-`` may stand for ``_``).
    policy
        The department policy (the case number format).
    now
        Current time (UTC).
    occurred_at
        When it happened (default: ``now``).
    value_usd
        The recovered vehicle's value.
    case_number
        The department case.
    lat, lon
        Where it happened (a recovery: default the camera's place).

    Returns
    -------
    str
        The ``outcome_id``.

    Raises
    ------
    HitWorkflowRefused
        When a rule above is broken (audited).
    """
    kind = outcome_type.strip().lower().replace("-", "_")
    details: dict[str, Any] = {"action": "record_outcome", "hit_id": hit_id[:80],
                               "outcome_type": outcome_type[:40], "value_usd": value_usd,
                               "case_number": (case_number or "")[:80]}
    user, sink = _allowed(store, audit_append, actor=actor, action="work hits",
                          event_type=_EVENT, details=details, policy=policy, now=now)

    def no(problem: str) -> HitWorkflowRefused:
        _record(sink, event_type=_EVENT, actor=actor, now=now, details=details,
                problem=problem, case_number=case_number)
        return HitWorkflowRefused(problem)

    if kind not in OUTCOME_TYPES:
        raise no(f"outcome {outcome_type[:40]!r} is not one of {list(OUTCOME_TYPES)}")
    for name, value in (("value_usd", value_usd), ("lat", lat), ("lon", lon)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value)):
            raise no(f"{name} must be a finite number, not {value!r}")
    if value_usd is not None and kind != "recovery":
        raise no("a value belongs to a recovery only")
    hit = _visible_hit(store, sink, user, hit_id=hit_id, event_type=_EVENT, details=details,
                       policy=policy, now=now)
    if kind == "recovery" and (lat is None or lon is None):
        camera = store.tables.read("cameras").filter(pl.col("camera_id") == hit["camera_id"])
        if camera.height:
            lat = lat if lat is not None else float(camera["lat"][0])
            lon = lon if lon is not None else float(camera["lon"][0])
    try:
        return record_outcome(
            store, sink, hit_id=hit_id, outcome_type=kind,
            occurred_at=occurred_at if occurred_at is not None else now, actor=actor, now=now,
            lat=None if lat is None else float(lat), lon=None if lon is None else float(lon),
            value_usd=None if value_usd is None else float(value_usd),
            case_number=case_number, policy=policy,
        )
    except HotlistRefusedError as exc:
        raise HitWorkflowRefused(exc.reason) from exc
