"""The city: networks, cameras, vehicles, hotlists, sharing, holds, and the assembly of it all."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from alpr_workbench.synth._activity import (
    UTC,
    local_utc,
    make_cases,
    make_searches,
    make_users,
)
from alpr_workbench.synth._config import DEPARTMENT, City, CityConfig, conform

US_PER_DAY = 86_400_000_000
_OFFSET, _EXP = 300.0, 0.15  # ordinary vehicles' popularity ~ (rank + _OFFSET) ** -(1 + _EXP)
NEVER = np.iinfo(np.int64).max
# fmt: off
STATES = ("CA", "AZ", "NV", "TX", "OR", "WA")
_FORMATS = {"CA": "NLLLDDD", "AZ": "LLLDDDD", "NV": "DDDLDDD", "TX": "LLLDDDD",
            "OR": "DDDLLL", "WA": "LLLDDDD"}
_ALPHABETS = {"N": b"123456789", "L": b"ABCDEFGHJKLMNPRSTUVWXYZ", "D": b"0123456789"}
MAKES = {
    "Toyota": ("Camry", "Corolla", "RAV4", "Tacoma"), "Honda": ("Civic", "Accord", "CR-V"),
    "Ford": ("F-150", "Escape", "Transit"), "Chevrolet": ("Silverado", "Malibu", "Equinox"),
    "Nissan": ("Altima", "Sentra", "Rogue"), "Hyundai": ("Elantra", "Sonata", "Tucson"),
    "Kia": ("Optima", "Soul", "Sportage"), "Tesla": ("Model 3", "Model Y"),
    "BMW": ("3 Series", "X5"), "Mercedes-Benz": ("C-Class", "GLE"), "Subaru": ("Outback",),
    "Volkswagen": ("Jetta", "Golf"), "Jeep": ("Wrangler", "Cherokee"), "Lexus": ("RX", "ES"),
    "Dodge": ("Charger", "Ram 1500"),
}
MAKE_P = np.array([18, 15, 10, 9, 8, 6, 5, 5, 4, 4, 3, 3, 3, 4, 3], float)
COLORS = ("white", "black", "gray", "silver", "blue", "red", "green", "beige", "gold")
COLOR_P = np.array([24, 22, 17, 14, 9, 8, 2, 2, 2], float)
TYPES = ("sedan", "suv", "pickup", "van", "truck", "motorcycle", "bus", "other")
TYPE_P = np.array([44, 33, 11, 5, 3, 2, 0.5, 1.5])
# fmt: on
SWAP = np.zeros(256, np.uint8)
for _a, _b in ("0O", "1I", "8B", "5S", "2Z"):
    SWAP[ord(_a)], SWAP[ord(_b)] = ord(_b), ord(_a)
# fmt: off
CROSS = ("Buena Vista St", "Hollywood Way", "Glenoaks Blvd", "Victory Blvd", "Pass Ave",
         "Keystone St", "Naomi St", "Lake St", "Lincoln St", "Third St", "Providencia Ave",
         "Main St")
MAIN = ("Olive Ave", "Magnolia Blvd", "Burbank Blvd", "Alameda Ave", "Verdugo Ave",
        "Riverside Dr", "Empire Ave", "San Fernando Blvd", "Chandler Blvd", "Oak St")
PRIVATE = (  # network id, name, owner type, owner name, cameras, (lat, lon)
    ("hw-magnolia", "Magnolia Hardware parking lot", "private_business",
     "Magnolia Hardware & Lumber Inc.", 3, (34.1745, -118.3321)),
    ("hw-victory", "Victory Home Center parking lot", "private_business",
     "Victory Home Center LLC", 3, (34.1892, -118.3468)),
    ("hoa-rancho", "Rancho Estates HOA gates", "hoa",
     "Rancho Estates Homeowners Association", 4, (34.1618, -118.3187)),
)
AGENCIES = {"CA": ("Los Angeles Police Department", "LAPD"),
            "AZ": ("Phoenix Police Department", "PHX"), "NV": ("Las Vegas Metro PD", "LVMPD"),
            "TX": ("Houston Police Department", "HPD"), "OR": ("Portland Police Bureau", "PPB"),
            "WA": ("Seattle Police Department", "SPD")}
# fmt: on


@dataclass(frozen=True)
class Sim:
    """Everything :func:`generate_day` needs besides the public tables (private)."""

    plates: np.ndarray  # S8, one per vehicle
    plate_str: pl.Series
    state: np.ndarray  # index into STATES
    make: np.ndarray
    color: np.ndarray
    vtype: np.ndarray
    swap_pos: np.ndarray  # position a misread flips (-1: any confusable one)
    ord_perm: np.ndarray  # ordinary vehicle of each popularity rank
    spec_idx: np.ndarray  # special vehicles, read at explicit Poisson rates
    spec_lam_in: np.ndarray
    spec_lam_out: np.ndarray
    spec_from: np.ndarray  # us; lam_in applies within [from, until)
    spec_until: np.ndarray
    cam_lat: np.ndarray
    cam_lon: np.ndarray
    cam_rate: np.ndarray
    cam_id: pl.Series
    cam_net: pl.Series
    entries: pl.DataFrame  # matching view of the hotlist entries
    recoveries: pl.DataFrame
    reviewers: tuple[str, ...]

    def sample_ordinary(self, u: np.ndarray) -> np.ndarray:
        """Ordinary vehicles for uniforms ``u``: popularity ~ (rank + 300) ** -1.15."""
        n = len(self.ord_perm)
        lo, hi = _OFFSET**-_EXP, (n + _OFFSET) ** -_EXP
        rank = (lo - u * (lo - hi)) ** (-1 / _EXP) - _OFFSET
        return self.ord_perm[np.minimum(rank.astype(np.int64), n - 1)]


def us(t: dt.datetime) -> int:
    """Microseconds since the epoch."""
    return int(t.timestamp() * 1e6)


def from_us(x: float) -> dt.datetime:
    """UTC datetime from microseconds since the epoch."""
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=int(x))


def _plates(rng: np.random.Generator, n: int, state: str) -> np.ndarray:
    fmt = _FORMATS[state]
    out = np.zeros((int(n * 1.05) + 50, 8), np.uint8)
    for j, c in enumerate(fmt):
        alpha = np.frombuffer(_ALPHABETS[c], np.uint8)
        out[:, j] = alpha[rng.integers(len(alpha), size=len(out))]
    return rng.permutation(np.unique(out.view("S8").ravel()))[:n]


def _vin(rng: np.random.Generator, n: int) -> list[str]:
    alpha = np.frombuffer(b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789", np.uint8)
    return alpha[rng.integers(len(alpha), size=(n, 17))].view("S17").ravel().astype(str).tolist()


def _pick(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def _networks_cameras(
    rng: np.random.Generator, cfg: CityConfig
) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    nets = [
        {
            "network_id": "bpd-city",
            "name": "Burbank PD city cameras",
            "owner_type": "city",
            "owner_name": "City of Burbank",
            "is_department_owned": True,
            "created_at": dt.datetime(2023, 3, 1, 17, tzinfo=UTC),
        }
    ]
    pairs = [f"{m} & {c}" for m in MAIN for c in CROSS]
    names = [pairs[i] for i in rng.permutation(len(pairs))]
    names = (names * (cfg.n_city_cameras // len(names) + 1))[: cfg.n_city_cameras]
    names = [n if i < len(pairs) else f"{n} ({i // len(pairs) + 1})" for i, n in enumerate(names)]
    n = cfg.n_city_cameras
    lat = rng.uniform(34.155, 34.215, n).tolist()
    lon = rng.uniform(-118.365, -118.285, n).tolist()
    net = ["bpd-city"] * n
    rate = rng.uniform(560, 840, n).tolist()
    for nid, nname, otype, owner, k, (la, lo) in PRIVATE:
        nets.append(
            {
                "network_id": nid,
                "name": nname,
                "owner_type": otype,
                "owner_name": owner,
                "is_department_owned": False,
                "created_at": dt.datetime(2025, 4, 1 + len(nets), 18, tzinfo=UTC),
            }
        )
        names += [f"{nname} - camera {j + 1}" for j in range(k)]
        lat += (la + rng.normal(0, 4e-4, k)).tolist()
        lon += (lo + rng.normal(0, 4e-4, k)).tolist()
        net += [nid] * k
        rate += rng.uniform(540, 720, k).tolist()
    m = len(names)
    installed = [cfg.start_date - dt.timedelta(days=int(d)) for d in rng.integers(30, 900, m)]
    cams = pl.DataFrame(
        {
            "camera_id": [f"cam-{i:03d}" for i in range(m)],
            "network_id": net,
            "name": names,
            "lat": lat,
            "lon": lon,
            "direction": [
                ("N", "NE", "E", "SE", "S", "SW", "W", "NW")[i] for i in rng.integers(8, size=m)
            ],
            "installed_date": installed,
        }
    )
    return (
        conform("networks", pl.DataFrame(nets, infer_schema_length=None)),
        conform("cameras", cams),
        np.array(rate),
    )


def generate_city(config: CityConfig) -> City:
    """Generate the reference tables, search activity and planted findings of the city.

    Parameters
    ----------
    config
        Parameters of the city; the result is a pure function of them.

    Returns
    -------
    City
        Tables conforming to ``data_schema/``, the raw NCIC-style feed and the planted
        ground truth. Reads come from :func:`generate_day`.

    Examples
    --------
    >>> city = generate_city(CityConfig(days=3, scale=0.01))
    >>> city.networks["network_id"].to_list()
    ['bpd-city', 'hw-magnolia', 'hw-victory', 'hoa-rancho']
    """
    cfg = config
    rng = np.random.default_rng([cfg.seed, 0])
    start, end = cfg.start_date, cfg.end_date
    start_us = us(dt.datetime.combine(start, dt.time(), UTC))
    end_us = us(dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), UTC))
    networks, cameras, cam_rate = _networks_cameras(rng, cfg)
    planted: list[tuple[str, str, str, str]] = []

    # Vehicles: ordinary ones drawn by a Zipf-like popularity, special ones at set rates.
    n_st = round(3.0 * (cfg.days + 150))
    n_bg, n_twin, n_near, n_cust, n_imm = 1500, 40, 60, 20, 20
    ca = _plates(rng, 112_000 + n_st + n_bg + n_cust + 300, "CA")
    oos = {s: _plates(rng, 3_000, s) for s in STATES[1:]}
    ord_state = _pick(rng, np.array([0, 25, 25, 20, 15, 15.0]), 8_000) + 0
    plates_ord = np.concatenate(
        [ca[:112_000]] + [oos[s][: int((ord_state == i).sum())] for i, s in enumerate(STATES) if i]
    )
    state_ord = np.concatenate(
        [np.zeros(112_000, np.int8)]
        + [np.full(int((ord_state == i).sum()), i, np.int8) for i in range(1, 6)]
    )
    n_ord = len(plates_ord)
    o = 112_000
    st_pl, o = ca[o : o + n_st], o + n_st
    bg_pl, o = ca[o : o + n_bg], o + n_bg
    cust_pl = ca[o : o + n_cust]
    twin_state = rng.integers(1, 4, n_twin).astype(np.int8)
    near_src = [p for p in bg_pl[n_twin:] if (SWAP[np.frombuffer(p, np.uint8)] > 0).any()][:n_near]
    near_pl, near_pos = [], []
    for p in near_src:
        b = np.frombuffer(p.ljust(8, b"\0"), np.uint8).copy()
        pos = int(rng.choice(np.flatnonzero(SWAP[b] > 0)))
        b[pos] = SWAP[b[pos]]
        near_pl.append(b.tobytes())
        near_pos.append(pos)
    # NCIC feed: other-state and CA records, some of whose vehicles drive in Burbank.
    cats = (
        ["stolen_vehicle"] * 150
        + ["stolen_plate"] * 25
        + ["felony_warrant"] * 30
        + ["amber_alert"] * 5
        + ["immigration_violator"] * n_imm
    )
    cats = [cats[i] for i in rng.permutation(len(cats))]
    ncic_state = _pick(rng, np.array([40, 15, 15, 12, 8, 10.0]), len(cats))
    ncic_pl = np.array(
        [oos[STATES[s]][2_500 + i] if s else ca[-1 - i] for i, s in enumerate(ncic_state)],
        dtype="S8",
    )
    imm = np.array([c == "immigration_violator" for c in cats])
    drives = imm | (np.arange(len(cats)) < 60) & (rng.random(len(cats)) < 0.5)

    st_theft = start_us - 150 * US_PER_DAY + rng.uniform(0, (cfg.days + 150) * US_PER_DAY, n_st)
    st_clear = st_theft + rng.exponential(30 * US_PER_DAY, n_st)
    st_added = st_theft + rng.uniform(2, 30, n_st) * 3_600e6
    recs: list[dict[str, Any]] = []
    used = np.zeros(n_st, bool)
    n_city = cfg.n_city_cameras
    for i in range(cfg.days):
        day0 = start_us + i * US_PER_DAY
        for _ in range(rng.poisson(80 / 365)):
            t = day0 + rng.uniform(14, 23.9) * 3_600e6
            cand = np.flatnonzero((st_added < t - 3_600e6) & (st_clear > t) & ~used)
            if not len(cand):
                continue
            v = int(rng.choice(cand))
            used[v], st_clear[v] = True, t
            arrest = bool(rng.random() < 0.35)
            cleared = t + rng.uniform(2, 25) * US_PER_DAY if arrest and rng.random() < 0.6 else 0
            recs.append(
                {
                    "vehicle": v,
                    "captured_at": from_us(t),
                    "cam": int(rng.integers(n_city)),
                    "plate": st_pl[v].decode(),
                    "arrest": arrest,
                    "cleared_at": from_us(cleared) if 0 < cleared < end_us else None,
                    "value_usd": 0.0,
                    "delays_min": rng.uniform([1, 4, 15, 6], [3, 12, 45, 25]),
                }
            )
    st_until = st_clear + rng.uniform(0.5, 6, n_st) * US_PER_DAY
    st_exp = np.where(st_clear < end_us, st_until, st_added + 365 * US_PER_DAY)

    groups = [  # plates, states, lam_in, lam_out, from, until, swap position
        (
            st_pl,
            np.zeros(n_st, np.int8),
            rng.lognormal(-0.12, 0.5, n_st),
            np.full(n_st, 0.6),
            st_theft,
            st_clear,
            None,
        ),
        (bg_pl[:n_twin], twin_state, np.full(n_twin, 0.2), None, None, None, None),
        (
            np.array(near_pl, "S8"),
            np.zeros(len(near_pl), np.int8),
            np.full(len(near_pl), 0.3),
            None,
            None,
            None,
            np.array(near_pos),
        ),
        (cust_pl, np.zeros(n_cust, np.int8), rng.uniform(0.1, 0.3, n_cust), None, None, None, None),
        (
            ncic_pl[drives],
            ncic_state[drives],
            np.where(imm[drives], 0.3, 0.1),
            None,
            None,
            None,
            None,
        ),
    ]
    plates, states, swap, lam_in, lam_out, s_from, s_until = (
        [plates_ord],
        [state_ord],
        [np.full(n_ord, -1, np.int8)],
        [],
        [],
        [],
        [],
    )
    for pl_, st_, li, lo, fr, un, sp in groups:
        k = len(pl_)
        plates.append(pl_)
        states.append(st_)
        swap.append(np.full(k, -1, np.int8) if sp is None else sp.astype(np.int8))
        lam_in.append(li)
        lam_out.append(li if lo is None else lo)
        s_from.append(np.zeros(k) if fr is None else fr)
        s_until.append(np.full(k, 9e18) if un is None else un)
    fleet = np.concatenate(plates)
    n_all = len(fleet)
    offs = np.cumsum([n_ord] + [len(g[0]) for g in groups])
    st_fleet = np.arange(offs[0], offs[1])
    cust_fleet = np.arange(offs[3], offs[4])
    ncic_fleet = np.full(len(cats), -1)
    ncic_fleet[drives] = np.arange(offs[4], offs[5])
    make = _pick(rng, MAKE_P, n_all)
    color = _pick(rng, COLOR_P, n_all)
    makes = list(MAKES)

    def model(v: int) -> str:
        ms = MAKES[makes[make[v]]]
        return ms[v % len(ms)]

    users, ids, planted_u = make_users(rng, start, end)
    planted += planted_u
    bpd = users.filter(
        (pl.col("organization") == DEPARTMENT)
        & pl.col("trained_at").is_not_null()
        & pl.col("separated_at").is_null()
        & pl.col("job_title").is_in(
            ["Crime Analyst", "Senior Crime Analyst", "Detective", "Police Officer", "Sergeant"]
        )
        & ~pl.col("user_id").is_in(
            [ids[k] for k in ("shared_account", "idle_account", "activity_after_separation")]
        )
    )
    searchers = bpd["user_id"].to_list()
    reviewers = tuple(u for u in searchers if u not in (ids["burst"],))
    cases = make_cases(rng, start, end, searchers, recs)
    t_end = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), UTC)

    # Hotlists and their entries.
    entries: list[dict[str, Any]] = []
    vals = np.clip(rng.lognormal(np.log(12_000), 0.6, n_st + n_bg), 3_000, 40_000).round(-2)
    la_agencies = (
        "Burbank Police Department",
        "Los Angeles Police Department",
        "Glendale Police Department",
        "Los Angeles County Sheriff's Department",
        "Pasadena Police Department",
    )
    for k in range(n_st + n_bg):
        v = int(st_fleet[k]) if k < n_st else -1
        added = st_added[k] if k < n_st else start_us - rng.uniform(1, 200) * US_PER_DAY
        exp_ = st_exp[k] if k < n_st else end_us + rng.uniform(30, 300) * US_PER_DAY
        theft = from_us(st_theft[k] if k < n_st else added - rng.uniform(2, 30) * 3.6e9)
        ag = int(rng.integers(len(la_agencies)))
        entries.append(
            {
                "entry_id": f"svs-{k:06d}",
                "hotlist_id": "ca-svs",
                "plate": (st_pl[k] if k < n_st else bg_pl[k - n_st]).decode(),
                "plate_state": "CA",
                "plate_type": "passenger",
                "vin": None,
                "theft_date": theft.date(),
                "vehicle_make": makes[make[v]] if v >= 0 else None,
                "vehicle_model": model(v) if v >= 0 else None,
                "vehicle_color": COLORS[color[v]] if v >= 0 else None,
                "value_usd": float(vals[k]),
                "originating_agency": la_agencies[ag],
                "originating_case_number": f"{'BGLPA'[ag]}{theft:%y}-{rng.integers(10**5, 10**6)}",
                "category": "stolen_vehicle",
                "reason": "Reported stolen (CA DOJ SVS)",
                "priority": 2,
                "added_by": "feed:ca-svs",
                "added_at": from_us(added),
                "expires_at": from_us(exp_),
                "_fleet": v,
                "_alert_until": int(exp_),
                "_clear": int(st_clear[k]) if k < n_st else NEVER,
            }
        )
    for rec in recs:
        rec["value_usd"] = entries[rec["vehicle"]]["value_usd"]
        rec["entry_id"] = entries[rec["vehicle"]]["entry_id"]
        rec["vehicle"] = int(st_fleet[rec["vehicle"]])
    vins = _vin(rng, len(cats))
    feed = []
    for i, cat in enumerate(cats):
        s = STATES[ncic_state[i]]
        v = int(ncic_fleet[i])
        entered = start_us - rng.uniform(1, 300) * US_PER_DAY
        agency, code = (
            ("DHS ICE Law Enforcement Support Center", "ICE")
            if cat.startswith("immigration")
            else AGENCIES[s]
        )
        feed.append(
            {
                "nic": f"V{rng.integers(100_000_000, 1_000_000_000)}",
                "plate": ncic_pl[i].decode(),
                "plate_state": s,
                "plate_type": "passenger",
                "vin": vins[i],
                "vehicle_make": makes[make[v]] if v >= 0 else None,
                "vehicle_model": model(v) if v >= 0 else None,
                "vehicle_color": COLORS[color[v]] if v >= 0 else None,
                "theft_date": from_us(entered).date() if cat.startswith("stolen") else None,
                "originating_agency": agency,
                "originating_case_number": f"{code}-{rng.integers(100_000, 1_000_000)}",
                "category": cat,
                "entered_at": from_us(entered),
                "expires_at": from_us(end_us + rng.uniform(30, 400) * US_PER_DAY),
                "_fleet": v,
            }
        )
    for i, r in enumerate(f for f in feed if f["category"] != "immigration_violator"):
        entries.append(
            {
                "entry_id": f"ncic-{i:05d}",
                "hotlist_id": "ncic-extract",
                "value_usd": None,
                "reason": f"NCIC {r['category'].replace('_', ' ')}",
                "added_by": "feed:ncic",
                "priority": 1 if r["category"] in ("felony_warrant", "amber_alert") else 2,
                "added_at": r["entered_at"] + dt.timedelta(hours=6),
                "_alert_until": us(r["expires_at"]),
                "_clear": NEVER,
            }
            | {k: r[k] for k in r if k not in ("nic", "entered_at")}
        )
    ncic_feed = pl.DataFrame(
        [{k: v for k, v in r.items() if k != "_fleet"} for r in feed], infer_schema_length=None
    )

    open_cases = [
        c
        for c in cases
        if c["status"] == "open" and c["opened_at"] < local_utc(start, 0) - dt.timedelta(days=5)
    ] or cases
    created = local_utc(start, 10) - dt.timedelta(days=40)
    hl = [
        {
            "hotlist_id": "ca-svs",
            "name": "CA DOJ Stolen Vehicle System",
            "source": "state_stolen",
            "owner_user_id": ids["admin"],
            "reason": "Daily CA DOJ extract",
            "created_at": dt.datetime(2023, 3, 1, 17, tzinfo=UTC),
        },
        {
            "hotlist_id": "ncic-extract",
            "name": "NCIC vehicle extract (via CA DOJ CLETS)",
            "source": "ncic",
            "owner_user_id": ids["admin"],
            "reason": "Daily NCIC extract",
            "created_at": dt.datetime(2023, 3, 1, 17, tzinfo=UTC),
        },
    ]
    custom = [
        ("Robbery series suspect vehicles", 4),
        ("Catalytic converter theft crew", 4),
        ("Hit and run - Olive Ave", 4),
        ("Watch list", 3),
        ("my ex", 1),
    ]
    ci = 0
    for j, (name, k) in enumerate(custom):
        case = open_cases[j % len(open_cases)]
        owner = case["assigned_user_ids"][0]
        row = {
            "hotlist_id": f"custom-{j + 1:02d}",
            "name": name,
            "source": "custom",
            "owner_user_id": owner,
            "case_number": case["case_number"],
            "reason": f"Vehicles linked to {case['case_number']}",
            "created_at": created,
            "expires_at": t_end + dt.timedelta(days=60),
        }
        if name == "Watch list":
            row |= {"case_number": None, "reason": None, "expires_at": None}
            planted.append(("hotlists", row["hotlist_id"], "hotlist_without_case", name))
            planted += [
                ("hotlist_entries", f"cust-{ci + i:04d}", "hotlist_without_case", name)
                for i in range(k)
            ]
        if name == "my ex":
            planted.append(("hotlists", row["hotlist_id"], "hotlist_joke_name", name))
        hl.append(row)
        for _ in range(k):
            v = int(cust_fleet[ci])
            e = {
                "entry_id": f"cust-{ci:04d}",
                "hotlist_id": row["hotlist_id"],
                "plate": fleet[v].decode(),
                "plate_state": "CA",
                "plate_type": "passenger",
                "vehicle_make": makes[make[v]],
                "vehicle_model": model(v),
                "vehicle_color": COLORS[color[v]],
                "originating_agency": DEPARTMENT,
                "originating_case_number": row["case_number"],
                "category": "suspect_vehicle",
                "reason": row["reason"],
                "priority": 3,
                "added_by": owner,
                "added_at": created + dt.timedelta(hours=2),
                "expires_at": row["expires_at"],
                "_fleet": v,
                "_alert_until": NEVER,
                "_clear": NEVER,
            }
            if ci == 0:  # expired, but the list still alerts on it
                e["expires_at"] = max(
                    local_utc(end, 12) - dt.timedelta(days=cfg.days // 2),
                    created + dt.timedelta(days=1),
                )
                planted.append(
                    (
                        "hotlist_entries",
                        e["entry_id"],
                        "entry_past_expiry",
                        f"expired {e['expires_at']:%Y-%m-%d}, still alerting",
                    )
                )
            elif e["expires_at"] is not None:
                e["_alert_until"] = us(e["expires_at"])
            entries.append(e)
            ci += 1
    lam_in_all = np.concatenate(lam_in)
    lam_in_all[cust_fleet[0] - n_ord] = 2.0  # the expired entry's car is seen often

    # Sharing grants and legal holds.
    end_t = local_utc(end, 12)
    year_ago = end_t - dt.timedelta(days=300)
    grants = [
        (n[0], DEPARTMENT, "ca_local_agency", f"Manager, {n[3]}", "Opt-in sharing agreement")
        for n in PRIVATE
    ]
    grants += [
        ("bpd-city", org, typ, ids["captain"], "Mutual aid MOU (Civ. Code 1798.90.55)")
        for org, typ in (
            ("Glendale Police Department", "ca_local_agency"),
            ("Pasadena Police Department", "ca_local_agency"),
            ("Los Angeles County Sheriff's Department", "ca_local_agency"),
            ("California Highway Patrol", "ca_state_agency"),
        )
    ]
    bad = [
        ("improper_grant_federal", "Homeland Security Investigations", "federal"),
        ("improper_grant_out_of_state", "Phoenix Police Department", "out_of_state"),
        ("improper_grant_private", "Peregrine Data Brokers Inc.", "private"),
        ("grant_without_approval", "San Fernando Police Department", "ca_local_agency"),
        ("grant_review_overdue", "Los Angeles Police Department", "ca_local_agency"),
    ]
    g_rows = [
        {
            "network_id": n,
            "recipient_org": o,
            "recipient_type": t,
            "approved_by": a,
            "basis": b,
            "granted_at": year_ago,
            "review_by_date": (year_ago + dt.timedelta(days=365)).date(),
            "scope": "search_and_alerts",
        }
        for n, o, t, a, b in grants
    ]
    g_rows.append(
        g_rows[-1]
        | {
            "network_id": "hoa-rancho",
            "revoked_at": end_t - dt.timedelta(days=cfg.days // 2),
            "recipient_org": "Glendale Police Department",
            "recipient_type": "ca_local_agency",
            "approved_by": "HOA board",
        }
    )
    for pattern, org, typ in bad:
        row = g_rows[4] | {"recipient_org": org, "recipient_type": typ, "scope": "search"}
        if pattern == "grant_without_approval":
            row |= {"approved_by": None, "basis": None}
        if pattern == "grant_review_overdue":
            row |= {
                "granted_at": end_t - dt.timedelta(days=500),
                "review_by_date": (end_t - dt.timedelta(days=135)).date(),
            }
        row["_planted"] = pattern
        g_rows.append(row)
    for i, g in enumerate(g_rows):
        g["grant_id"] = f"grant-{i + 1:03d}"
        if "_planted" in g:
            planted.append(("sharing_grants", g["grant_id"], g.pop("_planted"), g["recipient_org"]))
    heavy = [
        c
        for c in cases
        if c["offense_type"] in ("homicide", "robbery", "kidnapping_abduction")
        and c["opened_at"] < end_t - dt.timedelta(days=10)
    ]
    holds = []
    for i, c in enumerate((heavy or cases)[:3]):
        overdue = i == 2
        created_h = max(c["opened_at"], end_t - dt.timedelta(days=200)) + dt.timedelta(days=2)
        review = end_t - dt.timedelta(days=20) if overdue else end_t + dt.timedelta(days=150)
        holds.append(
            {
                "hold_id": f"hold-{i + 1:03d}",
                "case_number": c["case_number"],
                "approver_user_id": ids["lieutenant"],
                "created_at": created_h,
                "reason": f"Evidence for {c['offense_type'].replace('_', ' ')} case",
                "review_by_date": review.date(),
                "read_count": int(rng.integers(20, 900)),
            }
        )
        if overdue:
            planted.append(
                (
                    "legal_holds",
                    holds[-1]["hold_id"],
                    "hold_review_overdue",
                    f"review was due {review:%Y-%m-%d}",
                )
            )

    # Searches, then users' last activity consistent with them.
    audit, planted_e = make_searches(
        rng, start, end, users, ids, searchers, cases, plates_ord[:112_000].astype(str)
    )
    planted += planted_e
    last = audit.group_by("user_id").agg(pl.col("occurred_at").max().alias("_last"))
    recent = [end_t - dt.timedelta(hours=float(h)) for h in rng.uniform(2, 200, users.height)]
    users = (
        users.with_columns(pl.Series("_recent", recent))
        .join(last, on="user_id", how="left")
        .with_columns(
            pl.when(pl.col("user_id").is_in([ids["burst"], ids["activity_after_separation"]]))
            .then(pl.col("_last"))
            .otherwise(pl.max_horizontal("_last", "_recent"))
            .alias("_last")
        )
        .with_columns(pl.coalesce("last_active_at", "_last").alias("last_active_at"))
    )
    rec_df = pl.DataFrame(
        {
            "vehicle": [r["vehicle"] for r in recs],
            "cam": [r["cam"] for r in recs],
            "t": [us(r["captured_at"]) for r in recs],
            "entry_id": [r["entry_id"] for r in recs],
            "case_number": [r["case_number"] for r in recs],
            "value_usd": [r["value_usd"] for r in recs],
            "arrest": [r["arrest"] for r in recs],
            "cleared_at": [r["cleared_at"] for r in recs],
            "delays_min": [r["delays_min"].tolist() for r in recs],
        },
        schema_overrides={
            "vehicle": pl.Int64,
            "cam": pl.Int64,
            "t": pl.Int64,
            "entry_id": pl.String,
            "case_number": pl.String,
            "value_usd": pl.Float64,
            "arrest": pl.Boolean,
            "cleared_at": pl.Datetime("us", "UTC"),
            "delays_min": pl.List(pl.Float64),
        },
    )
    ent_df = pl.DataFrame(entries, infer_schema_length=None)
    key = ent_df.select(
        "entry_id",
        "hotlist_id",
        "plate",
        "plate_state",
        "priority",
        pl.col("plate")
        .str.replace_many(["O", "I", "B", "S", "Z"], ["0", "1", "8", "5", "2"])
        .alias("key"),
        pl.col("added_at").dt.epoch("us").alias("alert_from"),
        pl.col("_alert_until").alias("alert_until"),
        pl.col("_clear").alias("clear"),
        pl.col("_fleet").fill_null(-1).alias("fleet"),
    ).join(
        pl.DataFrame(hl, infer_schema_length=None).select("hotlist_id", "source"), on="hotlist_id"
    )
    sim = Sim(
        plates=fleet,
        plate_str=pl.Series(fleet.astype(str)),
        state=np.concatenate(states),
        make=make,
        color=color,
        vtype=_pick(rng, TYPE_P, n_all),
        swap_pos=np.concatenate(swap),
        ord_perm=rng.permutation(n_ord),
        spec_idx=np.arange(n_ord, n_all),
        spec_lam_in=lam_in_all,
        spec_lam_out=np.concatenate(lam_out),
        spec_from=np.concatenate(s_from),
        spec_until=np.concatenate(s_until),
        cam_lat=cameras["lat"].to_numpy(),
        cam_lon=cameras["lon"].to_numpy(),
        cam_rate=cam_rate,
        cam_id=cameras["camera_id"],
        cam_net=cameras["network_id"],
        entries=key,
        recoveries=rec_df,
        reviewers=reviewers,
    )
    case_df = pl.DataFrame(cases, infer_schema_length=None)
    return City(
        config=cfg,
        networks=networks,
        cameras=cameras,
        users=conform("users", users),
        cases=conform("cases", case_df),
        sharing_grants=conform("sharing_grants", pl.DataFrame(g_rows, infer_schema_length=None)),
        hotlists=conform("hotlists", pl.DataFrame(hl, infer_schema_length=None)),
        hotlist_entries=conform("hotlist_entries", ent_df),
        legal_holds=conform("legal_holds", pl.DataFrame(holds, infer_schema_length=None)),
        audit_events=conform("audit_events", audit),
        ncic_feed=ncic_feed,
        planted=pl.DataFrame(
            planted, schema=["table", "record_id", "pattern", "detail"], orient="row"
        ),
        _sim=sim,
    )
