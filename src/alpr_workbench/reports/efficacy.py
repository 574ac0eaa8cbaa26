"""The efficacy and impact report for a period, from aggregates the gate allows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from alpr_workbench.analytics import EfficacyReport, efficacy_report
from alpr_workbench.config import load_settings
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance import Gate
from alpr_workbench.store import Store


def default_period(store: Store) -> tuple[dt.date, dt.date]:
    """The stored days, first to last (raises when the store holds no reads)."""
    days = store.reads.days()
    if not days:
        raise WorkbenchError("the store holds no reads yet (run `alpr-workbench demo`?)")
    return days[0], days[-1]


def build_efficacy_report(
    store: Store,
    audit: Any,
    *,
    user_id: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    gate: Gate | None = None,
) -> EfficacyReport:
    """Efficacy and impact for ``start``..``end`` as ``user_id`` may see them (aggregates only).

    Raises
    ------
    SearchRefused
        When the user may not view aggregates (audited by the gate).
    """
    first, last = default_period(store)
    start, end = start or first, end or last
    settings = load_settings(store.home)
    gate = gate or Gate(store, audit)
    summary = gate.read_summary(user_id, start=start, end=end)
    return efficacy_report(
        reads_daily=summary.reads_daily,
        unique_vehicles=summary.unique_vehicles,
        hits=store.tables.read("hits"),
        outcomes=store.tables.read("outcomes"),
        audit_events=audit.events(),
        networks=store.tables.read("networks"),
        start=start,
        end=end,
        program_budget_usd=settings.program_budget_usd,
        staff_hours_saved_per_recovery=settings.staff_hours_saved_per_recovery,
    )
