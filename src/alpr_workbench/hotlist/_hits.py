"""Hits in the store, the dispositions people record, and the outcomes that follow."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import polars as pl

from alpr_workbench.hotlist._common import AuditAppend, audit, refuse, require_utc
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.schema import validate_frame
from alpr_workbench.store import Store

#: Dispositions a person may record (``pending`` is only the starting state).
DISPOSITIONS = ("confirmed", "wrong_state", "misread", "dismissed", "stale_entry")
#: Kinds of outcome.
OUTCOME_TYPES = ("stop", "recovery", "arrest", "case_cleared")
#: Outcomes that must name the department case they belong to.
_NEEDS_CASE = ("recovery", "arrest", "case_cleared")
# The audit schema has no hit or outcome event type; these are changes to hotlist alerts.
_EVENT = "hotlist_change"


def record_hits(store: Store, hits: pl.DataFrame) -> int:
    """Store new hits (from :func:`match_reads`); hits already stored are skipped.

    Returns
    -------
    int
        Hits added.
    """
    return store.tables.append("hits", hits)


def _hit(store: Store, hit_id: str) -> tuple[pl.DataFrame, dict[str, Any] | None]:
    hits = store.tables.read("hits")
    found = hits.filter(pl.col("hit_id") == hit_id)
    return hits, (found.row(0, named=True) if found.height else None)


def record_disposition(
    store: Store,
    audit_append: AuditAppend,
    *,
    hit_id: str,
    disposition: str,
    actor: str,
    now: dt.datetime,
) -> None:
    """Record what a person decided after looking at a hit's image (audited).

    Rules: a pending hit takes any of :data:`DISPOSITIONS`. A decided hit may be corrected
    only while no outcome is recorded against it, except that a ``confirmed`` hit whose
    only outcomes are stops may be corrected to ``misread`` (the stops are then flagged
    ``is_misread_stop``). A hit cannot return to ``pending``.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    hit_id
        The hit.
    disposition
        One of :data:`DISPOSITIONS`.
    actor
        User recording it.
    now
        Current time (UTC); becomes ``disposition_at``.

    Raises
    ------
    HotlistRefusedError
        When a rule above is broken (the refusal is audited).
    """
    now = require_utc(now, "now")
    details: dict[str, Any] = {
        "action": "record_disposition",
        "hit_id": hit_id,
        "disposition": disposition,
    }

    def no(why: str) -> Exception:
        return refuse(audit_append, why, event_type=_EVENT, actor=actor, now=now, details=details)

    if disposition not in DISPOSITIONS:
        raise no(f"disposition {disposition!r} is not one of {list(DISPOSITIONS)}")
    if not (actor or "").strip():
        raise no("a disposition needs the user who made it")
    hits, hit = _hit(store, hit_id)
    if hit is None:
        raise no(f"no hit {hit_id!r}")
    if now < hit["captured_at"]:
        raise no("a disposition cannot precede the read")
    previous = hit["disposition"]
    details["previous"] = previous
    outcomes = store.tables.read("outcomes")
    mine = outcomes.filter(pl.col("hit_id") == hit_id)
    if previous != "pending" and mine.height:
        only_stops = (mine["outcome_type"] == "stop").all()
        if not (previous == "confirmed" and disposition == "misread" and only_stops):
            raise no(
                f"hit {hit_id!r} is {previous} and has outcomes recorded; it cannot become "
                f"{disposition}"
            )
    updated = validate_frame(
        "hits",
        pl.DataFrame(
            [hit | {"disposition": disposition, "disposition_at": now, "disposition_by": actor}],
            schema=hits.schema,
        ),
    )
    store.tables.write("hits", pl.concat([hits.filter(pl.col("hit_id") != hit_id), updated]))
    if disposition == "misread" and mine.height:
        store.tables.write(
            "outcomes",
            outcomes.with_columns(
                pl.when(pl.col("hit_id") == hit_id)
                .then(True)
                .otherwise(pl.col("is_misread_stop"))
                .alias("is_misread_stop")
            ),
        )
    audit(audit_append, event_type=_EVENT, actor=actor, now=now, details=details, row_count=1)


def record_outcome(
    store: Store,
    audit_append: AuditAppend,
    *,
    hit_id: str,
    outcome_type: str,
    occurred_at: dt.datetime,
    actor: str,
    now: dt.datetime,
    lat: float | None = None,
    lon: float | None = None,
    value_usd: float | None = None,
    case_number: str | None = None,
    policy: Policy | None = None,
) -> str:
    """Record what followed a hit: a stop, a recovered vehicle, an arrest, a cleared case.

    Nothing is actionable before confirmation. The rules:

    * a ``confirmed`` hit takes any outcome;
    * a ``misread`` hit takes only a ``stop`` that occurred before the misread was recorded
      (a stop made before anyone checked the image); it is stored with
      ``is_misread_stop=True`` so the misread-stop count is honest;
    * any other disposition (``pending``, ``wrong_state``, ``dismissed``, ``stale_entry``)
      takes none;
    * ``recovery``, ``arrest`` and ``case_cleared`` need a case number in the department's
      format; a ``recovery`` also needs where (``lat``, ``lon``) and the vehicle's value;
    * an outcome cannot precede the read or lie in the future, and each kind is recorded
      once per hit (``outcome_id = "out-<hit_id>-<outcome_type>"``).

    Refusals are audited and raise :class:`HotlistRefusedError`.

    Parameters
    ----------
    store, audit_append
        The store and the audit sink.
    hit_id
        The hit.
    outcome_type
        One of :data:`OUTCOME_TYPES`.
    occurred_at
        When it happened (UTC).
    actor
        User recording it.
    now
        Current time (UTC).
    lat, lon, value_usd, case_number
        Where, the recovered vehicle's value, and the department case.
    policy
        Policy giving the case number format (default: the department policy).

    Returns
    -------
    str
        The ``outcome_id``.
    """
    policy = policy if policy is not None else load_policy()
    now = require_utc(now, "now")
    details: dict[str, Any] = {
        "action": "record_outcome",
        "hit_id": hit_id,
        "outcome_type": outcome_type,
        "occurred_at": occurred_at,
        "value_usd": value_usd,
    }

    def no(why: str) -> Exception:
        return refuse(
            audit_append,
            why,
            event_type=_EVENT,
            actor=actor,
            now=now,
            details=details,
            case_number=case_number,
        )

    if outcome_type not in OUTCOME_TYPES:
        raise no(f"outcome {outcome_type!r} is not one of {list(OUTCOME_TYPES)}")
    if not isinstance(occurred_at, dt.datetime) or occurred_at.tzinfo is None:
        raise no("occurred_at must be a time-zone-aware datetime")
    occurred_at = occurred_at.astimezone(dt.UTC)
    _, hit = _hit(store, hit_id)
    if hit is None:
        raise no(f"no hit {hit_id!r}")
    disposition = hit["disposition"]
    misread_stop = False
    if disposition == "misread":
        if outcome_type != "stop":
            raise no(f"hit {hit_id!r} was a misread; only the stop it caused can be recorded")
        if occurred_at >= hit["disposition_at"]:
            raise no(f"hit {hit_id!r} was found to be a misread before this stop")
        misread_stop = True
    elif disposition != "confirmed":
        raise no(f"hit {hit_id!r} is {disposition}, not confirmed; it is not actionable")
    if occurred_at < hit["captured_at"]:
        raise no("an outcome cannot precede the read")
    if occurred_at > now:
        raise no("an outcome cannot lie in the future")
    if outcome_type in _NEEDS_CASE:
        if not case_number:
            raise no(f"a {outcome_type} needs the department case number")
        if not re.fullmatch(policy.case_number_pattern, case_number):
            raise no(f"case number {case_number!r} is not in the department's format")
    elif case_number and not re.fullmatch(policy.case_number_pattern, case_number):
        raise no(f"case number {case_number!r} is not in the department's format")
    if outcome_type == "recovery" and (lat is None or lon is None or value_usd is None):
        raise no("a recovery needs where (lat, lon) and the vehicle's value")
    outcome_id = f"out-{hit_id}-{outcome_type}"
    outcomes = store.tables.read("outcomes")
    if outcomes.filter(pl.col("outcome_id") == outcome_id).height:
        raise no(f"a {outcome_type} is already recorded for hit {hit_id!r}")
    row = {
        "outcome_id": outcome_id,
        "hit_id": hit_id,
        "outcome_type": outcome_type,
        "occurred_at": occurred_at,
        "lat": lat,
        "lon": lon,
        "value_usd": value_usd,
        "case_number": case_number,
        "is_misread_stop": misread_stop,
    }
    try:
        frame = validate_frame(
            "outcomes",
            pl.DataFrame(
                [row],
                schema_overrides={
                    "lat": pl.Float64,
                    "lon": pl.Float64,
                    "value_usd": pl.Float64,
                    "case_number": pl.String,
                    "occurred_at": pl.Datetime("us", "UTC"),
                },
            ),
        )
    except ValueError as exc:
        raise no(str(exc)) from exc
    store.tables.write("outcomes", pl.concat([outcomes, frame]))
    audit(
        audit_append,
        event_type=_EVENT,
        actor=actor,
        now=now,
        details=details | {"outcome_id": outcome_id, "is_misread_stop": misread_stop},
        row_count=1,
        case_number=case_number,
    )
    return outcome_id
