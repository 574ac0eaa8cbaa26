"""One simulated day of traffic: reads, the hotlist hits among them, and their outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import polars as pl

from alpr_workbench.synth._activity import LOCAL, UTC
from alpr_workbench.synth._city import COLORS, MAKES, STATES, SWAP, TYPES, US_PER_DAY, Sim, us
from alpr_workbench.synth._config import City, DayBatch, conform

#: Share of a camera's daily traffic in each local hour (commute peaks, quiet at 3 am).
HOURLY = np.array(
    [
        0.9,
        0.6,
        0.45,
        0.4,
        0.55,
        1.2,
        2.6,
        4.6,
        5.6,
        4.6,
        4.2,
        4.6,
        5.0,
        5.0,
        5.2,
        5.8,
        6.6,
        7.0,
        5.8,
        4.4,
        3.6,
        3.0,
        2.2,
        1.5,
    ]
)
HOURLY = HOURLY / HOURLY.sum()
#: Traffic relative to the weekly mean, Monday first.
WEEKLY = np.array([1.06, 1.06, 1.06, 1.07, 1.09, 0.88, 0.78])
MISREAD_RATE = 0.012
#: Chance that an officer stops a car on a misread hit before the image is checked, per day.
MISREAD_STOPS_PER_DAY = 0.035
_CANON = (["O", "I", "B", "S", "Z"], ["0", "1", "8", "5", "2"])
_HOUR_US = 3_600_000_000
_MIN_US = 60_000_000


def _swap(
    plates: np.ndarray, pos: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Flip one confusable character per plate (at ``pos``, or a random one where -1)."""
    b = plates.astype("S8").view(np.uint8).reshape(-1, 8).copy()
    conf = SWAP[b] > 0
    pos = np.where(pos >= 0, pos, (rng.random(b.shape) * conf).argmax(1))
    r = np.arange(len(b))
    ok = conf[r, pos]
    b[r[ok], pos[ok]] = SWAP[b[r[ok], pos[ok]]]
    return b.view("S8").ravel().astype(str), ok


