"""Efficacy and impact of the ALPR program, measured together (docs/policy.md).

Every function here is pure: it takes frames and returns values or frames, with keyword-only
parameters. Plate-level reads never arrive here; reads come as ``reads_daily`` (columns
``camera_id``, ``network_id``, ``day``, ``reads``), the aggregate the gate produces, and the
number of distinct vehicles as an integer the gate computed.

Definitions
-----------
Period
    ``start`` and ``end`` are inclusive UTC calendar days, the same days the gate's
    ``reads_daily`` uses. A hit belongs to the day of its ``captured_at``.
Filters
    Camera, network and hotlist-source filters apply to every input that carries them:
    reads (camera, network), hits (all three), outcomes (through their hit: an outcome counts
    when its hit is in the filtered hits, whenever it occurred). Searches carry no camera or
    source, so only the period applies to them. Reads carry no hotlist source, so the hit rate
    under a source filter is that source's hits over all reads.
Dispositioned hits
    Hits a person has decided (disposition other than ``pending``). The confirmed-hit rate and
    the misread rate divide by them, so undecided hits do not dilute either rate.
Funnel
    Distinct hits reaching each stage: all hits; confirmed hits; confirmed hits followed by a
    stop; confirmed hits followed by a recovery or an arrest; confirmed hits followed by a
    cleared case. Stops on misread hits stay out of the funnel and are counted as harm
    (``misread_stops``).
Camera evenness
    ``1 - Gini`` of the reads per camera over the cameras that appear in ``reads_daily`` for
    the period: 1 when every camera reads the same, falling towards ``1/n`` when one camera
    of ``n`` reads everything.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.schema import load_table

__all__ = [
    "READS_DAILY_SCHEMA",
    "EfficacyReport",
    "Rate",
    "efficacy_report",
    "monthly_trend",
    "wilson_interval",
]

#: Schema of the read aggregate the gate hands to analytics (no plate in it).
READS_DAILY_SCHEMA = pl.Schema(
    {"camera_id": pl.String(), "network_id": pl.String(), "day": pl.Date(), "reads": pl.Int64()}
)

SEARCH_EVENT_TYPES: tuple[str, ...] = ("search", "vendor_search")
FUNNEL_STAGES: tuple[str, ...] = ("hits", "confirmed", "stop", "recovery_or_arrest", "case_cleared")

_REQUIRED: dict[str, tuple[str, ...]] = {
    "reads_daily": ("camera_id", "network_id", "day", "reads"),
    "hits": (
        "hit_id",
        "read_id",
        "hotlist_source",
        "camera_id",
        "network_id",
        "captured_at",
        "disposition",
    ),
    "outcomes": ("hit_id", "outcome_type", "value_usd", "is_misread_stop"),
    "audit_events": ("event_type", "occurred_at", "outcome"),
    "networks": ("network_id", "is_department_owned"),
}


def wilson_interval(successes: int, trials: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion, as fractions in [0, 1].

    Parameters
    ----------
    successes
        Number of successes, ``0 <= successes <= trials``.
    trials
        Number of trials; must be positive.
    z
        Standard normal quantile (1.96 gives a 95 % interval).

    Returns
    -------
    tuple of float
        Lower and upper bound.

    Raises
    ------
    ValueError
        If ``trials`` is not positive or ``successes`` is outside ``[0, trials]``.

    Examples
    --------
    >>> lo, hi = wilson_interval(5, 10)
    >>> round(lo, 4), round(hi, 4)
    (0.2366, 0.7634)
    >>> wilson_interval(0, 10)[0]
    0.0
    """
    if trials <= 0:
        raise ValueError("trials must be positive")
    if not 0 <= successes <= trials:
        raise ValueError("successes must lie between 0 and trials")
    p = successes / trials
    z2 = z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """A proportion in percent with its Wilson 95 % interval.

    ``value_pct``, ``low_pct`` and ``high_pct`` are ``None`` when the denominator is 0.

    Examples
    --------
    >>> r = Rate.of(1, 4)
    >>> r.value_pct, round(r.low_pct, 2), round(r.high_pct, 2)
    (25.0, 4.56, 69.94)
    >>> Rate.of(0, 0).value_pct is None
    True
    """

    value_pct: float | None
    low_pct: float | None
    high_pct: float | None
    numerator: int
    denominator: int

    @classmethod
    def of(cls, numerator: int, denominator: int) -> Rate:
        """Build the rate ``numerator / denominator``.

        A numerator above the denominator (possible when one read matches several entries)
        keeps its true value; the interval is then computed at the denominator.
        """
        numerator, denominator = int(numerator), int(denominator)
        if denominator <= 0:
            return cls(None, None, None, numerator, denominator)
        lo, hi = wilson_interval(min(numerator, denominator), denominator)
        return cls(100 * numerator / denominator, 100 * lo, 100 * hi, numerator, denominator)


