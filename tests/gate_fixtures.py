"""A small synthetic city in a real encrypted store, for tests that drive the gate in-process.

The attacks on the gate and on supervisors' approvals (``tests/attacks/test_attack_gate.py``,
``tests/attacks/test_attack_approvals.py``) each build one: cameras, users and two open cases,
then a few days of reads. Each module keeps its own users, case numbers and days, and its own
store (their audit logs must not mix).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from alpr_workbench.store import Store
from alpr_workbench.synth import CityConfig, generate_city, generate_day
from conftest import PASSPHRASE


def city_user(
    user_id: str, role: str, title: str = "Crime Analyst", *, since: dt.datetime,
    **extra: object,
) -> dict[str, object]:
    """A ``users`` row in good standing, approved (by ``dlee``) and trained at ``since``."""
    return {
        "user_id": user_id,
        "full_name": user_id,
        "role": role,
        "organization": "Burbank Police Department",
        "organization_type": "ca_local_agency",
        "job_title": title,
        "is_active": True,
        "approved_by": "dlee",
        "approved_at": since,
        "trained_at": since,
        **extra,
    }


def build_small_city(
    home: Path,
    config: CityConfig,
    users: Iterable[dict[str, object]],
    *,
    theft: tuple[str, list[str]],
    robbery: tuple[str, list[str]],
    opened_at: dt.datetime,
) -> Path:
    """Create a store in ``home`` with ``config``'s city, ``users``, two cases and its reads.

    ``theft`` and ``robbery`` are (case number, assigned user ids) of the two open cases, a
    stolen Honda Civic (``motor_vehicle_theft``) and a robbery on Olive Ave (``robbery``).
    """
    store = Store.create(home, passphrase=PASSPHRASE)
    city = generate_city(config)
    for table in ("networks", "cameras", "sharing_grants"):
        store.tables.write(table, getattr(city, table))
    store.tables.write("users", pl.DataFrame(list(users),
                                             schema=store.tables.read("users").schema))
    store.tables.write("cases", pl.DataFrame({
        "case_number": [theft[0], robbery[0]],
        "title": ["Stolen Honda Civic", "Robbery on Olive Ave"],
        "offense_type": ["motor_vehicle_theft", "robbery"],
        "status": ["open", "open"],
        "opened_at": [opened_at, opened_at],
        "assigned_user_ids": [theft[1], robbery[1]],
    }))
    for i in range(config.days):
        store.reads.ingest(generate_day(city, config.start_date + dt.timedelta(days=i)).reads)
    return home
