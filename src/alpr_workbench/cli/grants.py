"""The ``grants`` commands: sharing grants and the registry of known agencies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from alpr_workbench.cli._common import DataDir, _fail, _open, console, err
from alpr_workbench.errors import WorkbenchError

grants_app = typer.Typer(help="Sharing grants between networks.", no_args_is_help=True)


@grants_app.command("list")
def grants_list(data_dir: DataDir = None) -> None:
    """List every sharing grant, in force or revoked."""
    try:
        store, _ = _open(data_dir)
        grants = store.tables.read("sharing_grants")
    except WorkbenchError as exc:
        raise _fail(exc) from exc
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
    for row in grants.select(shown).iter_rows():
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
    user: Annotated[str | None, typer.Option(help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Record an owner's grant to a known agency; federal, out-of-state, private are refused."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.sharing import add_grant
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        grant_id = add_grant(
            store,
            audit.append,
            actor=current_username(user),
            network_id=network,
            recipient_org=recipient,
            recipient_type=recipient_type,
            scope=scope,
            approved_by=approved_by,
            basis=basis,
            review_by_date=dt.date.fromisoformat(review_by),
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except (WorkbenchError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(f"Grant {grant_id} recorded and audited.")


@grants_app.command("revoke")
def grants_revoke(
    grant_id: Annotated[str, typer.Argument(help="Grant to revoke.")],
    user: Annotated[str | None, typer.Option(help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke a grant; it stops applying on the next query."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.sharing import revoke_grant
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        revoke_grant(
            store,
            audit.append,
            actor=current_username(user),
            grant_id=grant_id,
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Grant {grant_id} revoked.")


@grants_app.command("add-agency")
def grants_add_agency(
    name: Annotated[str, typer.Option(help="The agency's official name.")],
    organization_type: Annotated[
        str, typer.Option(help="ca_local_agency, ca_state_agency, federal, out_of_state, private")
    ],
    state: Annotated[str, typer.Option(help="Two-letter state (US for a federal body).")],
    user: Annotated[str | None, typer.Option(help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add an agency to the department's registry of known agencies (audited)."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.sharing import add_agency
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        add_agency(
            store,
            audit.append,
            actor=current_username(user),
            name=name,
            organization_type=organization_type,
            state=state,
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"{name} added to the registry of known agencies ({organization_type}).")


@grants_app.command("snapshot")
def grants_snapshot(
    user: Annotated[str | None, typer.Option(help="Acting user (a daily job).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Record today's sharing settings in the audit log; exit 1 if they drifted."""
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.governance.sharing import snapshot_sharing

    try:
        store, audit = _open(data_dir)
        changes = audit.events().filter(pl.col("event_type") == "sharing_change")
        drift = snapshot_sharing(
            store, audit.append, changes, actor=current_username(user), now=dt.datetime.now(dt.UTC)
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    if drift:
        err.print(f"[bold red]sharing drift:[/] {drift}")
        raise typer.Exit(code=1)
    console.print("Sharing settings recorded; no drift from the audited changes.")