@dataclass(frozen=True)
class EfficacyReport:
    """Efficacy of the program and its impact, for one period and one set of filters.

    Attributes
    ----------
    start, end
        Inclusive UTC days of the period; ``period_days`` days.
    reads, unique_vehicles, cameras
        Reads in the period, distinct vehicles (as computed by the gate), cameras with reads.
    camera_days
        Camera-days with at least one read.
    reads_per_camera_per_day
        ``reads / camera_days`` (throughput on days a camera was reading); ``None`` without
        reads.
    camera_uptime_pct
        ``camera_days`` over ``cameras * period_days``: a camera installed or removed within
        the period counts as down on its other days.
    hits, hit_rate
        Hits and hits per read.
    dispositioned_hits, confirmed_hits, misread_hits
        Hits a person decided (not ``pending``), and those confirmed or found misread.
    confirmed_hit_rate, misread_rate
        Confirmed and misread hits over dispositioned hits.
    stops, recoveries, arrests, cases_cleared
        Outcome records of each type that followed the period's hits.
    recovered_value_usd
        Sum of ``value_usd`` over recoveries.
    budget_prorated_usd, cost_per_recovery_usd
        Budget times ``period_days / 365``, and that over recoveries (``None`` without any).
    staff_hours_saved, staff_hours_assumption
        Recoveries times the assumed hours per recovery, and that assumption in words.
    funnel
        ``(stage, distinct hits)`` pairs; see the module docstring.
    reads_never_matched_pct
        Share of reads that no hit references.
    misread_stops, stops_without_arrest
        Stops on misread hits; stops whose hit led to no arrest.
    searches, searches_refused
        Search and vendor-search audit events in the period, and those refused.
    private_network_reads_pct
        Share of reads from networks the department does not own.
    camera_evenness
        ``1 - Gini`` of reads per camera (1 = perfectly even); ``None`` without reads.
    hits_by_source
        One row per hotlist source: ``hotlist_source``, ``hits``, ``confirmed``, ``misread``.
    """

    start: dt.date
    end: dt.date
    period_days: int
    # efficacy
    reads: int
    unique_vehicles: int
    cameras: int
    camera_days: int
    reads_per_camera_per_day: float | None
    camera_uptime_pct: float | None
    hits: int
    hit_rate: Rate
    dispositioned_hits: int
    confirmed_hits: int
    misread_hits: int
    confirmed_hit_rate: Rate
    misread_rate: Rate
    stops: int
    recoveries: int
    recovered_value_usd: float
    arrests: int
    cases_cleared: int
    budget_prorated_usd: float
    cost_per_recovery_usd: float | None
    staff_hours_saved: float
    staff_hours_assumption: str
    funnel: tuple[tuple[str, int], ...]
    # impact and harms, beside them
    reads_never_matched_pct: float | None
    misread_stops: int
    stops_without_arrest: int
    searches: int
    searches_refused: int
    private_network_reads_pct: float | None
    camera_evenness: float | None
    hits_by_source: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready dictionary with snake_case keys.

        Rates become ``<name>_pct`` with ``<name>_low_pct`` and ``<name>_high_pct`` (Wilson
        95 %); the funnel becomes ``funnel_<stage>``; hits by source become
        ``source_<source>_hits``, ``source_<source>_confirmed`` and ``source_<source>_misread``.
        """
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Rate):
                out[f"{name}_pct"] = value.value_pct
                out[f"{name}_low_pct"] = value.low_pct
                out[f"{name}_high_pct"] = value.high_pct
            elif isinstance(value, dt.date):
                out[name] = value.isoformat()
            elif name == "funnel":
                out.update({f"funnel_{stage}": n for stage, n in value})
            elif name == "hits_by_source":
                for row in value.iter_rows(named=True):
                    src = row["hotlist_source"]
                    for col in ("hits", "confirmed", "misread"):
                        out[f"source_{src}_{col}"] = int(row[col])
            else:
                out[name] = value
        return out


def _require(frame: pl.DataFrame, name: str) -> None:
    missing = [c for c in _REQUIRED[name] if c not in frame.columns]
    if missing:
        raise WorkbenchError(f"{name} lacks column(s) {', '.join(missing)}")


def _in(col: str, values: Sequence[str] | None) -> pl.Expr:
    if values is None:
        return pl.lit(True)
    return pl.col(col).is_in(list(values))


def _day(col: str) -> pl.Expr:
    return pl.col(col).dt.date()


def _gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal); ``values`` must sum above 0."""
    x = np.sort(values.astype(np.float64))
    n = len(x)
    ranks = np.arange(1, n + 1)
    return float(2 * np.sum(ranks * x) / (n * x.sum()) - (n + 1) / n)


