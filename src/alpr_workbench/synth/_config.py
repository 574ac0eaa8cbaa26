"""Configuration, result containers and policy lists of the synthetic city."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from alpr_workbench.policy import load_policy
from alpr_workbench.schema import load_table

#: Organization of the department the synthetic city models.
DEPARTMENT = load_policy().agency_name

#: Job titles and reasons come from the department policy (one source of truth).
JOB_TITLES: tuple[str, ...] = load_policy().job_titles
REASON_CODES: tuple[str, ...] = load_policy().reason_codes

#: Reason texts that say nothing (boilerplate seen in real audit logs).
VAGUE_REASONS: tuple[str, ...] = ("investigation", "inv", "***", "other - not applicable")

#: Prohibited-purpose terms: immigration enforcement (SB 54), protected activity, civil or
#: personal use. Short tokens are matched as whole words, the rest as substrings.
# fmt: off
IMMIGRATION_TERMS: tuple[str, ...] = (
    "ice", "hsi", "ero", "cbp", "border patrol", "deport", "immigra",
)
PROTECTED_ACTIVITY_TERMS: tuple[str, ...] = (
    "protest", "rally", "abortion", "religio", "journalist", "gender-affirming",
)
CIVIL_USE_TERMS: tuple[str, ...] = (
    "custody", "restraining order", "bail", "my car", "divorce", "neighbor",
)

# fmt: on
#: Days reads are kept; a search may not look back further.
RETENTION_DAYS = 30

#: Planted pattern names, as they appear in :attr:`City.planted`.
# fmt: off
PATTERNS: tuple[str, ...] = (
    "blank_reason", "vague_reason", "other_without_text", "immigration_term", "ambiguous_ice",
    "federal_searcher", "out_of_state_searcher", "protected_activity", "civil_use",
    "missing_case_number", "malformed_case_number", "closed_case", "oversized_scope",
    "lookback_past_retention", "repeat_tracking", "off_hours_burst",
    "improper_grant_federal", "improper_grant_out_of_state", "improper_grant_private",
    "grant_without_approval", "grant_review_overdue", "shared_account",
    "activity_after_separation", "idle_account", "untrained_user", "job_title_not_on_list",
    "hotlist_without_case", "hotlist_joke_name", "entry_past_expiry", "hold_review_overdue",
)
# fmt: on

TIMEZONE = "America/Los_Angeles"


@dataclass(frozen=True)
class CityConfig:
    """Parameters of the synthetic city; everything generated is a function of them.

    Parameters
    ----------
    seed
        Seed of every random draw.
    days
        Number of days simulated, ending at ``end_date``.
    end_date
        Last simulated day (inclusive, UTC calendar day).
    n_city_cameras
        Cameras of the department's own network.
    scale
        Traffic multiplier (1.0 gives 500-1,000 reads per camera per day).
    program_budget_usd
        Yearly cost of the ALPR program, for cost-per-outcome metrics.
    """

    seed: int = 7
    days: int = 30
    end_date: dt.date = dt.date(2026, 10, 31)
    n_city_cameras: int = 48
    scale: float = 1.0
    program_budget_usd: float = 150_000.0

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.n_city_cameras < 1:
            raise ValueError("n_city_cameras must be at least 1")
        if not self.scale > 0:
            raise ValueError("scale must be positive")

    @property
    def start_date(self) -> dt.date:
        """First simulated day (inclusive)."""
        return self.end_date - dt.timedelta(days=self.days - 1)


@dataclass(frozen=True, eq=False)
class City:
    """A generated city: its reference tables, a period of audit events and the planted truth.

    Every table conforms to its declaration in ``data_schema/``. ``ncic_feed`` is a raw
    NCIC-style extract (including ``immigration_violator`` rows that must never alert) and
    ``planted`` lists every improper record on purpose, with columns ``table``,
    ``record_id``, ``pattern`` and ``detail``.
    """

    config: CityConfig
    networks: pl.DataFrame
    cameras: pl.DataFrame
    users: pl.DataFrame
    cases: pl.DataFrame
    sharing_grants: pl.DataFrame
    hotlists: pl.DataFrame
    hotlist_entries: pl.DataFrame
    legal_holds: pl.DataFrame
    audit_events: pl.DataFrame
    ncic_feed: pl.DataFrame
    planted: pl.DataFrame
    _sim: Any = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class DayBatch:
    """One simulated UTC day: reads, the hits among them and what followed the hits."""

    day: dt.date
    reads: pl.DataFrame
    hits: pl.DataFrame
    outcomes: pl.DataFrame


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Select the declared columns of ``table`` in order, with declared dtypes (no checks)."""
    spec = load_table(table)
    cols = []
    for f in spec.fields:
        dtype = f.polars_dtype
        if f.name not in frame.columns:
            cols.append(pl.lit(None, dtype=dtype).alias(f.name))
        elif f.type == "datetime":
            cols.append(pl.col(f.name).cast(pl.Datetime("us", "UTC")))
        else:
            cols.append(pl.col(f.name).cast(dtype))
    return frame.select(cols)
