"""Load feeds into the store; create custom lists; add, change and delete entries (audited)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from alpr_workbench.hotlist._common import (
    PLATE_PATTERN,
    AuditAppend,
    audit,
    is_never_alert,
    normalize_category,
    refuse,
    require_utc,
    stable_id,
)
from alpr_workbench.hotlist._csv import HotlistImport
from alpr_workbench.plates import normalize_plate
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.schema import validate_frame
from alpr_workbench.store import Store

#: Entry fields :func:`change_entry` may change. Plate, list and category changes are a
#: delete and an add, so each stays visible on its own in the audit log.
CHANGEABLE_FIELDS = (
    "plate_state",
    "plate_type",
    "vin",
    "vehicle_make",
    "vehicle_model",
    "vehicle_color",
    "reason",
    "priority",
    "expires_at",
)


@dataclass(frozen=True)
class HotlistLoad:
    """What :func:`load_hotlist` did to a list.

    Attributes
    ----------
    hotlist_id
        The list.
    entries_loaded
        Entries now on the list.
    entries_removed
        Entries the list held before that the new content does not (they stop alerting).
    entries_replaced
        Entries the list held before the load (0 for a new list).
    """

    hotlist_id: str
    entries_loaded: int
    entries_removed: int
    entries_replaced: int


def load_hotlist(
    store: Store,
    audit_append: AuditAppend,
    imported: HotlistImport,
    *,
    actor: str,
    now: dt.datetime,
    policy: Policy | None = None,
) -> HotlistLoad:
    """Make ``imported`` the whole content of its list, replacing that list's entries.

    This layer does not know users: an actor's ``manage_hotlists`` permission is checked by
    :func:`alpr_workbench.governance.admin.import_hotlist`, the way users load lists.
    Entries of other lists are untouched. Rows in never-alert categories are removed here
    too (whoever built ``imported``) and, with those dropped on reading, counted in the
    audit event (``hotlist_add`` for a new list, ``hotlist_change`` for a reload), with the
    number of entries the reload removed.

    Parameters
    ----------
    store
        The store holding ``hotlists`` and ``hotlist_entries``.
    audit_append
        Appends the audit event.
    imported
        From :func:`read_hotlist_csv`.
    actor
        User (or feed account) loading the list.
    now
        Load time (UTC).
    policy
        Policy giving the never-alert categories (default: the department policy).

    Returns
    -------
    HotlistLoad
        Entries now on the list, and those removed and replaced.
    """
    policy = policy if policy is not None else load_policy()
    now = require_utc(now, "now")
    hotlist = validate_frame("hotlists", imported.hotlist)
    if hotlist.height != 1:
        raise ValueError("an import describes exactly one list")
    hotlist_id = hotlist["hotlist_id"][0]
    entries = validate_frame("hotlist_entries", imported.entries)
    foreign = entries.filter(pl.col("hotlist_id") != hotlist_id)
    if foreign.height:
        raise ValueError(
            f"entries of list {foreign['hotlist_id'][0]!r} in an import of {hotlist_id!r}"
        )
    barred = pl.Series(
        [is_never_alert(c, policy) for c in entries["category"].to_list()], dtype=pl.Boolean
    )
    dropped = dict(imported.dropped)
    for cat, n in entries.filter(barred)["category"].value_counts().iter_rows():
        dropped[cat] = dropped.get(cat, 0) + int(n)
    entries = entries.filter(~barred)

    lists = store.tables.read("hotlists")
    old = lists.filter(pl.col("hotlist_id") == hotlist_id)
    if old.height:
        hotlist = hotlist.with_columns(
            pl.lit(old["created_at"][0]).cast(pl.Datetime("us", "UTC")).alias("created_at")
        )
    all_entries = store.tables.read("hotlist_entries")
    previous = all_entries.filter(pl.col("hotlist_id") == hotlist_id)["entry_id"]
    removed = int((~previous.is_in(entries["entry_id"])).sum())
    new_entries = pl.concat([all_entries.filter(pl.col("hotlist_id") != hotlist_id), entries])
    new_entries = validate_frame("hotlist_entries", new_entries)  # checks ids before writing
    # The list row first: until the entries are written, the old entries keep alerting.
    store.tables.write(
        "hotlists", pl.concat([lists.filter(pl.col("hotlist_id") != hotlist_id), hotlist])
    )
    store.tables.write("hotlist_entries", new_entries)
    audit(
        audit_append,
        event_type="hotlist_change" if old.height else "hotlist_add",
        actor=actor,
        now=now,
        row_count=entries.height,
        details={
            "action": "load_hotlist",
            "hotlist_id": hotlist_id,
            "source": hotlist["source"][0],
            "rows_read": imported.rows_read,
            "entries_loaded": entries.height,
            "entries_replaced": previous.len(),
            "entries_removed": removed,
            "dropped_never_alert": dropped,
            "dropped_never_alert_total": sum(dropped.values()),
        },
        reason_text=hotlist["reason"][0],
    )
    return HotlistLoad(hotlist_id, entries.height, removed, previous.len())


def _normalize_reason(text: str) -> str:
    words = re.sub(r"[^a-z0-9\s]", " ", text.lower()).split()
    return " ".join(w for w in words if not w.isdigit())


def _is_vague(text: str, policy: Policy) -> bool:
    norm = _normalize_reason(text)
    return not norm or norm in {_normalize_reason(v) for v in policy.vague_reasons}


def create_custom_hotlist(
    store: Store,
    audit_append: AuditAppend,
    *,
    actor: str,
    name: str,
    case_number: str,
    reason: str,
    expires_at: dt.datetime,
    now: dt.datetime,
    policy: Policy | None = None,
) -> str:
    """Create a custom list owned by ``actor``, tied to a case, with a reason and an expiry.

    Refused (and the refusal audited) when the owner, name, case number, reason or expiry is
    missing; the case number does not match ``policy.case_number_pattern``; the reason is
    boilerplate (``policy.vague_reasons``); or the expiry is not after ``now`` or lies more than
    ``policy.custom_hotlist_max_days`` ahead.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    actor
        User creating the list; becomes its owner.
    name, case_number, reason
        What the list is called, the case it supports and why it exists.
    expires_at
        When the list stops alerting (UTC).
    now
        Current time (UTC).
    policy
        Policy giving the case format and limits (default: the department policy).

    Returns
    -------
    str
        The new ``hotlist_id``.

    Raises
    ------
    HotlistRefusedError
        For any of the reasons above.
    """
    policy = policy if policy is not None else load_policy()
    now = require_utc(now, "now")
    details: dict[str, Any] = {
        "action": "create_custom_hotlist",
        "name": name,
        "case_number": case_number,
        "reason": reason,
        "expires_at": expires_at,
    }

    def no(why: str) -> Exception:
        return refuse(
            audit_append,
            why,
            event_type="hotlist_add",
            actor=actor or None,
            now=now,
            details=details,
            case_number=case_number or None,
        )

    if not (actor or "").strip():
        raise no("a custom list needs an owner")
    if not (name or "").strip():
        raise no("a custom list needs a name")
    if not (case_number or "").strip():
        raise no("a custom list needs a case number")
    if not re.fullmatch(policy.case_number_pattern, case_number):
        raise no(f"case number {case_number!r} is not in the department's format")
    if not (reason or "").strip():
        raise no("a custom list needs a reason")
    if _is_vague(reason, policy):
        raise no(f"reason {reason!r} says nothing; give the facts that justify the list")
    if expires_at is None:
        raise no("a custom list needs an expiry")
    if not isinstance(expires_at, dt.datetime) or expires_at.tzinfo is None:
        raise no("the expiry must be a time-zone-aware datetime")
    expires_at = expires_at.astimezone(dt.UTC)
    if expires_at <= now:
        raise no("the expiry is not in the future")
    if expires_at > now + dt.timedelta(days=policy.custom_hotlist_max_days):
        raise no(f"the expiry is more than {policy.custom_hotlist_max_days} days ahead")
    hotlist_id = stable_id("custom", name, case_number, actor, now.isoformat())
    row = pl.DataFrame(
        {
            "hotlist_id": [hotlist_id],
            "name": [name.strip()],
            "source": ["custom"],
            "owner_user_id": [actor],
            "case_number": [case_number],
            "reason": [reason.strip()],
            "created_at": [now],
            "expires_at": [expires_at],
        }
    )
    lists = store.tables.read("hotlists")
    store.tables.write("hotlists", pl.concat([lists, validate_frame("hotlists", row)]))
    audit(
        audit_append,
        event_type="hotlist_add",
        actor=actor,
        now=now,
        details=details | {"hotlist_id": hotlist_id},
        row_count=1,
        case_number=case_number,
        reason_text=reason,
    )
    return hotlist_id


def _check_plate(plate: str) -> str | None:
    text = normalize_plate(plate or "")
    return text if PLATE_PATTERN.fullmatch(text) else None


def add_entry(
    store: Store,
    audit_append: AuditAppend,
    *,
    actor: str,
    hotlist_id: str,
    plate: str,
    now: dt.datetime,
    plate_state: str | None = None,
    category: str = "suspect_vehicle",
    reason: str | None = None,
    priority: int = 3,
    expires_at: dt.datetime | None = None,
    vehicle: Mapping[str, str | None] | None = None,
    policy: Policy | None = None,
) -> str:
    """Add a plate to a custom list (audited as ``hotlist_add``).

    The entry inherits the list's reason, case and expiry unless given; its own expiry may
    not outlast the list's. Refused (and audited) when the list is unknown, is a feed
    (feeds change only by reloading), has expired, or lacks a case or expiry; when the plate
    is malformed; or when the category must never alert.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    actor
        User adding the entry.
    hotlist_id
        A custom list from :func:`create_custom_hotlist`.
    plate
        Plate text (normalised: upper case, no spaces or dashes).
    now
        Current time (UTC).
    plate_state, category, reason, priority, expires_at
        Entry details; ``reason`` and ``expires_at`` default to the list's.
    vehicle
        Optional ``vehicle_make``, ``vehicle_model``, ``vehicle_color``, ``vin``,
        ``plate_type``.
    policy
        Policy giving the never-alert categories (default: the department policy).

    Returns
    -------
    str
        The new ``entry_id``.
    """
    policy = policy if policy is not None else load_policy()
    now = require_utc(now, "now")
    details: dict[str, Any] = {
        "action": "add_entry",
        "hotlist_id": hotlist_id,
        "plate": plate,
        "plate_state": plate_state,
        "category": category,
        "priority": priority,
        "expires_at": expires_at,
    }

    def no(why: str) -> Exception:
        return refuse(
            audit_append, why, event_type="hotlist_add", actor=actor, now=now, details=details
        )

    lists = store.tables.read("hotlists").filter(pl.col("hotlist_id") == hotlist_id)
    if lists.height == 0:
        raise no(f"no hotlist {hotlist_id!r}")
    hl = lists.row(0, named=True)
    if hl["source"] != "custom":
        raise no(f"list {hotlist_id!r} is a {hl['source']} feed; it changes only by reloading")
    if hl["expires_at"] is None or not hl["case_number"]:
        raise no(f"list {hotlist_id!r} lacks a case number or expiry")
    if hl["expires_at"] <= now:
        raise no(f"list {hotlist_id!r} expired on {hl['expires_at']:%Y-%m-%d}")
    text = _check_plate(plate)
    if text is None:
        raise no(f"{plate!r} is not a plate (1-8 letters or digits)")
    cat = normalize_category(category or "")
    if not cat:
        raise no("an entry needs a category")
    if is_never_alert(cat, policy):
        raise no(f"category {category!r} may never alert (policy never_alert_categories)")
    expiry = hl["expires_at"] if expires_at is None else expires_at
    if not isinstance(expiry, dt.datetime) or expiry.tzinfo is None:
        raise no("the expiry must be a time-zone-aware datetime")
    if expiry <= now or expiry > hl["expires_at"]:
        raise no("the entry's expiry must be in the future and not after the list's")
    extra = dict(vehicle or {})
    unknown = set(extra) - {"vehicle_make", "vehicle_model", "vehicle_color", "vin", "plate_type"}
    if unknown:
        raise no(f"unknown vehicle fields {sorted(unknown)}")
    entries = store.tables.read("hotlist_entries")
    entry_id = stable_id(hotlist_id, text, now.isoformat(), entries.height)
    row = {
        "entry_id": entry_id,
        "hotlist_id": hotlist_id,
        "plate": text,
        "plate_state": plate_state.upper() if plate_state else None,
        "category": cat,
        "reason": reason or hl["reason"],
        "priority": priority,
        "originating_agency": policy.agency_name,
        "originating_case_number": hl["case_number"],
        "added_by": actor,
        "added_at": now,
        "expires_at": expiry.astimezone(dt.UTC),
        **extra,
    }
    try:
        frame = validate_frame(
            "hotlist_entries", pl.DataFrame([row], schema_overrides={"priority": pl.Int32})
        )
    except ValueError as exc:
        raise no(str(exc)) from exc
    store.tables.write("hotlist_entries", pl.concat([entries, frame]))
    audit(
        audit_append,
        event_type="hotlist_add",
        actor=actor,
        now=now,
        details=details | {"entry_id": entry_id, "plate": text},
        row_count=1,
        case_number=hl["case_number"],
    )
    return entry_id


def _find_entry(store: Store, entry_id: str) -> tuple[pl.DataFrame, dict[str, Any] | None]:
    entries = store.tables.read("hotlist_entries")
    found = entries.filter(pl.col("entry_id") == entry_id)
    return entries, (found.row(0, named=True) if found.height else None)


def change_entry(
    store: Store,
    audit_append: AuditAppend,
    *,
    actor: str,
    entry_id: str,
    changes: Mapping[str, Any],
    now: dt.datetime,
) -> None:
    """Change fields of one entry (audited as ``hotlist_change`` with before and after).

    Only :data:`CHANGEABLE_FIELDS` may change, and an entry's expiry may not outlast its
    list's. Refused (and audited) otherwise.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    actor
        User making the change.
    entry_id
        The entry.
    changes
        Field name to new value.
    now
        Current time (UTC).
    """
    now = require_utc(now, "now")
    details: dict[str, Any] = {
        "action": "change_entry",
        "entry_id": entry_id,
        "after": dict(changes),
    }

    def no(why: str) -> Exception:
        return refuse(
            audit_append, why, event_type="hotlist_change", actor=actor, now=now, details=details
        )

    entries, entry = _find_entry(store, entry_id)
    if entry is None:
        raise no(f"no hotlist entry {entry_id!r}")
    bad = sorted(set(changes) - set(CHANGEABLE_FIELDS))
    if bad:
        raise no(f"fields {bad} cannot be changed (delete and re-add instead)")
    if not changes:
        raise no("nothing to change")
    if "expires_at" in changes:
        expiry = changes["expires_at"]
        if not isinstance(expiry, dt.datetime) or expiry.tzinfo is None:
            raise no("an entry's expiry must be a time-zone-aware datetime")
        hl = store.tables.read("hotlists").filter(pl.col("hotlist_id") == entry["hotlist_id"])
        limit = hl["expires_at"][0] if hl.height else None
        if limit is not None and expiry > limit:
            raise no("the entry's expiry may not outlast its list's")
        if hl.height and hl["source"][0] == "custom" and limit is None:
            raise no("the entry's list has no expiry")
    details["before"] = {k: entry[k] for k in changes}
    updated = pl.DataFrame([entry | dict(changes)], schema=entries.schema)
    try:
        updated = validate_frame("hotlist_entries", updated)
    except ValueError as exc:
        raise no(str(exc)) from exc
    rest = entries.filter(pl.col("entry_id") != entry_id)
    store.tables.write("hotlist_entries", pl.concat([rest, updated]))
    audit(
        audit_append,
        event_type="hotlist_change",
        actor=actor,
        now=now,
        details=details | {"hotlist_id": entry["hotlist_id"]},
        row_count=1,
    )


def delete_entry(
    store: Store,
    audit_append: AuditAppend,
    *,
    actor: str,
    entry_id: str,
    reason: str,
    now: dt.datetime,
) -> None:
    """Delete one entry (audited as ``hotlist_delete`` with the entry as it was).

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    actor
        User deleting the entry.
    entry_id
        The entry.
    reason
        Why (e.g. "vehicle recovered"); required.
    now
        Current time (UTC).
    """
    now = require_utc(now, "now")
    details: dict[str, Any] = {"action": "delete_entry", "entry_id": entry_id, "reason": reason}

    def no(why: str) -> Exception:
        return refuse(
            audit_append, why, event_type="hotlist_delete", actor=actor, now=now, details=details
        )

    if not (reason or "").strip():
        raise no("a deletion needs a reason")
    entries, entry = _find_entry(store, entry_id)
    if entry is None:
        raise no(f"no hotlist entry {entry_id!r}")
    store.tables.write("hotlist_entries", entries.filter(pl.col("entry_id") != entry_id))
    audit(
        audit_append,
        event_type="hotlist_delete",
        actor=actor,
        now=now,
        details=details | {"hotlist_id": entry["hotlist_id"], "entry": entry},
        row_count=1,
        reason_text=reason,
    )
