"""Hotlist matching: one full-scale synthetic day of reads against a 50,000-entry hotlist.

Builds the synthetic city at full scale, pads its hotlist with generated plates to 50,000
entries, and times ``match_reads`` (vectorised: one confusable-key join, expiry filtered per
read's capture time) against a straightforward Polars baseline measured in the same run
(an inner join on the plate text for the exact tier plus a Python loop over the reads for
the confusable tier). Both must find the same (read, entry, tier) set. Target: one day
matched in under 50 ms.

    python benchmarks/bench_hotlist.py [--entries 50000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from alpr_workbench.hotlist import CONFUSABLE, active_entries, match_reads
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.schema import validate_frame
from alpr_workbench.synth import CityConfig, generate_city, generate_day

console = Console(width=120)
TARGET_MS = 50.0
_TABLE = str.maketrans(CONFUSABLE)


def pad_entries(entries: pl.DataFrame, n: int, seed: int = 11) -> pl.DataFrame:
    """Add generated CA-format plates (digit, 3 letters, 3 digits) to reach ``n`` entries."""
    need = n - entries.height
    if need <= 0:
        return entries
    rng = np.random.default_rng(seed)
    letters = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))
    plates = [
        f"{d}{''.join(ltr)}{t:03d}"
        for d, ltr, t in zip(
            rng.integers(1, 10, need),
            letters[rng.integers(0, len(letters), (need, 3))],
            rng.integers(0, 1000, need),
            strict=True,
        )
    ]
    t0 = entries["added_at"].min()
    pad = pl.DataFrame(
        {
            "entry_id": [f"pad-{i:06d}" for i in range(need)],
            "hotlist_id": "ca-svs",
            "plate": plates,
            "plate_state": "CA",
            "category": "stolen_vehicle",
            "priority": pl.Series([2] * need, dtype=pl.Int32),
            "added_by": "feed:ca-svs",
            "added_at": pl.Series([t0] * need, dtype=pl.Datetime("us", "UTC")),
            "expires_at": pl.Series(
                [t0 + dt.timedelta(days=400)] * need, dtype=pl.Datetime("us", "UTC")
            ),
        }
    )
    return validate_frame("hotlist_entries", pl.concat([entries, pad], how="diagonal_relaxed"))


def baseline(
    reads: pl.DataFrame, entries: pl.DataFrame, hotlists: pl.DataFrame, *, policy: Policy
) -> pl.DataFrame:
    """Straightforward version: exact join on plate, then a Python loop for confusables."""
    # Entries that could alert at some point in the batch, with their list's expiry.
    lo, hi = reads["captured_at"].min(), reads["captured_at"].max()
    ent = (
        pl.concat(
            [
                active_entries(entries, hotlists, at=lo, policy=policy),
                active_entries(entries, hotlists, at=hi, policy=policy),
            ]
        )
        .unique("entry_id")
        .join(
            hotlists.select("hotlist_id", pl.col("expires_at").alias("list_expires_at")),
            on="hotlist_id",
        )
    )
    exact = (
        reads.select("read_id", "plate", "captured_at")
        .join(ent, on="plate")
        .filter(
            (pl.col("captured_at") >= pl.col("added_at"))
            & (pl.col("expires_at").is_null() | (pl.col("captured_at") < pl.col("expires_at")))
            & (
                pl.col("list_expires_at").is_null()
                | (pl.col("captured_at") < pl.col("list_expires_at"))
            )
        )
        .select("read_id", "entry_id", pl.lit("exact").alias("match_tier"))
    )
    by_key: dict[str, list[tuple[str, str, object, object, object]]] = defaultdict(list)
    for eid, plate, added, exp, lexp in ent.select(
        "entry_id", "plate", "added_at", "expires_at", "list_expires_at"
    ).iter_rows():
        by_key[plate.translate(_TABLE)].append((eid, plate, added, exp, lexp))
    rows = []
    for rid, plate, t in reads.select("read_id", "plate", "captured_at").iter_rows():
        for eid, listed, added, exp, lexp in by_key.get(plate.translate(_TABLE), ()):
            if (
                listed != plate
                and added <= t
                and (exp is None or t < exp)
                and (lexp is None or t < lexp)
            ):
                rows.append((rid, eid, "confusable"))
    conf = pl.DataFrame(rows, schema=["read_id", "entry_id", "match_tier"], orient="row")
    return pl.concat([exact, conf])


def _time(fn: Callable[[], pl.DataFrame], repeats: int) -> tuple[float, pl.DataFrame]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    policy = load_policy()
    t = time.perf_counter()
    city = generate_city(CityConfig(days=7, scale=args.scale))
    batch = generate_day(city, city.config.end_date)
    entries = pad_entries(city.hotlist_entries, args.entries)
    hotlists = city.hotlists
    console.print(
        f"city built in {time.perf_counter() - t:.1f} s: {batch.reads.height:,} reads on "
        f"{batch.day}, {entries.height:,} hotlist entries, {batch.hits.height} city hits"
    )
    fast_ms, hits = _time(
        lambda: match_reads(batch.reads, entries, hotlists, policy=policy), args.repeats
    )
    base_ms, base = _time(
        lambda: baseline(batch.reads, entries, hotlists, policy=policy), args.repeats
    )
    key = ["read_id", "entry_id", "match_tier"]
    if set(hits.select(key).rows()) != set(base.select(key).rows()):
        raise SystemExit("match_reads and the baseline disagree")
    tiers = dict(hits.group_by("match_tier").len().iter_rows())
    table = Table(title=f"One day matched (median of {args.repeats} runs)")
    table.add_column("method")
    table.add_column("median ms", justify="right")
    table.add_column("hits", justify="right")
    table.add_row("match_reads (vectorised)", f"{fast_ms:.2f}", str(hits.height))
    table.add_row("baseline (join + Python loop)", f"{base_ms:.2f}", str(base.height))
    console.print(table)
    console.print(
        f"tiers: {tiers}; speed-up {base_ms / fast_ms:.1f}x; target < {TARGET_MS:.0f} ms: "
        f"{'met' if fast_ms < TARGET_MS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
