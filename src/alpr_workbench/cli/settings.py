"""The ``settings`` commands: the department's signed settings, through the service."""

from __future__ import annotations

from typing import Annotated

import typer

from alpr_workbench.cli._common import console
from alpr_workbench.cli._session import as_session_user
from alpr_workbench.cli.service import Session

settings_app = typer.Typer(
    help="The department's signed settings (retention), as the signed-in user.",
    no_args_is_help=True,
)


@settings_app.command("show")
def settings_show(session_file: Session = None) -> None:
    """Show the department's settings (a tampered or removed file is an error)."""
    days = as_session_user(session_file, lambda c: c.settings())["retention_days"]
    console.print(f"Retention: {days} days")


@settings_app.command("set")
def settings_set(
    retention_days: Annotated[
        int,
        typer.Option("--retention-days", help="Days a read is kept (within the policy's range)."),
    ],
    session_file: Session = None,
) -> None:
    """Change the retention period; needs the ``configure`` permission (audited)."""
    done = as_session_user(session_file, lambda c: c.set_retention_days(retention_days))
    console.print(
        f"Retention changed from {done['old_retention_days']} to {retention_days} days (audited)."
    )
