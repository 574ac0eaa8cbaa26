"""Synthetic city modelled on Burbank, CA: the embedded default and the test fixture.

Reference tables, a period of search activity with planted improper use (and the ground
truth of what was planted), and day-by-day traffic: reads, hotlist hits, dispositions and
outcomes. Everything is a deterministic function of :class:`CityConfig`.
"""

from alpr_workbench.synth._city import generate_city
from alpr_workbench.synth._config import (
    CIVIL_USE_TERMS,
    DEPARTMENT,
    IMMIGRATION_TERMS,
    JOB_TITLES,
    PATTERNS,
    PROTECTED_ACTIVITY_TERMS,
    REASON_CODES,
    RETENTION_DAYS,
    VAGUE_REASONS,
    City,
    CityConfig,
    DayBatch,
)
from alpr_workbench.synth._traffic import generate_day, iter_days

__all__ = [
    "CIVIL_USE_TERMS",
    "DEPARTMENT",
    "IMMIGRATION_TERMS",
    "JOB_TITLES",
    "PATTERNS",
    "PROTECTED_ACTIVITY_TERMS",
    "REASON_CODES",
    "RETENTION_DAYS",
    "VAGUE_REASONS",
    "City",
    "CityConfig",
    "DayBatch",
    "generate_city",
    "generate_day",
    "iter_days",
]
