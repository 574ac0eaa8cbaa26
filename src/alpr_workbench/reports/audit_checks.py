"""The annual audit's checks (docs/policy.md, A1..X1) and the search-pattern flags they rest on.

Every check is a pure function of frames: :class:`AuditInputs` holds the tables, the year's
audit events and a few facts about the store (chain verification, stored days), and
:func:`run_checks` returns one :class:`CheckResult` per check, with pass/fail, counts and the
offending rows. :func:`flag_search_patterns` flags single searches (the department's own and
imported vendor logs alike) for the patterns journalists and auditors found in real logs.

Offending rows always start with ``table``, ``record_id``, ``pattern`` and ``detail`` (the
columns of the synthetic city's ``planted`` ground truth), followed by the record's own id
column (``event_id``, ``user_id``, ``grant_id``...) and a few columns a reader needs.

Rules (thresholds are keyword parameters; the policy gives the rest)
--------------------------------------------------------------------
* ``repeat_tracking``: one user searched the same plate on at least
  ``repeat_min_days`` (4) different local days of the audited events; every such search is
  flagged. Plates that are blank, masked (``***``) or wildcards are ignored.
* ``off_hours_burst``: at least ``burst_min_searches`` (3) searches by one user in the
  policy's local off-hours, each within ``burst_gap_minutes`` (30) of the previous one, after
  at least ``burst_idle_days`` (14) without any search by that user. When the user has no
  earlier search in the events, the silence counts only if the events start at least
  ``burst_idle_days`` before the burst (the inactivity must have been observed).
* ``per_user_volume``: a user's searches on one local day number at least
  ``volume_min_per_day`` (10) and at least ``volume_factor`` (5) times the median
  user-day; every search of that user-day is flagged.
* ``lookback_past_retention``: the searched window starts more than ``retention_days``
  before the search; with ``lookback_whole_days``, more than ``retention_days`` whole days
  (``(search time - window start).days > retention_days``), for vendor exports whose search
  time and window are not stamped by one clock (the window can end after the search).
* Searches refused by the gate or by the vendor's moderation are not flagged (the system
  worked); they are counted by :func:`run_checks` instead.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from alpr_workbench.governance.screening import is_vague_reason, screen_text
from alpr_workbench.governance.sharing import grants_digest
from alpr_workbench.governance.vendor_import import classify_organization
from alpr_workbench.policy import Policy

__all__ = [
    "AUDIT_EXTRA_TERMS",
    "CHECK_RULES",
    "CHECK_TITLES",
    "SEARCH_EVENT_TYPES",
    "VENDOR_EVENT_TYPES",
    "AuditInputs",
    "CheckResult",
    "audit_period",
    "describe_check_rules",
    "flag_search_patterns",
    "run_checks",
    "split_vendor_events",
]

#: Event types that are one person's search of reads (the imported vendor logs included).
SEARCH_EVENT_TYPES: tuple[str, ...] = ("search", "lookup", "retro_match", "vendor_search")
#: Event types that are another system's records (imported vendor logs), never the
#: department's own audit trail: the annual checks leave them out and the report gives them
#: their own section (docs/policy.md#imported-vendor-logs).
VENDOR_EVENT_TYPES: tuple[str, ...] = ("vendor_search",)
#: Event types that are an access to data (docs/policy.md#a1).
ACCESS_EVENT_TYPES: tuple[str, ...] = (*SEARCH_EVENT_TYPES, "export")
#: Paths every one of which must leave an audit record (docs/policy.md#a4).
LOGGED_PATHS: tuple[str, ...] = (
    "search",
    "lookup",
    "export",
    "hotlist_add",
    "hotlist_change",
    "hotlist_delete",
    "sharing_change",
    "purge",
    "hold",
)

#: Terms the audit flags for review although the gate deliberately lets them through (the
#: policy leaves "restraining order" out because violations are crimes; after the fact, a
#: person should still look at each one).
AUDIT_EXTRA_TERMS: Mapping[str, tuple[str, ...]] = {
    "civil_or_personal": ("restraining order*",),
}
#: Words that mark a hotlist name as a joke or a personal list.
JOKE_NAME_TERMS: tuple[str, ...] = (
    "my", "mine", "ex", "lol", "lmao", "haha", "joke*", "funny", "test", "testing", "bae",
    "crush", "girlfriend*", "boyfriend*", "wife", "husband", "idiot*", "jerk*", "enemies",
    "annoying", "personal",
)  # fmt: skip
_CATEGORY_PATTERN = {
    "immigration_enforcement": "immigration_term",
    "protected_activity": "protected_activity",
    "civil_or_personal": "civil_use",
    "personal_characteristics": "personal_characteristics",
}
#: Flag pattern of a text the screening holds for review, by the screening's category: a bare
#: "ice" (immigration) or a crime against a protected place or group.
_REVIEW_PATTERN = {
    "immigration_enforcement": "ambiguous_ice",
    "protected_activity": "protected_activity_review",
    "personal_characteristics": "personal_characteristics_review",
    "civil_or_personal": "civil_use_review",
}

#: Titles of the checks, by id.
CHECK_TITLES: dict[str, str] = {
    "A1": "Every access record is complete",
    "A2": "Every search names an open case in the department's format",
    "A3": "Every reason is on the list; every 'other' has text",
    "A4": "Every path is logged",
    "A5": "Audit records cover the year and the hash chain verifies",
    "R1": "No read older than retention outside a legal hold",
    "R2": "Every hold has a case, an approver and a review date not yet passed",
    "R3": "No search looked back further than retention",
    "R4": "Hotlists and entries are complete; none alerts past expiry",
    "S1": "Grants go only to California public agencies",
    "S2": "Sharing settings never changed without an audited action",
    "S3": "No search by a federal or out-of-state organization",
    "S4": "No immigration hotlist; immigration categories never alert",
    "S5": "Every grant is approved and reviewed on time",
    "U1": "Every active user is approved and trained",
    "U2": "No activity after separation; idle accounts disabled",
    "U3": "No shared or generic accounts; job titles on the list",
    "X1": "Hits are verified before action; misread rate measured",
    "P1": "No search for a prohibited purpose",
    "P2": "No suspicious search behaviour",
}

_OFFENDING_HEAD = ("table", "record_id", "pattern", "detail")
_UTC = dt.UTC


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one audit check.

    Attributes
    ----------
    check_id
        ``"A1"`` .. ``"X1"`` as in docs/policy.md, or ``"P1"``/``"P2"`` for the search patterns.
    title
        What the check requires, in a few words.
    passed
        True or False; ``None`` when the check does not apply or has no data.
    counts
        Numbers a reader can check (records examined, offending, percentages).
    offending
        The failing rows: ``table``, ``record_id``, ``pattern``, ``detail``, then the
        record's own id column and context.
    explanation
        One or two sentences saying what was checked and what was found.
    """

    check_id: str
    title: str
    passed: bool | None
    counts: dict[str, int | float]
    offending: pl.DataFrame
    explanation: str


@dataclass(frozen=True)
class AuditInputs:
    """Everything the checks need, as frames and plain values.

    Attributes
    ----------
    year
        Calendar year audited (UTC).
    audit_events
        The year's audit events (``audit_events`` schema).
    users, cases, sharing_grants, hotlists, hotlist_entries, legal_holds, hits
        The store's tables (``hits`` may be empty).
    chain_ok, chain_problem
        Result of verifying the audit log's hash chain (``None`` when not verified).
    retention_days
        Days reads are kept.
    days_stored
        Days with a committed day partition of reads (metadata only).
    as_of
        When the audit is taken (UTC); overdue reviews and idle accounts are judged then.
    hold_partitions
        Ids of the store's legal-hold partitions (reads kept past retention).
    outcomes
        The ``outcomes`` table, if known (stops on misread hits).
    sharing_history
        Every ``sharing_change`` and ``sharing_snapshot`` event up to ``as_of`` (any year);
        default: those in ``audit_events``.
    log_started_at
        When the audit log's first record was written; default: the first event given.
    timezone
        Zone whose calendar year is audited (the policy's ``timezone``); ``None``: UTC.
        Every table counted is restricted to that year (:func:`audit_period`).
    """

    year: int
    audit_events: pl.DataFrame
    users: pl.DataFrame
    cases: pl.DataFrame
    sharing_grants: pl.DataFrame
    hotlists: pl.DataFrame
    hotlist_entries: pl.DataFrame
    legal_holds: pl.DataFrame
    hits: pl.DataFrame
    chain_ok: bool | None
    chain_problem: str | None
    retention_days: int
    days_stored: list[dt.date]
    as_of: dt.datetime
    hold_partitions: tuple[str, ...] = ()
    outcomes: pl.DataFrame | None = None
    sharing_history: pl.DataFrame | None = None
    log_started_at: dt.datetime | None = field(default=None)
    timezone: str | None = None


# -- helpers ---------------------------------------------------------------------------------
def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).cast(pl.String).str.strip_chars() == "")


def _offending(
    frame: pl.DataFrame,
    *,
    table: str,
    id_col: str,
    pattern: str | pl.Expr,
    detail: str | pl.Expr,
    keep: Sequence[str] = (),
) -> pl.DataFrame:
    """Rows of ``frame`` as offending rows (``table``, ``record_id``, ``pattern``, ``detail``)."""
    pat = pl.lit(pattern) if isinstance(pattern, str) else pattern
    det = pl.lit(detail) if isinstance(detail, str) else detail
    cols = [c for c in dict.fromkeys([id_col, *keep]) if c in frame.columns]
    return frame.select(
        pl.lit(table).alias("table"),
        pl.col(id_col).cast(pl.String).alias("record_id"),
        pat.cast(pl.String).alias("pattern"),
        det.cast(pl.String).alias("detail"),
        *[pl.col(c) for c in cols],
    )


