"""Audit vendor search-audit exports on their own: no data directory, no store, no session.

``alpr-workbench audit vendor FILE... --out REPORT.html`` reads each export with the import's
parser (:func:`~alpr_workbench.governance.vendor_import.read_vendor_audit`: the column
profiles of ``governance/vendor_profiles.yaml``, a bad row rejected with its line and reason),
flags every search with the annual audit's rules
(:func:`~alpr_workbench.reports.audit_checks.flag_search_patterns`: the policy's vague
reasons, prohibited-purpose screening, network limit, retention and behaviour thresholds),
and groups the flags into checks. A check that needs a column the export lacks is not run;
the report says which column it lacks.

Rules that belong to the department's own records are not applied to another agency's
export: the case-number format (``malformed_case_number``), open cases (``closed_case``),
the list of reason codes (``reason_not_on_list``, ``other_without_text``).

The report is one self-contained HTML page (inline CSS and SVG, no script, no external
resource); every value from the files is escaped by Jinja2's autoescaping, and plates are
masked unless asked for.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from markupsafe import Markup, escape

from alpr_workbench._csvsafe import csv_bytes
from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.vendor_import import VendorImport, read_vendor_audit
from alpr_workbench.governance.vendor_profiles import load_vendor_profiles
from alpr_workbench.policy import Policy
from alpr_workbench.reports.audit_checks import flag_search_patterns
from alpr_workbench.reports.audit_report import mask_plate, plate_masker, svg_bars

__all__ = [
    "VendorCheck",
    "VendorFileAudit",
    "audit_vendor_file",
    "findings_frame",
    "render_vendor_audit",
]

_MAX_ROWS = 50
_TOP_USERS = 25

# (id, the department's check it applies, title, columns needed (each a group of fields of
# which one suffices), flag patterns). The patterns and their rules are audit_checks'.
VENDOR_CHECKS: tuple[tuple[str, str, str, tuple[tuple[str, ...], ...], tuple[str, ...]], ...] = (
    ("reason", "A3", "Every search gives a reason that states a purpose", (("reason",),),
     ("blank_reason", "vague_reason")),
    ("purpose", "P1", "No search for a prohibited purpose", (("reason",),),
     ("immigration_term", "protected_activity", "civil_use", "personal_characteristics",
      "ambiguous_ice", "protected_activity_review", "personal_characteristics_review",
      "civil_use_review", "held_for_review")),
    ("case_number", "A2", "Every search names a case number", (("case_number",),),
     ("missing_case_number",)),
    ("lookback", "R3", "No search looked back further than retention",
     (("time_frame", "time_frame_start"),), ("lookback_past_retention",)),
    ("networks", "P2", "No search covers more networks than the policy allows",
     (("networks",),), ("oversized_scope",)),
    ("devices", "P2", "No search covers more cameras than the policy allows", (("devices",),),
     ("oversized_camera_scope",)),
    ("broad", "P2", "No partial plate with too few known characters", (("plate",),),
     ("broad_search",)),
    ("repeat", "P2", "No user follows one plate day after day", (("user",), ("plate",)),
     ("repeat_tracking",)),
    ("off_hours", "P2", "No off-hours burst after a quiet spell", (("user",),),
     ("off_hours_burst",)),
    ("volume", "P2", "No user-day of outlying search volume", (("user",),),
     ("per_user_volume",)),
    ("searcher", "S3", "No search by a federal, out-of-state or private organization",
     (("organization",),), ("federal_searcher", "out_of_state_searcher", "private_searcher")),
)  # fmt: skip
_ROWS_CHECK = ("rows", "", "Every row of the export is readable")
_OFFENDING_COLUMNS = (
    "event_id",
    "pattern",
    "detail",
    "occurred_at",
    "user_id",
    "organization",
    "case_number",
    "reason_code",
    "reason_text",
    "plate_queried",
    "networks_searched",
)


@dataclass(frozen=True)
class VendorCheck:
    """One check of one vendor export.

    Attributes
    ----------
    check_id
        ``"reason"``, ``"purpose"``, ``"case_number"``, ``"lookback"``, ``"networks"``,
        ``"devices"``, ``"broad"``, ``"repeat"``, ``"off_hours"``, ``"volume"``,
        ``"searcher"`` or ``"rows"``.
    rule
        The department's check whose rule it applies (``"A3"``...; ``""`` for ``rows``).
    title
        What it requires.
    passed
        True or False; ``None`` when it could not run.
    not_run
        Why it could not run (the column it lacks), else ``None``.
    counts
        Offending rows by pattern.
    offending
        The offending searches (``event_id``, ``pattern``, ``detail`` and context), or the
        rejected rows (``line``, ``reason``, ``raw``) for ``rows``.
    """

    check_id: str
    rule: str
    title: str
    passed: bool | None
    not_run: str | None
    counts: dict[str, int]
    offending: pl.DataFrame

    @property
    def n_offending(self) -> int:
        """Offending searches (distinct), or rejected rows."""
        if self.offending.is_empty():
            return 0
        if "event_id" in self.offending.columns:
            return self.offending["event_id"].n_unique()
        return self.offending.height


@dataclass(frozen=True)
class VendorFileAudit:
    """The audit of one vendor export.

    Attributes
    ----------
    name
        The file's name.
    agency
        The agency whose export it is.
    format
        The profile that matched (``"flock_org_audit"``...).
    columns
        Canonical field -> the header as in the file.
    rows_read
        Records after the header.
    searches
        Readable rows (searches).
    refused
        Searches the vendor's moderation blocked (not flagged: the system worked).
    first_at, last_at
        First and last search time (UTC), ``None`` when there is none.
    checks
        Every check, run or not, ``rows`` first.
    events
        The searches, as ``audit_events`` rows (for the charts).
    """

    name: str
    agency: str
    format: str
    columns: dict[str, str]
    rows_read: int
    searches: int
    refused: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    checks: tuple[VendorCheck, ...]
    events: pl.DataFrame

    @property
    def multi_network_searches(self) -> int | None:
        """Searches across more than one network; ``None`` without a networks column."""
        if "networks" not in self.columns:
            return None
        return int((self.events["networks_searched"] > 1).sum())

    @property
    def failed(self) -> bool:
        """True when any check that ran failed."""
        return any(c.passed is False for c in self.checks)


def _default_agency(imported: VendorImport, path: Path) -> str:
    orgs = imported.events["organization"].drop_nulls().unique()
    if orgs.len() == 1:
        return str(orgs[0])
    return path.stem


def _devices_flags(imported: VendorImport, policy: Policy) -> pl.DataFrame:
    """Searches over ``max_cameras_per_search`` devices (the count is kept in ``query_json``)."""
    key = imported.columns["devices"]
    events = imported.events.filter(pl.col("outcome") != "refused")
    limit = policy.max_cameras_per_search
    devices = [
        int(float(str(cell).replace(",", "").replace("_", ""))) if str(cell or "").strip() else None
        for cell in (json.loads(q).get(key) for q in events["query_json"].to_list())
    ]
    frame = events.with_columns(pl.Series("_devices", devices, dtype=pl.Int64))
    return frame.filter(pl.col("_devices") > limit).with_columns(
        pl.lit("oversized_camera_scope").alias("pattern"),
        pl.format("{} cameras (policy allows {})", pl.col("_devices"), pl.lit(limit)).alias(
            "detail"
        ),
    )


def audit_vendor_file(
    path: Path,
    *,
    policy: Policy,
    retention_days: int,
    agency: str | None = None,
    timezone: str | None = None,
) -> VendorFileAudit:
    r"""Audit one vendor search-audit export.

    Parameters
    ----------
    path
        The CSV export.
    policy
        The policy whose rules and thresholds apply (vague reasons, prohibited terms, network
        and camera limits, off-hours, behaviour thresholds).
    retention_days
        A window starting more than this many whole days before the search is flagged.
    agency
        The agency whose export it is, spelt as the file's organization column spells it (its
        own users are then not judged as outside searchers). Default: the organization column
        when it holds one name, else the file name.
    timezone
        Zone of local days and off-hours (default: the policy's).

    Returns
    -------
    VendorFileAudit
        The checks, with counts and offending rows.

    Raises
    ------
    WorkbenchError
        If the file cannot be read or is not a search audit (no time or reason column...);
        the message names the file.

    Examples
    --------
    >>> import tempfile
    >>> from alpr_workbench.policy import load_policy
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "log.csv").write_text(
    ...     "id,userId,searchDate,cameraCount,reason\n"
    ...     "a1,u1,2025-06-18 00:02:04,3,stolen vehicle\n"
    ...     "a2,u1,2025-06-18 00:09:13,3,investigation\n"
    ... )
    >>> result = audit_vendor_file(folder / "log.csv", policy=load_policy(), retention_days=30)
    >>> [(c.check_id, c.passed, c.n_offending) for c in result.checks][:3]
    [('rows', True, 0), ('reason', False, 1), ('purpose', True, 0)]
    >>> next(c.not_run for c in result.checks if c.check_id == "case_number")
    "lacks a column for 'Case #'"
    """
    path = Path(path)
    imported = read_vendor_audit(path, organization=agency)
    name = agency or _default_agency(imported, path)
    events = imported.events
    flags = flag_search_patterns(
        events,
        policy=policy,
        retention_days=retention_days,
        cases=None,
        home_organization=name,
        timezone=timezone,
        # The export's search time and window are not stamped by one clock: whole days.
        lookback_whole_days=True,
    )
    profiles = load_vendor_profiles()
    present = set(imported.columns)
    searches = events.filter(pl.col("outcome") != "refused")
    checks = [
        VendorCheck(
            check_id=_ROWS_CHECK[0], rule=_ROWS_CHECK[1], title=_ROWS_CHECK[2],
            passed=imported.rejected.is_empty(), not_run=None,
            counts={"rejected_rows": imported.rejected.height}, offending=imported.rejected,
        )
    ]  # fmt: skip
    for check_id, rule, title, needs, patterns in VENDOR_CHECKS:
        lacking = [group for group in needs if not present & set(group)]
        not_run: str | None = None
        if lacking:
            not_run = "lacks a column for " + " and ".join(
                " or ".join(repr(profiles.label(f)) for f in group) for group in lacking
            )
        elif check_id == "case_number" and searches.filter(
            pl.col("case_number").is_not_null()
        ).is_empty():
            # The rule skips an export whose case column is empty throughout (redacted).
            not_run = f"column {imported.columns['case_number']!r} is empty in every row"
        elif searches.is_empty():
            not_run = "no readable search"
        if not_run is not None:
            checks.append(VendorCheck(check_id, rule, title, None, not_run, {}, _no_rows()))
            continue
        if check_id == "devices":
            sub = _devices_flags(imported, policy)
        else:
            sub = flags.filter(pl.col("pattern").is_in(list(patterns)))
        offending = sub.select([c for c in _OFFENDING_COLUMNS if c in sub.columns])
        by_pattern = offending.group_by("pattern").len().sort("pattern")
        counts = {str(p): int(n) for p, n in by_pattern.iter_rows()}
        checks.append(
            VendorCheck(check_id, rule, title, offending.is_empty(), None, counts, offending)
        )
    times = events["occurred_at"]
    return VendorFileAudit(
        name=path.name,
        agency=name,
        format=imported.format,
        columns=dict(imported.columns),
        rows_read=imported.rows_read,
        searches=events.height,
        refused=events.height - searches.height,
        first_at=times.min() if events.height else None,  # type: ignore[arg-type]
        last_at=times.max() if events.height else None,  # type: ignore[arg-type]
        checks=tuple(checks),
        events=events,
    )


def _no_rows() -> pl.DataFrame:
    return pl.DataFrame(schema={"event_id": pl.String, "pattern": pl.String})


def findings_frame(audits: Sequence[VendorFileAudit]) -> pl.DataFrame:
    """Every finding of every file as one machine-readable table.

    Parameters
    ----------
    audits
        From :func:`audit_vendor_file`.

    Returns
    -------
    polars.DataFrame
        ``file``, ``agency``, ``check_id``, ``rule``, ``pattern``, ``record`` (the search's
        event id, or ``line N`` of a rejected row), ``occurred_at``, ``user_id``,
        ``detail``; a check that could not run gives one row with pattern ``not_run``.
    """
    rows: list[dict[str, Any]] = []
    for audit in audits:
        for check in audit.checks:
            base = {"file": audit.name, "agency": audit.agency, "check_id": check.check_id,
                    "rule": check.rule}  # fmt: skip
            if check.not_run is not None:
                rows.append({**base, "pattern": "not_run", "detail": check.not_run})
            elif check.check_id == "rows":
                rows.extend(
                    {**base, "pattern": "rejected_row", "record": f"line {line}",
                     "detail": reason}
                    for line, reason in check.offending.select("line", "reason").iter_rows()
                )  # fmt: skip
            else:
                for row in check.offending.iter_rows(named=True):
                    at = row.get("occurred_at")
                    rows.append({
                        **base, "pattern": row["pattern"], "record": row["event_id"],
                        "occurred_at": at.isoformat() if isinstance(at, dt.datetime) else None,
                        "user_id": row.get("user_id"), "detail": row.get("detail"),
                    })  # fmt: skip
    schema = {c: pl.String for c in ("file", "agency", "check_id", "rule", "pattern", "record",
                                      "occurred_at", "user_id", "detail")}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


# -- rendering -------------------------------------------------------------------------------
def _svg_columns(
    items: Sequence[tuple[str, float]], *, label: str, every: int = 1, width: int = 900
) -> Markup:
    """A column chart as inline SVG: one column per item, every ``every``-th item labelled."""
    if not items:
        return Markup("<p class='muted'>No data.</p>")
    height, bottom, top_pad, left = 180, 34, 14, 44
    plot_w = width - left - 10
    step = plot_w / len(items)
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f"<svg role='img' aria-label='{escape(label)}' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' font-size='11'>",
        f"<text x='{left - 4}' y='{top_pad + 4}' text-anchor='end'>{escape(f'{top:,.0f}')}</text>",
        f"<text x='{left - 4}' y='{height - bottom}' text-anchor='end'>0</text>",
    ]
    usable = height - bottom - top_pad
    for i, (name, value) in enumerate(items):
        h = 0.0 if not math.isfinite(value) else usable * value / top
        x = left + i * step
        parts.append(
            f"<rect x='{x:.1f}' y='{height - bottom - h:.1f}' width='{max(step - 1, 1):.1f}' "
            f"height='{h:.1f}' fill='#3b6ea5'><title>{escape(name)}: "
            f"{escape(f'{value:,.0f}')}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f"<text x='{x + step / 2:.1f}' y='{height - bottom + 14}' text-anchor='middle'>"
                f"{escape(name)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; }
.na { color: #777; } .muted { color: #777; } td.raw { font-family: monospace; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{{ files|length }} vendor export(s) audited on their own, against the rules of
{{ policy_agency }}'s policy. Retention: {{ retention_days }} days (a window starting more than
that many whole days before the search is flagged). Local days and off-hours
({{ off_hours }}) in {{ timezone }}. Times in the files are UTC unless they name a zone.
{{ plates_note }}</p>
<p>Rules of the department's own records are not applied to another agency's export: the
case-number format, open cases and the list of reason codes.</p>

<h2>Summary</h2>
<table>
<tr><th>Check</th><th>Rule</th>{% for f in files %}<th>{{ f.agency }}<br>
<span class="muted">{{ f.name }}</span></th>{% endfor %}</tr>
<tr><td>Rows read</td><td></td>{% for f in files %}<td>{{ f.rows_read }}</td>{% endfor %}</tr>
<tr><td>Searches (readable rows)</td><td></td>{% for f in files %}<td>{{ f.searches }}</td>
{% endfor %}</tr>
<tr><td>Blocked by the vendor's moderation</td><td></td>{% for f in files %}<td>{{ f.refused }}
</td>{% endfor %}</tr>
<tr><td>Searches across more than one network</td><td></td>{% for f in files %}
<td>{{ f.multi_network }}</td>{% endfor %}</tr>
<tr><td>Period (UTC)</td><td></td>{% for f in files %}<td>{{ f.period }}</td>{% endfor %}</tr>
{% for c in summary %}
<tr><td>{{ c.title }}</td><td>{{ c.rule }}</td>
{% for cell in c.cells %}<td class="{{ cell.css }}">{{ cell.text }}</td>{% endfor %}</tr>
{% endfor %}
</table>

{% for f in files %}
<h2 id="file-{{ loop.index }}">{{ f.agency }} &mdash; {{ f.name }}</h2>
<p>Format: {{ f.format }}. {{ f.rows_read }} rows read, {{ f.searches }} searches,
{{ f.rejected }} rejected row(s), {{ f.refused }} blocked by the vendor's moderation.
Period {{ f.period }}.</p>
<p>Columns recognised:
{% for field, header in f.columns %}{{ header }} &rarr; {{ field }}
{%- if not loop.last %}, {% endif %}{% endfor %}.</p>
{% if f.not_run %}<p>Checks that could not run:</p><ul>
{% for c in f.not_run %}<li>{{ c.title }} ({{ c.rule or c.check_id }}): {{ c.not_run }}</li>
{% endfor %}
</ul>{% endif %}
<h3>Searches per day</h3>
{{ f.day_chart }}
<h3>Searches per hour of day ({{ timezone }})</h3>
{{ f.hour_chart }}
<h3>Searches per user</h3>
{{ f.user_chart }}
{% for c in f.checks %}{% if c.passed is not none %}
<h3>{{ c.title }}{% if c.rule %} ({{ c.rule }}){% endif %}:
<span class="{{ c.css }}">{{ c.verdict }}</span></h3>
<p>{{ c.n_offending }} offending {{ "row(s)" if c.check_id == "rows" else "search(es)" }}
{%- if c.counts %}: {% for k, v in c.counts %}{{ k }} {{ v }}
{%- if not loop.last %}, {% endif %}{% endfor %}{% endif %}.</p>
{% if c.rows %}
<p>{{ c.rows|length }} of {{ c.n_rows }} offending row(s) shown:</p>
<table>
<tr>{% for col in c.columns %}<th>{{ col }}</th>{% endfor %}</tr>
{% for row in c.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}
{% endif %}{% endfor %}
{% endfor %}
<p class="muted">Generated by ALPR Workbench (<code>alpr-workbench audit vendor</code>).</p>
</body>
</html>
"""


