"""Reports assembled from the governed data: efficacy now; audit and transparency reports next."""

from alpr_workbench.reports.efficacy import build_efficacy_report, default_period

__all__ = ["build_efficacy_report", "default_period"]
