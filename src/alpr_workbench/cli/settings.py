"""The ``settings`` commands: the department's signed settings."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from alpr_workbench.cli._common import DataDir, _fail, _home, _open, console
from alpr_workbench.errors import WorkbenchError

settings_app = typer.Typer(
    help="The department's signed settings (retention).", no_args_is_help=True
)


@settings_app.command("show")
def settings_show(data_dir: DataDir = None) -> None:
    """Show the department's settings (a tampered or removed file is an error)."""
    from alpr_workbench.governance.admin import configured_retention_days
    from alpr_workbench.store import Store

    try:
        days = configured_retention_days(Store.open(_home(data_dir)))
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Retention: {days} days")


@settings_app.command("set")
def settings_set(
    retention_days: Annotated[
        int,
        typer.Option("--retention-days", help="Days a read is kept (within the policy's range)."),
    ],
    user: Annotated[str | None, typer.Option("--user", help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Change the retention period; needs the ``configure`` permission (audited)."""
    from alpr_workbench.governance.admin import set_retention_days
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        old = set_retention_days(
            store,
            audit.append,
            actor=current_username(user),
            retention_days=retention_days,
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Retention changed from {old} to {retention_days} days (audited).")
