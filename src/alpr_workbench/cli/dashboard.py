"""The ``serve`` command: the command-staff dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from alpr_workbench.cli._common import DataDir, _fail, _home, _open, console
from alpr_workbench.errors import WorkbenchError


def _serve(
    home: Path, *, port: int, address: str, show: bool, tiles: bool, reset_passwords: bool = False
) -> None:
    from alpr_workbench.dashboard import serve_dashboard
    from alpr_workbench.reports import audit_health

    def full_checks() -> pl.DataFrame:
        store, audit = _open(home)
        return audit_health(store, audit)

    console.print("Starting the command-staff dashboard (Ctrl-C to stop)...")
    serve_dashboard(
        home,
        port=port,
        address=address,
        show=show,
        tiles=tiles,
        reset_passwords=reset_passwords,
        out=console.print,
        audit_health=full_checks,
    )


def serve(
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 picks a free one).")] = 5006,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    show: Annotated[bool, typer.Option(help="Open a browser.")] = False,
    tiles: Annotated[bool, typer.Option(help="Online map tiles (off: works offline).")] = False,
    reset_passwords: Annotated[
        bool, typer.Option(help="Issue new one-time passwords to every allowed user.")
    ] = False,
) -> None:
    """Serve the command-staff dashboard (command staff, auditors, administrators only)."""
    try:
        _serve(
            _home(data_dir),
            port=port,
            address=address,
            show=show,
            tiles=tiles,
            reset_passwords=reset_passwords,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
