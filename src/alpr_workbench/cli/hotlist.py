"""The ``hotlist`` commands: import hotlists, manage custom lists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from alpr_workbench.cli._common import DataDir, _fail, _open, _parse_time, console
from alpr_workbench.errors import WorkbenchError

hotlist_app = typer.Typer(
    help="Hotlists: stolen-vehicle lists, NCIC extracts, custom lists.", no_args_is_help=True
)


@hotlist_app.command("import")
def hotlist_import(
    file: Annotated[Path, typer.Argument(help="Hotlist CSV (state stolen list or NCIC extract).")],
    source: Annotated[str, typer.Option("--source", help="state_stolen or ncic.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the list.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Load a hotlist; never-alert categories (immigration) are dropped and counted (audited)."""
    from alpr_workbench.governance import current_username
    from alpr_workbench.governance.admin import import_hotlist
    from alpr_workbench.hotlist import read_hotlist_csv
    from alpr_workbench.policy import load_policy

    try:
        imported = read_hotlist_csv(file, source=source, name=name)
        store, audit = _open(data_dir)
        loaded = import_hotlist(
            store,
            audit.append,
            imported,
            actor=current_username(user),
            policy=load_policy(),
            now=dt.datetime.now(dt.UTC),
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    dropped = sum(imported.dropped.values())
    console.print(
        f"{file.name}: {imported.rows_read:,} rows read, {loaded.entries_loaded:,} entries "
        f"loaded into {loaded.hotlist_id}, {loaded.entries_removed:,} entries removed (of "
        f"{loaded.entries_replaced:,} it held); {dropped:,} never-alert record(s) dropped"
        + (f" ({', '.join(f'{k}: {v}' for k, v in imported.dropped.items())})" if dropped else "")
    )


def _hotlist_action(data_dir: Path | None, user: str | None, action: str, **kwargs: object):  # noqa: ANN202
    """Run one audited admin hotlist function as ``user`` (refusals exit non-zero)."""
    from alpr_workbench.governance import admin, current_username
    from alpr_workbench.policy import load_policy

    try:
        store, audit = _open(data_dir)
        return getattr(admin, action)(
            store, audit.append, actor=current_username(user), policy=load_policy(),
            now=dt.datetime.now(dt.UTC), **kwargs,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc


@hotlist_app.command("create")
def hotlist_create(
    name: Annotated[str, typer.Option("--name", help="Name of the custom list.")],
    case: Annotated[str, typer.Option("--case", help="The case it supports.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the list exists.")],
    expires: Annotated[str, typer.Option("--expires", help="When it stops alerting (ISO).")],
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a custom list tied to a case; needs ``manage_hotlists`` (audited)."""
    hotlist_id = _hotlist_action(
        data_dir, user, "create_hotlist", name=name, case_number=case, reason=reason,
        expires_at=_parse_time(expires, "--expires"),
    )
    console.print(f"Custom list created: {hotlist_id}")


@hotlist_app.command("add")
def hotlist_add(
    hotlist_id: Annotated[str, typer.Argument(help="A custom list.")],
    plate: Annotated[str, typer.Option("--plate", help="Plate to add.")],
    plate_state: Annotated[str | None, typer.Option("--state", help="Plate state.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Default: the list's.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add a plate to a custom list; needs ``manage_hotlists`` (audited)."""
    entry_id = _hotlist_action(
        data_dir, user, "add_hotlist_entry", hotlist_id=hotlist_id, plate=plate,
        plate_state=plate_state, reason=reason,
    )
    console.print(f"Entry added: {entry_id}")


@hotlist_app.command("change")
def hotlist_change(
    entry_id: Annotated[str, typer.Argument(help="The entry.")],
    field_values: Annotated[
        list[str], typer.Option("--set", help="FIELD=VALUE (repeatable; changeable fields only).")
    ],
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Change fields of an entry; needs ``manage_hotlists`` (audited, before and after)."""
    changes = dict(item.split("=", 1) for item in field_values if "=" in item)
    if len(changes) != len(field_values):
        raise _fail(WorkbenchError("--set takes FIELD=VALUE"))
    _hotlist_action(data_dir, user, "change_hotlist_entry", entry_id=entry_id, changes=changes)
    console.print(f"Entry {entry_id} changed.")


@hotlist_app.command("delete")
def hotlist_delete(
    entry_id: Annotated[str, typer.Argument(help="The entry.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. vehicle recovered).")],
    user: Annotated[str | None, typer.Option("--user", help="Acting user.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Delete an entry; needs ``manage_hotlists`` (audited with the entry as it was)."""
    _hotlist_action(data_dir, user, "delete_hotlist_entry", entry_id=entry_id, reason=reason)
    console.print(f"Entry {entry_id} deleted.")
