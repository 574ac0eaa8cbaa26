"""The ``keys`` commands: master keys."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from alpr_workbench.cli._common import DataDir, _fail, _open, console
from alpr_workbench.errors import WorkbenchError

keys_app = typer.Typer(help="Master keys.", no_args_is_help=True)


@keys_app.command("rotate")
def keys_rotate(
    user: Annotated[str | None, typer.Option(help="Acting administrator.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Rotate every master key; data files are not rewritten (audited)."""
    from alpr_workbench.governance.admin import rotate_master_keys
    from alpr_workbench.governance.registry import current_username
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        files = rotate_master_keys(
            store,
            audit.append,
            actor=current_username(user),
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    console.print(f"Master keys rotated; {files:,} files re-wrapped, no data rewritten.")
