"""Reports assembled from the governed data: efficacy, the annual audit, the public page."""

from alpr_workbench.reports.audit_checks import (
    AuditInputs,
    CheckResult,
    flag_search_patterns,
    run_checks,
)
from alpr_workbench.reports.audit_report import (
    audit_health,
    collect_audit_inputs,
    render_audit_report,
    write_audit_report,
)
from alpr_workbench.reports.efficacy import build_efficacy_report, default_period
from alpr_workbench.reports.transparency import (
    SUPPRESSION_THRESHOLD,
    TransparencyData,
    collect_transparency,
    compare_with_portals,
    format_count,
    read_portal_metrics,
    render_transparency,
    write_transparency,
)

__all__ = [
    "audit_health",
    "SUPPRESSION_THRESHOLD",
    "TransparencyData",
    "collect_transparency",
    "compare_with_portals",
    "format_count",
    "read_portal_metrics",
    "render_transparency",
    "write_transparency",
    "AuditInputs",
    "CheckResult",
    "build_efficacy_report",
    "collect_audit_inputs",
    "default_period",
    "flag_search_patterns",
    "render_audit_report",
    "run_checks",
    "write_audit_report",
]
