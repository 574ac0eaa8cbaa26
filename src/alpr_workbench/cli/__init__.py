"""The ``alpr-workbench`` command line.

One module per area; this one builds ``app`` and registers their commands, in the order the
help lists them. Heavy imports (recognition, the dashboard) stay inside the commands, so
``alpr-workbench --help`` is quick.
"""

from __future__ import annotations

import typer

from alpr_workbench.cli import dashboard, recognition, reports, search, service, store
from alpr_workbench.cli.approvals import approvals_app
from alpr_workbench.cli.audit import audit_app
from alpr_workbench.cli.grants import grants_app
from alpr_workbench.cli.hits import hits_app
from alpr_workbench.cli.hotlist import hotlist_app
from alpr_workbench.cli.keys import keys_app
from alpr_workbench.cli.onboarding import (
    add_user_commands,
    cameras_app,
    cases_app,
    holds_app,
    networks_app,
)
from alpr_workbench.cli.settings import settings_app
from alpr_workbench.cli.users import users_app

app = typer.Typer(
    help="ALPR Workbench: an auditable workbench for a license plate reader program.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.command()(store.demo)
app.command()(store.purge)
app.command()(store.verify)
app.command()(search.search)
app.add_typer(search.patterns_app, name="patterns")
app.command()(reports.efficacy)
app.command()(store.ingest)
app.command()(reports.transparency)
app.command()(dashboard.serve)
app.command()(recognition.recognize)
app.command("ingest-frames")(recognition.ingest_frames)

# The service (issue #15): `serve` (above) runs it; these set it up and sign users in.
app.command()(service.init)
app.command()(service.enroll)
app.command()(service.login)
app.command()(service.logout)
app.command()(service.whoami)

app.add_typer(audit_app, name="audit")
app.add_typer(grants_app, name="grants")
app.add_typer(approvals_app, name="approvals")
app.add_typer(settings_app, name="settings")
app.add_typer(keys_app, name="keys")
app.add_typer(hotlist_app, name="hotlist")
app.add_typer(hits_app, name="hits")
app.add_typer(users_app, name="users")
# Onboarding a department (issue #16): users import|edit|separate, cases, cameras, networks,
# legal holds.
add_user_commands(users_app)
app.add_typer(cases_app, name="cases")
app.add_typer(cameras_app, name="cameras")
app.add_typer(networks_app, name="networks")
app.add_typer(holds_app, name="holds")


def main() -> None:  # pragma: no cover - console entry point
    """Run the command line."""
    app()


__all__ = ["app", "main"]
