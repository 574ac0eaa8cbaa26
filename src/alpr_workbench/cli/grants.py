"""The ``grants`` commands: sharing grants and the registry of known agencies.

Every command here acts as the signed-in user, through the service (``alpr-workbench login``
first); none takes ``--user``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from alpr_workbench.cli._common import _fail, console, err
from alpr_workbench.cli._session import as_session_user
from alpr_workbench.cli.service import Session
from alpr_workbench.errors import WorkbenchError

grants_app = typer.Typer(
    help="Sharing grants between networks (through the service, as the signed-in user).",
    no_args_is_help=True,
)


@grants_app.command("list")
def grants_list(session_file: Session = None) -> None:
    """List every sharing grant, in force or revoked."""
    grants = as_session_user(session_file, lambda c: c.list_grants())
    table = Table(title="Sharing grants")
    shown = [
        "grant_id",
        "network_id",
        "recipient_org",
        "recipient_type",
        "scope",
        "approved_by",
        "review_by_date",
        "revoked_at",
    ]
    for column in shown:
        table.add_column(column)
    if grants.height:
        for row in grants.select([c for c in shown if c in grants.columns]).iter_rows():
            table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@grants_app.command("add")
def grants_add(
    network: Annotated[str, typer.Option(help="Network being shared.")],
    recipient: Annotated[str, typer.Option(help="Receiving organization.")],
    approved_by: Annotated[str, typer.Option(help="Who approved it at the owner.")],
    basis: Annotated[str, typer.Option(help="Legal or contractual basis.")],
    review_by: Annotated[str, typer.Option(help="Review date (YYYY-MM-DD).")],
    scope: Annotated[
        str, typer.Option(help="search, hotlist_alerts or search_and_alerts")
    ] = "search",
    recipient_type: Annotated[
        str | None,
        typer.Option(help="Expected type (checked against the registry of known agencies)."),
    ] = None,
    session_file: Session = None,
) -> None:
    """Record an owner's grant to a known agency; federal, out-of-state, private are refused."""
    try:
        review = dt.date.fromisoformat(review_by)
    except ValueError as exc:
        raise _fail(WorkbenchError(f"--review-by {review_by!r} is not a date")) from exc
    grant_id = as_session_user(session_file, lambda c: c.add_grant(
        network_id=network, recipient_org=recipient, recipient_type=recipient_type,
        scope=scope, approved_by=approved_by, basis=basis, review_by_date=review,
    ))
    console.print(f"Grant {grant_id} recorded and audited.")


@grants_app.command("revoke")
def grants_revoke(
    grant_id: Annotated[str, typer.Argument(help="Grant to revoke.")],
    session_file: Session = None,
) -> None:
    """Revoke a grant; it stops applying on the next query."""
    as_session_user(session_file, lambda c: c.revoke_grant(grant_id))
    console.print(f"Grant {grant_id} revoked.")


@grants_app.command("add-agency")
def grants_add_agency(
    name: Annotated[str, typer.Option(help="The agency's official name.")],
    organization_type: Annotated[
        str, typer.Option(help="ca_local_agency, ca_state_agency, federal, out_of_state, private")
    ],
    state: Annotated[str, typer.Option(help="Two-letter state (US for a federal body).")],
    session_file: Session = None,
) -> None:
    """Add an agency to the department's registry of known agencies (audited)."""
    as_session_user(session_file, lambda c: c.add_agency(name, organization_type, state))
    console.print(f"{name} added to the registry of known agencies ({organization_type}).")


@grants_app.command("snapshot")
def grants_snapshot(session_file: Session = None) -> None:
    """Record today's sharing settings in the audit log; exit 1 if they drifted."""
    drift = as_session_user(session_file, lambda c: c.snapshot_sharing())
    if drift:
        err.print(f"[bold red]sharing drift:[/] {drift}")
        raise typer.Exit(code=1)
    console.print("Sharing settings recorded; no drift from the audited changes.")
