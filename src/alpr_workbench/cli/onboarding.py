"""Onboarding commands: users, cases, cameras and networks from CSV, edits, and legal holds.

``users import|edit|separate`` (beside ``users list``), ``cases import|list|edit|close``,
``cameras import|list|edit``, ``networks import|list|edit`` and ``holds
place|review|release|list``. Every command acts as the signed-in user, through the service
(``alpr-workbench login`` first); none takes ``--user``. An import is refused whole when any
line is bad, and the error names every bad line. Times are shown in the department's time
zone (the policy's ``timezone``). The columns each import accepts are in examples/README.md.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from alpr_workbench.cli._common import _fail, console
from alpr_workbench.cli._session import as_session_user
from alpr_workbench.cli.service import Session
from alpr_workbench.errors import WorkbenchError

__all__ = [
    "add_user_commands",
    "cameras_app",
    "cases_app",
    "holds_app",
    "networks_app",
]

#: Columns each list shows, in order.
_SHOWN = {
    "users": ("user_id", "full_name", "role", "job_title", "is_active", "approved_at",
              "trained_at", "separated_at"),
    "cases": ("case_number", "title", "offense_type", "status", "opened_at", "closed_at",
              "assigned_user_ids"),
    "cameras": ("camera_id", "network_id", "name", "lat", "lon", "direction",
                "installed_date", "removed_date"),
    "networks": ("network_id", "name", "owner_type", "owner_name", "is_department_owned",
                 "created_at"),
    "legal_holds": ("hold_id", "case_number", "approver_user_id", "reason", "created_at",
                    "review_by_date", "read_count", "released_at"),
}  # fmt: skip

Sets = Annotated[
    list[str],
    typer.Option("--set", help="FIELD=VALUE, repeatable (an empty VALUE empties the field)."),
]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]
CsvFile = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file."),
]


def _local(value: Any, zone: zoneinfo.ZoneInfo) -> str:
    """A cell as text; an ISO time (UTC) in the department's zone."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, str) and "T" in value and len(value) >= 19:
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if stamp.tzinfo is not None:
            return f"{stamp.astimezone(zone):%Y-%m-%d %H:%M %Z}"
    return str(value)