def _verdict(passed: bool | None) -> tuple[str, str]:
    if passed is None:
        return "could not run", "na"
    return ("pass", "pass") if passed else ("FAIL", "fail")


def _charts(events: pl.DataFrame, timezone: str, has_user: bool) -> dict[str, Markup]:
    if events.is_empty():
        empty = Markup("<p class='muted'>No searches.</p>")
        return {"day_chart": empty, "hour_chart": empty, "user_chart": empty}
    local = pl.col("occurred_at").dt.convert_time_zone(timezone)
    days = events.group_by(local.dt.date().alias("d")).len().sort("d")
    first, last = days["d"].min(), days["d"].max()
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    counts = dict(days.iter_rows())
    span = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    day_items = [(d.isoformat(), float(counts.get(d, 0))) for d in span]
    hours = dict(events.group_by(local.dt.hour().alias("h")).len().iter_rows())
    hour_items = [(f"{h:02d}", float(hours.get(h, 0))) for h in range(24)]
    user_chart = Markup("<p class='muted'>The export has no user column.</p>")
    if has_user:
        users = (
            events.filter(pl.col("user_id").is_not_null())
            .group_by("user_id").len().sort(["len", "user_id"], descending=[True, False])
        )  # fmt: skip
        items = [(str(u), float(n)) for u, n in users.head(_TOP_USERS).iter_rows()]
        note = (
            f"<p class='muted'>The {len(items)} busiest of {users.height} users.</p>"
            if users.height > _TOP_USERS else ""
        )  # fmt: skip
        user_chart = Markup(note) + svg_bars(items, label="Searches per user", left=300)
    return {
        "day_chart": _svg_columns(
            day_items, label="Searches per day", every=max(1, math.ceil(len(day_items) / 8))
        ),
        "hour_chart": _svg_columns(hour_items, label="Searches per hour of day", every=2),
        "user_chart": user_chart,
    }


