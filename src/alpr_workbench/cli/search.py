"""The ``search`` command and the ``patterns`` group: case-gated, audited searches of reads.

``search`` finds reads (plate, partial plate, cameras, an area, vehicle attributes);
``patterns seen-at-both`` and ``patterns repeats`` are gated pattern searches ("seen at A and
B", repeat sightings). All of them run in the service, as the signed-in user, through the
gate: each is one audited search.

Times typed on the command line are the department's local time (the policy's ``timezone``)
unless they carry an offset; tables show local time to the second and confidences rounded to
whole percents. ``--json`` is machine output: full precision, ISO 8601 times in UTC, and
durations in seconds (``gap_s``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import polars as pl
import typer
from rich.table import Table

from alpr_workbench.cli._common import _fail, console, err
from alpr_workbench.errors import WorkbenchError

_SIGN_IN = (
    "sign in first: `alpr-workbench login --url https://127.0.0.1:8443 --ca CERT --user YOU` "
    "(`alpr-workbench demo` prints the exact commands for its demo users)"
)
_T = TypeVar("_T")

patterns_app = typer.Typer(
    help=(
        "Gated pattern searches inside a case: vehicles seen at two places, repeat sightings "
        "at one place. Each is one audited search, checked like `search`."
    ),
    no_args_is_help=True,
)

# -- shared options ----------------------------------------------------------------------
_TIME_HELP = (
    "a date or date and time in the department's time zone (the policy's `timezone`), e.g. "
    "2026-11-30 or 2026-11-30T14:05; give an offset for another zone (2026-11-30T22:05Z)."
)
Case = Annotated[str, typer.Option("--case", help="Case number, e.g. BPD-2026-000123.")]
Reason = Annotated[str, typer.Option("--reason", help="Reason code from the policy list.")]
ReasonText = Annotated[str | None, typer.Option("--reason-text", help="Free text.")]
TimeFrom = Annotated[str | None, typer.Option("--from", help=f"Window start: {_TIME_HELP}")]
TimeTo = Annotated[str | None, typer.Option("--to", help=f"Window end: {_TIME_HELP}")]
Pattern = Annotated[
    str | None, typer.Option("--pattern", help="Partial plate: ? one character, * any run.")
]
Make = Annotated[str | None, typer.Option("--make", help="Vehicle make, e.g. Honda.")]
Color = Annotated[str | None, typer.Option("--color", help="Vehicle color, e.g. white.")]
VehicleType = Annotated[str | None, typer.Option("--type", help="Vehicle type, e.g. sedan.")]
Approval = Annotated[
    str | None,
    typer.Option(
        "--approval",
        help="Approval id a supervisor granted you for this case (`approvals grant`): one "
        "search with more rows than the policy's cap.",
    ),
]
AsJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per row (machine output): full precision, ISO times in UTC.",
    ),
]
Limit = Annotated[
    int, typer.Option("--limit", min=1, help="Rows the table shows at most (not --json).")
]
SessionFile = Annotated[
    Path | None,
    typer.Option("--session-file", help="Default: ~/.config/alpr-workbench/session.json."),
]
_NEAR_HELP = "a circle LAT,LON,RADIUS_M (decimal degrees, metres), e.g. 34.18,-118.31,500."
_POLYGON_HELP = (
    "a GeoJSON file holding a Polygon (or a Feature of one); GeoJSON puts longitude first."
)


# -- parsing -----------------------------------------------------------------------------
def _department_zone() -> ZoneInfo:
    from alpr_workbench.policy import load_policy

    return ZoneInfo(load_policy().timezone)


def _parse_local_time(text: str | None, option: str, zone: ZoneInfo) -> dt.datetime | None:
    """An ISO date or time; without an offset it is the department's local time."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise WorkbenchError(
            f"{option} {text!r} is not a date or time (e.g. 2026-11-30T14:05)"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise WorkbenchError(f"{what}: {text!r} is not a number") from exc
    if not math.isfinite(value):
        raise WorkbenchError(f"{what}: {text!r} is not a finite number")
    return value