def _hit_sources() -> tuple[str, ...]:
    enum = load_table("hits").field("hotlist_source").enum
    return tuple(enum or ())


def _hits_by_source(hits: pl.DataFrame, sources: Sequence[str] | None) -> pl.DataFrame:
    counted = hits.group_by("hotlist_source").agg(
        pl.len().cast(pl.Int64).alias("hits"),
        (pl.col("disposition") == "confirmed").sum().cast(pl.Int64).alias("confirmed"),
        (pl.col("disposition") == "misread").sum().cast(pl.Int64).alias("misread"),
    )
    declared = list(sources) if sources is not None else list(_hit_sources())
    extra = sorted(set(counted["hotlist_source"].drop_nulls()) - set(declared))
    order = pl.DataFrame({"hotlist_source": declared + extra}, schema={"hotlist_source": pl.String})
    return order.join(counted, on="hotlist_source", how="left", maintain_order="left").with_columns(
        pl.col("hits", "confirmed", "misread").fill_null(0)
    )


def efficacy_report(
    *,
    reads_daily: pl.DataFrame,
    unique_vehicles: int,
    hits: pl.DataFrame,
    outcomes: pl.DataFrame,
    audit_events: pl.DataFrame,
    networks: pl.DataFrame,
    start: dt.date,
    end: dt.date,
    program_budget_usd: float,
    staff_hours_saved_per_recovery: float,
    camera_ids: Sequence[str] | None = None,
    network_ids: Sequence[str] | None = None,
    hotlist_sources: Sequence[str] | None = None,
) -> EfficacyReport:
    """Measure efficacy and impact of the program over one period.

    Parameters
    ----------
    reads_daily
        Read counts per camera and UTC day (:data:`READS_DAILY_SCHEMA`), from the gate.
    unique_vehicles
        Distinct vehicles read in the period, as the gate computed it (passed through).
    hits, outcomes, audit_events, networks
        Frames with the declared columns of those tables (only the columns used are needed).
    start, end
        First and last UTC day of the period, inclusive.
    program_budget_usd
        Yearly program cost; prorated by ``period_days / 365``.
    staff_hours_saved_per_recovery
        Assumed investigator hours one ALPR-assisted recovery saves (a setting, stated in the
        report as an assumption).
    camera_ids, network_ids, hotlist_sources
        Restrict the report; ``None`` keeps everything. See the module docstring for how each
        filter reaches each input.

    Returns
    -------
    EfficacyReport

    Raises
    ------
    WorkbenchError
        If ``end`` is before ``start`` or an input lacks a needed column.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> from alpr_workbench.schema import empty_frame
    >>> daily = pl.DataFrame(
    ...     {"camera_id": ["c1", "c2"], "network_id": "n", "day": [dt.date(2026, 1, 1)] * 2,
    ...      "reads": [600, 400]}
    ... )
    >>> r = efficacy_report(
    ...     reads_daily=daily, unique_vehicles=700, hits=empty_frame("hits"),
    ...     outcomes=empty_frame("outcomes"), audit_events=empty_frame("audit_events"),
    ...     networks=empty_frame("networks"), start=dt.date(2026, 1, 1),
    ...     end=dt.date(2026, 1, 1), program_budget_usd=365.0,
    ...     staff_hours_saved_per_recovery=6.0,
    ... )
    >>> r.reads, r.reads_per_camera_per_day, round(r.camera_evenness, 3), r.cost_per_recovery_usd
    (1000, 500.0, 0.9, None)
    """
    if end < start:
        raise WorkbenchError(f"period ends ({end}) before it starts ({start})")
    for frame, name in (
        (reads_daily, "reads_daily"),
        (hits, "hits"),
        (outcomes, "outcomes"),
        (audit_events, "audit_events"),
        (networks, "networks"),
    ):
        _require(frame, name)
    period_days = (end - start).days + 1

    # Reads: period, camera, network.
    reads_f = (
        reads_daily.lazy()
        .filter(
            pl.col("day").is_between(start, end)
            & _in("camera_id", camera_ids)
            & _in("network_id", network_ids)
        )
        .group_by("camera_id", "network_id", "day")
        .agg(pl.col("reads").cast(pl.Int64).sum())
    )
    private = networks.filter(pl.col("is_department_owned").not_()).get_column("network_id")
    per_camera, totals = pl.collect_all(
        [
            reads_f.group_by("camera_id").agg(pl.col("reads").sum()),
            reads_f.select(
                pl.col("reads").sum().alias("reads"),
                (pl.col("reads") > 0).sum().alias("camera_days"),
                pl.col("camera_id").filter(pl.col("reads") > 0).n_unique().alias("cameras"),
                pl.col("reads")
                .filter(pl.col("network_id").is_in(private.implode()))
                .sum()
                .alias("private_reads"),
            ),
        ]
    )
    reads = int(totals["reads"][0] or 0)
    camera_days = int(totals["camera_days"][0] or 0)
    cameras = int(totals["cameras"][0] or 0)
    private_reads = int(totals["private_reads"][0] or 0)

    # Hits: period, camera, network, source. Outcomes and their hits: through hit_id.
    hits_f = hits.filter(
        _day("captured_at").is_between(start, end)
        & _in("camera_id", camera_ids)
        & _in("network_id", network_ids)
        & _in("hotlist_source", hotlist_sources)
    ).select("hit_id", "read_id", "hotlist_source", "disposition")
    out_f = outcomes.select("hit_id", "outcome_type", "value_usd", "is_misread_stop").join(
        hits_f.select("hit_id", "disposition"), on="hit_id", how="inner"
    )

    n_hits = hits_f.height
    disp = hits_f.get_column("disposition")
    dispositioned = int((disp != "pending").sum())
    confirmed = int((disp == "confirmed").sum())
    misread = int((disp == "misread").sum())

    typ = pl.col("outcome_type")
    is_stop = typ == "stop"
    arrested = out_f.filter(typ == "arrest").get_column("hit_id").unique().implode()
    o = out_f.select(
        is_stop.sum().alias("stops"),
        (typ == "recovery").sum().alias("recoveries"),
        (typ == "arrest").sum().alias("arrests"),
        (typ == "case_cleared").sum().alias("cases_cleared"),
        pl.col("value_usd").filter(typ == "recovery").sum().alias("value_usd"),
        (
            is_stop
            & (pl.col("is_misread_stop").fill_null(False) | (pl.col("disposition") == "misread"))
        )
        .sum()
        .alias("misread_stops"),
        (is_stop & pl.col("hit_id").is_in(arrested).not_()).sum().alias("stops_without_arrest"),
    ).row(0, named=True)
    recoveries = int(o["recoveries"])

    conf_out = out_f.filter(pl.col("disposition") == "confirmed")

    def reached(*types: str) -> int:
        return conf_out.filter(typ.is_in(types)).get_column("hit_id").n_unique()

    funnel = (
        ("hits", n_hits),
        ("confirmed", confirmed),
        ("stop", reached("stop")),
        ("recovery_or_arrest", reached("recovery", "arrest")),
        ("case_cleared", reached("case_cleared")),
    )

    searches = audit_events.filter(
        pl.col("event_type").is_in(SEARCH_EVENT_TYPES) & _day("occurred_at").is_between(start, end)
    )
    n_refused = int((searches.get_column("outcome") == "refused").sum())

    budget = float(program_budget_usd) * period_days / 365
    unmatched = reads - min(hits_f.get_column("read_id").n_unique(), reads)
    totals_per_camera = per_camera.get_column("reads").to_numpy()
    evenness = 1.0 - _gini(totals_per_camera) if len(totals_per_camera) and reads > 0 else None
    hours = float(staff_hours_saved_per_recovery)
    return EfficacyReport(
        start=start,
        end=end,
        period_days=period_days,
        reads=reads,
        unique_vehicles=int(unique_vehicles),
        cameras=cameras,
        camera_days=camera_days,
        reads_per_camera_per_day=reads / camera_days if camera_days else None,
        camera_uptime_pct=100 * camera_days / (cameras * period_days) if cameras else None,
        hits=n_hits,
        hit_rate=Rate.of(n_hits, reads),
        dispositioned_hits=dispositioned,
        confirmed_hits=confirmed,
        misread_hits=misread,
        confirmed_hit_rate=Rate.of(confirmed, dispositioned),
        misread_rate=Rate.of(misread, dispositioned),
        stops=int(o["stops"]),
        recoveries=recoveries,
        recovered_value_usd=float(o["value_usd"] or 0.0),
        arrests=int(o["arrests"]),
        cases_cleared=int(o["cases_cleared"]),
        budget_prorated_usd=budget,
        cost_per_recovery_usd=budget / recoveries if recoveries else None,
        staff_hours_saved=recoveries * hours,
        staff_hours_assumption=(
            f"assumes {hours:g} investigator hours saved per ALPR-assisted recovery "
            "(a setting, not a measurement)"
        ),
        funnel=funnel,
        reads_never_matched_pct=100 * unmatched / reads if reads else None,
        misread_stops=int(o["misread_stops"]),
        stops_without_arrest=int(o["stops_without_arrest"]),
        searches=searches.height,
        searches_refused=n_refused,
        private_network_reads_pct=100 * private_reads / reads if reads else None,
        camera_evenness=evenness,
        hits_by_source=_hits_by_source(hits_f, hotlist_sources),
    )


