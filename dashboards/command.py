"""Command-staff dashboard: the app shell only (docs/conventions.md §13).

``alpr-workbench serve`` serves the same page from the service process, signed in with the
service's accounts (password and TOTP). Served directly with ``panel serve
dashboards/command.py`` there is no login, so the app refuses everyone: it checks the
logged-in user's role itself and shows aggregates only.
"""

import panel as pn

from alpr_workbench.config import default_home
from alpr_workbench.dashboard import DashboardSource, create_app

source = pn.state.as_cached("alpr-dashboard-source", DashboardSource.open, home=default_home())
create_app(source).servable(title="ALPR program dashboard")
