"""The ``hotlist`` commands: import hotlists, manage custom lists (through the service).

Every command acts as the signed-in user (``alpr-workbench login`` first); none takes
``--user``. The file is read here and sent to the service, which parses and checks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alpr_workbench.cli._common import _fail, _parse_time, console
from alpr_workbench.cli._session import as_session_user
from alpr_workbench.cli.service import Session
from alpr_workbench.errors import WorkbenchError

hotlist_app = typer.Typer(
    help="Hotlists: stolen-vehicle lists, NCIC extracts, custom lists.", no_args_is_help=True
)


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise _fail(WorkbenchError(f"cannot read {file}: {exc}")) from exc


@hotlist_app.command("import")
def hotlist_import(
    file: Annotated[Path, typer.Argument(help="Hotlist CSV (state stolen list or NCIC extract).")],
    source: Annotated[str, typer.Option("--source", help="state_stolen or ncic.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the list.")] = None,
    session_file: Session = None,
) -> None:
    """Load a hotlist; never-alert categories (immigration) are dropped and counted (audited)."""
    raw = _read(file)
    loaded = as_session_user(
        session_file, lambda c: c.import_hotlist(raw, source=source, name=name)
    )
    dropped_by = loaded["dropped"]
    dropped = sum(dropped_by.values())
    console.print(
        f"{file.name}: {loaded['rows_read']:,} rows read, {loaded['entries_loaded']:,} entries "
        f"loaded into {loaded['hotlist_id']}, {loaded['entries_removed']:,} entries removed (of "
        f"{loaded['entries_replaced']:,} it held); {dropped:,} never-alert record(s) dropped"
        + (f" ({', '.join(f'{k}: {v}' for k, v in dropped_by.items())})" if dropped else "")
    )


@hotlist_app.command("create")
def hotlist_create(
    name: Annotated[str, typer.Option("--name", help="Name of the custom list.")],
    case: Annotated[str, typer.Option("--case", help="The case it supports.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the list exists.")],
    expires: Annotated[str, typer.Option("--expires", help="When it stops alerting (ISO).")],
    session_file: Session = None,
) -> None:
    """Create a custom list tied to a case; needs ``manage_hotlists`` (audited)."""
    expires_at = _parse_time(expires, "--expires")
    assert expires_at is not None
    hotlist_id = as_session_user(session_file, lambda c: c.create_hotlist(
        name=name, case_number=case, reason=reason, expires_at=expires_at))
    console.print(f"Custom list created: {hotlist_id}")


@hotlist_app.command("add")
def hotlist_add(
    hotlist_id: Annotated[str, typer.Argument(help="A custom list.")],
    plate: Annotated[str, typer.Option("--plate", help="Plate to add.")],
    plate_state: Annotated[str | None, typer.Option("--state", help="Plate state.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Default: the list's.")] = None,
    session_file: Session = None,
) -> None:
    """Add a plate to a custom list; needs ``manage_hotlists`` (audited)."""
    entry_id = as_session_user(session_file, lambda c: c.add_hotlist_entry(
        hotlist_id, plate, plate_state=plate_state, reason=reason))
    console.print(f"Entry added: {entry_id}")


@hotlist_app.command("change")
def hotlist_change(
    entry_id: Annotated[str, typer.Argument(help="The entry.")],
    field_values: Annotated[
        list[str], typer.Option("--set", help="FIELD=VALUE (repeatable; changeable fields only).")
    ],
    session_file: Session = None,
) -> None:
    """Change fields of an entry; needs ``manage_hotlists`` (audited, before and after)."""
    changes = dict(item.split("=", 1) for item in field_values if "=" in item)
    if len(changes) != len(field_values):
        raise _fail(WorkbenchError("--set takes FIELD=VALUE"))
    as_session_user(session_file, lambda c: c.change_hotlist_entry(entry_id, changes))
    console.print(f"Entry {entry_id} changed.")


@hotlist_app.command("delete")
def hotlist_delete(
    entry_id: Annotated[str, typer.Argument(help="The entry.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. vehicle recovered).")],
    session_file: Session = None,
) -> None:
    """Delete an entry; needs ``manage_hotlists`` (audited with the entry as it was)."""
    as_session_user(session_file, lambda c: c.delete_hotlist_entry(entry_id, reason))
    console.print(f"Entry {entry_id} deleted.")