def render_vendor_audit(
    audits: Sequence[VendorFileAudit],
    *,
    policy: Policy,
    retention_days: int,
    timezone: str | None = None,
    show_plates: bool = False,
    max_rows: int = _MAX_ROWS,
    title: str = "Vendor search-audit review",
) -> str:
    """Render the audits of one or more vendor exports as one self-contained HTML page.

    Parameters
    ----------
    audits
        From :func:`audit_vendor_file`, one per file, shown side by side in the summary.
    policy
        The policy the checks applied (named in the page; off-hours).
    retention_days
        The retention the lookback check used.
    timezone
        Zone of local days and hours (default: the policy's).
    show_plates
        Show plates in full (default: masked, e.g. ``7AB•••3``).
    max_rows
        Offending rows shown per check (the counts give the full number).
    title
        Page title.

    Returns
    -------
    str
        HTML with inline CSS and SVG charts, no script and no external resource; every
        value from the files is escaped.
    """
    from jinja2 import Environment  # lazy: only the report needs it

    tz = timezone or policy.timezone
    mask = (
        (lambda text: text)
        if show_plates
        else plate_masker([c.offending for a in audits for c in a.checks])
    )
    files: list[dict[str, Any]] = []
    for audit in audits:
        checks: list[dict[str, Any]] = []
        for check in audit.checks:
            verdict, css = _verdict(check.passed)
            shown = check.offending.head(max_rows)
            hide = [not show_plates and col == "plate_queried" for col in shown.columns]
            checks.append({
                "check_id": check.check_id, "rule": check.rule, "title": check.title,
                "passed": check.passed, "verdict": verdict, "css": css,
                "not_run": check.not_run, "n_offending": check.n_offending,
                "counts": list(check.counts.items()), "columns": shown.columns,
                "n_rows": check.offending.height,
                "rows": [
                    [mask_plate(_fmt(v)) if h and v is not None else mask(_fmt(v))
                     for h, v in zip(hide, row, strict=True)]
                    for row in shown.iter_rows()
                ],
            })  # fmt: skip
        period = (
            f"{audit.first_at:%Y-%m-%d %H:%M} to {audit.last_at:%Y-%m-%d %H:%M}"
            if audit.first_at is not None and audit.last_at is not None
            else "none"
        )
        files.append({
            "name": audit.name, "agency": audit.agency, "format": audit.format,
            "rows_read": f"{audit.rows_read:,}", "searches": f"{audit.searches:,}",
            "refused": f"{audit.refused:,}", "period": period,
            "rejected": f"{audit.checks[0].offending.height:,}",
            "multi_network": ("no column" if audit.multi_network_searches is None
                              else f"{audit.multi_network_searches:,}"),
            "columns": sorted(audit.columns.items(), key=lambda item: item[1]),
            "not_run": [c for c in checks if c["not_run"]],
            "checks": checks,
            **_charts(audit.events, tz, "user" in audit.columns),
        })  # fmt: skip
    summary = []
    for i, check in enumerate(audits[0].checks if audits else ()):
        cells = []
        for audit in audits:
            c = audit.checks[i]
            verdict, css = _verdict(c.passed)
            text = verdict if c.passed is None else f"{verdict} ({c.n_offending:,})"
            cells.append({"text": text, "css": css})
        summary.append({"title": check.title, "rule": check.rule, "cells": cells})
    start, end = policy.off_hours_local
    env = Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(
        title=title,
        files=files,
        summary=summary,
        policy_agency=policy.agency_name,
        retention_days=retention_days,
        timezone=tz,
        off_hours=f"{start:02d}:00 to {end:02d}:00",
        plates_note=(
            "Plates are shown in full." if show_plates
            else "Plates are masked (e.g. 7AB•••3)."
        ),  # fmt: skip
    )


