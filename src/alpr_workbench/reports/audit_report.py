"""The annual audit report: collect the inputs from the store and the log, render HTML.

The report is one self-contained HTML file (inline CSS and SVG, no script, no external
resource), so it can be archived, mailed and opened offline. Every value from the data is
escaped by Jinja2's autoescaping. It holds what an auditor files: the checks of the
department's own records, imported vendor logs in a section of their own (another system's
records, never counted in the department's checks), and a methodology, scope and sign-off
section. Printed (``--pdf``), pages are landscape and table cells wrap, so no evidence is cut
at the page edge.

Plates are personal data: the report masks them (:func:`mask_plate`, e.g. ``7AB•••3``) unless
a user allowed to audit asks for them in full, which is itself an audited export. By default
the report is written to ``<data dir>/reports/`` (folder mode 0700, file mode 0600), never to
the current folder.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import polars as pl
from markupsafe import Markup, escape

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.config import Settings, load_settings
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.admin import configured_retention_days
from alpr_workbench.governance.audit_log import AuditLog, AuditLogError, SignedDigest
from alpr_workbench.governance.registry import User, get_user, user_problem
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.reports.audit_checks import (
    SEARCH_EVENT_TYPES,
    AuditInputs,
    CheckResult,
    audit_period,
    describe_check_rules,
    run_checks,
    split_vendor_events,
)
from alpr_workbench.schema import empty_frame
from alpr_workbench.store import Store

if TYPE_CHECKING:
    from alpr_workbench.reports.vendor_audit import VendorCheck

__all__ = [
    "REPORTS_DIR",
    "AnnualAudit",
    "ReportRefused",
    "VendorSection",
    "check_imported_vendor_searches",
    "collect_audit_inputs",
    "default_report_path",
    "mask_plate",
    "render_audit_report",
    "write_annual_audit",
    "write_audit_report",
]

#: Where reports go by default, relative to the data directory (mode 0700).
REPORTS_DIR = Path("reports")
#: What stands for the hidden characters of a masked plate.
PLATE_MASK = "•••"

_TABLES = (
    "users",
    "cases",
    "sharing_grants",
    "hotlists",
    "hotlist_entries",
    "legal_holds",
    "hits",
    "outcomes",
)
_MAX_ROWS = 50


class ReportRefused(WorkbenchError):
    """The report may not be produced as asked (e.g. whole plates for a non-auditor).

    Attributes
    ----------
    reason
        Why, in words the user can act on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"audit report refused: {reason}")
        self.reason = reason


def mask_plate(plate: str) -> str:
    """Mask a plate (or plate pattern) so rows stay apart but the plate cannot be read.

    Seven characters or more keep the first three and the last; five or six keep the first
    two and the last; shorter ones keep only the first. The number of hidden characters is
    not shown either.

    Examples
    --------
    >>> mask_plate("7abc123")
    '7AB•••3'
    >>> mask_plate("AB12C"), mask_plate("AB1")
    ('AB•••C', 'A•••')
    """
    text = str(plate).strip().upper()
    if not text:
        return text
    if len(text) >= 7:
        return f"{text[:3]}{PLATE_MASK}{text[-1]}"
    if len(text) >= 5:
        return f"{text[:2]}{PLATE_MASK}{text[-1]}"
    return f"{text[0]}{PLATE_MASK}"


_MIN_MASKED_IN_TEXT = 4


def _is_plate_column(name: str) -> bool:
    return "plate" in name.lower()


def _plate_masker(results: Sequence[CheckResult]) -> Any:
    """A function that masks, in any text, every plate found in a plate column of the rows."""
    return plate_masker([r.offending for r in results])


def plate_masker(frames: Sequence[pl.DataFrame]) -> Callable[[str], str]:
    """A function that masks, in any text, every plate found in a plate column of ``frames``.

    Parameters
    ----------
    frames
        Tables whose text columns named like ``*plate*`` hold plates (e.g. offending rows).

    Returns
    -------
    Callable[[str], str]
        Replaces each of those plates (4 characters or more, whole words, any case, with or
        without separators) by its masked form (:func:`mask_plate`).
    """
    plates: set[str] = set()
    for frame in frames:
        for name in frame.columns:
            if _is_plate_column(name) and frame.schema[name] == pl.String:
                for value in frame[name].drop_nulls().unique().to_list():
                    text = str(value).strip()
                    plates.add(text)
                    plates.add(re.sub(r"[^A-Za-z0-9]", "", text))
    # Shorter fragments would mask unrelated words; the plate columns are masked whole.
    plates = {p for p in plates if len(p) >= _MIN_MASKED_IN_TEXT}
    if not plates:
        return lambda text: text
    alternatives = "|".join(re.escape(p) for p in sorted(plates, key=lambda p: (-len(p), p)))
    pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)
    return lambda text: pattern.sub(lambda m: mask_plate(m.group(0)), text)


def default_report_path(home: Path, year: int) -> Path:
    """Where the annual audit of ``year`` goes by default: ``<home>/reports/alpr-audit-Y.html``."""
    return Path(home) / REPORTS_DIR / f"alpr-audit-{year}.html"


def _private_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)


def _table(store: Store, name: str) -> pl.DataFrame:
    return store.tables.read(name) if store.tables.exists(name) else empty_frame(name)


def _default_as_of(year: int, timezone: str | None = None) -> dt.datetime:
    _, end = audit_period(year, timezone)
    return min(dt.datetime.now(dt.UTC), end)


