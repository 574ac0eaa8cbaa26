"""The report commands: ``efficacy`` and ``transparency``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alpr_workbench.cli._common import DataDir, _fail, _open, _parse_time, console, err
from alpr_workbench.errors import WorkbenchError


def efficacy(
    time_from: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    time_to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Acting user (default: you).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Efficacy and impact, measured together: recoveries, hits, misreads, cost and harms."""
    from alpr_workbench.governance import SearchRefused, current_username
    from alpr_workbench.reports import build_efficacy_report

    try:
        start = dt.date.fromisoformat(time_from) if time_from else None
        end = dt.date.fromisoformat(time_to) if time_to else None
    except ValueError as exc:
        raise _fail(WorkbenchError(f"dates must be YYYY-MM-DD: {exc}")) from exc
    try:
        store, audit = _open(data_dir)
        report = build_efficacy_report(
            store, audit, user_id=current_username(user), start=start, end=end
        )
    except SearchRefused as exc:
        err.print(f"[bold red]refused:[/] {exc.reason}")
        raise typer.Exit(code=3) from exc
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    figures = report.to_dict()
    if as_json:
        typer.echo(json.dumps(figures, default=str))
        return
    table = Table(title=f"Efficacy and impact, {report.start} .. {report.end}", show_header=False)
    for key, value in figures.items():
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"[dim]{report.staff_hours_assumption}[/]")


def transparency(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "transparency.html"
    ),
    user: Annotated[str | None, typer.Option("--user", help="Acting user (aggregates).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO time (default: now).")] = None,
    portal_dir: Annotated[
        Path | None,
        typer.Option(
            "--portal-dir",
            help="Published portal figures: the flock_portal_metrics folder or a figures CSV "
            "(default: the California figures shipped with the package).",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """The public transparency page: policy, counts (small ones suppressed), access, digest."""
    from alpr_workbench.governance import current_username
    from alpr_workbench.reports import write_transparency

    try:
        store, audit = _open(data_dir)
        data = write_transparency(
            store,
            audit,
            user_id=current_username(user),
            out=out,
            as_of=_parse_time(as_of, "--as-of"),
            portal_dir=portal_dir,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Transparency page for the 30 days to {data.as_of:%Y-%m-%d} written to {out}")