def write_vendor_audit(
    paths: Sequence[Path],
    *,
    out: Path,
    policy: Policy,
    retention_days: int,
    agencies: Sequence[str] = (),
    timezone: str | None = None,
    csv_out: Path | None = None,
    show_plates: bool = False,
) -> list[VendorFileAudit]:
    """Audit vendor exports and write the HTML report (and, if asked, the findings CSV).

    Parameters
    ----------
    paths
        The exports.
    out
        The HTML report to write (mode 0600).
    policy, retention_days, timezone, show_plates
        As for :func:`audit_vendor_file` and :func:`render_vendor_audit`.
    agencies
        The agency of each file, in order (fewer than files: the rest get the default).
    csv_out
        Where to write :func:`findings_frame` as CSV (formulas defused), if given.

    Returns
    -------
    list of VendorFileAudit
        One per file.

    Raises
    ------
    WorkbenchError
        If a file is unusable (nothing is written then), or more agencies than files are
        given, or a report cannot be written.
    """
    if len(agencies) > len(paths):
        raise WorkbenchError(f"{len(agencies)} --agency values for {len(paths)} file(s)")
    audits = [
        audit_vendor_file(
            path,
            policy=policy,
            retention_days=retention_days,
            agency=agencies[i] if i < len(agencies) else None,
            timezone=timezone,
        )
        for i, path in enumerate(paths)
    ]
    html = render_vendor_audit(
        audits,
        policy=policy,
        retention_days=retention_days,
        timezone=timezone,
        show_plates=show_plates,
    )
    try:
        atomic_write_bytes(Path(out), html.encode(), mode=0o600)
        if csv_out is not None:
            atomic_write_bytes(Path(csv_out), csv_bytes(findings_frame(audits)), mode=0o600)
    except OSError as exc:
        raise WorkbenchError(f"cannot write the vendor audit report: {exc}") from exc
    return audits
