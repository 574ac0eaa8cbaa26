"""The ``approvals`` commands: supervisors' approvals of larger search results.

A supervisor, signed in as themself, grants one searcher one search of one case with more
rows than the policy's cap (``approvals grant``); the searcher gives the approval's id with
the search (``search ... --approval ID``). It works once, for that searcher and case, until it
expires. Every command acts as the signed-in user, through the service; none takes ``--user``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from alpr_workbench.cli._common import console
from alpr_workbench.cli._session import as_session_user
from alpr_workbench.cli.service import Session

approvals_app = typer.Typer(
    help=(
        "Supervisors' approvals of larger search results (one searcher, one case, one "
        "search; through the service, as the signed-in user)."
    ),
    no_args_is_help=True,
)


@approvals_app.command("grant")
def approvals_grant(
    searcher: Annotated[str, typer.Option("--searcher", help="The user who may use it.")],
    case: Annotated[str, typer.Option("--case", help="The case the search must name.")],
    max_rows: Annotated[
        int | None,
        typer.Option("--max-rows", help="Rows at most (default: the policy's max_rows_approved)."),
    ] = None,
    hours: Annotated[
        float | None, typer.Option("--hours", help="Usable for this long (default and most: 8).")
    ] = None,
    session_file: Session = None,
) -> None:
    """Grant SEARCHER one search of CASE with more rows than the policy's cap (audited)."""
    approval = as_session_user(
        session_file,
        lambda c: c.grant_approval(searcher, case, max_rows=max_rows, hours=hours),
    )
    console.print(
        f"Approval {approval['approval_id']} granted to {approval['searcher_user_id']} for "
        f"case {approval['case_number']}: up to {approval['max_rows']:,} rows, one search, "
        f"until {approval['expires_at']} (audit record {approval.get('event_id')})."
    )
    console.print(
        f"The searcher runs: alpr-workbench search ... --approval {approval['approval_id']}"
    )


@approvals_app.command("list")
def approvals_list(session_file: Session = None) -> None:
    """List the approvals you granted or received (every one, for auditors)."""
    approvals = as_session_user(session_file, lambda c: c.approvals())
    table = Table(title="Approvals of larger search results")
    shown = ["approval_id", "searcher_user_id", "case_number", "max_rows", "granted_by",
             "granted_at", "expires_at", "used_at"]
    for column in shown:
        table.add_column(column)
    for row in approvals.iter_rows(named=True) if approvals.height else ():
        table.add_row(*("" if row.get(c) is None else str(row[c]) for c in shown))
    console.print(table)
