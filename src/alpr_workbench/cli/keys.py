"""The ``keys`` commands: master keys, rotated by the service that holds them."""

from __future__ import annotations

import typer

from alpr_workbench.cli._common import console
from alpr_workbench.cli._session import as_session_user
from alpr_workbench.cli.service import Session

keys_app = typer.Typer(help="Master keys (through the service).", no_args_is_help=True)


@keys_app.command("rotate")
def keys_rotate(session_file: Session = None) -> None:
    """Rotate every master key; data files are not rewritten (``rotate_keys``; audited)."""
    files = as_session_user(session_file, lambda c: c.rotate_keys())["files_rewrapped"]
    console.print(f"Master keys rotated; {files:,} files re-wrapped, no data rewritten.")
