"""Analytics: efficacy and impact metrics and geographic aggregation (pure functions on frames).

Analytics never sees plate-level reads: it works on the gate's read aggregate
(``reads_daily``), hits, outcomes, audit events and reference tables. geopandas and shapely
load only when a geo function runs.
"""

from alpr_workbench.analytics.efficacy import (
    READS_DAILY_SCHEMA,
    EfficacyReport,
    Rate,
    efficacy_report,
    monthly_trend,
    trend,
    wilson_interval,
)
from alpr_workbench.analytics.geo import (
    cameras_gdf,
    city_outline,
    coverage_grid,
    coverage_share,
    heat_grid,
    hits_gdf,
    outcomes_gdf,
)
from alpr_workbench.analytics.patterns import (
    eligible_case_assignments,
    repeat_sightings,
    seen_at_both,
    sightings_by_hour,
    sightings_by_weekday,
)

__all__ = [
    "READS_DAILY_SCHEMA",
    "EfficacyReport",
    "Rate",
    "cameras_gdf",
    "city_outline",
    "coverage_grid",
    "coverage_share",
    "efficacy_report",
    "heat_grid",
    "hits_gdf",
    "monthly_trend",
    "trend",
    "outcomes_gdf",
    "wilson_interval",
    "eligible_case_assignments",
    "repeat_sightings",
    "seen_at_both",
    "sightings_by_hour",
    "sightings_by_weekday",
]