def generate_day(city: City, day: dt.date) -> DayBatch:
    """Generate the reads of one UTC day, the hits among them and what followed.

    Deterministic per ``(config.seed, day)``: the random stream is
    ``numpy.random.default_rng([seed, day.toordinal()])``.

    Parameters
    ----------
    city
        City from :func:`generate_city`.
    day
        UTC calendar day; every read's ``captured_at`` falls within it.

    Returns
    -------
    DayBatch
        ``reads``, ``hits`` (``read_id`` refers to ``reads``) and ``outcomes``
        (``hit_id`` refers to ``hits``), each conforming to its declared table.

    Examples
    --------
    >>> from alpr_workbench.synth import CityConfig, generate_city
    >>> city = generate_city(CityConfig(days=2, scale=0.05))
    >>> batch = generate_day(city, city.config.end_date)
    >>> batch.reads["captured_at"].dt.date().unique().to_list() == [city.config.end_date]
    True
    """
    sim: Sim = city._sim
    cfg = city.config
    rng = np.random.default_rng([cfg.seed, day.toordinal()])
    day0 = us(dt.datetime.combine(day, dt.time(), UTC))
    day1 = day0 + US_PER_DAY
    period_end = us(dt.datetime.combine(cfg.end_date + dt.timedelta(days=1), dt.time(), UTC))
    n_cam = len(sim.cam_rate)
    local_hour = [
        (dt.datetime.combine(day, dt.time(h), UTC).astimezone(LOCAL)).hour for h in range(24)
    ]
    lam = sim.cam_rate[:, None] * HOURLY[local_hour][None, :] * WEEKLY[day.weekday()] * cfg.scale
    counts = rng.poisson(lam).ravel()
    cam = np.repeat(np.repeat(np.arange(n_cam), 24), counts)
    t = (
        day0
        + np.repeat(np.tile(np.arange(24), n_cam), counts) * _HOUR_US
        + rng.integers(0, _HOUR_US, len(cam))
    )
    veh = sim.sample_ordinary(rng.random(len(cam)))

    # Special vehicles (stolen, look-alikes, listed) at their own rates, in random slots.
    mid = day0 + US_PER_DAY // 2
    active = (sim.spec_from <= mid) & (mid < sim.spec_until)
    lam_s = np.where(active, sim.spec_lam_in, sim.spec_lam_out) * cfg.scale
    rec = sim.recoveries.filter((pl.col("t") >= day0) & (pl.col("t") < day1))
    rec_veh = rec["vehicle"].to_numpy()
    lam_s[rec_veh - sim.spec_idx[0]] = 0.0  # seen once, at the stop
    k = rng.poisson(lam_s)
    spec = np.repeat(sim.spec_idx, k)[rng.permutation(int(k.sum()))][: len(veh)]
    veh[rng.choice(len(veh), size=len(spec), replace=False)] = spec
    forced = np.zeros(len(veh) + rec.height, bool)
    forced[len(veh) :] = True
    cam = np.concatenate([cam, rec["cam"].to_numpy()])
    t = np.concatenate([t, rec["t"].to_numpy()])
    veh = np.concatenate([veh, rec_veh]).astype(np.int64)
    order = np.lexsort((t, cam))
    cam, t, veh, forced = cam[order], t[order], veh[order], forced[order]
    n = len(veh)
    first = np.concatenate([[0], np.cumsum(np.bincount(cam, minlength=n_cam))[:-1]])
    seq = np.arange(n) - first[cam]

    # Misreads: one confusable character flipped (0/O, 1/I, 8/B, 5/S, 2/Z).
    swap_pos = sim.swap_pos[veh]
    mis = (rng.random(n) < np.where(swap_pos >= 0, 0.35, MISREAD_RATE)) & ~forced
    rows = np.flatnonzero(mis)
    new, ok = _swap(sim.plates[veh[rows]], swap_pos[rows], rng)
    rows, new = rows[ok], new[ok]
    mis[:] = False
    mis[rows] = True
    true_plate = sim.plate_str.gather(veh)
    plate = true_plate.clone().scatter(rows, new) if len(rows) else true_plate
    conf = np.where(mis, rng.normal(79, 8, n), rng.normal(93, 3.5, n)).clip(40, 99.9)
    unsure = np.flatnonzero((conf < 88) & ~mis)
    alt_unsure, ok_u = _swap(sim.plates[veh[unsure]], np.full(len(unsure), -1), rng)
    alt = pl.repeat(None, n, dtype=pl.String, eager=True)
    alt_idx = np.concatenate([rows, unsure[ok_u]])
    if len(alt_idx):
        alt = alt.scatter(
            alt_idx,
            pl.concat([true_plate.gather(rows), pl.Series(alt_unsure[ok_u], dtype=pl.String)]),
        )
    w = rng.integers(110, 240, n)
    d = pl.DataFrame(
        {
            "_cam": cam,
            "_seq": seq,
            "plate": plate,
            "_state": sim.state[veh],
            "_nostate": rng.random(n) < 0.03,
            "confidence_pct": conf.astype(np.float32),
            "_alt": alt,
            "box_x_px": rng.integers(80, 1700, n),
            "box_y_px": rng.integers(300, 900, n),
            "box_w_px": w,
            "box_h_px": w // 2,
            "_make": sim.make[veh],
            "_color": sim.color[veh],
            "_type": sim.vtype[veh],
            "lat": sim.cam_lat[cam],
            "lon": sim.cam_lon[cam],
            "captured_at": pl.Series(t).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        }
    )
    cam3 = pl.col("_cam").cast(pl.String).str.zfill(3)
    seq6 = pl.col("_seq").cast(pl.String).str.zfill(6)
    reads = d.with_columns(
        pl.concat_str([pl.lit(f"{day:%Y%m%d}-"), cam3, pl.lit("-"), seq6]).alias("read_id"),
        pl.concat_str(
            [pl.lit(f"frames/{day:%Y-%m-%d}/cam-"), cam3, pl.lit("/"), seq6, pl.lit(".jpg")]
        ).alias("image_ref"),
        sim.cam_id.gather(cam).alias("camera_id"),
        sim.cam_net.gather(cam).alias("network_id"),
        pl.when(~pl.col("_nostate"))
        .then(pl.Series(STATES).gather(d["_state"]))
        .alias("plate_state"),
        pl.when(pl.col("_alt").is_not_null())
        .then(pl.concat_list("_alt"))
        .alias("alternate_plates"),
        pl.Series(list(MAKES)).gather(d["_make"]).alias("vehicle_make"),
        pl.Series(COLORS).gather(d["_color"]).alias("vehicle_color"),
        pl.Series(TYPES).gather(d["_type"]).alias("vehicle_type"),
        pl.lit("synthetic").alias("source"),
    )
    hits, outcomes = _hits(sim, reads, veh, forced, rec, rng, day0, day1, period_end)
    return DayBatch(day=day, reads=conform("reads", reads), hits=hits, outcomes=outcomes)


