"""Users, cases and a period of search activity, with improper use planted on purpose."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from alpr_workbench.synth._config import DEPARTMENT, RETENTION_DAYS, TIMEZONE, VAGUE_REASONS

UTC = dt.UTC
LOCAL = ZoneInfo(TIMEZONE)

# fmt: off
STREETS = (
    "Olive Ave", "Magnolia Blvd", "Victory Blvd", "San Fernando Blvd", "Glenoaks Blvd",
    "Hollywood Way", "Alameda Ave", "Buena Vista St", "Burbank Blvd", "Verdugo Ave",
    "Riverside Dr", "Pass Ave", "Empire Ave", "Lake St", "First St", "Third St",
    "Keystone St", "Naomi St", "Lincoln St", "Scott Rd", "Providencia Ave", "Sunset Canyon Dr",
)
_FIRST = (
    "Maria", "James", "Ana", "David", "Sofia", "Michael", "Elena", "Robert", "Grace", "Daniel",
    "Linda", "Jose", "Karen", "Kevin", "Laura", "Brian", "Nina", "Steven", "Rosa", "Eric",
    "Julia", "Mark", "Lucia", "Paul", "Helen", "Aaron", "Diana", "Victor", "Irene", "Sam",
)
_LAST = (
    "Martinez", "Nguyen", "Kim", "Johnson", "Garcia", "Hakobyan", "Lee", "Brown", "Lopez",
    "Petrosyan", "Chen", "Miller", "Reyes", "Davis", "Sarkisian", "Wilson", "Ramirez", "Park",
    "Anderson", "Torres", "Clark", "Flores", "Young", "Hernandez", "Walker", "Moore", "Cruz",
)

#: Offense types of cases, with their share of ALPR-relevant cases.
OFFENSES: dict[str, float] = {
    "motor_vehicle_theft": 0.22, "burglary": 0.17, "robbery": 0.12, "aggravated_assault": 0.10,
    "homicide": 0.02, "kidnapping_abduction": 0.02, "fraud": 0.08, "hit_and_run": 0.10,
    "missing_person": 0.06, "drug_narcotic": 0.04, "stolen_property": 0.04, "sex_offense": 0.02,
    "arson": 0.01,
}
# fmt: on
_TEXTS = {
    "motor_vehicle_theft": "Vehicle taken from a driveway on {s}; checking reads of the plate",
    "burglary": "Commercial burglary on {s}; suspect vehicle seen on video",
    "robbery": "Armed robbery at a store on {s}; getaway plate from a witness",
    "aggravated_assault": "Assault with a deadly weapon near {s}; suspect fled in a car",
    "homicide": "Homicide near {s}; vehicle seen leaving the scene",
    "kidnapping_abduction": "Child abduction reported near {s}; locate suspect vehicle",
    "fraud": "Identity theft ring; car used at bank drops near {s}",
    "hit_and_run": "Hit and run with injury at {s}; partial plate from a witness",
    "missing_person": "At-risk missing adult; family car last seen near {s}",
    "drug_narcotic": "Narcotics sales from a vehicle near {s}; confirm movements",
    "stolen_property": "Stolen catalytic converters sold from a van near {s}",
    "sex_offense": "Indecent exposure suspect vehicle near {s}",
    "arson": "Arson of a vehicle on {s}; suspect car seen by a witness",
}
_IMPROPER_TEXTS = {
    "immigration_term": (
        "Assist ICE ERO to locate subject",
        "HSI request - immigration status",
        "Deportation order subject, locate car",
        "CBP / border patrol request",
    ),
    "protected_activity": (
        "Identify cars at the protest outside City Hall",
        "Plates at abortion clinic rally",
    ),
    "civil_use": (
        "Custody dispute - locate ex-spouse",
        "Checking where my car was parked",
        "Locate person for restraining order",
    ),
}
_MALFORMED = ("24-001234", "BPD-26-1234", "N/A", "BPD2026000123", "case 4471")


def local_utc(day: dt.date, hour: float) -> dt.datetime:
    """Return the UTC time of local (Burbank) ``hour`` on ``day``."""
    naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(hours=hour)
    return naive.replace(tzinfo=LOCAL).astimezone(UTC)


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None)


def make_users(
    rng: np.random.Generator, start: dt.date, end: dt.date
) -> tuple[pl.DataFrame, dict[str, str], list[tuple[str, str, str, str]]]:
    """Users: 32 proper department accounts plus the planted improper ones.

    Returns the frame (``last_active_at`` still null), a map of special roles to user
    ids and the planted rows.
    """
    end_t = local_utc(end, 18)
    plan = (
        [("analyst", "Crime Analyst")] * 4
        + [("analyst", "Senior Crime Analyst")] * 2
        + [("investigator", "Detective")] * 10
        + [("investigator", "Police Officer")] * 4
        + [("supervisor", "Sergeant")] * 4
        + [("supervisor", "Lieutenant")]
        + [("command_staff", t) for t in ("Captain", "Deputy Chief", "Chief of Police")]
        + [("auditor", "Auditor")] * 2
        + [("administrator", "IT Administrator")] * 2
    )
    names = [(f, la) for f in _FIRST for la in _LAST]
    picks = rng.choice(len(names), size=len(plan) + 6, replace=False)
    rows: list[dict[str, Any]] = []
    for (role, title), k in zip(plan, picks, strict=False):
        first, last = names[k]
        uid = f"{first[0]}{last}".lower()
        while any(r["user_id"] == uid for r in rows):
            uid += "2"
        rows.append(
            {
                "user_id": uid,
                "full_name": f"{first} {last}",
                "role": role,
                "organization": DEPARTMENT,
                "organization_type": "ca_local_agency",
                "job_title": title,
                "is_active": True,
                "approved_at": end_t - dt.timedelta(days=float(rng.uniform(200, 2500))),
                "trained_at": end_t - dt.timedelta(days=float(rng.uniform(20, 650))),
            }
        )
    lieutenant = next(r["user_id"] for r in rows if r["job_title"] == "Lieutenant")
    for r in rows:
        r["approved_by"] = lieutenant if r["user_id"] != lieutenant else rows[-6]["user_id"]
    ids = {
        "lieutenant": lieutenant,
        "captain": next(r["user_id"] for r in rows if r["job_title"] == "Captain"),
        "admin": next(r["user_id"] for r in rows if r["role"] == "administrator"),
        "burst": rows[15]["user_id"],
        "tracker": rows[12]["user_id"],
    }
    extra_names = [names[k] for k in picks[len(plan) :]]

    def person(i: int, **kw: Any) -> dict[str, Any]:
        first, last = extra_names[i]
        base = {
            "user_id": f"{first[0]}{last}{i}".lower(),
            "full_name": f"{first} {last}",
            "role": "investigator",
            "organization": DEPARTMENT,
            "organization_type": "ca_local_agency",
            "job_title": "Police Officer",
            "is_active": True,
            "approved_by": lieutenant,
            "approved_at": end_t - dt.timedelta(days=900),
            "trained_at": end_t - dt.timedelta(days=300),
        }
        return base | kw

    sep_at = local_utc(start + dt.timedelta(days=(end - start).days * 2 // 5), 8)
    planted_users = [
        ("shared_account", person(0, user_id="patrol1", full_name="Patrol Shared Login")),
        ("activity_after_separation", person(1, job_title="Detective", separated_at=sep_at)),
        ("idle_account", person(2, last_active_at=end_t - dt.timedelta(days=150))),
        ("untrained_user", person(3, trained_at=None)),
        ("job_title_not_on_list", person(4, role="analyst", job_title="Records Clerk")),
        (
            "federal_searcher",
            person(
                5,
                user_id="hsi.agent",
                organization="Homeland Security Investigations",
                organization_type="federal",
                job_title="Special Agent",
                approved_by=ids["admin"],
            ),
        ),
        (
            "out_of_state_searcher",
            person(
                0,
                user_id="phx.detective",
                full_name="Dale Ortiz",
                organization="Phoenix Police Department",
                organization_type="out_of_state",
                job_title="Detective",
                approved_by=ids["admin"],
            ),
        ),
    ]
    planted = []
    for pattern, row in planted_users:
        rows.append(row)
        ids[pattern] = row["user_id"]
        planted.append(
            ("users", row["user_id"], pattern, f"{row['full_name']} / {row['job_title']}")
        )
    planted.append(("users", ids["federal_searcher"], "job_title_not_on_list", "Special Agent"))
    return _frame(rows), ids, planted


def make_cases(
    rng: np.random.Generator,
    start: dt.date,
    end: dt.date,
    searchers: list[str],
    recoveries: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Cases opened from 120 days before the period to its end, plus one per recovery."""
    days = (end - start).days + 1
    n = max(20, round(300 * (days + 120) / 365))
    first = dt.datetime.combine(start - dt.timedelta(days=120), dt.time(), UTC)
    span_s = (days + 120) * 86400
    end_t = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), UTC)
    offenses = list(OFFENSES)
    probs = np.array(list(OFFENSES.values()))
    cases: list[dict[str, Any]] = []
    for _ in range(n):
        opened = first + dt.timedelta(seconds=float(rng.uniform(0, span_s)))
        closed = opened + dt.timedelta(days=float(rng.exponential(45)))
        off = offenses[rng.choice(len(offenses), p=probs / probs.sum())]
        street = STREETS[rng.integers(len(STREETS))]
        k = int(rng.integers(1, 4))
        cases.append(
            {
                "title": f"{off.replace('_', ' ').capitalize()} - "
                f"{int(rng.integers(1, 40)) * 100} blk {street}",
                "offense_type": off,
                "opened_at": opened,
                "closed_at": closed if closed < end_t else None,
                "assigned_user_ids": [str(u) for u in rng.choice(searchers, size=k, replace=False)],
            }
        )
    for rec in recoveries:
        cases.append(
            {
                "title": f"Recovered stolen vehicle {rec['plate']}",
                "offense_type": "motor_vehicle_theft",
                "opened_at": rec["captured_at"] + dt.timedelta(minutes=30),
                "closed_at": rec["cleared_at"],
                "assigned_user_ids": [str(rng.choice(searchers))],
                "_recovery": rec,
            }
        )
    cases.sort(key=lambda c: c["opened_at"])
    counters: dict[int, int] = {}
    for c in cases:
        year = c["opened_at"].year
        counters[year] = counters.get(year, 800) + int(rng.integers(1, 30))
        c["case_number"] = f"BPD-{year}-{counters[year]:06d}"
        c["status"] = "closed" if c["closed_at"] is not None else "open"
        if "_recovery" in c:
            c.pop("_recovery")["case_number"] = c["case_number"]
    return cases