def _settings_policy(settings: Settings | None) -> Policy:
    if settings is not None and settings.policy_file:
        return load_policy(settings.policy_file)
    return load_policy()


def collect_audit_inputs(
    store: Store,
    audit_log: AuditLog,
    *,
    year: int,
    settings: Settings | None = None,
    as_of: dt.datetime | None = None,
    policy: Policy | None = None,
) -> AuditInputs:
    """Gather what the annual audit of ``year`` needs, without reading any read.

    Parameters
    ----------
    store
        The store: its tables, and the list of stored days and hold partitions (metadata).
    audit_log
        The audit log: verified first, then decrypted (only when it verifies; a broken log
        yields no events and fails A5).
    year
        Calendar year audited, in the policy's time zone (:func:`audit_period`).
    settings
        Workbench settings: their ``policy_file`` gives the policy when ``policy`` is not
        given (retention is the store's signed department setting,
        :func:`~alpr_workbench.governance.configured_retention_days`).
    as_of
        When the audit is taken (UTC): default the end of ``year`` or now, whichever is
        earlier.
    policy
        The policy audited against; its ``timezone`` bounds the year.

    Returns
    -------
    AuditInputs
        The year's events (the department's and imported vendor rows alike; the checks
        split them), every sharing event up to ``as_of``, the tables, the chain's
        verification, the stored days and hold partitions.
    """
    policy = policy if policy is not None else _settings_policy(settings)
    start, end = audit_period(year, policy.timezone)
    as_of = as_of if as_of is not None else _default_as_of(year, policy.timezone)
    verification = audit_log.verify()
    events = empty_frame("audit_events")
    sharing = events
    started: dt.datetime | None = None
    if verification.ok:
        try:
            every = audit_log.events()
        except AuditLogError:  # appended to or damaged between verify() and events()
            every = events
        own, _ = split_vendor_events(every)
        if own.height:
            # Imported vendor rows carry the vendor's search times, not when the log ran.
            started = own["occurred_at"].min()  # type: ignore[assignment]
        events = every.filter(
            (pl.col("occurred_at") >= start) & (pl.col("occurred_at") < end)
        )
        sharing = every.filter(
            pl.col("event_type").is_in(["sharing_change", "sharing_snapshot"])
            & (pl.col("occurred_at") <= as_of)
        )
    tables = {name: _table(store, name) for name in _TABLES}
    return AuditInputs(
        year=year,
        audit_events=events,
        users=tables["users"],
        cases=tables["cases"],
        sharing_grants=tables["sharing_grants"],
        hotlists=tables["hotlists"],
        hotlist_entries=tables["hotlist_entries"],
        legal_holds=tables["legal_holds"],
        hits=tables["hits"],
        chain_ok=verification.ok,
        chain_problem=verification.problem,
        retention_days=configured_retention_days(store),
        days_stored=store.reads.days(),
        as_of=as_of,
        hold_partitions=tuple(store.reads.hold_ids()),
        outcomes=tables["outcomes"],
        sharing_history=sharing,
        log_started_at=started,
        timezone=policy.timezone,
    )


# -- imported vendor logs --------------------------------------------------------------------
#: The audit_events column that holds each field a vendor check needs (vendor_audit's names).
_VENDOR_FIELD_COLUMNS = {
    "reason": "reason_text",
    "case_number": "case_number",
    "time_frame": "window_from",
    "time_frame_start": "window_from",
    "networks": "networks_searched",
    "plate": "plate_queried",
    "user": "user_id",
    "organization": "organization",
}
_VENDOR_COLUMNS = (
    "event_id", "pattern", "detail", "occurred_at", "user_id", "organization", "case_number",
    "reason_code", "reason_text", "plate_queried", "networks_searched",
)  # fmt: skip


@dataclass(frozen=True)
class VendorSection:
    """Imported vendor search logs of the audited year, audited apart from the department's.

    Attributes
    ----------
    searches
        Imported ``vendor_search`` rows in the year.
    refused
        Of those, searches the vendor's moderation blocked.
    organizations
        Searching organization -> rows, busiest first.
    first_at, last_at
        First and last search time (UTC), ``None`` without rows.
    imports
        The imports recorded in the year in the department's own trail (``occurred_at``,
        ``user_id``, ``format``, ``rows_read``, ``rows_rejected``, ``rows_new``).
    checks
        The vendor audit's checks (``reports.vendor_audit``) over the rows.
    """

    searches: int
    refused: int
    organizations: tuple[tuple[str, int], ...]
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    imports: pl.DataFrame
    checks: tuple[VendorCheck, ...]

    @property
    def failed(self) -> list[str]:
        """Ids of the checks that ran and failed."""
        return [c.check_id for c in self.checks if c.passed is False]


def _vendor_imports(events: pl.DataFrame) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    ingest = events.filter((pl.col("event_type") == "ingest") & (pl.col("outcome") == "allowed"))
    for at, user, query, new in ingest.select(
        "occurred_at", "user_id", "query_json", "row_count"
    ).iter_rows():
        try:
            doc = json.loads(query or "")
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("action") == "import_vendor_audit":
            rows.append({"occurred_at": at, "user_id": user, "format": doc.get("format"),
                         "rows_read": doc.get("rows_read"),
                         "rows_rejected": doc.get("rows_rejected"), "rows_new": new})  # fmt: skip
    return pl.DataFrame(
        rows,
        schema={"occurred_at": pl.Datetime("us", "UTC"), "user_id": pl.String,
                "format": pl.String, "rows_read": pl.Int64, "rows_rejected": pl.Int64,
                "rows_new": pl.Int64},
        orient="row",
    )  # fmt: skip


