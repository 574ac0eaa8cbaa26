"""The command-staff dashboard (Panel + HoloViews): state object, thin views, auth, server.

Import this subpackage only where a dashboard is wanted: it imports Panel, HoloViews and
Bokeh, which ``import alpr_workbench`` never does. Everything it shows is an aggregate.
"""

from alpr_workbench.dashboard.auth import (
    DASHBOARD_ROLES,
    Credentials,
    DashboardRefused,
    LoginThrottle,
    SessionKeeper,
    allowed_dashboard_users,
    attempt_login,
    dashboard_user_problem,
)
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
    "DASHBOARD_ROLES",
    "PLATE_LEVEL_COLUMNS",
    "AuditHealth",
    "Credentials",
    "DashboardApp",
    "DashboardRefused",
    "DashboardSource",
    "DashboardState",
    "LoginThrottle",
    "RunningDashboard",
    "SessionKeeper",
    "allowed_dashboard_users",
    "attempt_login",
    "create_app",
    "dashboard_user_problem",
    "default_audit_health",
    "start_dashboard",
]
from alpr_workbench.dashboard.serve import RunningDashboard, start_dashboard
from alpr_workbench.dashboard.views import DashboardApp, create_app
