"""Pieces shared by the hotlist modules: errors, category rules, audit records, ids."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.policy import Policy
from alpr_workbench.termmatch import fold_text, policy_terms

#: Callable that appends one audit event (fields of ``data_schema/audit_events.yaml``).
AuditAppend = Callable[[dict[str, Any]], object]

#: Sources a hotlist may come from (``hotlists.source``).
SOURCES = ("state_stolen", "ncic", "custom")

#: Default id and name of the list each feed loads into.
FEED_DEFAULTS = {
    "state_stolen": ("ca-svs", "CA DOJ Stolen Vehicle System"),
    "ncic": ("ncic-extract", "NCIC vehicle extract (via CA DOJ CLETS)"),
}

PLATE_PATTERN = re.compile(r"^[A-Z0-9]{1,8}$")


class HotlistFileError(WorkbenchError, ValueError):
    """A hotlist file could not be imported; nothing was loaded.

    Parameters
    ----------
    path
        The file.
    problems
        Every problem found, as ``(line, field, message)``; line 1 is the header.
    shown
        How many problems the message lists.
    """

    def __init__(
        self, path: object, problems: list[tuple[int, str, str]], *, shown: int = 20
    ) -> None:
        self.path = path
        self.problems = sorted(problems)
        rows = len({line for line, _, _ in self.problems})
        head = f"{path}: {len(self.problems)} problem(s) on {rows} line(s); nothing was loaded"
        lines = [f"  line {line}, field {field!r}: {msg}" for line, field, msg in self.problems]
        if len(lines) > shown:
            lines = [*lines[:shown], f"  ... and {len(lines) - shown} more"]
        super().__init__("\n".join([head, *lines]))


class HotlistRefusedError(WorkbenchError):
    """A hotlist, entry, disposition or outcome change was refused (and the refusal audited).

    Parameters
    ----------
    reason
        Why, in words (the same text as the audit record's ``refusal_reason``).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def normalize_category(text: str) -> str:
    """Lower-case a category and join its words with underscores.

    Examples
    --------
    >>> normalize_category(" Immigration Violator ")
    'immigration_violator'
    """
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def is_never_alert(category: str | None, policy: Policy) -> bool:
    """True when ``category`` must never alert (SB 54).

    A category is barred when, after :func:`normalize_category`, it equals a policy category
    or extends one (``immigration_violator_civil`` extends ``immigration_violator``), or when
    the screening matcher (:mod:`alpr_workbench.termmatch`, the one that screens free text)
    finds in it a term of the policy's ``never_alert_term_categories``: ``ice_hold``,
    ``removal_order``, ``hsi``, look-alike letters, zero-width characters and misspellings
    included. So a feed's spelling of an immigration record cannot slip past the list.

    Examples
    --------
    >>> from alpr_workbench.policy import load_policy
    >>> is_never_alert("Immigration Violator - Civil", load_policy())
    True
    >>> is_never_alert("ICE Hold", load_policy())
    True
    >>> is_never_alert("stolen_vehicle", load_policy())
    False
    """
    if category is None:
        return False
    cat = normalize_category(fold_text(category))
    if any(cat == c or cat.startswith(c + "_") for c in policy.never_alert_categories):
        return True
    return policy_terms(policy).names_category(category, policy.never_alert_term_categories)


def never_alert_values(categories: Iterable[str | None], policy: Policy) -> list[str]:
    """The distinct values of ``categories`` that must never alert."""
    return sorted({c for c in categories if c is not None and is_never_alert(c, policy)})


def stable_id(prefix: str, *parts: object) -> str:
    """A short deterministic id from ``parts``.

    Examples
    --------
    >>> stable_id("custom", "Robbery series", "BPD-2026-000123")
    'custom-2f2ad10b2115'
    """
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=6).hexdigest()
    return f"{prefix}-{digest}"


def require_utc(value: dt.datetime, name: str) -> dt.datetime:
    """Return ``value`` in UTC; refuse naive timestamps."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise WorkbenchError(f"{name} must be a time-zone-aware datetime (UTC), got {value!r}")
    return value.astimezone(dt.UTC)


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def audit(
    audit_append: AuditAppend,
    *,
    event_type: str,
    actor: str | None,
    now: dt.datetime,
    details: dict[str, Any],
    row_count: int = 0,
    refused: str | None = None,
    case_number: str | None = None,
    reason_text: str | None = None,
) -> None:
    """Append one audit event describing a hotlist, hit or outcome change."""
    event: dict[str, Any] = {
        "event_type": event_type,
        "user_id": actor,
        "occurred_at": now,
        "outcome": "refused" if refused else "allowed",
        "query_json": json.dumps(details, sort_keys=True, default=_json_default),
        "row_count": row_count,
    }
    if refused:
        event["refusal_reason"] = refused
    if case_number is not None:
        event["case_number"] = case_number
    if reason_text is not None:
        event["reason_text"] = reason_text
    audit_append(event)


def refuse(
    audit_append: AuditAppend,
    reason: str,
    *,
    event_type: str,
    actor: str | None,
    now: dt.datetime,
    details: dict[str, Any],
    case_number: str | None = None,
) -> HotlistRefusedError:
    """Audit a refusal and return the error to raise."""
    audit(
        audit_append,
        event_type=event_type,
        actor=actor,
        now=now,
        details=details,
        refused=reason,
        case_number=case_number,
    )
    return HotlistRefusedError(reason)
