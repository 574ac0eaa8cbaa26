"""The ``alpr-workbench`` command line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alpr_workbench.errors import WorkbenchError

app = typer.Typer(
    help="ALPR Workbench: an auditable workbench for a license plate reader program.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: $ALPR_WORKBENCH_HOME)."),
]


def _home(data_dir: Path | None) -> Path:
    from alpr_workbench.config import default_home

    return data_dir if data_dir is not None else default_home()


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=2)


@app.command()
def demo(
    data_dir: DataDir = None,
    days: Annotated[int, typer.Option(min=1, max=3660, help="Days of traffic to simulate.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic city.")] = 7,
    scale: Annotated[float, typer.Option(min=0.001, max=10.0, help="Traffic multiplier.")] = 1.0,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the dashboard.")] = True,
) -> None:
    """Build the synthetic city (the embedded default) in an encrypted data directory."""
    from alpr_workbench.demo import build_demo

    home = _home(data_dir)
    console.print(f"Building the synthetic city in [bold]{home}[/] ({days} days, seed {seed})")
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("Encrypting and storing reads (days)", total=days)
            summary = build_demo(
                home,
                days=days,
                seed=seed,
                scale=scale,
                on_progress=lambda done, total: progress.update(task, completed=done),
            )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    table = Table(title="Synthetic city built", show_header=False)
    for label, value in [
        ("Period", f"{summary.start_date} .. {summary.end_date}"),
        ("Networks / cameras", f"{summary.networks} / {summary.cameras}"),
        ("Reads stored (added now)", f"{summary.reads_stored:,} ({summary.reads_added:,})"),
        ("Hotlist hits", f"{summary.hits:,}"),
        ("Vehicles recovered", f"{summary.recoveries}"),
        ("Users / cases", f"{summary.users} / {summary.cases}"),
        ("Searches logged", f"{summary.searches:,}"),
        ("Improper items planted for the audit", f"{summary.planted_improper}"),
    ]:
        table.add_row(label, value)
    console.print(table)
    if summary.passphrase_file is not None:
        console.print(
            f"[yellow]Demo mode:[/] the key store passphrase was generated at random and kept in "
            f"{summary.passphrase_file} (mode 0600). Demo mode is not for real data: for real "
            "data set ALPR_WORKBENCH_PASSPHRASE (or ALPR_WORKBENCH_KEK) before creating a store."
        )
    if serve:
        console.print("The dashboard is not available yet; nothing to serve.")


@app.command()
def purge(
    data_dir: DataDir = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Purge relative to this date (YYYY-MM-DD; default today, UTC)."
        ),
    ] = None,
    retention_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Override the configured retention.")
    ] = None,
) -> None:
    """Crypto-shred every day of reads older than the retention period (legal holds stay)."""
    from alpr_workbench.config import load_settings
    from alpr_workbench.store import Store

    home = _home(data_dir)
    try:
        day = dt.date.fromisoformat(as_of) if as_of else dt.datetime.now(dt.UTC).date()
    except ValueError as exc:
        raise _fail(WorkbenchError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)")) from exc
    try:
        settings = load_settings(home)
        store = Store.open(home)
        report = store.reads.purge(
            as_of=day, retention_days=retention_days or settings.retention_days
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(
        f"Purged {len(report.days_purged)} day(s) older than {report.retention_days} days before "
        f"{report.as_of}: {report.rows_destroyed:,} reads crypto-shredded "
        f"({report.rows_kept_under_hold:,} kept under {len(report.hold_ids)} legal hold(s))."
    )
    if report.days_purged:
        console.print(f"Days: {report.days_purged[0]} .. {report.days_purged[-1]}")


@app.command()
def verify(data_dir: DataDir = None) -> None:
    """Decrypt and authenticate every stored file; exit non-zero on any problem."""
    from alpr_workbench.store import Store

    try:
        store = Store.open(_home(data_dir))
        problems = store.verify()
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    for problem in problems:
        err.print(f"[red]{problem}[/]")
    if problems:
        raise typer.Exit(code=1)
    console.print(
        f"Store sound: {len(store.reads.days())} day partition(s), all files authenticate."
    )


def main() -> None:  # pragma: no cover - console entry point
    """Run the command line."""
    app()
