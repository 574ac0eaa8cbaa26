"""The ``search`` command: case-gated, audited searches of reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alpr_workbench.cli._common import _fail, _parse_time, console, err
from alpr_workbench.errors import WorkbenchError

_SIGN_IN = (
    "sign in first: `alpr-workbench login --url https://127.0.0.1:8443 --ca CERT --user YOU` "
    "(`alpr-workbench demo` prints the exact commands for its demo users)"
)


def search(
    case: Annotated[str, typer.Option("--case", help="Case number, e.g. BPD-2026-000123.")],
    reason: Annotated[str, typer.Option("--reason", help="Reason code from the policy list.")],
    reason_text: Annotated[str | None, typer.Option("--reason-text", help="Free text.")] = None,
    plate: Annotated[str | None, typer.Option("--plate", help="Exact plate.")] = None,
    pattern: Annotated[
        str | None, typer.Option("--pattern", help="Partial plate: ? one character, * any run.")
    ] = None,
    time_from: Annotated[
        str | None, typer.Option("--from", help="Window start (ISO, UTC).")
    ] = None,
    time_to: Annotated[str | None, typer.Option("--to", help="Window end (ISO, UTC).")] = None,
    camera: Annotated[
        list[str] | None, typer.Option("--camera", help="Camera id (repeat).")
    ] = None,
    approved_by: Annotated[
        str | None,
        typer.Option("--approved-by", help="Supervisor approving more rows than the cap."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per read.")] = False,
    session_file: Annotated[
        Path | None,
        typer.Option("--session-file", help="Default: ~/.config/alpr-workbench/session.json."),
    ] = None,
) -> None:
    """Search reads inside a case, through the service, as the signed-in user.

    Sign in first (``alpr-workbench login``): the service takes who is searching from the
    session, never from the command line. Refused (exit 3, with the audit record) unless the
    policy allows it. A result larger than the policy's ``max_rows`` is cut, and says so; a
    supervisor other than the searcher may approve a larger one (``--approved-by``, audited
    with the search).
    """
    from alpr_workbench.client import ServiceError, connect

    request = {
        "case_number": case,
        "reason_code": reason,
        "reason_text": reason_text,
        "plate": plate,
        "plate_pattern": pattern,
        "window_from": _parse_time(time_from, "--from"),
        "window_to": _parse_time(time_to, "--to"),
        "camera_ids": list(camera or ()),
        "approved_by": approved_by,
    }
    request = {k: v for k, v in request.items() if v not in (None, [])}
    try:
        with connect(session_file=session_file) as client:
            result = client.search(**request)
    except ServiceError as exc:
        if exc.code == "search_refused":
            err.print(f"[bold red]refused:[/] {exc.detail} (audit record {exc.event_id})")
            raise typer.Exit(code=3) from exc
        if exc.code == "no_session":
            raise _fail(WorkbenchError(f"{exc.detail}; {_SIGN_IN}")) from exc
        if exc.code in ("invalid_session", "unauthenticated", "account_refused"):
            raise _fail(
                WorkbenchError(f"the service refused your session ({exc.detail}); {_SIGN_IN}")
            ) from exc
        raise _fail(exc) from exc
    except (WorkbenchError, ValueError) as exc:
        raise _fail(exc) from exc
    display_limit = 200
    shown_rows = result.rows.height if as_json else min(result.rows.height, display_limit)
    if shown_rows < result.total_rows:
        why = (
            "the policy's row limit; a supervisor may approve more with --approved-by"
            if result.truncated
            else "the display limit; use --json for all"
        )
        err.print(f"[bold yellow]showing {shown_rows:,} of {result.total_rows:,} reads[/] ({why})")
    if as_json:
        for row in result.rows.iter_rows(named=True):
            typer.echo(json.dumps(row, default=str))
        return
    table = Table(
        title=f"{result.total_rows} read(s) — case {case} "
        f"(audit record {result.event_id})"
    )
    shown = [
        c
        for c in (
            "captured_at",
            "plate",
            "plate_state",
            "camera_id",
            "network_id",
            "confidence_pct",
        )
        if c in result.rows.columns
    ]
    for column in shown:
        table.add_column(column)
    for row in result.rows.select(shown).head(display_limit).iter_rows():
        table.add_row(*(str(v) for v in row))
    console.print(table)