def monthly_trend(
    *, reads_daily: pl.DataFrame, hits: pl.DataFrame, outcomes: pl.DataFrame
) -> pl.DataFrame:
    """Reads, hits, confirmed hits, recoveries and arrests per calendar month (UTC).

    Outcomes count in the month of their hit (as in :func:`efficacy_report`); outcomes whose
    hit is not in ``hits`` are left out. Filter the inputs first to trend a subset.

    Parameters
    ----------
    reads_daily
        Read counts per camera and UTC day (:data:`READS_DAILY_SCHEMA`).
    hits, outcomes
        Hits and outcomes with their declared columns.

    Returns
    -------
    polars.DataFrame
        Columns ``month`` (first day, date), ``reads``, ``hits``, ``confirmed``,
        ``recoveries``, ``arrests`` (Int64), one row per month with reads or hits, in order.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> from alpr_workbench.schema import empty_frame
    >>> daily = pl.DataFrame({"camera_id": "c", "network_id": "n",
    ...     "day": [dt.date(2026, 1, 31), dt.date(2026, 2, 1)], "reads": [5, 7]})
    >>> monthly_trend(reads_daily=daily, hits=empty_frame("hits"),
    ...     outcomes=empty_frame("outcomes"))["reads"].to_list()
    [5, 7]
    """
    return trend(reads_daily=reads_daily, hits=hits, outcomes=outcomes, every="1mo").rename(
        {"period_start": "month"}
    )