def _hits(
    sim: Sim,
    reads: pl.DataFrame,
    veh: np.ndarray,
    forced: np.ndarray,
    rec: pl.DataFrame,
    rng: np.random.Generator,
    day0: int,
    day1: int,
    period_end: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Match reads against the entries alerting today, then decide and follow up each hit."""
    ent = sim.entries.filter((pl.col("alert_from") < day1) & (pl.col("alert_until") > day0))
    m = (
        reads.select(
            pl.int_range(pl.len()).alias("_row"),
            "plate",
            "read_id",
            "camera_id",
            "network_id",
            "captured_at",
            "lat",
            "lon",
            pl.col("plate").str.replace_many(*_CANON).alias("key"),
        )
        .join(ent.rename({"plate": "listed_plate", "plate_state": "listed_state"}), on="key")
        .with_columns(pl.col("captured_at").dt.epoch("us").alias("_t"))
        .filter((pl.col("_t") >= pl.col("alert_from")) & (pl.col("_t") < pl.col("alert_until")))
        .sort("_row", "entry_id")
    )
    row = m["_row"].to_numpy()
    tm = m["_t"].to_numpy()
    v = veh[row]
    same = m["fleet"].to_numpy() == v
    same_text = sim.plate_str.gather(v).to_numpy() == m["listed_plate"].to_numpy()
    disp = np.where(
        same,
        np.where(tm > m["clear"].to_numpy(), "stale_entry", "confirmed"),
        np.where(same_text, "wrong_state", "misread"),
    ).astype(object)
    f = forced[row]
    u = rng.random(len(row))
    disp[(disp == "confirmed") & (u < 0.05) & ~f] = "dismissed"
    pending = (tm > period_end - 10 * _HOUR_US) & (rng.random(len(row)) < 0.6) & ~f
    disp[pending] = "pending"
    disp_at = tm + (rng.uniform(1, 8, len(row)) * _MIN_US).astype(np.int64)
    # A few misread hits are acted on before anyone checks the image.
    mstop = np.zeros(len(row), bool)
    misread = np.flatnonzero(disp == "misread")
    if len(misread) and rng.random() < MISREAD_STOPS_PER_DAY:
        mstop[rng.choice(misread)] = True
    stop_at = tm + (rng.uniform(3, 10, len(row)) * _MIN_US).astype(np.int64)
    disp_at[mstop] = stop_at[mstop] + 10 * _MIN_US
    by = np.asarray(sim.reviewers, dtype=object)[rng.integers(len(sim.reviewers), size=len(row))]
    by[pending] = None
    hits = m.with_columns(
        pl.concat_str([pl.lit("hit-"), "read_id", pl.lit("-"), "entry_id"]).alias("hit_id"),
        pl.col("source").alias("hotlist_source"),
        pl.col("plate").alias("read_plate"),
        pl.when(pl.col("plate") == pl.col("listed_plate"))
        .then(pl.lit("exact"))
        .otherwise(pl.lit("confusable"))
        .alias("match_tier"),
        pl.Series("disposition", disp.tolist(), dtype=pl.String),
        pl.Series("disposition_at", np.where(pending, 0, disp_at))
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC"),
        pl.Series("disposition_by", by.tolist(), dtype=pl.String),
    ).with_columns(
        pl.when(pl.col("disposition") != "pending").then("disposition_at").alias("disposition_at")
    )

    # Outcomes: the stop and recovery of each planned recovery, arrests, cleared cases.
    out: list[dict[str, object]] = []
    rec_rows = {
        int(x): r
        for x, r in zip(
            np.flatnonzero(forced), rec.sort("cam", "t").iter_rows(named=True), strict=True
        )
    }
    for i in np.flatnonzero(f):
        r = rec_rows[int(row[i])]
        if r["entry_id"] != m["entry_id"][int(i)]:
            continue
        hit_id, d = hits["hit_id"][int(i)], r["delays_min"]
        stop = int(tm[i] + d[1] * _MIN_US)
        jitter = rng.normal(0, 0.003, 2)
        base = {
            "hit_id": hit_id,
            "case_number": r["case_number"],
            "is_misread_stop": False,
            "lat": float(m["lat"][int(i)] + jitter[0]),
            "lon": float(m["lon"][int(i)] + jitter[1]),
        }
        out.append(base | {"outcome_type": "stop", "occurred_at": stop})
        out.append(
            base
            | {
                "outcome_type": "recovery",
                "occurred_at": stop + int(d[2] * _MIN_US),
                "value_usd": r["value_usd"],
            }
        )
        if r["arrest"]:
            out.append(base | {"outcome_type": "arrest", "occurred_at": stop + int(d[3] * _MIN_US)})
        if r["cleared_at"] is not None:
            out.append(base | {"outcome_type": "case_cleared", "occurred_at": us(r["cleared_at"])})
    for i in np.flatnonzero(mstop):
        out.append(
            {
                "hit_id": hits["hit_id"][int(i)],
                "outcome_type": "stop",
                "occurred_at": int(stop_at[i]),
                "is_misread_stop": True,
                "lat": float(m["lat"][int(i)]),
                "lon": float(m["lon"][int(i)]),
            }
        )
    schema = {
        "hit_id": pl.String,
        "outcome_type": pl.String,
        "occurred_at": pl.Int64,
        "lat": pl.Float64,
        "lon": pl.Float64,
        "value_usd": pl.Float64,
        "case_number": pl.String,
        "is_misread_stop": pl.Boolean,
    }
    outcomes = pl.DataFrame(out, schema=schema).with_columns(
        pl.col("occurred_at").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        pl.concat_str([pl.lit("out-"), "hit_id", pl.lit("-"), "outcome_type"]).alias("outcome_id"),
    )
    return conform("hits", hits), conform("outcomes", outcomes)


def iter_days(city: City) -> Iterator[DayBatch]:
    """Yield the :class:`DayBatch` of every day from ``start_date`` to ``end_date``.

    Parameters
    ----------
    city
        City from :func:`generate_city`.

    Yields
    ------
    DayBatch
        One per simulated day, in order.

    Examples
    --------
    >>> from alpr_workbench.synth import CityConfig, generate_city
    >>> city = generate_city(CityConfig(days=2, scale=0.02))
    >>> [b.day.isoformat() for b in iter_days(city)]
    ['2026-10-30', '2026-10-31']
    """
    for i in range(city.config.days):
        yield generate_day(city, city.config.start_date + dt.timedelta(days=i))
