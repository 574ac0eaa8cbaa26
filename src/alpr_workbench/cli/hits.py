"""The ``hits`` commands: the queue of new hotlist hits, confirmation and outcome.

Every command acts as the signed-in user (``alpr-workbench login`` first) through the service,
which checks the ``work_hits`` permission and audits each step. Times are shown in the
department's time zone, confidences rounded. Nothing actionable about the hotlist entry (why
the plate is listed, the originating agency and case) is shown before a person confirms the
hit correct.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape

from alpr_workbench.cli._common import _parse_time, console
from alpr_workbench.cli._session import as_session_user
from alpr_workbench.cli.service import Session

hits_app = typer.Typer(
    help="Hotlist hits: the queue, confirm what the image shows, record the outcome.",
    no_args_is_help=True,
)

_DECISIONS = ("correct", "wrong-state", "misread", "not-actionable")
_OUTCOMES = ("stop", "recovery", "arrest", "case-cleared")


def _local(value: Any, zone: str) -> str:
    """An ISO time from the service, in the department's time zone."""
    if not value:
        return "-"
    when = dt.datetime.fromisoformat(str(value))
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}%"


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else escape(str(value))


@hits_app.command("queue")
def hits_queue(
    limit: Annotated[int, typer.Option("--limit", help="Hits listed at most (1-500).")] = 50,
    session_file: Session = None,
) -> None:
    """New hits to work, highest priority and oldest first (audited)."""
    doc = as_session_user(session_file, lambda c: c.hit_queue(limit=limit))
    zone, hits = doc["timezone"], doc["hits"]
    if not hits:
        console.print("No new hits to work.")
        return
    lines = [f"New hits ({len(hits)}), highest priority and oldest first; times in {zone}"]
    for hit in hits:
        lines.append(
            f"[bold]{_text(hit['hit_id'])}[/]  priority {hit['priority']}, "
            f"{_text(hit['match_tier'])} match, {_local(hit['captured_at'], zone)}, "
            f"camera {_text(hit.get('camera_name') or hit['camera_id'])}")
        lines.append(
            f"    read {_text(hit['read_plate'])} ({_pct(hit.get('confidence_pct'))}), listed "
            f"{_text(hit['listed_plate'])} ({_text(hit.get('plate_state'))}), "
            f"{_text(hit.get('category'))}")
        for warning in hit.get("confusable_warnings") or []:
            lines.append(f"    [yellow]warning[/] {_text(warning)}")
    console.print("\n".join(lines), soft_wrap=True)
    console.print("Look at the image before acting: `alpr-workbench hits show ID`, then "
                  "`hits confirm ID --as correct|wrong-state|misread|not-actionable`.")


@hits_app.command("show")
def hits_show(
    hit_id: Annotated[str, typer.Argument(help="The hit.")],
    session_file: Session = None,
) -> None:
    """One hit: the read, the entry, warnings; what to do only once confirmed (audited)."""
    doc = as_session_user(session_file, lambda c: c.show_hit(hit_id))
    zone, hit = doc["timezone"], doc["hit"]
    lines = [
        f"[bold]{_text(hit['hit_id'])}[/]  ({_text(hit['disposition'])})",
        f"read       {_text(hit['read_plate'])} ({_text(hit.get('read_plate_state'))}) at "
        f"{_local(hit['captured_at'], zone)}, camera {_text(hit.get('camera_name'))} "
        f"({_text(hit['camera_id'])}), confidence {_pct(hit.get('confidence_pct'))}",
        f"image      {_text(hit.get('image_ref'))}",
        f"listed     {_text(hit['listed_plate'])} ({_text(hit.get('plate_state'))}) on "
        f"{_text(hit['hotlist_source'])}, {_text(hit['match_tier'])} match, priority "
        f"{hit['priority']}, category {_text(hit.get('category'))}",
        f"vehicle    {_text(hit.get('vehicle_color'))} {_text(hit.get('vehicle_make'))} "
        f"{_text(hit.get('vehicle_model'))}",
    ]
    for warning in hit.get("confusable_warnings") or []:
        lines.append(f"[yellow]warning[/]    {_text(warning)}")
    if hit["is_actionable"]:
        lines.append(f"reason     {_text(hit.get('reason'))}")
        lines.append(f"origin     {_text(hit.get('originating_agency'))}, case "
                     f"{_text(hit.get('originating_case_number'))}")
        if hit.get("disposition_by"):
            lines.append(f"confirmed  by {_text(hit['disposition_by'])} at "
                         f"{_local(hit.get('disposition_at'), zone)}")
    else:
        lines.append("[bold]Not actionable until a person confirms it against the image.[/]")
    for out in hit.get("outcomes") or []:
        value = out.get("value_usd")
        lines.append(
            f"outcome    {_text(out['outcome_type'])} at {_local(out['occurred_at'], zone)}"
            + (f", value ${value:,.0f}" if value is not None else "")
            + (f", case {_text(out['case_number'])}" if out.get("case_number") else "")
        )
    console.print("\n".join(lines))


@hits_app.command("confirm")
def hits_confirm(
    hit_id: Annotated[str, typer.Argument(help="The hit.")],
    decision: Annotated[str, typer.Option("--as", help=" | ".join(_DECISIONS))],
    note: Annotated[str, typer.Option("--note", help="Why (kept in the audit log).")] = "",
    session_file: Session = None,
) -> None:
    """Record what the image shows; only `correct` makes a hit actionable (audited)."""
    doc = as_session_user(session_file, lambda c: c.confirm_hit(hit_id, decision, note=note))
    tail = "it is actionable now" if doc["is_actionable"] else "it is not actionable"
    console.print(f"{_text(hit_id)}: {doc['disposition']}; {tail} (audit {doc['event_id']})")


@hits_app.command("outcome")
def hits_outcome(
    hit_id: Annotated[str, typer.Argument(help="The confirmed hit.")],
    outcome_type: Annotated[str, typer.Option("--type", help=" | ".join(_OUTCOMES))],
    value: Annotated[float | None, typer.Option(
        "--value", help="A recovered vehicle's value, USD.")] = None,
    case: Annotated[str | None, typer.Option(
        "--case", help="The department case (recovery, arrest, case cleared).")] = None,
    at: Annotated[str | None, typer.Option(
        "--at", help="When it happened (ISO; default now).")] = None,
    lat: Annotated[float | None, typer.Option(
        "--lat", help="Where (a recovery: default the camera's place).")] = None,
    lon: Annotated[float | None, typer.Option("--lon", help="Where.")] = None,
    session_file: Session = None,
) -> None:
    """Record what followed a confirmed hit; the efficacy figures count it (audited)."""
    when = _parse_time(at, "--at")
    outcome_id = as_session_user(session_file, lambda c: c.record_hit_outcome(
        hit_id, outcome_type, occurred_at=when, value_usd=value, case_number=case, lat=lat,
        lon=lon))
    console.print(f"{_text(hit_id)}: {escape(outcome_type)} recorded ({escape(outcome_id)})")
