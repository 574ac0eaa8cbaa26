"""The dashboard (Panel + HoloViews): state objects, thin views, auth, server.

Import this subpackage only where a dashboard is wanted: it imports Panel, HoloViews and
Bokeh, which ``import alpr_workbench`` never does. The program page shows aggregates only;
the hit queue (roles with ``work_hits``) shows new hits and acts through the service.
"""

from alpr_workbench.dashboard.auth import (
    DASHBOARD_PAGES,
    DASHBOARD_ROLES,
    Credentials,
    DashboardRefused,
    LoginThrottle,
    SessionKeeper,
    allowed_dashboard_users,
    attempt_login,
    dashboard_pages,
    dashboard_user_problem,
)
from alpr_workbench.dashboard.hits import HitQueuePage, HitQueueState, HitService
from alpr_workbench.dashboard.state import (
    AUDIT_HEALTH_COLUMNS,
    PLATE_LEVEL_COLUMNS,
    AuditHealth,
    DashboardSource,
    DashboardState,
    default_audit_health,
)

__all__ = [
    "AUDIT_HEALTH_COLUMNS",
    "DASHBOARD_PAGES",
    "DASHBOARD_ROLES",
    "PLATE_LEVEL_COLUMNS",
    "AuditHealth",
    "Credentials",
    "DashboardApp",
    "DashboardRefused",
    "DashboardSource",
    "DashboardState",
    "HitQueuePage",
    "HitQueueState",
    "HitService",
    "LoginThrottle",
    "RunningDashboard",
    "SessionKeeper",
    "allowed_dashboard_users",
    "attempt_login",
    "create_app",
    "dashboard_pages",
    "dashboard_user_problem",
    "default_audit_health",
    "start_dashboard",
]
from alpr_workbench.dashboard.serve import RunningDashboard, start_dashboard
from alpr_workbench.dashboard.views import DashboardApp, create_app
