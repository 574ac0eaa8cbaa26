"""The annual audit report: collect the inputs from the store and the log, render HTML.

The report is one self-contained HTML file (inline CSS and SVG, no script, no external
resource), so it can be archived, mailed and opened offline. Every value from the data is
escaped by Jinja2's autoescaping.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from markupsafe import Markup, escape

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.config import Settings, load_settings
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.admin import configured_retention_days
from alpr_workbench.governance.audit_log import AuditLog, AuditLogError, SignedDigest
from alpr_workbench.governance.registry import get_user, user_problem
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.reports.audit_checks import (
    SEARCH_EVENT_TYPES,
    AuditInputs,
    CheckResult,
    run_checks,
)
from alpr_workbench.schema import empty_frame
from alpr_workbench.store import Store

__all__ = [
    "REPORTS_DIR",
    "ReportRefused",
    "collect_audit_inputs",
    "default_report_path",
    "mask_plate",
    "render_audit_report",
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
    plates: set[str] = set()
    for r in results:
        for name in r.offending.columns:
            if _is_plate_column(name) and r.offending.schema[name] == pl.String:
                for value in r.offending[name].drop_nulls().unique().to_list():
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


def _default_as_of(year: int) -> dt.datetime:
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    return min(dt.datetime.now(dt.UTC), end)


def collect_audit_inputs(
    store: Store,
    audit_log: AuditLog,
    *,
    year: int,
    settings: Settings | None = None,
    as_of: dt.datetime | None = None,
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
        Calendar year audited (UTC).
    settings
        Workbench settings (unused: retention is the store's signed department setting,
        :func:`~alpr_workbench.governance.configured_retention_days`).
    as_of
        When the audit is taken (UTC): default the end of ``year`` or now, whichever is
        earlier.

    Returns
    -------
    AuditInputs
        The year's events, every sharing event up to ``as_of``, the tables, the chain's
        verification, the stored days and hold partitions.
    """
    as_of = as_of if as_of is not None else _default_as_of(year)
    verification = audit_log.verify()
    events = empty_frame("audit_events")
    sharing = events
    started: dt.datetime | None = None
    if verification.ok:
        try:
            every = audit_log.events()
        except AuditLogError:  # appended to or damaged between verify() and events()
            every = events
        if every.height:
            started = every["occurred_at"].min()  # type: ignore[assignment]
        events = every.filter(pl.col("occurred_at").dt.year() == year)
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
    )


# -- charts ----------------------------------------------------------------------------------
def _svg_bars(items: Sequence[tuple[str, float]], *, label: str, width: int = 640) -> Markup:
    """A horizontal bar chart as inline SVG (labels escaped; no external resource)."""
    if not items:
        return Markup("<p class='muted'>No data.</p>")
    bar, gap, left, right = 18, 6, 230, 60
    height = len(items) * (bar + gap) + gap
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f"<svg role='img' aria-label='{escape(label)}' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>"
    ]
    for i, (name, value) in enumerate(items):
        y = gap + i * (bar + gap)
        w = 0 if not math.isfinite(value) else max(1.0, (width - left - right) * value / top)
        parts.append(
            f"<text x='{left - 6}' y='{y + bar - 5}' text-anchor='end' font-size='12'>"
            f"{escape(name)}</text>"
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
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; }
.na { color: #777; } .muted { color: #777; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 12px; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{{ agency }} &mdash; audit of calendar year {{ year }} (UTC), taken {{ as_of }}.
Retention: {{ retention_days }} days. {{ n_failed }} of {{ n_applicable }} applicable checks
failed; {{ n_na }} did not apply.</p>
{% if plates_shown_to %}
<p class="fail">Plates are shown in full in this report, at the request of
{{ plates_shown_to }} (an audited export). Keep it as you would the reads themselves.</p>
{% else %}
<p>Plates are masked (e.g. 7AB&bull;&bull;&bull;3: enough to tell rows apart, never the
whole plate). An auditor may ask for them in full with <code>--show-plates</code>, which is
audited.</p>
{% endif %}

<h2>Summary</h2>
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
<table>
<tr>{% for c in r.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in r.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}
{% endfor %}
<p class="muted">Generated by ALPR Workbench. Checks as listed in the department's audit
policy (Civil Code 1798.90.51-.55, Gov. Code 7284.6).</p>
</body>
</html>
"""


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

    Returns
    -------
    str
        HTML with inline CSS and SVG charts, no script and no external resource; every
        value from the data is escaped.
    """
    from jinja2 import Environment  # lazy: only the report needs it

    env = Environment(autoescape=True)
    mask = _plate_masker(results) if plates_shown_to is None else (lambda text: text)
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
    searches = inputs.audit_events.filter(pl.col("event_type").is_in(list(SEARCH_EVENT_TYPES)))
    months = (
        searches.group_by(pl.col("occurred_at").dt.strftime("%Y-%m").alias("m"))
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
    html = env.from_string(_TEMPLATE).render(
        title=title,
        agency=agency or load_policy().agency_name,
        year=inputs.year,
        as_of=inputs.as_of.strftime("%Y-%m-%d %H:%M UTC"),
        retention_days=inputs.retention_days,
        n_failed=sum(1 for r in applicable if not r.passed),
        n_applicable=len(applicable),
        n_na=len(results) - len(applicable),
        results=rows,
        pattern_chart=_svg_bars(
            sorted(patterns.items(), key=lambda kv: (-kv[1], kv[0])), label="Flags per pattern"
        ),
        month_chart=_svg_bars([(str(m), float(n)) for m, n in months], label="Searches per month"),
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
        The results rendered.

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
    inputs = collect_audit_inputs(store, audit_log, year=year, settings=settings, as_of=as_of)
    results = run_checks(inputs, policy=policy)
    digest = audit_log.digest(year) if inputs.chain_ok else None
    html = render_audit_report(
        results,
        inputs=inputs,
        digest=digest,
        title=f"Annual ALPR audit {year}",
        agency=policy.agency_name,
        plates_shown_to=shown_to,
    )
    atomic_write_bytes(out, html.encode("utf-8"), mode=0o600)
    return results


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