def _vendor_devices(events: pl.DataFrame) -> list[int | None]:
    """Devices searched per row, from the raw cells the import kept in ``query_json``."""
    from alpr_workbench.governance.vendor_profiles import header_key, load_vendor_profiles

    names = {header_key(h) for h in load_vendor_profiles().headers.get("devices", ())}
    counts: list[int | None] = []
    for query in events["query_json"].to_list():
        try:
            doc = json.loads(query or "")
        except ValueError:
            doc = {}
        cell = next(
            (str(v) for k, v in (doc.items() if isinstance(doc, dict) else ())
             if header_key(str(k)) in names and str(v or "").strip()),
            None,
        )  # fmt: skip
        try:
            counts.append(None if cell is None else int(float(cell.replace(",", ""))))
        except ValueError:
            counts.append(None)
    return counts


def check_imported_vendor_searches(inputs: AuditInputs, *, policy: Policy) -> VendorSection:
    """Audit the imported vendor search rows of the year with the vendor audit's checks.

    The rows are another system's records: the department's checks (A1..P2) leave them
    out, and this section judges them with the rules of ``alpr-workbench audit vendor``
    (:mod:`alpr_workbench.reports.vendor_audit`): the policy's vague reasons, prohibited
    purposes, network and camera limits, retention in whole days, behaviour thresholds and
    outside searchers, with the department as the home organization. A check needing a
    field no imported row carries is not run, and says so.

    Parameters
    ----------
    inputs
        The audit's inputs (``audit_events`` holds the imported rows).
    policy
        The policy audited against.

    Returns
    -------
    VendorSection
        Counts, the imports recorded and one :class:`~alpr_workbench.reports.vendor_audit.\
VendorCheck` per vendor check.
    """
    from alpr_workbench.reports.audit_checks import flag_search_patterns
    from alpr_workbench.reports.vendor_audit import VENDOR_CHECKS, VendorCheck

    start, end = audit_period(inputs.year, inputs.timezone)
    _, rows = split_vendor_events(inputs.audit_events)
    rows = rows.filter((pl.col("occurred_at") >= start) & (pl.col("occurred_at") < end))
    searches = rows.filter(pl.col("outcome") != "refused")
    flags = flag_search_patterns(
        rows, policy=policy, retention_days=inputs.retention_days, cases=None,
        timezone=inputs.timezone or policy.timezone, lookback_whole_days=True,
    )  # fmt: skip
    devices = searches.with_columns(
        pl.Series("_devices", _vendor_devices(searches), dtype=pl.Int64)
    )
    present = {f for f, col in _VENDOR_FIELD_COLUMNS.items() if searches[col].null_count()
               < searches.height}  # fmt: skip
    if devices["_devices"].null_count() < devices.height:
        present.add("devices")
    checks: list[VendorCheck] = []
    for check_id, rule, title, needs, patterns in VENDOR_CHECKS:
        lacking = [group for group in needs if not present & set(group)]
        if searches.is_empty():
            not_run: str | None = "no imported vendor search this year"
        elif lacking:
            not_run = "no imported row carries " + " and ".join(
                " or ".join(group) for group in lacking
            )
        else:
            not_run = None
        if not_run is not None:
            empty = pl.DataFrame(schema={"event_id": pl.String, "pattern": pl.String})
            checks.append(VendorCheck(check_id, rule, title, None, not_run, {}, empty))
            continue
        if check_id == "devices":
            limit = policy.max_cameras_per_search
            sub = devices.filter(pl.col("_devices") > limit).with_columns(
                pl.lit("oversized_camera_scope").alias("pattern"),
                pl.format("{} cameras (policy allows {})", pl.col("_devices"),
                          pl.lit(limit)).alias("detail"),
            )  # fmt: skip
        else:
            sub = flags.filter(pl.col("pattern").is_in(list(patterns)))
        offending = sub.select([c for c in _VENDOR_COLUMNS if c in sub.columns])
        counts = {str(p): int(n) for p, n in
                  offending.group_by("pattern").len().sort("pattern").iter_rows()}  # fmt: skip
        checks.append(
            VendorCheck(check_id, rule, title, offending.is_empty(), None, counts, offending)
        )
    orgs = (
        rows.group_by(pl.col("organization").fill_null("(none)"))
        .len()
        .sort(["len", "organization"], descending=[True, False])
    )
    times = rows["occurred_at"]
    return VendorSection(
        searches=rows.height,
        refused=rows.height - searches.height,
        organizations=tuple((str(o), int(n)) for o, n in orgs.iter_rows()),
        first_at=times.min() if rows.height else None,  # type: ignore[arg-type]
        last_at=times.max() if rows.height else None,  # type: ignore[arg-type]
        imports=_vendor_imports(inputs.audit_events),
        checks=tuple(checks),
    )