def _empty_offending() -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.String for c in _OFFENDING_HEAD})


def _concat(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    if not frames:
        return _empty_offending()
    return pl.concat(frames, how="diagonal_relaxed")


def _result(
    check_id: str,
    passed: bool | None,
    counts: Mapping[str, int | float],
    offending: pl.DataFrame,
    explanation: str,
) -> CheckResult:
    return CheckResult(
        check_id=check_id,
        title=CHECK_TITLES[check_id],
        passed=passed,
        counts=dict(counts),
        offending=offending,
        explanation=explanation,
    )


def _policy_with_terms(policy: Policy, terms: Mapping[str, Sequence[str]]) -> Policy:
    return policy.model_copy(
        update={
            "prohibited_terms": {k: tuple(v) for k, v in terms.items()},
            "review_terms": (),
            "review_context_allowed": (),
        }
    )


def _local_hour_in(hours: pl.Expr, window: tuple[int, int]) -> pl.Expr:
    start, end = window
    if start > end:  # wraps midnight, e.g. 22..6
        return (hours >= start) | (hours < end)
    return (hours >= start) & (hours < end)


def audit_period(year: int, timezone: str | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The audited calendar year in ``timezone``, as a half-open UTC interval.

    Parameters
    ----------
    year
        Calendar year audited.
    timezone
        IANA zone whose midnights bound the year (the policy's ``timezone``); ``None``: UTC.

    Returns
    -------
    tuple of datetime
        The first instant of ``year`` and the first instant of ``year + 1``, both in UTC.

    Raises
    ------
    ValueError
        If the zone is unknown.

    Examples
    --------
    >>> start, end = audit_period(2025, "America/Los_Angeles")
    >>> start.isoformat(), end.isoformat()
    ('2025-01-01T08:00:00+00:00', '2026-01-01T08:00:00+00:00')
    """
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r} for the audit period") from exc
    return (
        dt.datetime(year, 1, 1, tzinfo=zone).astimezone(_UTC),
        dt.datetime(year + 1, 1, 1, tzinfo=zone).astimezone(_UTC),
    )


def _year_bounds(inputs: AuditInputs) -> tuple[dt.datetime, dt.datetime]:
    return audit_period(inputs.year, inputs.timezone)


def split_vendor_events(events: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split audit events into the department's own trail and imported vendor rows.

    Parameters
    ----------
    events
        Audit events (``audit_events`` schema).

    Returns
    -------
    tuple of polars.DataFrame
        The department's own events, then the rows of :data:`VENDOR_EVENT_TYPES`.

    Examples
    --------
    >>> frame = pl.DataFrame({"event_type": ["search", "vendor_search", "export"]})
    >>> own, vendor = split_vendor_events(frame)
    >>> own["event_type"].to_list(), vendor.height
    (['search', 'export'], 1)
    """
    is_vendor = pl.col("event_type").is_in(list(VENDOR_EVENT_TYPES)).fill_null(False)
    return events.filter(~is_vendor), events.filter(is_vendor)


def _ts(value: dt.datetime) -> pl.Expr:
    return pl.lit(value, dtype=pl.Datetime("us", "UTC"))


# -- search patterns -------------------------------------------------------------------------
_FLAG_COLUMNS = (
    "event_id",
    "pattern",
    "detail",
    "occurred_at",
    "event_type",
    "user_id",
    "organization",
    "case_number",
    "reason_code",
    "reason_text",
    "plate_queried",
    "networks_searched",
)


def _screen_flags(
    events: pl.DataFrame, policy: Policy, extra_terms: Mapping[str, Sequence[str]]
) -> pl.DataFrame:
    """Prohibited-purpose flags from the free text (each distinct text screened once)."""
    texts = events.filter(~_blank("reason_text"))["reason_text"].unique().to_list()
    no_context = policy.model_copy(update={"review_context_allowed": ()})
    extra = _policy_with_terms(policy, extra_terms) if extra_terms else None
    rows: list[tuple[str, str, str]] = []
    for text in texts:
        result = screen_text({"reason_text": text}, policy=no_context)
        if result.verdict == "refuse" and result.category in _CATEGORY_PATTERN:
            rows.append((text, _CATEGORY_PATTERN[result.category], f"term {result.term!r}"))
        elif result.verdict == "review":
            pattern = _REVIEW_PATTERN.get(result.category or "", "held_for_review")
            rows.append((text, pattern, f"term {result.term!r} needs review"))
        elif extra is not None:
            more = screen_text({"reason_text": text}, policy=extra)
            if more.verdict == "refuse" and more.category in _CATEGORY_PATTERN:
                rows.append((text, _CATEGORY_PATTERN[more.category], f"term {more.term!r}"))
    verdicts = pl.DataFrame(
        rows, schema={"reason_text": pl.String, "pattern": pl.String, "detail": pl.String},
        orient="row",
    )  # fmt: skip
    return events.join(verdicts, on="reason_text", how="inner")


def _repeat_tracking(events: pl.DataFrame, *, min_days: int) -> pl.DataFrame:
    plate = pl.col("plate_queried").str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")
    usable = events.filter(
        pl.col("user_id").is_not_null()
        & ~_blank("plate_queried")
        & ~pl.col("plate_queried").str.contains(r"[*?%]")
    ).with_columns(plate.alias("_plate"))
    usable = usable.filter(pl.col("_plate").str.len_chars() >= 2)
    days = pl.col("_local_day").n_unique().over("user_id", "_plate")
    return usable.filter(days >= min_days).with_columns(
        pl.format("{} searched {} on {} days", pl.col("user_id"), pl.col("_plate"), days).alias(
            "detail"
        ),
        pl.lit("repeat_tracking").alias("pattern"),
    )


def _off_hours_bursts(
    events: pl.DataFrame,
    *,
    off_hours: tuple[int, int],
    min_searches: int,
    gap_minutes: float,
    idle_days: float,
) -> pl.DataFrame:
    frame = events.filter(pl.col("user_id").is_not_null()).sort("user_id", "occurred_at")
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias("detail"))
    first_seen = frame["occurred_at"].min()
    frame = frame.with_columns(
        _local_hour_in(pl.col("_local_hour"), off_hours).alias("_off"),
        pl.col("occurred_at").shift(1).over("user_id").alias("_prev"),
    )
    gap = pl.duration(minutes=gap_minutes)
    # A run continues while the search is off-hours and follows an off-hours search closely.
    starts_run = ~(
        pl.col("_off")
        & pl.col("_off").shift(1).over("user_id").fill_null(False)
        & ((pl.col("occurred_at") - pl.col("_prev")) <= gap)
    )
    frame = frame.with_columns(starts_run.cum_sum().over("user_id").alias("_run"))
    runs = (
        frame.filter(pl.col("_off"))
        .group_by("user_id", "_run")
        .agg(
            pl.len().alias("_n"),
            pl.col("occurred_at").min().alias("_start"),
            pl.col("_prev").sort_by("occurred_at").first().alias("_before"),
        )
    )
    idle = pl.duration(days=idle_days)
    quiet = (
        pl.when(pl.col("_before").is_null())
        .then((pl.col("_start") - pl.lit(first_seen, dtype=pl.Datetime("us", "UTC"))) >= idle)
        .otherwise((pl.col("_start") - pl.col("_before")) >= idle)
    )
    bursts = runs.filter((pl.col("_n") >= min_searches) & quiet)
    return frame.join(bursts, on=["user_id", "_run"], how="inner").with_columns(
        pl.lit("off_hours_burst").alias("pattern"),
        pl.format(
            "{} searches from {} local time after {} quiet",
            pl.col("_n"),
            pl.col("_start")
            .dt.convert_time_zone(str(frame["_local_tz"][0]))
            .dt.strftime("%Y-%m-%d %H:%M"),
            pl.when(pl.col("_before").is_null())
            .then(pl.lit("a period"))
            .otherwise(
                pl.format("{} days", (pl.col("_start") - pl.col("_before")).dt.total_days())
            ),
        ).alias("detail"),
    )


def _per_user_volume(events: pl.DataFrame, *, min_per_day: int, factor: float) -> pl.DataFrame:
    frame = events.filter(pl.col("user_id").is_not_null())
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias("detail"))
    per_day = frame.group_by("user_id", "_local_day").agg(pl.len().alias("_n"))
    median = float(per_day["_n"].median() or 0.0)  # type: ignore[arg-type]
    threshold = max(float(min_per_day), factor * median)
    heavy = per_day.filter(pl.col("_n") >= threshold)
    return frame.join(heavy, on=["user_id", "_local_day"], how="inner").with_columns(
        pl.lit("per_user_volume").alias("pattern"),
        pl.format(
            "{} searches on {} (median user-day {})",
            pl.col("_n"),
            pl.col("_local_day"),
            pl.lit(round(median, 1)),
        ).alias("detail"),
    )


def flag_search_patterns(
    events: pl.DataFrame,
    *,
    policy: Policy,
    retention_days: int,
    cases: pl.DataFrame | None,
    home_organization: str | None = None,
    timezone: str | None = None,
    include_refused: bool = False,
    extra_terms: Mapping[str, Sequence[str]] | None = None,
    repeat_min_days: int = 4,
    burst_min_searches: int = 3,
    burst_gap_minutes: float = 30.0,
    burst_idle_days: float = 14.0,
    volume_min_per_day: int = 10,
    volume_factor: float = 5.0,
    lookback_whole_days: bool = False,
) -> pl.DataFrame:
    """Flag searches for the patterns found in real audit logs.

    Parameters
    ----------
    events
        Audit events (``audit_events`` schema); only the search types
        (:data:`SEARCH_EVENT_TYPES`, ``vendor_search`` included) are examined.
    policy
        Reason codes, vague reasons, prohibited terms, case-number format, network limit,
        off-hours and time zone.
    retention_days
        Days reads are kept: a window starting earlier than this before the search is a
        ``lookback_past_retention``.
    cases
        The department's cases, to check that a case was open at search time; ``None``
        skips ``closed_case``.
    home_organization
        The organization whose own users are never federal or out-of-state searchers
        (default: the policy's agency). Pass the exporting agency when auditing another
        agency's vendor export; otherwise its users are judged as outsiders searching our
        data, which is what they are under our policy.
    timezone
        Time zone of local off-hours and local days (default: the policy's); pass the
        agency's own zone for a vendor export from elsewhere.
    include_refused
        Also flag searches that were refused (by the gate or the vendor's moderation).
    extra_terms
        Terms flagged for review beyond the policy's prohibited ones, by policy category
        (default :data:`AUDIT_EXTRA_TERMS`).
    repeat_min_days, burst_min_searches, burst_gap_minutes, burst_idle_days, \
volume_min_per_day, volume_factor
        Thresholds of ``repeat_tracking``, ``off_hours_burst`` and ``per_user_volume``
        (see the module documentation).
    lookback_whole_days
        Count ``lookback_past_retention`` in whole days (see the module documentation).

    Returns
    -------
    polars.DataFrame
        One row per flagged (``event_id``, ``pattern``) with ``detail`` and the search's
        context columns, sorted by time. Patterns: ``blank_reason``, ``vague_reason``,
        ``other_without_text``, ``reason_not_on_list``, ``immigration_term``,
        ``ambiguous_ice`` (and ``protected_activity_review``,
        ``personal_characteristics_review``: a crime against a protected place or group held
        for review), ``protected_activity``, ``civil_use``,
        ``personal_characteristics``, ``federal_searcher``, ``out_of_state_searcher``,
        ``private_searcher``, ``missing_case_number``, ``malformed_case_number``,
        ``closed_case``, ``oversized_scope``, ``broad_search``, ``lookback_past_retention``,
        ``repeat_tracking``, ``off_hours_burst``, ``per_user_volume``.

    Notes
    -----
    Case-number patterns are skipped for ``vendor_search`` events when none of them carries
    a case number: the export had no case column (it was dropped or redacted), so a missing
    number says nothing about the search.

    Examples
    --------
    >>> import datetime as dt
    >>> from alpr_workbench.policy import load_policy
    >>> from alpr_workbench.schema import empty_frame
    >>> t = dt.datetime(2026, 3, 2, 18, tzinfo=dt.UTC)
    >>> row = {"event_id": "e1", "occurred_at": t, "event_type": "search", "user_id": "u1",
    ...        "organization": "Burbank Police Department", "reason_code": "other",
    ...        "reason_text": "inv", "case_number": "BPD-2026-000123", "outcome": "allowed",
    ...        "networks_searched": 40, "window_from": t - dt.timedelta(days=45),
    ...        "window_to": t}
    >>> events = pl.concat([empty_frame("audit_events"), pl.DataFrame([row])],
    ...                    how="diagonal_relaxed")
    >>> flags = flag_search_patterns(events, policy=load_policy(), retention_days=30,
    ...                              cases=None)
    >>> sorted(flags["pattern"])
    ['lookback_past_retention', 'oversized_scope', 'vague_reason']
    """
    tz = timezone or policy.timezone
    home = home_organization if home_organization is not None else policy.agency_name
    extra_terms = AUDIT_EXTRA_TERMS if extra_terms is None else extra_terms
    frame = events.filter(pl.col("event_type").is_in(list(SEARCH_EVENT_TYPES)))
    if not include_refused:
        frame = frame.filter(pl.col("outcome") != "refused")
    if frame.is_empty():
        return pl.DataFrame(schema={c: events.schema.get(c, pl.String) for c in _FLAG_COLUMNS})
    local = pl.col("occurred_at").dt.convert_time_zone(tz)
    frame = frame.with_columns(
        local.dt.date().alias("_local_day"),
        local.dt.hour().alias("_local_hour"),
        pl.lit(tz).alias("_local_tz"),
    )
    flags: list[pl.DataFrame] = []

    def add(sub: pl.DataFrame, pattern: str, detail: pl.Expr | str) -> None:
        if sub.height:
            det = pl.lit(detail) if isinstance(detail, str) else detail
            flags.append(sub.with_columns(pl.lit(pattern).alias("pattern"), det.alias("detail")))

    # Reasons (A3).
    add(
        frame.filter(_blank("reason_code") & _blank("reason_text")),
        "blank_reason",
        "no reason given",
    )
    needs_text = list(policy.reasons_requiring_text)
    add(
        frame.filter(pl.col("reason_code").is_in(needs_text) & _blank("reason_text")),
        "other_without_text",
        pl.format("reason {} without text", pl.col("reason_code")),
    )
    texts = frame.filter(~_blank("reason_text"))["reason_text"].unique().to_list()
    vague = [t for t in texts if is_vague_reason(t, policy=policy)]
    add(
        frame.filter(pl.col("reason_text").is_in(vague)),
        "vague_reason",
        pl.format("reason says nothing: {}", pl.col("reason_text")),
    )
    add(
        frame.filter(~_blank("reason_code") & ~pl.col("reason_code").is_in(policy.reason_codes)),
        "reason_not_on_list",
        pl.format("reason {} is not on the policy's list", pl.col("reason_code")),
    )
    # Prohibited purposes.
    screened = _screen_flags(frame, policy, extra_terms)
    if screened.height:
        flags.append(screened)
    # Who searched (S3).
    org_type = (
        pl.when(pl.col("organization").is_not_null() & (pl.col("organization") == home))
        .then(pl.lit(policy.agency_organization_type))
        .otherwise(
            pl.coalesce(
                pl.col("organization_type"),
                pl.col("organization").map_elements(classify_organization, return_dtype=pl.String),
            )
        )
    )
    frame = frame.with_columns(org_type.alias("_org_type"))
    for kind, pattern in (
        ("federal", "federal_searcher"),
        ("out_of_state", "out_of_state_searcher"),
        ("private", "private_searcher"),
    ):
        add(
            frame.filter(pl.col("_org_type") == kind),
            pattern,
            pl.format("{} ({})", pl.col("organization"), pl.lit(kind)),
        )
    # Case numbers (A2).
    is_vendor = pl.col("event_type") == "vendor_search"
    vendor_has_cases = frame.filter(is_vendor & ~_blank("case_number")).height > 0
    case_frame = frame if vendor_has_cases else frame.filter(~is_vendor)
    add(case_frame.filter(_blank("case_number")), "missing_case_number", "no case number")
    valid = pl.col("case_number").str.strip_chars().str.contains(policy.case_number_pattern)
    add(
        case_frame.filter(~_blank("case_number") & ~valid),
        "malformed_case_number",
        pl.format("case number {} is not in the department's format", pl.col("case_number")),
    )
    if cases is not None:
        known = cases.select(
            pl.col("case_number").alias("_case"),
            pl.col("opened_at").alias("_opened"),
            pl.col("closed_at").alias("_closed"),
        )
        joined = (
            case_frame.filter(~_blank("case_number") & valid)
            .with_columns(pl.col("case_number").str.strip_chars().alias("_case"))
            .join(known, on="_case", how="left")
        )
        closed = joined.filter(
            pl.col("_opened").is_null()
            | (pl.col("_opened") > pl.col("occurred_at"))
            | (pl.col("_closed").is_not_null() & (pl.col("_closed") <= pl.col("occurred_at")))
        )
        add(
            closed,
            "closed_case",
            pl.when(pl.col("_opened").is_null())
            .then(pl.format("case {} is unknown", pl.col("case_number")))
            .when(pl.col("_opened") > pl.col("occurred_at"))
            .then(pl.format("case {} was not yet open", pl.col("case_number")))
            .otherwise(
                pl.format(
                    "case {} was closed {}", pl.col("case_number"),
                    pl.col("_closed").dt.strftime("%Y-%m-%d"),
                )
            ),
        )  # fmt: skip
    # Scope and lookback (R3).
    add(
        frame.filter(pl.col("networks_searched") > policy.max_networks_per_search),
        "oversized_scope",
        pl.format(
            "{} networks (policy allows {})",
            pl.col("networks_searched"),
            pl.lit(policy.max_networks_per_search),
        ),
    )
    # A wildcard-only or few-literal partial plate, or a very large result (P2).
    literals = pl.col("plate_queried").str.to_uppercase().str.count_matches(r"[A-Z0-9]")
    is_pattern = pl.col("plate_queried").str.contains(r"[*?%]").fill_null(False)
    few_literals = is_pattern & (literals < policy.min_pattern_literals)
    many_rows = pl.col("row_count").fill_null(0) > policy.broad_search_rows
    add(
        frame.filter(few_literals | many_rows),
        "broad_search",
        pl.when(few_literals)
        .then(pl.format("partial plate {} has fewer than {} known characters",
                        pl.col("plate_queried"), pl.lit(policy.min_pattern_literals)))
        .otherwise(pl.format("{} rows returned (policy flags over {})", pl.col("row_count"),
                             pl.lit(policy.broad_search_rows))),
    )  # fmt: skip
    lookback = pl.col("occurred_at") - pl.col("window_from")
    past_retention = (
        lookback.dt.total_days() > retention_days
        if lookback_whole_days
        else lookback > pl.duration(days=retention_days)
    )
    add(
        frame.filter(past_retention.fill_null(False)),
        "lookback_past_retention",
        pl.format(
            "window starts {} days before the search (retention {})",
            lookback.dt.total_days(),
            pl.lit(retention_days),
        ),
    )
    # Behaviour over many searches.
    for sub in (
        _repeat_tracking(frame, min_days=repeat_min_days),
        _off_hours_bursts(
            frame,
            off_hours=policy.off_hours_local,
            min_searches=burst_min_searches,
            gap_minutes=burst_gap_minutes,
            idle_days=burst_idle_days,
        ),
        _per_user_volume(frame, min_per_day=volume_min_per_day, factor=volume_factor),
    ):
        if sub.height:
            flags.append(sub)
    if not flags:
        return pl.DataFrame(schema={c: frame.schema.get(c, pl.String) for c in _FLAG_COLUMNS})
    return (
        pl.concat([f.select(_FLAG_COLUMNS) for f in flags], how="vertical_relaxed")
        .unique(subset=["event_id", "pattern"], keep="first", maintain_order=True)
        .sort("occurred_at", "event_id", "pattern")
    )


# -- the checks ------------------------------------------------------------------------------
_EVENT_KEEP = (
    "event_id",
    "occurred_at",
    "event_type",
    "user_id",
    "organization",
    "case_number",
    "reason_code",
    "reason_text",
    "plate_queried",
    "networks_searched",
)


def _event_offending(flags: pl.DataFrame, patterns: Sequence[str]) -> pl.DataFrame:
    sub = flags.filter(pl.col("pattern").is_in(list(patterns)))
    if sub.is_empty():
        return _empty_offending()
    return _offending(
        sub,
        table="audit_events",
        id_col="event_id",
        pattern=pl.col("pattern"),
        detail=pl.col("detail"),
        keep=_EVENT_KEEP,
    )


def _pattern_counts(offending: pl.DataFrame) -> dict[str, int]:
    if offending.is_empty():
        return {}
    return {
        str(p): int(n) for p, n in offending.group_by("pattern").len().sort("pattern").iter_rows()
    }


def _failing(offending: pl.DataFrame) -> int:
    """Distinct records that fail a check."""
    return offending["record_id"].n_unique() if offending.height else 0


def _check_a1(events: pl.DataFrame) -> CheckResult:
    access = events.filter(pl.col("event_type").is_in(list(ACCESS_EVENT_TYPES)))
    n = access.height
    fields = {
        "timestamp": pl.col("occurred_at").is_null(),
        "query": _blank("plate_queried") & _blank("query_json"),
        "user": _blank("user_id"),
        "organization": _blank("organization"),
        "purpose": _blank("reason_code") & _blank("reason_text"),
    }
    counts: dict[str, int | float] = {"access_records": n}
    parts = []
    for name, missing in fields.items():
        sub = access.filter(missing)
        counts[f"missing_{name}_pct"] = round(100.0 * sub.height / n, 2) if n else 0.0
        parts.append(
            _offending(
                sub, table="audit_events", id_col="event_id", pattern=f"missing_{name}",
                detail=f"access record without {name}", keep=_EVENT_KEEP,
            )
        )  # fmt: skip
    offending = _concat(parts)
    counts["incomplete_records"] = _failing(offending)
    worst = max((counts[f"missing_{k}_pct"] for k in fields), default=0.0)
    return _result(
        "A1",
        None if n == 0 else offending.is_empty(),
        counts,
        offending,
        f"{n:,} access records checked for timestamp, query, user, organization and purpose; "
        f"{counts['incomplete_records']:,} lack at least one (worst field {worst} % missing).",
    )


def _searches(events: pl.DataFrame, *, include_refused: bool = False) -> pl.DataFrame:
    frame = events.filter(pl.col("event_type").is_in(list(SEARCH_EVENT_TYPES)))
    return frame if include_refused else frame.filter(pl.col("outcome") != "refused")


def _check_from_flags(
    check_id: str,
    events: pl.DataFrame,
    flags: pl.DataFrame,
    patterns: Sequence[str],
    what: str,
) -> CheckResult:
    searches = _searches(events)
    offending = _event_offending(flags, patterns)
    n_bad = _failing(offending)
    counts: dict[str, int | float] = {
        "searches": searches.height,
        "refused_searches": _searches(events, include_refused=True).height - searches.height,
        "offending_searches": n_bad,
    }
    counts.update(_pattern_counts(offending))
    return _result(
        check_id,
        None if searches.is_empty() else n_bad == 0,
        counts,
        offending,
        f"{searches.height:,} searches checked {what}; {n_bad:,} fail"
        + (f" ({', '.join(f'{k} {v}' for k, v in _pattern_counts(offending).items())})."
           if n_bad else "."),
    )  # fmt: skip


def _check_a4(inputs: AuditInputs) -> CheckResult:
    events = inputs.audit_events
    present = {str(k): int(v) for k, v in events.group_by("event_type").len().iter_rows()}
    counts: dict[str, int | float] = {f"events_{p}": present.get(p, 0) for p in LOGGED_PATHS}
    started = inputs.log_started_at or (events["occurred_at"].min() if events.height else None)
    start_y, end_y = _year_bounds(inputs)
    lo = max(start_y, started) if isinstance(started, dt.datetime) else None
    hi = min(end_y, inputs.as_of)
    parts: list[pl.DataFrame] = []
    if lo is not None:

        def named(types: Sequence[str]) -> str:
            sub = events.filter(pl.col("event_type").is_in(list(types)))
            return "\n".join(sub["query_json"].drop_nulls().to_list())

        def in_period(col: str) -> pl.Expr:
            return pl.col(col).is_not_null() & (pl.col(col) >= _ts(lo)) & (pl.col(col) < _ts(hi))

        logged_holds = named(["hold"])
        holds = inputs.legal_holds.filter(in_period("created_at"))
        parts.append(
            _offending(
                holds.filter(
                    ~pl.col("hold_id").map_elements(
                        lambda h: f'"{h}"' in logged_holds, return_dtype=pl.Boolean
                    )
                ),
                table="legal_holds", id_col="hold_id", pattern="unlogged_hold",
                detail=pl.format("hold placed {} without a hold record",
                                 pl.col("created_at").dt.strftime("%Y-%m-%d")),
                keep=("hold_id", "case_number", "created_at"),
            )
        )  # fmt: skip
        logged_grants = named(["sharing_change"])
        grants = inputs.sharing_grants.filter(in_period("granted_at") | in_period("revoked_at"))
        parts.append(
            _offending(
                grants.filter(
                    ~pl.col("grant_id").map_elements(
                        lambda g: f'"{g}"' in logged_grants, return_dtype=pl.Boolean
                    )
                ),
                table="sharing_grants", id_col="grant_id", pattern="unlogged_sharing_change",
                detail="grant given or revoked without a sharing_change record",
                keep=("grant_id", "recipient_org", "granted_at", "revoked_at"),
            )
        )  # fmt: skip
        logged_lists = named(["hotlist_add", "hotlist_change"])
        lists = inputs.hotlists.filter(in_period("created_at"))
        parts.append(
            _offending(
                lists.filter(
                    ~pl.col("hotlist_id").map_elements(
                        lambda h: f'"{h}"' in logged_lists, return_dtype=pl.Boolean
                    )
                ),
                table="hotlists", id_col="hotlist_id", pattern="unlogged_hotlist_add",
                detail="list created without a hotlist_add record",
                keep=("hotlist_id", "name", "created_at"),
            )
        )  # fmt: skip
    offending = _concat(parts)
    seen = [p for p in LOGGED_PATHS if present.get(p)]
    counts["paths_with_events"] = len(seen)
    counts["unlogged_changes"] = offending.height
    return _result(
        "A4",
        None if events.is_empty() else offending.is_empty(),
        counts,
        offending,
        f"Paths with audit records this year: {', '.join(seen) or 'none'}. Holds, grants and "
        f"hotlists created or changed while the log ran were matched to their records; "
        f"{offending.height} have none.",
    )


def _check_a5(inputs: AuditInputs, *, max_gap_days: int) -> CheckResult:
    events = inputs.audit_events
    start_y, end_y = _year_bounds(inputs)
    counts: dict[str, int | float] = {"records": events.height}
    parts: list[pl.DataFrame] = []
    if inputs.chain_ok is False:
        parts.append(
            pl.DataFrame(
                {
                    "table": ["audit_log"],
                    "record_id": ["chain"],
                    "pattern": ["chain_broken"],
                    "detail": [inputs.chain_problem or "the hash chain does not verify"],
                }
            )
        )
    first_day = inputs.log_started_at or (events["occurred_at"].min() if events.height else None)
    stored = [d for d in inputs.days_stored if start_y.date() <= d < end_y.date()]
    candidates = [d for d in (first_day,) if isinstance(d, dt.datetime)]
    lo = max(start_y, min(candidates)) if candidates else None
    if stored:
        s0 = dt.datetime.combine(stored[0], dt.time(), _UTC)
        lo = s0 if lo is None else min(lo, s0)
        lo = max(lo, start_y)
    hi = min(end_y, inputs.as_of)
    gaps: list[dict[str, Any]] = []
    if lo is not None and lo < hi:
        days = set(
            events.filter(pl.col("occurred_at").is_not_null())["occurred_at"].dt.date().to_list()
        )
        day, last = lo.date(), (hi - dt.timedelta(microseconds=1)).date()
        run: list[dt.date] = []
        while day <= last:
            if day in days:
                run = []
            else:
                run.append(day)
                if day == last or (day + dt.timedelta(days=1)) in days:
                    if len(run) > max_gap_days:
                        gaps.append(
                            {
                                "table": "audit_log",
                                "record_id": f"{run[0]}..{run[-1]}",
                                "pattern": "audit_gap",
                                "detail": f"{len(run)} days without any audit record",
                            }
                        )
            day += dt.timedelta(days=1)
        counts["days_covered"] = (last - lo.date()).days + 1
        counts["days_with_records"] = len({d for d in days if lo.date() <= d <= last})
    if gaps:
        parts.append(pl.DataFrame(gaps))
    offending = _concat(parts)
    counts["gaps"] = len(gaps)
    chain = (
        "the hash chain verifies"
        if inputs.chain_ok
        else "the chain was not verified"
        if inputs.chain_ok is None
        else f"the hash chain does NOT verify ({inputs.chain_problem})"
    )
    # Unverified chain: the check cannot pass, and with no records it does not apply.
    passed: bool | None
    if inputs.chain_ok is None:
        passed = False if gaps else None
    else:
        passed = inputs.chain_ok and not gaps
    return _result(
        "A5",
        passed,
        counts,
        offending,
        f"{events.height:,} records this year; {chain}; {len(gaps)} stretch(es) of more than "
        f"{max_gap_days} days without any record while the system ran.",
    )


def _check_r1(inputs: AuditInputs) -> CheckResult:
    cutoff = inputs.as_of.date() - dt.timedelta(days=inputs.retention_days)
    old = [d for d in inputs.days_stored if d < cutoff]
    rows = [
        {
            "table": "reads",
            "record_id": d.isoformat(),
            "pattern": "read_past_retention",
            "detail": f"day of reads kept {(inputs.as_of.date() - d).days} days",
        }
        for d in old
    ]
    holds = inputs.legal_holds
    live = set(
        holds.filter(pl.col("released_at").is_null() | (pl.col("released_at") > _ts(inputs.as_of)))[
            "hold_id"
        ].to_list()
    )
    for hold_id in inputs.hold_partitions:
        if hold_id not in live:
            rows.append(
                {
                    "table": "reads",
                    "record_id": hold_id,
                    "pattern": "hold_partition_without_hold",
                    "detail": "reads kept under a hold that is released or unknown",
                }
            )
    offending = pl.DataFrame(rows) if rows else _empty_offending()
    return _result(
        "R1",
        None if not inputs.days_stored and not inputs.hold_partitions else not rows,
        {
            "days_stored": len(inputs.days_stored),
            "days_past_retention": len(old),
            "hold_partitions": len(inputs.hold_partitions),
        },
        offending,
        f"Reads are kept {inputs.retention_days} days; on {inputs.as_of:%Y-%m-%d} "
        f"{len(old)} stored day(s) are older than {cutoff} and are not under a legal hold.",
    )


def _check_r2(inputs: AuditInputs, policy: Policy) -> CheckResult:
    holds = inputs.legal_holds
    today = inputs.as_of.date()
    live = holds.filter(
        pl.col("released_at").is_null() | (pl.col("released_at") > _ts(inputs.as_of))
    )
    keep = ("hold_id", "case_number", "approver_user_id", "review_by_date", "created_at")
    valid = pl.col("case_number").str.contains(policy.case_number_pattern).fill_null(False)
    parts = [
        _offending(holds.filter(_blank("case_number") | ~valid), table="legal_holds",
                   id_col="hold_id", pattern="hold_without_case",
                   detail="no case number in the department's format", keep=keep),
        _offending(holds.filter(_blank("approver_user_id")), table="legal_holds",
                   id_col="hold_id", pattern="hold_without_approver",
                   detail="no approver", keep=keep),
        _offending(
            live.filter(pl.col("review_by_date").is_null()
                        | (pl.col("review_by_date") < pl.lit(today))),
            table="legal_holds", id_col="hold_id", pattern="hold_review_overdue",
            detail=pl.format("review was due {}", pl.col("review_by_date")), keep=keep,
        ),
    ]  # fmt: skip
    offending = _concat(parts)
    return _result(
        "R2",
        None if holds.is_empty() else offending.is_empty(),
        {"holds": holds.height, "live_holds": live.height, **_pattern_counts(offending)},
        offending,
        f"{holds.height} legal hold(s) checked for case number, approver and review date "
        f"(as of {today}); {_failing(offending)} "
        "fail.",
    )


def _check_r4(inputs: AuditInputs, policy: Policy) -> CheckResult:
    lists, entries = inputs.hotlists, inputs.hotlist_entries
    custom = pl.col("source") == "custom"
    keep = ("hotlist_id", "name", "source", "owner_user_id", "case_number", "expires_at")
    too_far = inputs.as_of + dt.timedelta(days=policy.custom_hotlist_max_days)
    joke_policy = _policy_with_terms(policy, {"joke": JOKE_NAME_TERMS})
    personal = _policy_with_terms(
        policy, {"civil_or_personal": policy.prohibited_terms.get("civil_or_personal", ())}
    )
    joke_ids = [
        h
        for h, name in lists.select("hotlist_id", "name").iter_rows()
        if name
        and (
            screen_text({"name": name}, policy=joke_policy).verdict == "refuse"
            or screen_text({"name": name}, policy=personal).verdict == "refuse"
        )
    ]
    parts = [
        _offending(lists.filter(custom & _blank("case_number")), table="hotlists",
                   id_col="hotlist_id", pattern="hotlist_without_case",
                   detail=pl.format("custom list {} names no case", pl.col("name")), keep=keep),
        _offending(lists.filter(_blank("owner_user_id")), table="hotlists",
                   id_col="hotlist_id", pattern="hotlist_without_owner",
                   detail="list has no owner", keep=keep),
        _offending(lists.filter(_blank("reason")), table="hotlists", id_col="hotlist_id",
                   pattern="hotlist_without_reason", detail="list has no reason", keep=keep),
        _offending(lists.filter(custom & pl.col("expires_at").is_null()), table="hotlists",
                   id_col="hotlist_id", pattern="hotlist_without_expiry",
                   detail="custom list never expires", keep=keep),
        _offending(lists.filter(custom & (pl.col("expires_at") > _ts(too_far))),
                   table="hotlists", id_col="hotlist_id", pattern="hotlist_expiry_too_far",
                   detail=f"expires more than {policy.custom_hotlist_max_days} days ahead",
                   keep=keep),
        _offending(lists.filter(pl.col("hotlist_id").is_in(joke_ids)), table="hotlists",
                   id_col="hotlist_id", pattern="hotlist_joke_name",
                   detail=pl.format("joke or personal name {}", pl.col("name")), keep=keep),
    ]  # fmt: skip
    ekeep = ("entry_id", "hotlist_id", "category", "added_by", "expires_at")
    ent = entries.join(lists.select("hotlist_id", "source"), on="hotlist_id", how="left")
    is_custom = pl.col("source").fill_null("custom") == "custom"
    parts += [
        _offending(ent.filter(is_custom & _blank("originating_case_number")),
                   table="hotlist_entries", id_col="entry_id", pattern="hotlist_without_case",
                   detail="entry of a custom list names no case", keep=ekeep),
        _offending(ent.filter(_blank("added_by")), table="hotlist_entries", id_col="entry_id",
                   pattern="entry_without_owner", detail="nobody added it", keep=ekeep),
        _offending(ent.filter(_blank("reason")), table="hotlist_entries", id_col="entry_id",
                   pattern="entry_without_reason", detail="entry has no reason", keep=ekeep),
        _offending(ent.filter(pl.col("expires_at").is_null()), table="hotlist_entries",
                   id_col="entry_id", pattern="entry_without_expiry",
                   detail="entry never expires", keep=ekeep),
    ]  # fmt: skip
    hits = inputs.hits
    late = pl.DataFrame()
    if hits.height:
        late = (
            hits.join(entries.select("entry_id", "expires_at"), on="entry_id", how="inner")
            .filter(
                pl.col("expires_at").is_not_null() & (pl.col("captured_at") > pl.col("expires_at"))
            )
            .group_by("entry_id", "hotlist_id", "expires_at")
            .agg(pl.len().alias("hits_after_expiry"), pl.col("captured_at").max().alias("_last"))
        )
        parts.append(
            _offending(
                late, table="hotlist_entries", id_col="entry_id", pattern="entry_past_expiry",
                detail=pl.format("expired {}, still alerted {} time(s), last {}",
                                 pl.col("expires_at").dt.strftime("%Y-%m-%d"),
                                 pl.col("hits_after_expiry"),
                                 pl.col("_last").dt.strftime("%Y-%m-%d")),
                keep=("entry_id", "hotlist_id", "expires_at", "hits_after_expiry"),
            )
        )  # fmt: skip
    offending = _concat(parts)
    counts: dict[str, int | float] = {
        "hotlists": lists.height,
        "entries": entries.height,
        "entries_past_expiry_date": entries.filter(pl.col("expires_at") < _ts(inputs.as_of)).height,
        "hits_examined": hits.height,
        **_pattern_counts(offending),
    }
    return _result(
        "R4",
        None if lists.is_empty() and entries.is_empty() else offending.is_empty(),
        counts,
        offending,
        f"{lists.height} list(s) and {entries.height:,} entries checked for owner, case or "
        "source, reason and expiry, joke or personal names, and hits after expiry; "
        f"{offending.height} finding(s)."
        + ("" if hits.height else " No hits were available, so alerts past expiry are unknown."),
    )


def _grants_in_year(inputs: AuditInputs) -> pl.DataFrame:
    start_y, end_y = _year_bounds(inputs)
    return inputs.sharing_grants.filter(
        (pl.col("granted_at") < _ts(min(end_y, inputs.as_of)))
        & (pl.col("revoked_at").is_null() | (pl.col("revoked_at") >= _ts(start_y)))
    )


def _check_s1(inputs: AuditInputs, policy: Policy) -> CheckResult:
    grants = _grants_in_year(inputs)
    keep = ("grant_id", "network_id", "recipient_org", "recipient_type", "scope", "granted_at")
    allowed = list(policy.allowed_recipient_types)
    bad = grants.filter(~pl.col("recipient_type").is_in(allowed))
    parts = [
        _offending(bad, table="sharing_grants", id_col="grant_id",
                   pattern=pl.format("improper_grant_{}", pl.col("recipient_type")),
                   detail=pl.format("{} ({})", pl.col("recipient_org"),
                                    pl.col("recipient_type")), keep=keep)
    ]  # fmt: skip
    named = grants.filter(pl.col("recipient_type").is_in(allowed)).with_columns(
        pl.col("recipient_org")
        .map_elements(classify_organization, return_dtype=pl.String)
        .alias("_named_type")
    )
    parts.append(
        _offending(
            named.filter(
                pl.col("_named_type").is_not_null() & ~pl.col("_named_type").is_in(allowed)
            ),
            table="sharing_grants", id_col="grant_id", pattern="recipient_type_mismatch",
            detail=pl.format("{} is recorded as {} but its name reads as {}",
                             pl.col("recipient_org"), pl.col("recipient_type"),
                             pl.col("_named_type")),
            keep=keep,
        )
    )  # fmt: skip
    offending = _concat(parts)
    return _result(
        "S1",
        None if grants.is_empty() else offending.is_empty(),
        {"grants_in_force": grants.height, **_pattern_counts(offending)},
        offending,
        f"{grants.height} grant(s) in force during {inputs.year}; "
        f"{_failing(offending)} go to a recipient "
        "that is not a California public agency.",
    )


def _snapshot_digest(query: str | None) -> tuple[str | None, str | None]:
    try:
        doc = json.loads(query or "")
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    digest = doc.get("grants_digest")
    drift = doc.get("drift")
    return (digest if isinstance(digest, str) else None, drift if isinstance(drift, str) else None)


def _check_s2(inputs: AuditInputs) -> CheckResult:
    history = inputs.sharing_history
    if history is None:
        history = inputs.audit_events
    history = history.filter(
        pl.col("event_type").is_in(["sharing_change", "sharing_snapshot"])
        & (pl.col("occurred_at") <= _ts(inputs.as_of))
    )
    # Log order (seq) when known; hand-built frames may only have times.
    has_seq = "seq" in history.columns and history["seq"].null_count() == 0
    history = history.sort("seq" if has_seq else "occurred_at", nulls_last=True)
    snapshots = history.filter(pl.col("event_type") == "sharing_snapshot")
    changes = history.filter(
        (pl.col("event_type") == "sharing_change") & (pl.col("outcome") == "allowed")
    )
    rows: list[dict[str, Any]] = []
    audited: set[str] = set()  # states an audited change produced since the last snapshot
    last_snapshot: str | None = None
    last_state: str | None = None
    for event_id, event_type, outcome, query, at in history.select(
        "event_id", "event_type", "outcome", "query_json", "occurred_at"
    ).iter_rows():
        digest, drift = _snapshot_digest(query)
        if event_type == "sharing_change":
            if outcome == "allowed" and digest:
                audited.add(digest)
                last_state = digest
            continue
        if digest is None:
            continue
        if last_snapshot is not None and digest != last_snapshot and digest not in audited:
            rows.append(
                {
                    "table": "audit_events",
                    "record_id": event_id,
                    "pattern": "silent_sharing_change",
                    "detail": f"grants digest {digest[:12]} on {at:%Y-%m-%d} differs from the "
                    f"previous snapshot {last_snapshot[:12]} with no audited change to it",
                    "event_id": event_id,
                    "occurred_at": at,
                }
            )
        elif drift:
            rows.append(
                {
                    "table": "audit_events",
                    "record_id": event_id,
                    "pattern": "silent_sharing_change",
                    "detail": f"snapshot recorded drift: {drift}",
                    "event_id": event_id,
                    "occurred_at": at,
                }
            )
        last_snapshot, last_state = digest, digest
        audited = set()
    current = grants_digest(inputs.sharing_grants)
    if last_state is not None and current != last_state:
        rows.append(
            {
                "table": "sharing_grants",
                "record_id": "current",
                "pattern": "silent_sharing_change",
                "detail": f"the grants table (digest {current[:12]}) differs from the last "
                f"audited state {last_state[:12]}",
            }
        )
    offending = pl.DataFrame(rows) if rows else _empty_offending()
    applicable = snapshots.height > 0 or changes.height > 0
    return _result(
        "S2",
        (not rows) if applicable else None,
        {
            "snapshots": snapshots.height,
            "audited_changes": changes.height,
            "silent_changes": len(rows),
        },
        offending,
        (
            f"{snapshots.height} daily snapshot(s) and {changes.height} audited change(s) "
            f"compared digest by digest, and the current table with the last audited state; "
            f"{len(rows)} change(s) without an audited action."
            + ("" if snapshots.height else " No daily snapshots were recorded.")
        )
        if applicable
        else "No sharing snapshots or audited sharing changes: drift cannot be judged.",
    )


def _check_s3(inputs: AuditInputs, flags: pl.DataFrame) -> CheckResult:
    events = inputs.audit_events
    offending_events = _event_offending(
        flags, ["federal_searcher", "out_of_state_searcher", "private_searcher"]
    )
    users = inputs.users
    outsider = {"federal": "federal_searcher", "out_of_state": "out_of_state_searcher",
                "private": "private_searcher"}  # fmt: skip
    accounts = users.filter(
        pl.col("organization_type").is_in(list(outsider)) & pl.col("is_active").fill_null(True)
    )
    offending_users = _offending(
        accounts, table="users", id_col="user_id",
        pattern=pl.col("organization_type").replace_strict(outsider, default="outsider"),
        detail=pl.format("active account of {} ({})", pl.col("organization"),
                         pl.col("organization_type")),
        keep=("user_id", "organization", "organization_type", "job_title"),
    )  # fmt: skip
    offending = _concat([offending_events, offending_users])
    searches = _searches(events)
    n_ev = _failing(offending_events)
    return _result(
        "S3",
        None if searches.is_empty() and users.is_empty() else offending.is_empty(),
        {
            "searches": searches.height,
            "outside_searches": n_ev,
            "outside_accounts": accounts.height,
            **_pattern_counts(offending),
        },
        offending,
        f"{n_ev:,} of {searches.height:,} searches were run by a federal, out-of-state or "
        f"private organization; {accounts.height} active account(s) belong to one.",
    )


def _check_s4(inputs: AuditInputs, policy: Policy) -> CheckResult:
    lists, entries, hits = inputs.hotlists, inputs.hotlist_entries, inputs.hits
    immigration = _policy_with_terms(
        policy, {"immigration_enforcement": policy.prohibited_terms.get(
            "immigration_enforcement", ())}
    )  # fmt: skip
    bad_lists = [
        h
        for h, name, reason in lists.select("hotlist_id", "name", "reason").iter_rows()
        if screen_text({"name": name, "reason": reason}, policy=immigration).verdict == "refuse"
    ]
    never = [c.lower() for c in policy.never_alert_categories]
    cat = pl.col("category").str.to_lowercase()
    parts = [
        _offending(lists.filter(pl.col("hotlist_id").is_in(bad_lists)), table="hotlists",
                   id_col="hotlist_id", pattern="immigration_hotlist",
                   detail=pl.format("list {} serves immigration enforcement", pl.col("name")),
                   keep=("hotlist_id", "name", "source")),
        _offending(entries.filter(cat.is_in(never)), table="hotlist_entries",
                   id_col="entry_id", pattern="immigration_entry",
                   detail=pl.format("entry in never-alert category {}", pl.col("category")),
                   keep=("entry_id", "hotlist_id", "category", "originating_agency")),
    ]  # fmt: skip
    alerts = 0
    if hits.height:
        bad_hits = hits.join(
            entries.select("entry_id", "category"), on="entry_id", how="inner"
        ).filter(cat.is_in(never))
        alerts = bad_hits.height
        parts.append(
            _offending(bad_hits, table="hits", id_col="hit_id", pattern="immigration_alert",
                       detail=pl.format("alert on a {} entry", pl.col("category")),
                       keep=("hit_id", "entry_id", "hotlist_id", "captured_at"))
        )  # fmt: skip
    offending = _concat(parts)
    return _result(
        "S4",
        None if lists.is_empty() and entries.is_empty() else offending.is_empty(),
        {
            "hotlists": lists.height,
            "entries": entries.height,
            "immigration_entries": entries.filter(cat.is_in(never)).height,
            "immigration_alerts": alerts,
        },
        offending,
        f"{lists.height} list(s) screened for immigration sources and {entries.height:,} "
        f"entries for never-alert categories ({', '.join(policy.never_alert_categories)}); "
        f"{offending.height} finding(s), {alerts} alert(s) on such entries.",
    )


def _check_s5(inputs: AuditInputs) -> CheckResult:
    grants = _grants_in_year(inputs)
    keep = ("grant_id", "network_id", "recipient_org", "approved_by", "basis", "review_by_date")
    in_force = pl.col("revoked_at").is_null() | (pl.col("revoked_at") > _ts(inputs.as_of))
    today = inputs.as_of.date()
    parts = [
        _offending(grants.filter(_blank("approved_by") | _blank("basis")),
                   table="sharing_grants", id_col="grant_id", pattern="grant_without_approval",
                   detail="no documented approver or basis", keep=keep),
        _offending(
            grants.filter(in_force & (pl.col("review_by_date").is_null()
                                      | (pl.col("review_by_date") < pl.lit(today)))),
            table="sharing_grants", id_col="grant_id", pattern="grant_review_overdue",
            detail=pl.format("review was due {}", pl.col("review_by_date")), keep=keep,
        ),
    ]  # fmt: skip
    offending = _concat(parts)
    return _result(
        "S5",
        None if grants.is_empty() else offending.is_empty(),
        {"grants_in_force": grants.height, **_pattern_counts(offending)},
        offending,
        f"{grants.height} grant(s) checked for a documented approval and a review date not "
        f"passed on {today}; "
        f"{_failing(offending)} fail.",
    )


_USER_KEEP = ("user_id", "full_name", "organization", "job_title", "is_active", "last_active_at")


def _check_u1(inputs: AuditInputs, policy: Policy) -> CheckResult:
    users = inputs.users.filter(pl.col("is_active").fill_null(False))
    refresh = _ts(inputs.as_of - dt.timedelta(days=policy.training_refresh_days))
    parts = [
        _offending(users.filter(_blank("approved_by") | pl.col("approved_at").is_null()),
                   table="users", id_col="user_id", pattern="user_not_approved",
                   detail="no documented approval", keep=_USER_KEEP),
        _offending(users.filter(pl.col("trained_at").is_null()), table="users",
                   id_col="user_id", pattern="untrained_user", detail="never trained",
                   keep=_USER_KEEP),
        _offending(users.filter(pl.col("trained_at") < refresh), table="users",
                   id_col="user_id", pattern="training_refresh_overdue",
                   detail=pl.format("last trained {}",
                                    pl.col("trained_at").dt.strftime("%Y-%m-%d")),
                   keep=_USER_KEEP),
    ]  # fmt: skip
    offending = _concat(parts)
    return _result(
        "U1",
        None if users.is_empty() else offending.is_empty(),
        {"active_users": users.height, **_pattern_counts(offending)},
        offending,
        f"{users.height} active user(s) checked for approval, training and a refresher "
        f"within {policy.training_refresh_days} days; "
        f"{_failing(offending)} fail.",
    )


def _check_u2(inputs: AuditInputs, policy: Policy) -> CheckResult:
    users, events = inputs.users, inputs.audit_events
    separated = users.filter(pl.col("separated_at").is_not_null()).select(
        "user_id", pl.col("separated_at").alias("_sep")
    )
    after = (
        events.filter(pl.col("user_id").is_not_null())
        .join(separated, on="user_id", how="inner")
        .filter(pl.col("occurred_at") > pl.col("_sep"))
    )
    sep_detail = pl.format("separated {}", pl.col("_sep").dt.strftime("%Y-%m-%d"))
    active_after = set(after["user_id"].to_list())
    users_sep = users.join(separated, on="user_id", how="inner")
    idle_cut = _ts(inputs.as_of - dt.timedelta(days=policy.idle_days_before_disable))
    last = pl.coalesce("last_active_at", "approved_at")
    parts = [
        _offending(after, table="audit_events", id_col="event_id",
                   pattern="activity_after_separation", detail=sep_detail, keep=_EVENT_KEEP),
        _offending(
            users_sep.filter(pl.col("user_id").is_in(list(active_after))
                             | (pl.col("last_active_at") > pl.col("_sep"))),
            table="users", id_col="user_id", pattern="activity_after_separation",
            detail=sep_detail, keep=_USER_KEEP,
        ),
        _offending(users_sep.filter(pl.col("is_active").fill_null(False)), table="users",
                   id_col="user_id", pattern="separated_account_enabled",
                   detail=sep_detail, keep=_USER_KEEP),
        _offending(
            users.filter(pl.col("is_active").fill_null(False)
                         & pl.col("separated_at").is_null() & (last < idle_cut)),
            table="users", id_col="user_id", pattern="idle_account",
            detail=pl.format("last active {}", last.dt.strftime("%Y-%m-%d")),
            keep=_USER_KEEP,
        ),
    ]  # fmt: skip
    offending = _concat(parts)
    return _result(
        "U2",
        None if users.is_empty() else offending.is_empty(),
        {
            "users": users.height,
            "separated_users": separated.height,
            "events_after_separation": after.height,
            **_pattern_counts(offending),
        },
        offending,
        f"{separated.height} separated user(s): {after.height} audit record(s) after "
        f"separation; accounts idle over {policy.idle_days_before_disable} days on "
        f"{inputs.as_of:%Y-%m-%d} must be disabled.",
    )


def _check_u3(inputs: AuditInputs, policy: Policy) -> CheckResult:
    users = inputs.users
    generic = [
        u
        for u, name in users.select("user_id", "full_name").iter_rows()
        if policy.is_generic_account(u, name)
    ]
    parts = [
        _offending(users.filter(pl.col("user_id").is_in(generic)), table="users",
                   id_col="user_id", pattern="shared_account",
                   detail=pl.format("generic account {} ({})", pl.col("user_id"),
                                    pl.col("full_name")), keep=_USER_KEEP),
        _offending(users.filter(~pl.col("job_title").is_in(list(policy.job_titles))
                                | pl.col("job_title").is_null()),
                   table="users", id_col="user_id", pattern="job_title_not_on_list",
                   detail=pl.format("job title {}", pl.col("job_title")), keep=_USER_KEEP),
    ]  # fmt: skip
    offending = _concat(parts)
    return _result(
        "U3",
        None if users.is_empty() else offending.is_empty(),
        {"users": users.height, **_pattern_counts(offending)},
        offending,
        f"{users.height} account(s) checked for shared or generic logins and job titles on "
        f"the policy's list; {_failing(offending)} "
        "fail.",
    )


def _check_x1(inputs: AuditInputs, *, pending_days: float) -> CheckResult:
    hits = inputs.hits
    if hits.is_empty():
        return _result(
            "X1", None, {"hits": 0}, _empty_offending(),
            "No hits were recorded, so verification and the misread rate cannot be measured.",
        )  # fmt: skip
    decided = hits.filter(pl.col("disposition") != "pending")
    misread = decided.filter(pl.col("disposition") == "misread").height
    old = _ts(inputs.as_of - dt.timedelta(days=pending_days))
    stale = hits.filter((pl.col("disposition") == "pending") & (pl.col("captured_at") < old))
    parts = [
        _offending(stale, table="hits", id_col="hit_id", pattern="hit_not_verified",
                   detail=pl.format("pending since {}",
                                    pl.col("captured_at").dt.strftime("%Y-%m-%d")),
                   keep=("hit_id", "entry_id", "hotlist_id", "captured_at", "match_tier"))
    ]  # fmt: skip
    stops_on_misread = 0
    if inputs.outcomes is not None and inputs.outcomes.height:
        bad = inputs.outcomes.filter(pl.col("is_misread_stop").fill_null(False))
        stops_on_misread = bad.height
        parts.append(
            _offending(bad, table="outcomes", id_col="outcome_id",
                       pattern="action_before_verification",
                       detail="stop on a hit later found to be a misread",
                       keep=("outcome_id", "hit_id", "outcome_type", "occurred_at"))
        )  # fmt: skip
    offending = _concat(parts)
    rate = round(100.0 * misread / decided.height, 2) if decided.height else float("nan")
    counts: dict[str, int | float] = {
        "hits": hits.height,
        "pending": hits.height - decided.height,
        "pending_pct": round(100.0 * (hits.height - decided.height) / hits.height, 2),
        "decided": decided.height,
        "misread": misread,
        "misread_rate_pct": rate,
        "stops_on_misread": stops_on_misread,
    }
    return _result(
        "X1",
        bool(decided.height) and offending.is_empty(),
        counts,
        offending,
        f"{hits.height:,} hits: {decided.height:,} verified by a person, misread rate "
        f"{rate} %; {stale.height} left unverified over {pending_days:g} days and "
        f"{stops_on_misread} stop(s) made on a misread before the image was checked.",
    )


def _in_period(col: str, start: dt.datetime, end: dt.datetime, *, keep_null: bool) -> pl.Expr:
    inside = (pl.col(col) >= _ts(start)) & (pl.col(col) < _ts(end))
    return (pl.col(col).is_null() | inside) if keep_null else (pl.col(col).is_not_null() & inside)


def _scoped(inputs: AuditInputs) -> AuditInputs:
    """The inputs restricted to the audited year and to the department's own events.

    Events, hits and outcomes count only inside the year (an event without a time stays, so
    A1 reports it); holds, lists and entries only if they existed in the year; stored days
    only up to the year's end and ``as_of``. Imported vendor rows are another system's
    records: they leave the events here and get their own section of the report.
    """
    start, end = _year_bounds(inputs)
    own, _ = split_vendor_events(inputs.audit_events)
    outcomes = inputs.outcomes
    if outcomes is not None:
        outcomes = outcomes.filter(_in_period("occurred_at", start, end, keep_null=False))
    last_day = min(end - dt.timedelta(microseconds=1), inputs.as_of).date()
    return replace(
        inputs,
        audit_events=own.filter(_in_period("occurred_at", start, end, keep_null=True)),
        hits=inputs.hits.filter(_in_period("captured_at", start, end, keep_null=False)),
        outcomes=outcomes,
        legal_holds=inputs.legal_holds.filter(
            (pl.col("created_at").is_null() | (pl.col("created_at") < _ts(end)))
            & (pl.col("released_at").is_null() | (pl.col("released_at") >= _ts(start)))
        ),
        hotlists=inputs.hotlists.filter(
            pl.col("created_at").is_null() | (pl.col("created_at") < _ts(end))
        ),
        hotlist_entries=inputs.hotlist_entries.filter(
            pl.col("added_at").is_null() | (pl.col("added_at") < _ts(end))
        ),
        days_stored=[d for d in inputs.days_stored if d <= last_day],
    )


#: A5's default: the most days in a row without any audit record while the system ran.
DEFAULT_MAX_GAP_DAYS = 3
#: X1's default: days a hit may stay pending after its read.
DEFAULT_PENDING_DAYS = 7.0

#: Each check's rule, with its thresholds as fields filled from the policy and the run's
#: options by :func:`describe_check_rules` (the methodology section of the report).
CHECK_RULES: dict[str, str] = {
    "A1": "Every search, lookup, retro-match and export record has a timestamp, the query, "
    "the user, the organization and a purpose (Civil Code 1798.90.52). Fails on any record "
    "lacking one.",
    "A2": "Every allowed search names a case number matching {case_number_pattern} that was "
    "open when the search ran. Fails on any search that does not.",
    "A3": "Every reason is one of: {reason_codes}; {reasons_requiring_text} needs a text that "
    "is not vague (the policy's vague_reasons). Fails on any blank, vague or unlisted reason.",
    "A4": "Paths counted: {logged_paths}. Each legal hold, sharing grant and hotlist created "
    "or changed while the log ran in the year has its audit record. Fails on any without one.",
    "A5": "The audit log's hash chain verifies, and no stretch of more than {max_gap_days} "
    "days without any audit record of the department's own while the system ran.",
    "R1": "No stored day of reads is older than {retention_days} days (the store's signed "
    "retention) on the audit date outside a legal hold, and no hold partition outlives its "
    "hold.",
    "R2": "Every legal hold in force during the year names a case in the department's format "
    "and an approver; a live hold's review date has not passed.",
    "R3": "No search's window starts more than {retention_days} days before the search.",
    "R4": "Custom hotlists have an owner, a case, a reason and an expiry at most "
    "{custom_hotlist_max_days} days ahead, and no joke or personal name; entries have an "
    "adder, a reason and an expiry; no hit of the year after its entry expired.",
    "S1": "Grants in force during the year go only to: {allowed_recipient_types} (Civil Code "
    "1798.90.55); a recipient whose name reads otherwise is flagged.",
    "S2": "Consecutive sharing snapshots differ only by audited, allowed sharing changes, and "
    "the grants table matches the last audited state.",
    "S3": "No search by a federal, out-of-state or private organization, and no active "
    "account of one.",
    "S4": "No hotlist serves immigration enforcement; no entry or hit of the year in a "
    "never-alert category ({never_alert_categories}) (Gov. Code 7284.6).",
    "S5": "Every grant in force has a documented approver and basis, and a review date not "
    "passed on the audit date.",
    "U1": "Every active user is approved and was trained within {training_refresh_days} days.",
    "U2": "No audit record after a user's separation; no separated account enabled; no "
    "enabled account idle more than {idle_days_before_disable} days on the audit date.",
    "U3": "No generic or shared account (the policy's generic-account rule); every job title "
    "is one of: {job_titles}.",
    "X1": "No hit of the year pending more than {pending_days:g} days and no stop on a "
    "misread; at least one hit decided by a person (the misread rate is reported).",
    "P1": "No reason text screens as a prohibited purpose (the policy's prohibited_terms, "
    "plus {audit_extra_terms}); every bare 'ice' is listed for review.",
    "P2": "No search over {max_networks_per_search} networks; no partial plate with fewer "
    "than {min_pattern_literals} known characters or result over {broad_search_rows} rows; "
    "no user searching one plate on {repeat_min_days} or more days; no burst of "
    "{burst_min_searches} or more off-hours ({off_hours}) searches {burst_gap_minutes:g} "
    "minutes apart after {burst_idle_days:g} quiet days; no user-day of at least "
    "{volume_min_per_day} searches and {volume_factor:g} times the median user-day.",
}


def describe_check_rules(
    policy: Policy,
    *,
    retention_days: int,
    max_gap_days: int = DEFAULT_MAX_GAP_DAYS,
    pending_days: float = DEFAULT_PENDING_DAYS,
    **pattern_options: Any,
) -> dict[str, str]:
    """Each check's rule in words, with the thresholds the run used.

    Parameters
    ----------
    policy
        The policy audited against (lists, formats and limits).
    retention_days
        The store's retention.
    max_gap_days, pending_days, **pattern_options
        As given to :func:`run_checks` (defaults: the same as there).

    Returns
    -------
    dict
        Check id -> rule, for every id of :data:`CHECK_TITLES`.

    Examples
    --------
    >>> from alpr_workbench.policy import load_policy
    >>> rules = describe_check_rules(load_policy(), retention_days=30)
    >>> rules["R3"]
    "No search's window starts more than 30 days before the search."
    """
    defaults = {
        name: param.default
        for name, param in inspect.signature(flag_search_patterns).parameters.items()
        if param.default is not inspect.Parameter.empty
    }
    start, end = policy.off_hours_local
    values: dict[str, Any] = {
        **defaults,
        **pattern_options,
        "retention_days": retention_days,
        "max_gap_days": max_gap_days,
        "pending_days": pending_days,
        "logged_paths": ", ".join(LOGGED_PATHS),
        "case_number_pattern": policy.case_number_pattern,
        "reason_codes": ", ".join(policy.reason_codes),
        "reasons_requiring_text": " or ".join(policy.reasons_requiring_text) or "no reason",
        "custom_hotlist_max_days": policy.custom_hotlist_max_days,
        "allowed_recipient_types": ", ".join(policy.allowed_recipient_types),
        "never_alert_categories": ", ".join(policy.never_alert_categories),
        "training_refresh_days": policy.training_refresh_days,
        "idle_days_before_disable": policy.idle_days_before_disable,
        "job_titles": ", ".join(policy.job_titles),
        "audit_extra_terms": ", ".join(t for terms in AUDIT_EXTRA_TERMS.values() for t in terms),
        "max_networks_per_search": policy.max_networks_per_search,
        "min_pattern_literals": policy.min_pattern_literals,
        "broad_search_rows": policy.broad_search_rows,
        "off_hours": f"{start:02d}:00 to {end:02d}:00 {policy.timezone}",
    }
    return {check_id: CHECK_RULES[check_id].format(**values) for check_id in CHECK_TITLES}


def run_checks(
    inputs: AuditInputs,
    *,
    policy: Policy,
    max_gap_days: int = DEFAULT_MAX_GAP_DAYS,
    pending_days: float = DEFAULT_PENDING_DAYS,
    **pattern_options: Any,
) -> list[CheckResult]:
    """Run every audit check of docs/policy.md (A1..X1) and the search-pattern checks P1, P2.

    Parameters
    ----------
    inputs
        The frames audited (see :class:`AuditInputs`).
    policy
        The department's policy (lists, formats and thresholds).
    max_gap_days
        A5 fails on a stretch of more days than this without any audit record while the
        system ran (between the log's or the reads' first day and ``as_of``, in the year).
    pending_days
        X1 fails on a hit still pending this many days after its read.
    **pattern_options
        Passed to :func:`flag_search_patterns` (thresholds, ``home_organization``...).

    Returns
    -------
    list of CheckResult
        A1, A2, A3, A4, A5, R1, R2, R3, R4, S1, S2, S3, S4, S5, U1, U2, U3, X1, then P1
        (prohibited purposes: immigration, protected activity, civil or personal use,
        personal characteristics, "ice" held for review) and P2 (oversized scope, repeat
        tracking of one plate, off-hours bursts, per-user volume).

    Notes
    -----
    The checks judge the department's own records of ``inputs.year`` (in
    ``inputs.timezone``) only: events, hits and outcomes outside the year are not counted,
    nor are holds, lists and entries that did not exist in it, and imported vendor rows
    (:data:`VENDOR_EVENT_TYPES`) never count; the report audits those on their own.
    """
    inputs = _scoped(inputs)
    events = inputs.audit_events
    flags = flag_search_patterns(
        events,
        policy=policy,
        retention_days=inputs.retention_days,
        cases=inputs.cases,
        **pattern_options,
    )
    return [
        _check_a1(events),
        _check_from_flags(
            "A2", events, flags, ["missing_case_number", "malformed_case_number", "closed_case"],
            "for a case number in the department's format that was open at search time",
        ),
        _check_from_flags(
            "A3", events, flags,
            ["blank_reason", "vague_reason", "other_without_text", "reason_not_on_list"],
            "for a reason on the policy's list that states a purpose",
        ),
        _check_a4(inputs),
        _check_a5(inputs, max_gap_days=max_gap_days),
        _check_r1(inputs),
        _check_r2(inputs, policy),
        _check_from_flags(
            "R3", events, flags, ["lookback_past_retention"],
            f"for a time window within the {inputs.retention_days}-day retention",
        ),
        _check_r4(inputs, policy),
        _check_s1(inputs, policy),
        _check_s2(inputs),
        _check_s3(inputs, flags),
        _check_s4(inputs, policy),
        _check_s5(inputs),
        _check_u1(inputs, policy),
        _check_u2(inputs, policy),
        _check_u3(inputs, policy),
        _check_x1(inputs, pending_days=pending_days),
        _check_from_flags(
            "P1", events, flags,
            ["immigration_term", "protected_activity", "civil_use",
             "personal_characteristics", "ambiguous_ice", "protected_activity_review",
             "personal_characteristics_review", "civil_use_review", "held_for_review"],
            "for prohibited purposes in the reason text",
        ),
        _check_from_flags(
            "P2", events, flags,
            ["oversized_scope", "broad_search", "repeat_tracking", "off_hours_burst",
             "per_user_volume"],
            "for oversized scope, broad searches, repeated tracking, off-hours bursts and "
            "outlying volume",
        ),
    ]  # fmt: skip