def trend(
    *,
    reads_daily: pl.DataFrame,
    hits: pl.DataFrame,
    outcomes: pl.DataFrame,
    every: str = "1mo",
) -> pl.DataFrame:
    """Reads, hits, confirmed hits, recoveries and arrests per day, week or month (UTC).

    Outcomes count in the bucket of their hit, as in :func:`monthly_trend`.

    Parameters
    ----------
    reads_daily, hits, outcomes
        As for :func:`monthly_trend`.
    every
        Polars truncation interval: ``"1d"``, ``"1w"`` or ``"1mo"``.

    Returns
    -------
    polars.DataFrame
        ``period_start`` (date), ``reads``, ``hits``, ``confirmed``, ``recoveries``,
        ``arrests`` (Int64), one row per bucket with reads or hits, in order.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> from alpr_workbench.schema import empty_frame
    >>> daily = pl.DataFrame({"camera_id": "c", "network_id": "n",
    ...     "day": [dt.date(2026, 1, 31), dt.date(2026, 2, 1)], "reads": [5, 7]})
    >>> trend(reads_daily=daily, hits=empty_frame("hits"), outcomes=empty_frame("outcomes"),
    ...     every="1d")["reads"].to_list()
    [5, 7]
    """
    _require(reads_daily, "reads_daily")
    _require(hits, "hits")
    _require(outcomes, "outcomes")
    bucket = pl.col("period_start")
    r = reads_daily.group_by(pl.col("day").dt.truncate(every).alias("period_start")).agg(
        pl.col("reads").cast(pl.Int64).sum()
    )
    h = hits.select(
        "hit_id", "disposition", _day("captured_at").dt.truncate(every).alias("period_start")
    )
    hm = h.group_by(bucket).agg(
        pl.len().cast(pl.Int64).alias("hits"),
        (pl.col("disposition") == "confirmed").sum().cast(pl.Int64).alias("confirmed"),
    )
    om = (
        outcomes.select("hit_id", "outcome_type")
        .join(h.select("hit_id", "period_start"), on="hit_id", how="inner")
        .group_by(bucket)
        .agg(
            (pl.col("outcome_type") == "recovery").sum().cast(pl.Int64).alias("recoveries"),
            (pl.col("outcome_type") == "arrest").sum().cast(pl.Int64).alias("arrests"),
        )
    )
    cols = ["reads", "hits", "confirmed", "recoveries", "arrests"]
    return (
        r.join(hm, on="period_start", how="full", coalesce=True)
        .join(om, on="period_start", how="left")
        .with_columns(bucket.cast(pl.Date), pl.col(cols).fill_null(0).cast(pl.Int64))
        .select("period_start", *cols)
        .sort("period_start")
    )