# -- charts ----------------------------------------------------------------------------------
def svg_bars(
    items: Sequence[tuple[str, float]], *, label: str, width: int = 640, left: int = 230
) -> Markup:
    """A horizontal bar chart as inline SVG: labels escaped, no external resource.

    Parameters
    ----------
    items
        ``(label, value)`` pairs, drawn top to bottom; labels over 44 characters are cut.
    label
        The chart's accessible name.
    width, left
        The chart's width, and the room for the labels on the left (pixels).

    Returns
    -------
    markupsafe.Markup
        The ``<svg>`` element (or a "No data." line when ``items`` is empty).
    """
    if not items:
        return Markup("<p class='muted'>No data.</p>")
    bar, gap, right = 18, 6, 60
    height = len(items) * (bar + gap) + gap
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f"<svg role='img' aria-label='{escape(label)}' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>"
    ]
    for i, (name, value) in enumerate(items):
        y = gap + i * (bar + gap)
        w = 0 if not math.isfinite(value) else max(1.0, (width - left - right) * value / top)
        shown = name if len(name) <= 44 else name[:43] + "…"
        parts.append(
            f"<text x='{left - 6}' y='{y + bar - 5}' text-anchor='end' font-size='12'>"
            f"{escape(shown)}</text>"
            f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{bar}' fill='#3b6ea5'/>"
            f"<text x='{left + w + 4:.1f}' y='{y + bar - 5}' font-size='12'>"
            f"{escape(f'{value:,.0f}')}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f2f2f2; }
table.evidence { width: 100%; font-size: 12px; }
th { overflow-wrap: normal; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; }
.na { color: #777; } .muted { color: #777; }
td.pass, td.fail, td.na { white-space: nowrap; }
pre { background: #f6f6f6; padding: .6em; font-size: 12px; white-space: pre-wrap;
      overflow-wrap: anywhere; }
.vendor { border-left: 4px solid #b07d00; padding-left: 1em; }
.signoff td { height: 2.2em; } .signoff td.line { width: 60%; border-bottom: 1px solid #222; }
svg { max-width: 100%; height: auto; }
/* Printed (PDF): landscape pages; cells wrap instead of running off the page edge. */
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { max-width: none; margin: 0; font-size: 12px; }
  table { width: 100%; font-size: 10px; }
  tr, pre, .signoff-block { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
}
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{{ agency }} &mdash; audit of calendar year {{ year }} ({{ timezone }}), taken {{ as_of }}.
Retention: {{ retention_days }} days. {{ n_failed }} of {{ n_applicable }} applicable checks
of the department's own records failed; {{ n_na }} did not apply.
{% if vendor.searches %}Imported vendor search logs: {{ vendor_failed }} of
{{ vendor_applicable }} vendor-log check(s) failed (<a href="#vendor">their own
section</a>).{% endif %}</p>
{% if plates_shown_to %}
<p class="fail">Plates are shown in full in this report, at the request of
{{ plates_shown_to }} (an audited export). Keep it as you would the reads themselves.</p>
{% else %}
<p>Plates are masked (e.g. 7AB&bull;&bull;&bull;3: enough to tell rows apart, never the
whole plate). An auditor may ask for them in full with <code>--show-plates</code>, which is
audited.</p>
{% endif %}

<h2>Summary</h2>
<p>The checks below judge the department's own audit trail and tables only; imported vendor
logs are another system's records and are audited in <a href="#vendor">their own
section</a>.</p>
<table>
<tr><th>Check</th><th>Requirement</th><th>Result</th><th>Counts</th><th>Offending</th></tr>
{% for r in results %}
<tr>
<td><a href="#check-{{ r.check_id }}">{{ r.check_id }}</a></td>
<td>{{ r.title }}</td>
<td class="{{ r.css }}">{{ r.verdict }}</td>
<td>{% for k, v in r.counts %}{{ k }}: {{ v }}{% if not loop.last %}; {% endif %}{% endfor %}</td>
<td>{{ r.n_offending }}</td>
</tr>
{% endfor %}
</table>

<h2>Charts</h2>
<h3>Flags per pattern</h3>
{{ pattern_chart }}
<h3>Searches per month</h3>
{{ month_chart }}

<h2>Audit log integrity</h2>
<p>Hash chain: <span class="{{ chain_css }}">{{ chain_text }}</span></p>
{% if digest %}
<p>Signed digest of {{ year }}: records {{ digest.records }}
(seq {{ digest.first_seq }} to {{ digest.last_seq }}), chain hash
<code>{{ digest.chain_hash }}</code>, signed {{ digest.signed_at }}.</p>
<p>To verify: save the JSON below as <code>digest-{{ year }}.json</code> and run
<code>alpr-workbench audit verify-digest digest-{{ year }}.json --public-key
public_key.pem</code>, with the department's published public key (below). It checks the
Ed25519 signature with that public key alone and, given the encrypted records file, recomputes the
chain to show the log was not rewritten.</p>
<h3>Public key</h3>
<pre>{{ digest.public_key_pem }}</pre>
<h3>Digest (JSON)</h3>
<pre>{{ digest_json }}</pre>
{% else %}
<p class="fail">No signed digest accompanies this report.</p>
{% endif %}

<h2>Checks in detail</h2>
{% for r in results %}
<h3 id="check-{{ r.check_id }}">{{ r.check_id }} &mdash; {{ r.title }}:
<span class="{{ r.css }}">{{ r.verdict }}</span></h3>
<p>{{ r.explanation }}</p>
{% if r.patterns %}<p>By pattern:
{% for k, v in r.patterns %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>
{% endif %}
{% if r.rows %}
<p>{{ r.shown }} of {{ r.n_offending }} offending row(s):</p>
<table class="evidence">
<thead><tr>{% for c in r.columns %}<th>{{ c|replace("_", "_\u200b") }}</th>{% endfor %}</tr></thead>
{% for row in r.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}
{% endfor %}

<section class="vendor">
<h2 id="vendor">Vendor search logs imported</h2>
<p><strong>Another system's records.</strong> These rows were exported by a vendor's system
and imported into the audit log (<code>audit import-vendor</code>); they are not the
department's own audit trail, and none of the checks above counts them. They are judged here
with the rules of <code>alpr-workbench audit vendor</code>: the policy's vague reasons,
prohibited purposes, network and camera limits, retention in whole days, behaviour thresholds
and outside searchers. Rules of the department's own records (case-number format, open cases,
the list of reason codes) are not applied to them.</p>
{% if vendor.searches %}
<p>{{ vendor_rows }} imported row(s) in {{ year }} ({{ vendor_refused }} blocked by the
vendor's moderation), {{ vendor_period }}. Searching organizations:
{% for org, n in vendor_orgs %}{{ org }} ({{ n }}){% if not loop.last %}, {% endif %}{% endfor %}.
</p>
{% if vendor_imports %}<p>Imports recorded in the department's trail this year:</p>
<table>
<tr><th>imported at (UTC)</th><th>by</th><th>format</th><th>rows read</th>
<th>rows rejected</th><th>new rows</th></tr>
{% for row in vendor_imports %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}
</table>{% endif %}
<table>
<tr><th>Vendor check</th><th>Rule</th><th>Requirement</th><th>Result</th><th>Offending</th></tr>
{% for c in vendor_checks %}
<tr><td><a href="#vendor-{{ c.check_id }}">vendor-{{ c.check_id }}</a></td><td>{{ c.rule }}</td>
<td>{{ c.title }}</td><td class="{{ c.css }}">{{ c.verdict }}</td>
<td>{{ c.not_run or c.n_offending }}</td></tr>
{% endfor %}
</table>
{% for c in vendor_checks %}{% if c.rows %}
<h3 id="vendor-{{ c.check_id }}">vendor-{{ c.check_id }} &mdash; {{ c.title }}
({{ c.rule }}): <span class="{{ c.css }}">{{ c.verdict }}</span></h3>
<p>{{ c.n_offending }} offending search(es): {% for k, v in c.counts %}{{ k }} {{ v }}
{%- if not loop.last %}, {% endif %}{% endfor %}. {{ c.shown }} of {{ c.n_rows }} row(s)
shown:</p>
<table class="evidence">
<thead><tr>{% for col in c.columns %}<th>{{ col|replace("_", "_\u200b") }}</th>
{%- endfor %}</tr></thead>
{% for row in c.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}{% endfor %}
{% else %}
<p>No vendor search log was imported for {{ year }}.</p>
{% endif %}
</section>

<h2 id="methodology">Methodology, scope and sign-off</h2>
<h3>Audit period</h3>
<p>Calendar year {{ year }} in {{ timezone }}{% if timezone_is_policy %} (the time zone of
the department's policy){% endif %}: from {{ period_start }} to {{ period_end }} (UTC,
end excluded). The audit was taken {{ as_of }}. Every table counted is restricted to that
period: audit records (searches and every other path), hits, outcomes, legal holds,
hotlists and entries that existed in it, sharing grants in force during it, and stored days
of reads up to its end. Users, cases, grant approvals and review dates are judged as they
stand on the audit date.</p>
<h3>Data sources</h3>
<table>
<tr><th>Source</th><th>What was read</th><th>Records in the period</th></tr>
{% for name, what, n in sources %}<tr><td>{{ name }}</td><td>{{ what }}</td><td>{{ n }}</td></tr>
{% endfor %}
</table>
<h3>Checks, rules and thresholds</h3>
<p>Each rule is taken from the department's policy file and the run's settings (the same
declarations the gate enforces), as applied in this run.</p>
<table>
<tr><th>Check</th><th>Requirement</th><th>Rule and threshold</th></tr>
{% for check_id, title, rule in rules %}
<tr><td>{{ check_id }}</td><td>{{ title }}</td><td>{{ rule }}</td></tr>
{% endfor %}
</table>
<h3>Sampling</h3>
<p>None: every record of the period was examined. No sample was drawn, so no figure in this
report is an estimate.</p>
<h3>Limitations</h3>
<ul>
{% for item in limitations %}<li>{{ item }}</li>
{% endfor %}
</ul>
<div class="signoff-block">
<h3>Sign-off</h3>
<p>Report generated {{ generated }} by ALPR Workbench for the signed-in user named below.
By signing, the auditor states that the results were reviewed and the offending records
followed up as noted.</p>
<table class="signoff">
<tr><th>Auditor</th><td>{{ auditor_name }}</td></tr>
<tr><th>User id</th><td>{{ auditor_id }}</td></tr>
<tr><th>Job title and role</th><td>{{ auditor_role }}</td></tr>
<tr><th>Date</th><td class="line"></td></tr>
<tr><th>Signature</th><td class="line"></td></tr>
<tr><th>Follow-up noted</th><td class="line"></td></tr>
</table>
</div>
<p class="muted">Generated by ALPR Workbench. Checks as listed in the department's audit
policy (Civil Code 1798.90.51-.55, Gov. Code 7284.6).</p>
</body>
</html>
"""


_LIMITATIONS = (
    "Users, cases, hotlists and grants are read as they stand on the audit date; a value "
    "changed since the period shows only through its audit record.",
    "A4 matches legal holds, sharing grants and hotlists to their audit records; the other "
    "paths (searches, lookups, exports, purges, entry changes) are counted, not matched "
    "against an independent record.",
    "Prohibited purposes are found with the policy's term lists: a purpose worded with no "
    "listed term passes (docs/policy.md, prohibited-purpose screening).",
    "Imported vendor logs are only as complete as the vendor's export; their times are read "
    "as UTC unless they name a zone, and a check needing a column the export lacks is not "
    "run.",
    "Reads themselves are not opened: retention (R1) is judged from the stored days and hold "
    "partitions (metadata).",
    "The signed digest covers the log's records of the UTC calendar year, imported vendor "
    "rows included; its bounds differ from the audit period by the time zone's offset.",
)


def _sources(inputs: AuditInputs, vendor: VendorSection) -> list[tuple[str, str, str]]:
    own, _ = split_vendor_events(inputs.audit_events)
    chain = {True: "hash chain verifies", False: "hash chain does NOT verify",
             None: "hash chain not verified"}[inputs.chain_ok]  # fmt: skip
    start, end = audit_period(inputs.year, inputs.timezone)
    hits = inputs.hits.filter((pl.col("captured_at") >= start) & (pl.col("captured_at") < end))
    days = [d for d in inputs.days_stored if start.date() <= d < end.date()]
    return [
        ("The department's own audit trail",
         f"the tamper-evident audit log, decrypted after verification ({chain})",
         f"{own.height:,} records"),
        ("The department's store",
         "users, cases, sharing grants, hotlists and entries, legal holds, hits, outcomes",
         f"{inputs.users.height:,} users, {hits.height:,} hits"),
        ("Stored reads (metadata only)", "the list of day partitions and hold partitions",
         f"{len(days):,} day(s), {len(inputs.hold_partitions):,} hold partition(s)"),
        ("Imported vendor search logs (another system's records)",
         "vendor_search rows imported into the audit log; audited in their own section",
         f"{vendor.searches:,} rows from {vendor.imports.height:,} import(s) this year"),
    ]  # fmt: skip


def _verdict(passed: bool | None) -> tuple[str, str]:
    if passed is None:
        return "not applicable", "na"
    return ("pass", "pass") if passed else ("FAIL", "fail")


def render_audit_report(
    results: list[CheckResult],
    *,
    inputs: AuditInputs,
    digest: SignedDigest | None,
    title: str = "Annual ALPR audit",
    max_rows: int = _MAX_ROWS,
    agency: str | None = None,
    plates_shown_to: str | None = None,
    policy: Policy | None = None,
    vendor: VendorSection | None = None,
    auditor: User | str | None = None,
    generated_at: dt.datetime | None = None,
) -> str:
    """Render the audit as one self-contained HTML page.

    Parameters
    ----------
    results
        From :func:`~alpr_workbench.reports.audit_checks.run_checks`.
    inputs
        The inputs the checks ran on (year, events for the charts, chain result).
    digest
        The year's signed digest of the audit log, shown with its public key and how to
        verify it; ``None`` when none could be signed.
    title
        Page title.
    max_rows
        Offending rows shown per check (the counts give the full number).
    agency
        Agency named under the title (default: the department in the policy).
    plates_shown_to
        The user for whom plates are shown in full (the caller has checked and audited the
        request); default None: every plate is masked (:func:`mask_plate`).
    policy
        The policy audited against, for the methodology's rules (default: the department
        policy).
    vendor
        The imported vendor logs' section (default: computed from ``inputs`` with
        :func:`check_imported_vendor_searches`).
    auditor
        The signed-in user the report is made for (the sign-off block), or their user id;
        ``None`` leaves the name blank for a person to write in.
    generated_at
        When the report was made (default: now).

    Returns
    -------
    str
        HTML with inline CSS and SVG charts, no script and no external resource; every
        value from the data is escaped.
    """
    from jinja2 import Environment  # lazy: only the report needs it

    policy = policy if policy is not None else load_policy()
    if vendor is None:
        vendor = check_imported_vendor_searches(inputs, policy=policy)
    env = Environment(autoescape=True)
    mask: Callable[[str], str] = (
        plate_masker([r.offending for r in results]
                             + [c.offending for c in vendor.checks])
        if plates_shown_to is None else (lambda text: text)
    )  # fmt: skip
    rows = []
    patterns: Counter[str] = Counter()
    for r in results:
        verdict, css = _verdict(r.passed)
        off = r.offending
        by_pattern: list[tuple[str, int]] = []
        if off.height:
            by_pattern = [
                (str(p), int(n))
                for p, n in off.group_by("pattern").len().sort("pattern").iter_rows()
            ]
            patterns.update(dict(by_pattern))
            by_pattern = [(mask(p), n) for p, n in by_pattern]
        shown = off.head(max_rows)
        plate_cols = [plates_shown_to is None and _is_plate_column(c) for c in shown.columns]
        rows.append(
            {
                "check_id": r.check_id,
                "title": r.title,
                "verdict": verdict,
                "css": css,
                "counts": [(k, mask(_fmt(v))) for k, v in r.counts.items()],
                "n_offending": off.height,
                "explanation": mask(r.explanation),
                "patterns": by_pattern,
                "columns": shown.columns,
                "rows": [
                    [
                        mask_plate(_fmt(v)) if hide and v is not None else mask(_fmt(v))
                        for hide, v in zip(plate_cols, row, strict=True)
                    ]
                    for row in shown.iter_rows()
                ],
                "shown": shown.height,
            }
        )
    own, _ = split_vendor_events(inputs.audit_events)
    searches = own.filter(pl.col("event_type").is_in(list(SEARCH_EVENT_TYPES)))
    months = (
        searches.group_by(
            pl.col("occurred_at")
            .dt.convert_time_zone(inputs.timezone or "UTC")
            .dt.strftime("%Y-%m")
            .alias("m")
        )
        .len()
        .sort("m")
        .iter_rows()
        if searches.height
        else []
    )
    if inputs.chain_ok is None:
        chain_text, chain_css = "not verified", "na"
    elif inputs.chain_ok:
        chain_text, chain_css = "verifies (every record chains and authenticates)", "pass"
    else:
        chain_text, chain_css = f"DOES NOT VERIFY: {inputs.chain_problem}", "fail"
    applicable = [r for r in results if r.passed is not None]
    hide_plates = plates_shown_to is None
    vendor_checks = []
    for c in vendor.checks:
        verdict, css = _verdict(c.passed)
        shown = c.offending.head(max_rows)
        hide = [hide_plates and _is_plate_column(col) for col in shown.columns]
        vendor_checks.append({
            "check_id": c.check_id, "rule": c.rule, "title": c.title, "css": css,
            "verdict": "not run" if c.passed is None else verdict, "not_run": c.not_run,
            "n_offending": c.n_offending, "n_rows": c.offending.height, "shown": shown.height,
            "counts": [(mask(k), v) for k, v in c.counts.items()], "columns": shown.columns,
            "rows": [[mask_plate(_fmt(v)) if h and v is not None else mask(_fmt(v))
                      for h, v in zip(hide, row, strict=True)] for row in shown.iter_rows()],
        })  # fmt: skip
    start, end = audit_period(inputs.year, inputs.timezone)
    tz = inputs.timezone or "UTC"
    as_of = inputs.as_of
    rules = describe_check_rules(policy, retention_days=inputs.retention_days)
    user = auditor if isinstance(auditor, User) else None
    generated = generated_at or dt.datetime.now(dt.UTC)
    html = env.from_string(_TEMPLATE).render(
        title=title,
        agency=agency or policy.agency_name,
        year=inputs.year,
        timezone=tz,
        timezone_is_policy=tz == policy.timezone,
        period_start=start.strftime("%Y-%m-%d %H:%M"),
        period_end=end.strftime("%Y-%m-%d %H:%M"),
        vendor=vendor,
        vendor_failed=len(vendor.failed),
        vendor_applicable=sum(1 for c in vendor.checks if c.passed is not None),
        vendor_rows=f"{vendor.searches:,}",
        vendor_refused=f"{vendor.refused:,}",
        vendor_period=(f"{vendor.first_at:%Y-%m-%d %H:%M} to {vendor.last_at:%Y-%m-%d %H:%M} UTC"
                       if vendor.first_at and vendor.last_at else "no rows"),
        vendor_orgs=vendor.organizations[:20],
        vendor_imports=[[_fmt(v) for v in row] for row in vendor.imports.iter_rows()],
        vendor_checks=vendor_checks,
        sources=_sources(inputs, vendor),
        rules=[(k, r, rules[k]) for k, r in ((x.check_id, x.title) for x in results)
               if k in rules],
        limitations=_LIMITATIONS,
        generated=generated.astimezone(ZoneInfo(tz)).strftime(f"%Y-%m-%d %H:%M ({tz})"),
        auditor_name=user.full_name if user else "",
        auditor_id=user.user_id if user else (auditor or ""),
        auditor_role=f"{user.job_title}, role {user.role}" if user else "",
        as_of=as_of.strftime("%Y-%m-%d %H:%M UTC"),
        retention_days=inputs.retention_days,
        n_failed=sum(1 for r in applicable if not r.passed),
        n_applicable=len(applicable),
        n_na=len(results) - len(applicable),
        results=rows,
        pattern_chart=svg_bars(
            sorted(patterns.items(), key=lambda kv: (-kv[1], kv[0])), label="Flags per pattern"
        ),
        month_chart=svg_bars([(str(m), float(n)) for m, n in months], label="Searches per month"),
        chain_text=chain_text,
        chain_css=chain_css,
        digest=digest,
        digest_json=digest.to_json() if digest is not None else "",
        plates_shown_to=plates_shown_to,
    )
    return html


def _authorise_plates(
    store: Store,
    audit_log: AuditLog,
    *,
    user_id: str | None,
    year: int,
    out: Path,
    policy: Policy,
) -> str:
    """Check and audit a request to show whole plates; return the user, or raise."""
    now = dt.datetime.now(dt.UTC)
    user = get_user(store, user_id) if user_id else None
    problem = user_problem(user, policy=policy, now=now) if user_id else "no acting user given"
    if problem is None and user is not None and not policy.may(user.role, "audit"):
        problem = f"role {user.role!r} may not audit, so may not see whole plates in the report"
    event = {
        "event_type": "export",
        "occurred_at": now,
        "user_id": user_id or None,
        "organization": user.organization if user else None,
        "reason_text": f"annual audit report {year} with whole plates",
        "query_json": json.dumps(
            {"export": "audit_report", "year": year, "show_plates": True, "out": str(out)}
        ),
    }
    if problem is not None:
        audit_log.append({**event, "outcome": "refused", "refusal_reason": problem})
        raise ReportRefused(f"whole plates need a user allowed to audit: {problem}")
    audit_log.append({**event, "outcome": "allowed"})
    assert user_id is not None
    return user_id


@dataclass(frozen=True)
class AnnualAudit:
    """What :func:`write_annual_audit` produced.

    Attributes
    ----------
    results
        The department's checks (A1..P2), from
        :func:`~alpr_workbench.reports.audit_checks.run_checks`.
    vendor
        The imported vendor logs' own section.
    inputs
        The inputs the checks ran on.
    out
        The HTML report written.
    """

    results: list[CheckResult]
    vendor: VendorSection
    inputs: AuditInputs
    out: Path

    @property
    def failed(self) -> list[str]:
        """Ids of every check that failed: the department's, then ``vendor-<id>``."""
        return [r.check_id for r in self.results if r.passed is False] + [
            f"vendor-{c}" for c in self.vendor.failed
        ]


def write_audit_report(
    store: Store,
    audit_log: AuditLog,
    *,
    year: int,
    out: Path | None = None,
    policy: Policy | None = None,
    as_of: dt.datetime | None = None,
    show_plates: bool = False,
    user_id: str | None = None,
) -> list[CheckResult]:
    """Run the annual audit of ``year`` and write its HTML report atomically (mode 0600).

    Parameters
    ----------
    store, audit_log
        The store and its audit log.
    year
        Calendar year audited (UTC).
    out
        The HTML file written (replaced atomically; mode 0600, as it names users). Default:
        :func:`default_report_path`, in a folder of mode 0700 inside the data directory.
    policy
        The policy audited against (default: the settings' ``policy_file`` or the
        department policy).
    as_of
        When the audit is taken (default: the end of ``year`` or now, whichever is earlier).
    show_plates
        Show plates in full instead of masked (:func:`mask_plate`). Only for ``user_id``, who
        must be in good standing and allowed to audit; the request is audited as an export,
        and so is its refusal.
    user_id
        The acting user (needed with ``show_plates``).

    Returns
    -------
    list of CheckResult
        The department's results rendered (:func:`write_annual_audit` also gives the
        vendor section).

    Raises
    ------
    ReportRefused
        When whole plates are asked for by a user who may not see them (nothing is written).
    """
    return write_annual_audit(
        store, audit_log, year=year, out=out, policy=policy, as_of=as_of,
        show_plates=show_plates, user_id=user_id,
    ).results  # fmt: skip


def write_annual_audit(
    store: Store,
    audit_log: AuditLog,
    *,
    year: int,
    out: Path | None = None,
    policy: Policy | None = None,
    as_of: dt.datetime | None = None,
    show_plates: bool = False,
    user_id: str | None = None,
) -> AnnualAudit:
    """Run the annual audit of ``year`` and write its report, as :func:`write_audit_report`.

    Parameters
    ----------
    store, audit_log, year, out, policy, as_of, show_plates
        As for :func:`write_audit_report`.
    user_id
        The acting user: named in the sign-off block, and needed with ``show_plates``.

    Returns
    -------
    AnnualAudit
        The department's checks, the imported vendor logs' section, the inputs and the
        file written.

    Raises
    ------
    ReportRefused
        When whole plates are asked for by a user who may not see them (nothing is written).
    """
    settings = load_settings(store.home)
    if policy is None:
        policy = load_policy(settings.policy_file) if settings.policy_file else load_policy()
    if out is None:
        out = default_report_path(store.home, year)
        _private_folder(out.parent)
    out = Path(out)
    shown_to = None
    if show_plates:
        shown_to = _authorise_plates(
            store, audit_log, user_id=user_id, year=year, out=out, policy=policy
        )
    inputs = collect_audit_inputs(
        store, audit_log, year=year, settings=settings, as_of=as_of, policy=policy
    )
    results = run_checks(inputs, policy=policy)
    vendor = check_imported_vendor_searches(inputs, policy=policy)
    digest = audit_log.digest(year) if inputs.chain_ok else None
    auditor = (get_user(store, user_id) or user_id) if user_id else None
    html = render_audit_report(
        results,
        inputs=inputs,
        digest=digest,
        title=f"Annual ALPR audit {year}",
        agency=policy.agency_name,
        plates_shown_to=shown_to,
        policy=policy,
        vendor=vendor,
        auditor=auditor,
    )
    atomic_write_bytes(out, html.encode("utf-8"), mode=0o600)
    return AnnualAudit(results=results, vendor=vendor, inputs=inputs, out=out)


def audit_health(store: Store, audit_log: AuditLog, *, year: int | None = None) -> pl.DataFrame:
    """One row per audit check for the dashboard: check_id, title, passed, flagged.

    Runs the full annual checks for ``year`` (default: the current UTC year) up to now.
    """
    year = year or dt.datetime.now(dt.UTC).year
    inputs = collect_audit_inputs(store, audit_log, year=year)
    results = run_checks(inputs, policy=load_policy())
    return pl.DataFrame(
        {
            "check_id": [r.check_id for r in results],
            "title": [r.title for r in results],
            "passed": [r.passed for r in results],
            "flagged": [r.offending.height for r in results],
        },
        schema={
            "check_id": pl.String,
            "title": pl.String,
            "passed": pl.Boolean,
            "flagged": pl.Int64,
        },
    )
