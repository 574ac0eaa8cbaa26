"""Efficacy report for a synthetic year, beside a straightforward Polars baseline.

Generates the synthetic city for a full year (default 365 days at scale 1), aggregates each
day's reads into ``reads_daily`` (camera, network, day, reads) the way the gate does and
discards the reads, then times :func:`alpr_workbench.analytics.efficacy_report` over the
whole year against a baseline that computes the same figures naively (a separate filter or
join per metric), in the same run, and checks they agree. Target: report < 2 s.

    python benchmarks/bench_efficacy.py [--days 365] [--scale 1.0] [--repeats 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from alpr_workbench.analytics import efficacy_report, monthly_trend
from alpr_workbench.synth import CityConfig, generate_city, generate_day

console = Console(width=120)


def _timed(fn: Any, repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _baseline(
    *,
    reads_daily: pl.DataFrame,
    hits: pl.DataFrame,
    outcomes: pl.DataFrame,
    audit_events: pl.DataFrame,
    networks: pl.DataFrame,
    start: dt.date,
    end: dt.date,
    budget: float,
) -> dict[str, Any]:
    """The headline figures, one filter or join per metric (what a notebook would do)."""
    in_period = pl.col("day").is_between(start, end)
    hit_in_period = pl.col("captured_at").dt.date().is_between(start, end)
    reads = reads_daily.filter(in_period)["reads"].sum()
    n_hits = hits.filter(hit_in_period).height
    decided = hits.filter(hit_in_period & (pl.col("disposition") != "pending")).height
    confirmed = hits.filter(hit_in_period & (pl.col("disposition") == "confirmed")).height
    misread = hits.filter(hit_in_period & (pl.col("disposition") == "misread")).height

    def outcome(kind: str) -> pl.DataFrame:
        return outcomes.join(hits.filter(hit_in_period), on="hit_id").filter(
            pl.col("outcome_type") == kind
        )

    recoveries = outcome("recovery").height
    value = outcome("recovery")["value_usd"].sum()
    arrests = outcome("arrest").height
    stops = outcome("stop").height
    cleared = outcome("case_cleared").height
    misread_stops = outcome("stop").filter(pl.col("is_misread_stop")).height
    arrested = outcome("arrest")["hit_id"].unique()
    stops_without_arrest = (
        outcome("stop").filter(~pl.col("hit_id").is_in(arrested.implode())).height
    )
    matched = hits.filter(hit_in_period)["read_id"].n_unique()
    private_ids = networks.filter(~pl.col("is_department_owned"))["network_id"]
    private = reads_daily.filter(in_period & pl.col("network_id").is_in(private_ids.implode()))[
        "reads"
    ].sum()
    searches = audit_events.filter(
        pl.col("event_type").is_in(["search", "vendor_search"])
        & pl.col("occurred_at").dt.date().is_between(start, end)
    )
    days = (end - start).days + 1
    return {
        "reads": reads,
        "hits": n_hits,
        "hit_rate_pct": 100 * n_hits / reads,
        "confirmed_hit_rate_pct": 100 * confirmed / decided,
        "misread_rate_pct": 100 * misread / decided,
        "stops": stops,
        "recoveries": recoveries,
        "recovered_value_usd": value,
        "arrests": arrests,
        "cases_cleared": cleared,
        "misread_stops": misread_stops,
        "stops_without_arrest": stops_without_arrest,
        "reads_never_matched_pct": 100 * (reads - matched) / reads,
        "private_network_reads_pct": 100 * private / reads,
        "searches": searches.height,
        "searches_refused": searches.filter(pl.col("outcome") == "refused").height,
        "cost_per_recovery_usd": budget * days / 365 / recoveries if recoveries else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    t0 = time.perf_counter()
    config = CityConfig(days=args.days, scale=args.scale)
    city = generate_city(config)
    daily, plates, hits, outcomes = [], [], [], []
    n_reads = 0
    for i in range(args.days):
        batch = generate_day(city, config.start_date + dt.timedelta(days=i))
        n_reads += batch.reads.height
        # What the gate's aggregate returns; the reads themselves are dropped here.
        daily.append(
            batch.reads.group_by(
                "camera_id", "network_id", pl.col("captured_at").dt.date().alias("day")
            ).len("reads")
        )
        plates.append(batch.reads["plate"].unique())
        hits.append(batch.hits)
        outcomes.append(batch.outcomes)
        del batch
    reads_daily = pl.concat(daily).sort("day", "camera_id")
    unique_vehicles = pl.concat(plates).n_unique()
    del plates
    hits_all, outcomes_all = pl.concat(hits), pl.concat(outcomes)
    gen_s = time.perf_counter() - t0
    console.print(
        f"generated {args.days} days at scale {args.scale}: {n_reads:,} reads "
        f"({reads_daily.height:,} camera-days), {hits_all.height:,} hits, "
        f"{outcomes_all.height:,} outcomes, {city.audit_events.height:,} audit events "
        f"in {gen_s:.1f} s"
    )

    common = {
        "hits": hits_all,
        "outcomes": outcomes_all,
        "audit_events": city.audit_events,
        "networks": city.networks,
        "start": config.start_date,
        "end": config.end_date,
    }
    report_s, report = _timed(
        lambda: efficacy_report(
            reads_daily=reads_daily,
            unique_vehicles=unique_vehicles,
            program_budget_usd=config.program_budget_usd,
            staff_hours_saved_per_recovery=6.0,
            **common,
        ),
        args.repeats,
    )
    base_s, base = _timed(
        lambda: _baseline(reads_daily=reads_daily, budget=config.program_budget_usd, **common),
        args.repeats,
    )
    trend_s, trend = _timed(
        lambda: monthly_trend(reads_daily=reads_daily, hits=hits_all, outcomes=outcomes_all),
        args.repeats,
    )

    got = report.to_dict()
    mismatched = [
        k
        for k, v in base.items()
        if not (v == got[k] or (v is not None and abs(v - got[k]) <= 1e-9 * max(1, abs(v))))
    ]

    table = Table(title=f"efficacy over {args.days} days (median of {args.repeats})")
    for col in ("what", "seconds", "vs baseline"):
        table.add_column(col)
    table.add_row("efficacy_report (all metrics)", f"{report_s:.4f}", f"{report_s / base_s:.2f}x")
    table.add_row("naive Polars baseline (headline subset)", f"{base_s:.4f}", "1.00x")
    table.add_row("monthly_trend", f"{trend_s:.4f}", "")
    console.print(table)
    console.print(
        f"target < 2 s: {'met' if report_s < 2 else 'MISSED'}; baseline/report speed ratio "
        f"{base_s / report_s:.2f}; figures agree with the baseline: "
        f"{'yes' if not mismatched else 'NO: ' + ', '.join(mismatched)}"
    )

    figures = Table(title="the synthetic year")
    figures.add_column("metric")
    figures.add_column("value")
    r = report
    rows = [
        ("reads", f"{r.reads:,}"),
        ("unique vehicles", f"{r.unique_vehicles:,}"),
        ("cameras / reads per camera per day", f"{r.cameras} / {r.reads_per_camera_per_day:,.0f}"),
        ("camera uptime", f"{r.camera_uptime_pct:.1f} %"),
        (
            "hits / hit rate",
            f"{r.hits:,} / {r.hit_rate.value_pct:.3f} % "
            f"[{r.hit_rate.low_pct:.3f}, {r.hit_rate.high_pct:.3f}]",
        ),
        (
            "confirmed rate (of decided hits)",
            f"{r.confirmed_hit_rate.value_pct:.1f} % "
            f"[{r.confirmed_hit_rate.low_pct:.1f}, {r.confirmed_hit_rate.high_pct:.1f}]",
        ),
        (
            "misread rate (of decided hits)",
            f"{r.misread_rate.value_pct:.1f} % "
            f"[{r.misread_rate.low_pct:.1f}, {r.misread_rate.high_pct:.1f}]",
        ),
        ("funnel", " -> ".join(f"{s} {n:,}" for s, n in r.funnel)),
        (
            "stops / recoveries / arrests / cases cleared",
            f"{r.stops} / {r.recoveries} / {r.arrests} / {r.cases_cleared}",
        ),
        ("recovered value", f"${r.recovered_value_usd:,.0f}"),
        (
            "cost per recovery",
            f"${r.cost_per_recovery_usd:,.0f}" if r.cost_per_recovery_usd else "n/a",
        ),
        ("staff hours saved", f"{r.staff_hours_saved:,.0f}; {r.staff_hours_assumption}"),
        ("reads never matched", f"{r.reads_never_matched_pct:.3f} %"),
        ("misread stops / stops without arrest", f"{r.misread_stops} / {r.stops_without_arrest}"),
        ("searches / refused", f"{r.searches:,} / {r.searches_refused:,}"),
        ("private-network reads", f"{r.private_network_reads_pct:.1f} %"),
        ("camera evenness (1 - Gini)", f"{r.camera_evenness:.3f}"),
    ]
    for row in rows:
        figures.add_row(*row)
    console.print(figures)
    console.print(r.hits_by_source)
    console.print(trend)


if __name__ == "__main__":
    main()