def _parse_near(text: str | None, option: str) -> tuple[float, float, float] | None:
    """``LAT,LON,RADIUS_M`` as three finite numbers."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 3:
        raise WorkbenchError(f"{option} {text!r}: give LAT,LON,RADIUS_M, e.g. 34.18,-118.31,500")
    lat, lon, radius = (_finite(p.strip(), option) for p in parts)
    return lat, lon, radius


def _read_polygon(path: Path | None, option: str) -> tuple[tuple[float, float], ...] | None:
    """The outer ring of a GeoJSON Polygon (or a Feature of one) as (lon, lat) vertices."""
    if path is None:
        return None
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{option} {path}: not a readable GeoJSON file ({exc})") from exc
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("geometry")
    if not isinstance(doc, dict) or doc.get("type") != "Polygon":
        raise WorkbenchError(f"{option} {path}: give a GeoJSON Polygon (or a Feature of one)")
    rings = doc.get("coordinates")
    if not isinstance(rings, list) or len(rings) != 1 or not isinstance(rings[0], list):
        raise WorkbenchError(
            f"{option} {path}: give one ring of [lon, lat] vertices (no holes)"
        )
    vertices = []
    for i, vertex in enumerate(rings[0]):
        if not isinstance(vertex, list) or len(vertex) != 2:
            raise WorkbenchError(f"{option} {path}: vertex {i} is not [lon, lat]")
        lon, lat = (_finite(str(v), f"{option} {path}, vertex {i}") for v in vertex)
        vertices.append((lon, lat))
    return tuple(vertices)


def _place(
    cameras: list[str] | None, near: str | None, polygon: Path | None, prefix: str, name: str
) -> dict[str, Any]:
    """One place of a pattern search from its options: cameras, a circle or an area."""
    given = [bool(cameras), near is not None, polygon is not None]
    if sum(given) != 1:
        raise WorkbenchError(
            f"give {name} as --{prefix}camera (repeat), --{prefix}near or --{prefix}polygon: "
            "exactly one of them"
        )
    if cameras:
        return {"camera_ids": list(cameras)}
    if near is not None:
        return {"near": _parse_near(near, f"--{prefix}near")}
    return {"polygon": _read_polygon(polygon, f"--{prefix}polygon")}


def _filters(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, [], ())}


# -- calling the service -----------------------------------------------------------------
def _call(session_file: Path | None, work: Callable[[Any], _T]) -> _T:
    """Run ``work(client)`` with the saved session; refusals and errors as exit codes."""
    from alpr_workbench.client import ServiceError, connect

    try:
        with connect(session_file=session_file) as client:
            return work(client)
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


# -- showing results ---------------------------------------------------------------------
def _duration_text(value: dt.timedelta) -> str:
    seconds = round(value.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _for_people(frame: pl.DataFrame, zone: ZoneInfo) -> pl.DataFrame:
    """Times in local time to the second (with the zone), confidences as whole percents."""
    columns = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            aware = column if dtype.time_zone else column.dt.replace_time_zone("UTC")
            columns.append(
                aware.dt.convert_time_zone(zone.key).dt.strftime("%Y-%m-%d %H:%M:%S %Z")
            )
        elif name.endswith("_pct") and dtype.is_numeric():
            columns.append(
                pl.format("{} %", column.round(0).cast(pl.Int64)).alias(name)
            )
        elif isinstance(dtype, pl.Duration):
            columns.append(
                column.map_elements(_duration_text, return_dtype=pl.String).alias(name)
            )
        else:
            columns.append(column)
    return frame.select(columns)


def _print_table(frame: pl.DataFrame, title: str, *, limit: int) -> None:
    table = Table(title=title)
    for name in frame.columns:
        # Times and percents stay on one line; other cells may wrap to fit.
        table.add_column(name, no_wrap=name.endswith(("_at", "_pct")))
    for row in frame.head(limit).iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _print_json(frame: pl.DataFrame) -> None:
    """One JSON object per row: full precision, ISO UTC times, durations in seconds."""
    for row in frame.iter_rows(named=True):
        doc = {}
        for key, value in row.items():
            if isinstance(value, dt.timedelta):
                doc[f"{key}_s"] = value.total_seconds()
            else:
                doc[key] = _json_value(value)
        typer.echo(json.dumps(doc, default=str))


def _cap_words(approval: str | None) -> str:
    if approval:
        return "the approval caps this search at {cap:,} rows; narrow the window"
    return (
        "the policy caps one search at {cap:,} rows; narrow the window or ask a supervisor "
        "for an approval (--approval)"
    )


# -- search ------------------------------------------------------------------------------
def search(
    case: Case,
    reason: Reason,
    reason_text: ReasonText = None,
    plate: Annotated[str | None, typer.Option("--plate", help="Exact plate.")] = None,
    pattern: Pattern = None,
    time_from: TimeFrom = None,
    time_to: TimeTo = None,
    camera: Annotated[
        list[str] | None, typer.Option("--camera", help="Camera id (repeat).")
    ] = None,
    near: Annotated[str | None, typer.Option("--near", help=f"Area: {_NEAR_HELP}")] = None,
    polygon: Annotated[
        Path | None, typer.Option("--polygon", help=f"Area: {_POLYGON_HELP}")
    ] = None,
    make: Make = None,
    color: Color = None,
    vehicle_type: VehicleType = None,
    approval: Approval = None,
    as_json: AsJson = False,
    limit: Limit = 200,
    session_file: SessionFile = None,
) -> None:
    """Search reads inside a case, through the service, as the signed-in user.

    Sign in first (``alpr-workbench login``): the service takes who is searching from the
    session, never from the command line. Refused (exit 3, with the audit record) unless the
    policy allows it. A result larger than the policy's ``max_rows`` is cut, and says so; a
    supervisor other than the searcher may grant an approval for a larger one
    (``approvals grant``; the search gives ``--approval ID``, used once, audited).

    The table shows times in the department's local time and confidences in whole percents;
    ``--json`` gives every row at full precision with ISO times in UTC.
    """
    try:
        zone = _department_zone()
        request = _filters(
            case_number=case,
            reason_code=reason,
            reason_text=reason_text,
            plate=plate,
            plate_pattern=pattern,
            window_from=_parse_local_time(time_from, "--from", zone),
            window_to=_parse_local_time(time_to, "--to", zone),
            camera_ids=list(camera or ()),
            near=_parse_near(near, "--near"),
            polygon=_read_polygon(polygon, "--polygon"),
            vehicle_make=make,
            vehicle_color=color,
            vehicle_type=vehicle_type,
            approval_id=approval,
        )
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    result = _call(session_file, lambda client: client.search(**request))
    returned = result.rows.height
    shown = returned if as_json else min(returned, limit)
    if result.truncated:
        words = _cap_words(approval).format(cap=returned)
        more = (
            f" (the table shows the first {shown:,}: --limit or --json for more)"
            if shown < returned
            else ""
        )
        err.print(
            f"[bold yellow]showing {shown:,} of {result.total_rows:,} reads:[/] {words}{more}"
        )
    elif shown < returned:
        err.print(
            f"[bold yellow]showing {shown:,} of {result.total_rows:,} reads:[/] the table "
            f"shows the first {limit:,}; use --limit or --json for all"
        )
    if as_json:
        _print_json(result.rows)
        return
    columns = [
        c
        for c in (
            "captured_at",
            "plate",
            "plate_state",
            "camera_id",
            "confidence_pct",
            "vehicle_make",
            "vehicle_color",
            "vehicle_type",
        )
        if c in result.rows.columns
    ]
    _print_table(
        _for_people(result.rows.select(columns), zone),
        f"{result.total_rows:,} read(s) — case {case} (audit record {result.event_id})",
        limit=limit,
    )


# -- pattern searches --------------------------------------------------------------------
def _show_pattern(
    result: Any, *, what: str, case: str, approval: str | None, as_json: bool, limit: int
) -> None:
    rows: pl.DataFrame = result.rows
    if result.truncated:
        words = _cap_words(approval).format(cap=result.reads_considered)
        err.print(
            f"[bold yellow]computed from {result.reads_considered:,} of "
            f"{result.reads_matched:,} reads, so plates may be missing:[/] {words}"
        )
    if not as_json and rows.height > limit:
        err.print(
            f"[bold yellow]showing {limit:,} of {rows.height:,} plates:[/] "
            "use --limit or --json for all"
        )
    if as_json:
        _print_json(rows)
        return
    _print_table(
        _for_people(rows, _department_zone()),
        f"{rows.height:,} plate(s) {what} — case {case} (audit record {result.event_id}; "
        f"{result.reads_considered:,} reads)",
        limit=limit,
    )


@patterns_app.command("seen-at-both")
def seen_at_both(
    case: Case,
    reason: Reason,
    reason_text: ReasonText = None,
    a_camera: Annotated[
        list[str] | None, typer.Option("--a-camera", help="Place A: a camera id (repeat).")
    ] = None,
    a_near: Annotated[str | None, typer.Option("--a-near", help=f"Place A: {_NEAR_HELP}")] = None,
    a_polygon: Annotated[
        Path | None, typer.Option("--a-polygon", help=f"Place A: {_POLYGON_HELP}")
    ] = None,
    b_camera: Annotated[
        list[str] | None, typer.Option("--b-camera", help="Place B: a camera id (repeat).")
    ] = None,
    b_near: Annotated[str | None, typer.Option("--b-near", help=f"Place B: {_NEAR_HELP}")] = None,
    b_polygon: Annotated[
        Path | None, typer.Option("--b-polygon", help=f"Place B: {_POLYGON_HELP}")
    ] = None,
    within_minutes: Annotated[
        float,
        typer.Option("--within", min=0.0, help="Largest gap between the two reads, in minutes."),
    ] = 60.0,
    time_from: TimeFrom = None,
    time_to: TimeTo = None,
    pattern: Pattern = None,
    make: Make = None,
    color: Color = None,
    vehicle_type: VehicleType = None,
    approval: Approval = None,
    as_json: AsJson = False,
    limit: Limit = 200,
    session_file: SessionFile = None,
) -> None:
    """Vehicles read at place A and at place B within --within minutes of each other.

    Each place is cameras (--a-camera, repeat), a circle (--a-near LAT,LON,RADIUS_M) or an
    area (--a-polygon FILE, GeoJSON); the same for B. Each place is checked as one search
    (its size and cameras are bounded by the policy), and the whole is one audited search,
    refused (exit 3, with the audit record) unless the policy allows it. One row per plate:
    its closest pair of reads; ``gap`` is B's time minus A's.
    """
    try:
        zone = _department_zone()
        request = _filters(
            reason_text=reason_text,
            window_from=_parse_local_time(time_from, "--from", zone),
            window_to=_parse_local_time(time_to, "--to", zone),
            plate_pattern=pattern,
            vehicle_make=make,
            vehicle_color=color,
            vehicle_type=vehicle_type,
            approval_id=approval,
        )
        place_a = _place(a_camera, a_near, a_polygon, "a-", "place A")
        place_b = _place(b_camera, b_near, b_polygon, "b-", "place B")
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    result = _call(
        session_file,
        lambda client: client.seen_at_both(
            case_number=case, reason_code=reason, place_a=place_a, place_b=place_b,
            within=dt.timedelta(minutes=within_minutes), **request,
        ),
    )  # fmt: skip
    _show_pattern(
        result, what=f"seen at A and B within {within_minutes:g} min", case=case,
        approval=approval, as_json=as_json, limit=limit,
    )  # fmt: skip


@patterns_app.command("repeats")
def repeats(
    case: Case,
    reason: Reason,
    reason_text: ReasonText = None,
    camera: Annotated[
        list[str] | None, typer.Option("--camera", help="The place: a camera id (repeat).")
    ] = None,
    near: Annotated[str | None, typer.Option("--near", help=f"The place: {_NEAR_HELP}")] = None,
    polygon: Annotated[
        Path | None, typer.Option("--polygon", help=f"The place: {_POLYGON_HELP}")
    ] = None,
    min_sightings: Annotated[
        int,
        typer.Option("--min-sightings", help="Fewest reads of a plate (2 or more)."),
    ] = 2,
    min_days: Annotated[
        int,
        typer.Option("--min-days", help="Fewest distinct days (local) with a read of a plate."),
    ] = 1,
    time_from: TimeFrom = None,
    time_to: TimeTo = None,
    pattern: Pattern = None,
    make: Make = None,
    color: Color = None,
    vehicle_type: VehicleType = None,
    approval: Approval = None,
    as_json: AsJson = False,
    limit: Limit = 200,
    session_file: SessionFile = None,
) -> None:
    """Vehicles read at one place at least --min-sightings times, on --min-days days.

    The place is cameras (--camera, repeat), a circle (--near LAT,LON,RADIUS_M) or an area
    (--polygon FILE, GeoJSON), checked as one search. One audited search, refused (exit 3,
    with the audit record) unless the policy allows it; a minimum of one sighting is refused
    (it would list every plate at the place). One row per plate, most often seen first.
    """
    try:
        zone = _department_zone()
        request = _filters(
            reason_text=reason_text,
            window_from=_parse_local_time(time_from, "--from", zone),
            window_to=_parse_local_time(time_to, "--to", zone),
            plate_pattern=pattern,
            vehicle_make=make,
            vehicle_color=color,
            vehicle_type=vehicle_type,
            approval_id=approval,
        )
        place = _place(camera, near, polygon, "", "the place")
    except WorkbenchError as exc:
        raise _fail(exc) from exc
    result = _call(
        session_file,
        lambda client: client.repeat_sightings(
            case_number=case, reason_code=reason, place=place, min_sightings=min_sightings,
            min_days=min_days, **request,
        ),
    )  # fmt: skip
    _show_pattern(
        result, what=f"seen {min_sightings}+ times on {min_days}+ day(s)", case=case,
        approval=approval, as_json=as_json, limit=limit,
    )  # fmt: skip