def _print(frame: pl.DataFrame, kind: str, title: str) -> None:
    from alpr_workbench.policy import load_policy

    zone = zoneinfo.ZoneInfo(load_policy().timezone)
    shown = [c for c in _SHOWN[kind] if c in frame.columns]
    table = Table(title=f"{title} ({frame.height}; times in {zone.key})")
    rows = [[_local(v, zone) for v in row] for row in frame.select(shown).iter_rows()]
    for i, column in enumerate(shown):
        # The id is never wrapped, so it can be read (and copied) whole.
        widest = max([len(column), *(len(r[i]) for r in rows)]) if i == 0 else None
        table.add_column(column, no_wrap=i == 0, min_width=widest)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _changes(sets: list[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for item in sets:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise _fail(WorkbenchError(f"--set {item!r}: write FIELD=VALUE"))
        changes[name.strip()] = value
    if not changes:
        raise _fail(WorkbenchError("nothing to change: give --set FIELD=VALUE"))
    return changes


def _report(done: dict[str, Any], table: str) -> None:
    created, changed = done.get("created", []), done.get("changed", {})
    unchanged = done.get("unchanged", [])
    console.print(
        f"{table}: {len(created)} added, {len(changed)} changed, {len(unchanged)} unchanged "
        f"(audit record {done.get('event_id')})."
    )
    for key, fields in changed.items():
        parts = ", ".join(f"{f}: {old} -> {new}" for f, (old, new) in fields.items())
        console.print(f"  {key}: {parts}")
    if done.get("ignored_columns"):
        ignored = ", ".join(done["ignored_columns"])
        console.print(f"Columns not recognised (not imported): {ignored}")


def _import(table: str, path: Path, session_file: Path | None) -> None:
    data = path.read_bytes()
    done = as_session_user(session_file, lambda c: c.import_records(table, data, name=path.name))
    _report(done, table)


def _edit(table: str, key: str, sets: list[str], reason: str, session_file: Path | None) -> None:
    changes = _changes(sets)
    done = as_session_user(session_file,
                           lambda c: c.edit_record(table, key, changes, reason=reason))
    _report(done, table)


def _list(table: str, title: str, session_file: Path | None) -> None:
    frame = as_session_user(session_file, lambda c: c.list_records(table))
    _print(frame, table, title)


# -- users (added to the existing ``users`` group) -------------------------------------------
def add_user_commands(users_app: typer.Typer) -> None:
    """Add ``import``, ``edit`` and ``separate`` to the ``users`` command group.

    Parameters
    ----------
    users_app
        The ``users`` group (``cli/users.py``).
    """

    @users_app.command("import")
    def users_import(path: CsvFile, session_file: Session = None) -> None:
        """Import users from CSV (new ones added, listed fields of known ones changed)."""
        _import("users", path, session_file)

    @users_app.command("edit")
    def users_edit(
        user_id: Annotated[str, typer.Argument(help="The user to change.")],
        sets: Sets,
        reason: Reason = "",
        session_file: Session = None,
    ) -> None:
        """Change a user's fields: role, job title, training, approval... (audited)."""
        _edit("users", user_id, sets, reason, session_file)

    @users_app.command("separate")
    def users_separate(
        user_id: Annotated[str, typer.Argument(help="The user who left the department.")],
        on: Annotated[
            str | None, typer.Option("--on", help="When (ISO date or time; default: now).")
        ] = None,
        reason: Reason = "",
        session_file: Session = None,
    ) -> None:
        """Record that a user left: separated and disabled; live sessions end (audited)."""
        when = None
        if on is not None:
            from alpr_workbench.policy import load_policy

            try:
                when = dt.datetime.fromisoformat(on)
            except ValueError as exc:
                raise _fail(WorkbenchError(f"--on {on!r} is not an ISO date or time")) from exc
            if when.tzinfo is None:
                when = when.replace(tzinfo=zoneinfo.ZoneInfo(load_policy().timezone))
        done = as_session_user(
            session_file, lambda c: c.separate_user(user_id, separated_at=when, reason=reason)
        )
        _report(done, "users")
        console.print(f"{done.get('sessions_ended', 0)} live session(s) ended.")


# -- cases, cameras, networks -----------------------------------------------------------------
cases_app = typer.Typer(
    help="Cases: import from a records-management export, list, edit, close (administrators).",
    no_args_is_help=True,
)
cameras_app = typer.Typer(
    help="Cameras: import, list, edit (administrators, through the service).",
    no_args_is_help=True,
)
networks_app = typer.Typer(
    help="Camera networks and their owners: import, list, edit (administrators).",
    no_args_is_help=True,
)


@cases_app.command("import")
def cases_import(path: CsvFile, session_file: Session = None) -> None:
    """Import cases from CSV; investigators must be known users."""
    _import("cases", path, session_file)


@cases_app.command("list")
def cases_list(session_file: Session = None) -> None:
    """List every case, open or closed."""
    _list("cases", "Cases", session_file)


@cases_app.command("edit")
def cases_edit(
    case_number: Annotated[str, typer.Argument(help="The case to change.")],
    sets: Sets,
    reason: Reason = "",
    session_file: Session = None,
) -> None:
    """Change a case's fields: title, offense, investigators, status (audited)."""
    _edit("cases", case_number, sets, reason, session_file)


@cases_app.command("close")
def cases_close(
    case_number: Annotated[str, typer.Argument(help="The open case to close.")],
    reason: Reason = "",
    session_file: Session = None,
) -> None:
    """Close a case now: no search may name it afterwards (audited)."""
    done = as_session_user(session_file, lambda c: c.close_case(case_number, reason=reason))
    _report(done, "cases")


@cameras_app.command("import")
def cameras_import(path: CsvFile, session_file: Session = None) -> None:
    """Import cameras from CSV; each one's network must be registered first."""
    _import("cameras", path, session_file)


@cameras_app.command("list")
def cameras_list(session_file: Session = None) -> None:
    """List every camera."""
    _list("cameras", "Cameras", session_file)


@cameras_app.command("edit")
def cameras_edit(
    camera_id: Annotated[str, typer.Argument(help="The camera to change.")],
    sets: Sets,
    reason: Reason = "",
    session_file: Session = None,
) -> None:
    """Change a camera's fields, e.g. ``--set removed_date=2026-03-01`` (audited)."""
    _edit("cameras", camera_id, sets, reason, session_file)


@networks_app.command("import")
def networks_import(path: CsvFile, session_file: Session = None) -> None:
    """Import networks from CSV (sharing is granted separately: ``grants add``)."""
    _import("networks", path, session_file)


@networks_app.command("list")
def networks_list(session_file: Session = None) -> None:
    """List every network and its owner."""
    _list("networks", "Networks", session_file)


@networks_app.command("edit")
def networks_edit(
    network_id: Annotated[str, typer.Argument(help="The network to change.")],
    sets: Sets,
    reason: Reason = "",
    session_file: Session = None,
) -> None:
    """Change a network's name or owner (audited as a sharing change)."""
    _edit("networks", network_id, sets, reason, session_file)


# -- legal holds ------------------------------------------------------------------------------
holds_app = typer.Typer(
    help="Legal holds: place, review, release, list (through the service).",
    no_args_is_help=True,
)


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise _fail(WorkbenchError(f"{option} {text!r} is not a date (YYYY-MM-DD)")) from exc


@holds_app.command("list")
def holds_list(session_file: Session = None) -> None:
    """List every legal hold, in force or released."""
    frame = as_session_user(session_file, lambda c: c.list_legal_holds())
    _print(frame, "legal_holds", "Legal holds")


@holds_app.command("place")
def holds_place(
    hold_id: Annotated[str, typer.Argument(help="A new id for the hold.")],
    case: Annotated[str, typer.Option("--case", help="The open case it serves.")],
    approver: Annotated[str, typer.Option("--approver", help="Another user who approved it.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the reads must be kept.")],
    review_by: Annotated[str, typer.Option("--review-by", help="Review date (YYYY-MM-DD).")],
    read_ids: Annotated[
        Path,
        typer.Option("--read-ids", exists=True, dir_okay=False,
                     help="File of the read ids to keep, one a line."),
    ],
    session_file: Session = None,
) -> None:
    """Keep reads of a case past retention, approved by another user (audited)."""
    ids = [line.strip() for line in read_ids.read_text().splitlines() if line.strip()]
    day = _date(review_by, "--review-by")
    done = as_session_user(session_file, lambda c: c.place_legal_hold(
        hold_id=hold_id, case_number=case, approver_user_id=approver, reason=reason,
        review_by_date=day.isoformat(), read_ids=ids))
    console.print(f"Hold {hold_id}: {done.get('reads_held')} read(s) kept until review on {day}.")


@holds_app.command("review")
def holds_review(
    hold_id: Annotated[str, typer.Argument(help="The hold reviewed.")],
    review_by: Annotated[str, typer.Option("--review-by", help="Next review (YYYY-MM-DD).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the reads must still be kept.")],
    session_file: Session = None,
) -> None:
    """Keep a hold until a new review date, saying why (audited)."""
    day = _date(review_by, "--review-by")
    done = as_session_user(session_file, lambda c: c.review_legal_hold(hold_id, day, reason))
    console.print(f"Hold {hold_id}: review moved from {done['old_review_by_date']} to {day}.")


@holds_app.command("release")
def holds_release(
    hold_id: Annotated[str, typer.Argument(help="The hold to release.")],
    session_file: Session = None,
) -> None:
    """Release a hold: the reads it kept are crypto-shredded (audited)."""
    as_session_user(session_file, lambda c: c.release_legal_hold(hold_id))
    console.print(f"Hold {hold_id} released; its reads were crypto-shredded.")
