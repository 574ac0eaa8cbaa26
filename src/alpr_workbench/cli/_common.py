"""What every command module shares: consoles, the ``--data-dir`` option, errors, opening."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from alpr_workbench.errors import WorkbenchError

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


def _open(data_dir: Path | None):  # noqa: ANN202 - returns (store, audit log)
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.store import Store

    home = _home(data_dir)
    store = Store.open(home)
    return store, AuditLog.open(home, store.keystore)


def _parse_time(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise _fail(WorkbenchError(f"{option} {text!r} is not an ISO date or time")) from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
