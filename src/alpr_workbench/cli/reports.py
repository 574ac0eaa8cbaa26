"""The report commands: ``efficacy`` and ``transparency``.

Both act as the signed-in user, through the service (``alpr-workbench login`` first); neither
takes ``--user`` or opens the store. The service builds the report as the session's user
(``view_aggregates``, checked and audited by the gate); the transparency page is written here.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from alpr_workbench.cli._common import _fail, _parse_time, console, err
from alpr_workbench.cli.service import Session
from alpr_workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from alpr_workbench.client import Client


def _refusable(session_file: Path | None, action: Any) -> Any:
    """Run ``action`` as the session's user; a refusal exits 3, other errors 2."""
    from alpr_workbench.client import ServiceError, connect

    try:
        with connect(session_file=session_file) as client:
            return action(client)
    except ServiceError as exc:
        if exc.status == 403 and exc.code == "refused":
            suffix = f" (audit event {exc.event_id})" if exc.event_id else ""
            err.print(f"[bold red]refused:[/] {exc.detail}{suffix}")
            raise typer.Exit(code=3) from exc
        raise _fail(exc) from exc


def efficacy(
    time_from: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    time_to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    session_file: Session = None,
) -> None:
    """Efficacy and impact, measured together: recoveries, hits, misreads, cost and harms.

    Through the service, as the signed-in user (``view_aggregates``; exit 3 if refused).
    """
    try:
        start = dt.date.fromisoformat(time_from) if time_from else None
        end = dt.date.fromisoformat(time_to) if time_to else None
    except ValueError as exc:
        raise _fail(WorkbenchError(f"dates must be YYYY-MM-DD: {exc}")) from exc

    def ask(client: Client) -> dict[str, Any]:
        return client.efficacy(start=start, end=end)

    report: dict[str, Any] = _refusable(session_file, ask)
    figures = report["figures"]
    if as_json:
        typer.echo(json.dumps(figures, default=str))
        return
    table = Table(title=f"Efficacy and impact, {report['start']} .. {report['end']}",
                  show_header=False)
    for key, value in figures.items():
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"[dim]{report['staff_hours_assumption']}[/]")


def transparency(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "transparency.html"
    ),
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO time (default: now).")] = None,
    portal_dir: Annotated[
        Path | None,
        typer.Option(
            "--portal-dir",
            help="Published portal figures: the flock_portal_metrics folder or a figures CSV, "
            "read here and sent to the service (default: the California figures shipped with "
            "the package).",
        ),
    ] = None,
    session_file: Session = None,
) -> None:
    """The public transparency page: policy, counts (small ones suppressed), access, digest.

    Through the service, as the signed-in user (``view_aggregates``); written here.
    """
    from alpr_workbench._fsutil import atomic_write_bytes

    when = _parse_time(as_of, "--as-of")
    figures: bytes | None = None
    if portal_dir is not None:
        from alpr_workbench.reports.transparency import read_portal_metrics

        try:
            figures = read_portal_metrics(portal_dir).write_csv().encode("utf-8")
        except (OSError, ValueError) as exc:
            raise _fail(WorkbenchError(f"cannot read the portal figures: {exc}")) from exc

    def ask(client: Client) -> tuple[bytes, str]:
        return client.transparency(as_of=when, portal_figures=figures)

    html, taken = _refusable(session_file, ask)
    try:
        atomic_write_bytes(out, html, mode=0o644)
    except OSError as exc:
        raise _fail(WorkbenchError(f"cannot write {out}: {exc}")) from exc
    day = taken[:10] if taken else dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    console.print(f"Transparency page for the 30 days to {day} written to {out}")
