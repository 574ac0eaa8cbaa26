"""Patterns inside a case: pure functions on the rows a case-gated search returned.

The analyst runs a search through the gate (:meth:`alpr_workbench.governance.Gate.search`),
which checks the case, the reason and the scope and audits the query; these functions then
describe what came back: when the vehicles pass (hour of day, day of week, in the
department's local time), which plates recur, and which vehicles were read at two places
within a time window. They never read the store themselves, so they see only what the
search was allowed to return.

:func:`eligible_case_assignments` lists, from the registry tables, the open cases and the
assigned users who may search them now: the same rules the gate applies, so a notebook or a
test can pick a case and a user without guessing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from alpr_workbench.errors import PatternTooBroad, WorkbenchError
from alpr_workbench.governance.registry import User, user_problem
from alpr_workbench.governance.screening import screen_text
from alpr_workbench.policy import Policy

__all__ = [
    "eligible_case_assignments",
    "repeat_sightings",
    "seen_at_both",
    "sightings_by_hour",
    "sightings_by_weekday",
]

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _require(rows: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise WorkbenchError(f"search rows lack the columns {missing}")


def _local(timezone: str) -> pl.Expr:
    return pl.col("captured_at").dt.convert_time_zone(timezone)


def eligible_case_assignments(
    cases: pl.DataFrame, users: pl.DataFrame, *, policy: Policy, now: dt.datetime
) -> pl.DataFrame:
    """Open cases, with each assigned user who may search in them at ``now``.

    A pair is kept when the case is open, its offense type is a reason code that needs no
    free text, its title passes the prohibited-purpose screen, and the user passes the
    gate's user checks (account, approval, job title, training), works for an allowed
    organization type and holds a role that may search.

    Parameters
    ----------
    cases, users
        The ``cases`` and ``users`` registry tables.
    policy
        The policy the gate enforces.
    now
        The time (UTC) of the intended search.

    Returns
    -------
    polars.DataFrame
        ``case_number``, ``title``, ``reason_code``, ``user_id``, ``role``, ordered by case
        (most recently opened first) and user.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> from alpr_workbench.policy import load_policy
    >>> now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    >>> cases = pl.DataFrame({"case_number": ["BPD-2026-000001", "BPD-2026-000002"],
    ...     "title": ["Burglary - Olive Ave", "Burglary - Main St"],
    ...     "offense_type": ["burglary", "burglary"], "status": ["open", "closed"],
    ...     "opened_at": [now, now], "assigned_user_ids": [["ana", "bo"], ["ana"]]})
    >>> users = pl.DataFrame({"user_id": ["ana", "bo"], "full_name": ["Ana", "Bo"],
    ...     "role": ["analyst", "auditor"], "organization": "Burbank Police Department",
    ...     "organization_type": "ca_local_agency", "job_title": ["Crime Analyst", "Auditor"],
    ...     "is_active": True, "approved_at": now, "trained_at": now})
    >>> eligible_case_assignments(cases, users, policy=load_policy(), now=now).rows()
    [('BPD-2026-000001', 'Burglary - Olive Ave', 'burglary', 'ana', 'analyst')]
    """
    fields = set(User.model_fields)
    may_search = {}
    for row in users.iter_rows(named=True):
        user = User(**{k: v for k, v in row.items() if k in fields})
        if (
            user_problem(user, policy=policy, now=now) is None
            and user.organization_type in policy.allowed_recipient_types
            and policy.may(user.role, "search")
        ):
            may_search[user.user_id] = user.role
    reasons = [r for r in policy.reason_codes if r not in policy.reasons_requiring_text]
    open_cases = cases.filter(
        (pl.col("status") == "open") & pl.col("offense_type").is_in(reasons)
    ).sort("opened_at", "case_number", descending=[True, False])
    pairs = [
        (row["case_number"], row["title"], row["offense_type"], user, may_search[user])
        for row in open_cases.iter_rows(named=True)
        if screen_text({"case_title": row["title"]}, policy=policy).verdict == "pass"
        for user in sorted(row["assigned_user_ids"] or ())
        if user in may_search
    ]
    return pl.DataFrame(
        pairs,
        schema={
            "case_number": pl.String,
            "title": pl.String,
            "reason_code": pl.String,
            "user_id": pl.String,
            "role": pl.String,
        },
        orient="row",
    )


def sightings_by_hour(rows: pl.DataFrame, *, timezone: str = "UTC") -> pl.DataFrame:
    """Reads per hour of the day (local time), all 24 hours present.

    Parameters
    ----------
    rows
        Search rows with ``captured_at`` (UTC).
    timezone
        IANA zone the hours are counted in, e.g. the policy's ``America/Los_Angeles``.

    Returns
    -------
    polars.DataFrame
        ``hour`` (0 to 23) and ``reads``.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> rows = pl.DataFrame({"captured_at": [dt.datetime(2026, 7, 1, 15, 5, tzinfo=dt.UTC)]})
    >>> by_hour = sightings_by_hour(rows, timezone="America/Los_Angeles")
    >>> by_hour.height, by_hour.filter(pl.col("reads") > 0).rows()
    (24, [(8, 1)])
    """
    _require(rows, ["captured_at"])
    counts = rows.group_by(_local(timezone).dt.hour().cast(pl.Int8).alias("hour")).agg(
        pl.len().cast(pl.Int64).alias("reads")
    )
    hours = pl.DataFrame({"hour": pl.Series(range(24), dtype=pl.Int8)})
    return hours.join(counts, on="hour", how="left").with_columns(pl.col("reads").fill_null(0))


def sightings_by_weekday(rows: pl.DataFrame, *, timezone: str = "UTC") -> pl.DataFrame:
    """Reads per day of the week (local time), Monday to Sunday, all seven present.

    Returns
    -------
    polars.DataFrame
        ``weekday`` (1 = Monday to 7 = Sunday), ``day`` (its name) and ``reads``.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> rows = pl.DataFrame({"captured_at": [dt.datetime(2026, 11, 2, 3, tzinfo=dt.UTC)]})
    >>> sightings_by_weekday(rows, timezone="America/Los_Angeles").filter(
    ...     pl.col("reads") > 0).rows()
    [(7, 'Sunday', 1)]
    """
    _require(rows, ["captured_at"])
    counts = rows.group_by(_local(timezone).dt.weekday().cast(pl.Int8).alias("weekday")).agg(
        pl.len().cast(pl.Int64).alias("reads")
    )
    days = pl.DataFrame(
        {"weekday": pl.Series(range(1, 8), dtype=pl.Int8), "day": list(_WEEKDAYS)}
    )
    return days.join(counts, on="weekday", how="left").with_columns(pl.col("reads").fill_null(0))


def repeat_sightings(
    rows: pl.DataFrame, *, min_sightings: int = 2, min_days: int = 1, timezone: str = "UTC"
) -> pl.DataFrame:
    """Plates read at least ``min_sightings`` times on ``min_days`` days, most often first.

    With ``min_sightings=1`` this lists every plate a partial-plate search matched, as
    candidates with their description.

    Parameters
    ----------
    rows
        Search rows with ``plate``, ``camera_id`` and ``captured_at``; ``vehicle_make``,
        ``vehicle_color`` and ``vehicle_type`` are summarised when present.
    min_sightings
        Fewest reads for a plate to be listed.
    min_days
        Fewest distinct local days with a read for a plate to be listed.
    timezone
        Zone in which distinct days are counted.

    Returns
    -------
    polars.DataFrame
        ``plate``, ``sightings``, ``cameras`` (distinct), ``days`` (distinct local days),
        ``first_seen_at``, ``last_seen_at`` and, when present, the most frequent
        ``vehicle_make``, ``vehicle_color``, ``vehicle_type``.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> t = dt.datetime(2026, 11, 2, 18, tzinfo=dt.UTC)
    >>> rows = pl.DataFrame({"plate": ["7ABC123", "7ABC123", "8XYZ999"],
    ...     "camera_id": ["a", "b", "a"], "captured_at": [t, t + dt.timedelta(days=1), t]})
    >>> repeat_sightings(rows).select("plate", "sightings", "cameras", "days").rows()
    [('7ABC123', 2, 2, 2)]
    >>> repeat_sightings(rows, min_days=3).height
    0
    """
    _require(rows, ["plate", "camera_id", "captured_at"])
    if min_sightings < 1:
        raise WorkbenchError("min_sightings must be at least 1")
    if min_days < 1:
        raise WorkbenchError("min_days must be at least 1")
    described = [c for c in ("vehicle_make", "vehicle_color", "vehicle_type") if c in rows.columns]
    return (
        rows.group_by("plate")
        .agg(
            pl.len().cast(pl.Int64).alias("sightings"),
            pl.col("camera_id").n_unique().cast(pl.Int64).alias("cameras"),
            _local(timezone).dt.date().n_unique().cast(pl.Int64).alias("days"),
            pl.col("captured_at").min().alias("first_seen_at"),
            pl.col("captured_at").max().alias("last_seen_at"),
            *[pl.col(c).drop_nulls().mode().sort().first().alias(c) for c in described],
        )
        .filter((pl.col("sightings") >= min_sightings) & (pl.col("days") >= min_days))
        .sort(["sightings", "plate"], descending=[True, False])
    )


#: Pairs of reads (same plate, one at each place) :func:`seen_at_both` compares at most; a
#: larger request is refused before the pairs are built (each pair is a row in memory).
MAX_PAIRS = 5_000_000


def seen_at_both(
    rows: pl.DataFrame,
    *,
    place_a: Sequence[str],
    place_b: Sequence[str],
    within: dt.timedelta,
) -> pl.DataFrame:
    """Vehicles read at place A and at place B within ``within`` of each other.

    A place is a set of cameras (e.g. the cameras around a scene). For each plate the
    closest pair of reads is kept; the gap is B's time minus A's (negative when the
    vehicle passed B first).

    Parameters
    ----------
    rows
        Search rows with ``plate``, ``camera_id`` and ``captured_at``.
    place_a, place_b
        Camera ids of each place.
    within
        Largest gap between the two reads.

    Returns
    -------
    polars.DataFrame
        ``plate``, ``a_camera_id``, ``a_at``, ``b_camera_id``, ``b_at``, ``gap``
        (a duration), closest pairs first.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> t = dt.datetime(2026, 11, 2, 18, tzinfo=dt.UTC)
    >>> rows = pl.DataFrame({"plate": ["7ABC123", "7ABC123", "8XYZ999", "8XYZ999"],
    ...     "camera_id": ["a", "b", "a", "b"],
    ...     "captured_at": [t, t + dt.timedelta(minutes=12), t, t + dt.timedelta(hours=5)]})
    >>> got = seen_at_both(rows, place_a=["a"], place_b=["b"], within=dt.timedelta(minutes=30))
    >>> got.select("plate", "gap").rows()
    [('7ABC123', datetime.timedelta(seconds=720))]
    """
    _require(rows, ["plate", "camera_id", "captured_at"])
    if within < dt.timedelta(0):
        raise WorkbenchError("within must not be negative")
    cols = ["plate", "camera_id", "captured_at"]
    a = rows.filter(pl.col("camera_id").is_in(list(place_a))).select(cols)
    b = rows.filter(pl.col("camera_id").is_in(list(place_b))).select(cols)
    candidates = (
        a.group_by("plate").len()
        .join(b.group_by("plate").len(), on="plate")
        .select((pl.col("len").cast(pl.Int64) * pl.col("len_right").cast(pl.Int64)).sum())
        .item()
    )
    if (candidates or 0) > MAX_PAIRS:
        raise PatternTooBroad(
            f"{candidates:,} pairs of reads to compare (at most {MAX_PAIRS:,}): a plate is read "
            "too often at both places; narrow the places, the window or the plate pattern"
        )
    pairs = (
        a.rename({"camera_id": "a_camera_id", "captured_at": "a_at"})
        .join(b.rename({"camera_id": "b_camera_id", "captured_at": "b_at"}), on="plate")
        .with_columns((pl.col("b_at") - pl.col("a_at")).alias("gap"))
        .filter(pl.col("gap").abs() <= within)
        # A camera in both places must not pair a read with itself.
        .filter((pl.col("a_camera_id") != pl.col("b_camera_id")) | (pl.col("gap") != 0))
    )
    return (
        pairs.sort(pl.col("gap").abs(), "a_at")
        .unique("plate", keep="first", maintain_order=True)
        .select("plate", "a_camera_id", "a_at", "b_camera_id", "b_at", "gap")
    )