def make_searches(
    rng: np.random.Generator,
    start: dt.date,
    end: dt.date,
    users: pl.DataFrame,
    ids: dict[str, str],
    searchers: list[str],
    cases: list[dict[str, Any]],
    plates: np.ndarray,
) -> tuple[pl.DataFrame, list[tuple[str, str, str, str]]]:
    """Search events for the period: mostly proper, a planted minority improper."""
    days = (end - start).days + 1
    org = {
        r["user_id"]: (r["organization"], r["organization_type"])
        for r in users.iter_rows(named=True)
    }
    opened = np.array([c["opened_at"].timestamp() for c in cases])
    closed = np.array([c["closed_at"].timestamp() if c["closed_at"] else np.inf for c in cases])
    legit = [u for u in searchers if u != ids["burst"]]
    plate_pool = iter(rng.permutation(plates)[:20_000].tolist())
    events: list[dict[str, Any]] = []
    planted: list[tuple[str, str, str, str]] = []

    period_end = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), UTC)

    def when(day: dt.date | None = None, lo: float = 7.5, hi: float = 21.0) -> dt.datetime:
        if day is None:
            day = start + dt.timedelta(days=int(rng.integers(days)))
        t = local_utc(day, float(rng.uniform(lo, hi)))
        return t - dt.timedelta(days=1) if t >= period_end else t  # stay in the UTC period

    def open_case(t: dt.datetime, user: str | None) -> dict[str, Any] | None:
        ok = np.flatnonzero((opened <= t.timestamp() - 3600) & (closed > t.timestamp()))
        if user is not None:
            ok = np.array([i for i in ok if user in cases[i]["assigned_user_ids"]], dtype=int)
        return cases[int(rng.choice(ok))] if len(ok) else None

    def event(t: dt.datetime, user: str, case: dict[str, Any] | None, **kw: Any) -> dict[str, Any]:
        street = STREETS[rng.integers(len(STREETS))]
        off = case["offense_type"] if case else "burglary"
        to = t - dt.timedelta(hours=float(rng.uniform(0, 30)))
        frm = max(
            to - dt.timedelta(days=float(rng.uniform(0.5, 21))),
            t - dt.timedelta(days=RETENTION_DAYS - 2),
        )
        ev: dict[str, Any] = {
            "occurred_at": t,
            "event_type": "search",
            "user_id": user,
            "organization": org[user][0],
            "organization_type": org[user][1],
            "case_number": case["case_number"] if case else None,
            "reason_code": off,
            "reason_text": _TEXTS[off].format(s=street),
            "plate_queried": next(plate_pool),
            "window_from": frm,
            "window_to": to,
            "networks_searched": int(rng.integers(1, 5)),
            "outcome": "allowed",
            "row_count": int(rng.poisson(12)),
        } | kw
        scope: Any = "national" if ev["networks_searched"] > 100 else ev["networks_searched"]
        ev["query_json"] = json.dumps(
            {
                "plate": ev["plate_queried"],
                "window_from": ev["window_from"].isoformat(),
                "window_to": ev["window_to"].isoformat(),
                "networks": scope,
                "case_number": ev["case_number"],
                "reason_code": ev["reason_code"],
            }
        )
        events.append(ev)
        return ev

    def plant(pattern: str, ev: dict[str, Any], detail: str) -> None:
        ev["_planted"] = (pattern, detail)

    for i in range(days):
        day = start + dt.timedelta(days=i)
        lam = 13.0 if day.weekday() < 5 else 7.0
        for _ in range(rng.poisson(lam)):
            t = when(day)
            case = open_case(t, None)
            workers = [u for u in case["assigned_user_ids"] if u in legit] if case else []
            if workers:
                event(t, workers[rng.integers(len(workers))], case)
    n_legit = max(len(events), 1)

    def count(rate: float) -> int:
        return max(1, round(rate * n_legit))

    def proper_base(user: str | None = None) -> tuple[dt.datetime, str, dict[str, Any] | None]:
        for _ in range(100):
            t = when()
            u = user or legit[rng.integers(len(legit))]
            case = open_case(t, u if user is None else None)
            if case is not None:
                return t, u, case
        raise RuntimeError("no open case to search under")

    singles: dict[str, float] = {
        "blank_reason": 0.006,
        "vague_reason": 0.008,
        "other_without_text": 0.003,
        "immigration_term": 0.004,
        "ambiguous_ice": 0.0005,
        "protected_activity": 0.003,
        "civil_use": 0.004,
        "missing_case_number": 0.004,
        "malformed_case_number": 0.004,
        "closed_case": 0.003,
        "oversized_scope": 0.002,
        "lookback_past_retention": 0.004,
        "federal_searcher": 0.004,
        "out_of_state_searcher": 0.003,
    }
    closed_cases = [
        c for c in cases if c["closed_at"] is not None and c["closed_at"] < local_utc(end, 6)
    ]
    for pattern, rate in singles.items():
        for j in range(count(rate)):
            user = ids.get(pattern)
            t, u, case = proper_base(user)
            kw: dict[str, Any] = {}
            if pattern == "blank_reason":
                kw = {"reason_code": None, "reason_text": None if j % 2 else ""}
            elif pattern == "vague_reason":
                kw = {"reason_code": "other", "reason_text": VAGUE_REASONS[j % 4]}
            elif pattern == "other_without_text":
                kw = {"reason_code": "other", "reason_text": None}
            elif pattern in _IMPROPER_TEXTS:
                texts = _IMPROPER_TEXTS[pattern]
                kw = {"reason_code": "other", "reason_text": texts[j % len(texts)]}
            elif pattern == "ambiguous_ice":
                kw = {
                    "reason_code": "drug_narcotic",
                    "reason_text": "Suspect selling ice (meth) from a car on Lake St",
                }
            elif pattern == "missing_case_number":
                case = None
                kw = {"reason_code": "burglary"}
            elif pattern == "malformed_case_number":
                kw = {"case_number": _MALFORMED[j % len(_MALFORMED)]}
            elif pattern == "closed_case":
                case = closed_cases[rng.integers(len(closed_cases))]
                first = max(
                    start, case["closed_at"].astimezone(LOCAL).date() + dt.timedelta(days=1)
                )
                span = max((end - first).days + 1, 1)
                t = when(min(first + dt.timedelta(days=int(rng.integers(span))), end), 8, 20)
            elif pattern == "oversized_scope":
                kw = {"networks_searched": 1500}
            elif pattern == "lookback_past_retention":
                to = t - dt.timedelta(days=float(rng.uniform(40, 60)))
                kw = {"window_to": to, "window_from": to - dt.timedelta(days=30)}
            ev = event(t, u, case, **kw)
            plant(pattern, ev, str(ev.get("reason_text") or ev.get("case_number")))
    # The same officer follows one plate all period long.
    tracked = next(plate_pool)
    n_track = min(12, max(5, days // 5))
    for k in range(n_track):
        day = start + dt.timedelta(days=(k * days) // n_track)
        t = when(day)
        case = open_case(t, None)
        if case is None:
            continue
        case["assigned_user_ids"] = sorted({*case["assigned_user_ids"], ids["tracker"]})
        ev = event(t, ids["tracker"], case, plate_queried=tracked)
        plant("repeat_tracking", ev, f"{ids['tracker']} searched {tracked}")
    # A long-quiet account searches a burst of plates between 1 and 3 am.
    burst_day = max(start, end - dt.timedelta(days=max(1, days // 6)))
    t = local_utc(burst_day, 1.5)
    for _ in range(5):
        t += dt.timedelta(minutes=float(rng.uniform(3, 12)))
        case = open_case(t, None)
        if case is None:
            continue
        case["assigned_user_ids"] = sorted({*case["assigned_user_ids"], ids["burst"]})
        plant("off_hours_burst", event(t, ids["burst"], case), "searched at night")
    # A separated detective keeps using the account.
    sep = users.filter(pl.col("user_id") == ids["activity_after_separation"])
    sep_at = sep["separated_at"][0]
    for _ in range(2):
        sep_day = sep_at.astimezone(LOCAL).date()
        t = when(sep_day + dt.timedelta(days=int(rng.integers((end - sep_day).days + 1))), 9, 15.5)
        case = open_case(t, None)
        if case is not None:
            ev = event(t, ids["activity_after_separation"], case)
            plant("activity_after_separation", ev, f"separated {sep_at:%Y-%m-%d}")

    events.sort(key=lambda e: e["occurred_at"])
    for i, ev in enumerate(events):
        ev["event_id"] = f"ae-{ev['occurred_at']:%Y%m%d}-{i:06d}"
        mark = ev.pop("_planted", None)
        if mark is not None:
            planted.append(("audit_events", ev["event_id"], mark[0], mark[1]))
    return _frame(events), planted
