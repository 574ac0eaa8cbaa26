"""The public transparency page: what the department publishes about its ALPR program.

Everything on the page comes from governed data, never from a hand-kept list: the policy file
(purposes, job titles, prohibited uses, sharing rule), the settings (retention), the cameras
and sharing-grant tables, the gate's read aggregate (no plate ever), the hits table, the
audit log (searches and refusals) and the year's signed audit digest. Sharing grants and
hotlists that break the law or the policy are shown, flagged, not hidden.

Small counts are suppressed: any count from 1 to ``SUPPRESSION_THRESHOLD - 1`` is published
as "fewer than 5", so a figure cannot single out a person (zero stays 0).

Beside the department's figures the page sets the published transparency-portal figures of
other California agencies (the News & Observer's April 2024 scrape of Flock portals). Those
figures ship with the package (``alpr_workbench/reports/portal_figures/``, derived from the
data set by ``scripts/make_portal_figures.py``); the data set's own folder or another figures
file may be given instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.agencies import Agency, find_agency, load_agencies
from alpr_workbench.analytics.efficacy import SEARCH_EVENT_TYPES
from alpr_workbench.config import Settings, load_settings
from alpr_workbench.governance import (
    Gate,
    SignedDigest,
    configured_retention_days,
    screen_text,
)
from alpr_workbench.governance.sharing import active_grants
from alpr_workbench.hotlist import is_never_alert
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.store import Store

__all__ = [
    "SUPPRESSION_THRESHOLD",
    "ComparisonRow",
    "HotlistSummary",
    "OrganizationAccess",
    "PortalComparison",
    "TransparencyData",
    "collect_transparency",
    "compare_with_portals",
    "PORTAL_FIGURE_COLUMNS",
    "default_portal_dir",
    "format_count",
    "read_portal_metrics",
    "render_transparency",
    "write_transparency",
]

#: Counts from 1 to this minus one are published as "fewer than 5".
SUPPRESSION_THRESHOLD = 5
#: Audit event types counted as searches of reads on the page.
PAGE_SEARCH_EVENT_TYPES: tuple[str, ...] = (*SEARCH_EVENT_TYPES, "lookup", "retro_match")
_PERIOD_DAYS = 30
_PORTAL_FILE_GLOB = "latest_usage*.csv"
_FIGURES_FILE_GLOB = "portal_figures*.csv"
_NO_REASON = "(no reason on the policy's list)"
_RECIPIENT_LABELS = {
    "ca_local_agency": "California local agency",
    "ca_state_agency": "California state agency",
    "federal": "federal agency",
    "out_of_state": "out-of-state agency",
    "private": "private organization",
}
# Flock display names mark a California portal with the state code as its own token:
# "Palm Springs CA PD", "Chino PD (CA)", "Mendocino County SO-CA", "Los Gatos ... PD - CA".
_CA_TOKEN = re.compile(r"(?<![A-Za-z])CA(?![A-Za-z])")
_PORTAL_COLUMNS = {
    "data_retention_in_days": "retention_days",
    "number_of_owned_cameras": "cameras",
    "vehicles_detected_in_the_last_30_days": "reads",
    "hotlist_hits_in_the_last_30_days": "hits",
    "searches_in_the_last_30_days": "searches",
}
#: Columns of :func:`read_portal_metrics`, and of a portal figures file (``agency`` is text,
#: the others whole numbers, empty where the portal published no usable value).
PORTAL_FIGURE_COLUMNS: tuple[str, ...] = ("agency", *_PORTAL_COLUMNS.values(), "outside_agencies")
#: The comparison's metrics: (column, label), in the order shown.
COMPARISON_METRICS: tuple[tuple[str, str], ...] = (
    ("cameras", "Cameras owned"),
    ("reads", "Vehicles read, last 30 days"),
    ("hits", "Hotlist hits, last 30 days"),
    ("searches", "Searches, last 30 days"),
    ("retention_days", "Retention (days)"),
    ("outside_agencies", "Outside agencies with access"),
)


# -- the data ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrganizationAccess:
    """One outside organization holding a sharing grant in force.

    Attributes
    ----------
    organization, recipient_type
        Who, and what kind of organization (``ca_local_agency``, ``federal``, ...).
    networks
        Names of the networks it may search or receive alerts from.
    scopes
        The grants' scopes (``search``, ``hotlist_alerts``, ``search_and_alerts``).
    problems
        Why the grants are improper (empty when they are in order).
    """

    organization: str
    recipient_type: str
    networks: tuple[str, ...]
    scopes: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def is_flagged(self) -> bool:
        """True when any grant to this organization breaks the law or the policy."""
        return bool(self.problems)


@dataclass(frozen=True)
class HotlistSummary:
    """One hotlist that alerts, with the number of entries alerting and any problems."""

    name: str
    source: str
    entries: int
    expires_at: dt.datetime | None
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ComparisonRow:
    """One metric compared with the California portals.

    Attributes
    ----------
    metric, label
        Column name and words.
    department
        The department's figure (``None`` when it has none).
    reporting
        California portals that publish the metric.
    median, low, high
        Median, minimum and maximum over those portals (``None`` when none report it).
    rank
        The department's rank among the reporting portals and itself, 1 = highest.
    """

    metric: str
    label: str
    department: int | None
    reporting: int
    median: float | None
    low: int | None
    high: int | None
    rank: int | None


@dataclass(frozen=True)
class PortalComparison:
    """The department beside other California agencies' published portal figures."""

    available: bool
    note: str
    agencies: int
    rows: tuple[ComparisonRow, ...]


@dataclass(frozen=True)
class TransparencyData:
    """Everything the transparency page shows (exact counts; suppression happens on render).

    Attributes
    ----------
    agency_name, as_of
        Who publishes, and when the figures were taken (UTC).
    period_start, period_end
        The last 30 complete UTC days before ``as_of`` (inclusive).
    retention_days
        Days a read is kept before it is crypto-shredded.
    reason_codes, job_titles, prohibited_categories, allowed_recipient_types,
    never_alert_categories
        From the policy file.
    cameras, shared_cameras
        Department cameras in service, and cameras of partners' networks shared with the
        department.
    reads, reads_department
        Reads in the period on every network held, and on the department's own cameras.
    hits, hits_department
        Hotlist hits in the period, on every network held and on the department's cameras.
    searches, searches_refused
        Searches run, and searches the gate refused, in the period.
    searches_by_reason
        ``(reason, run, refused)`` per reason code, most used first.
    organizations
        Outside organizations with a sharing grant in force.
    shared_with_department
        ``(network, owner)`` for partner networks the department may search.
    hotlists, never_alert_entries
        Hotlists that alert, and entries held in never-alert categories (they never alert).
    digest, public_key_fingerprint
        The signed audit digest of ``as_of``'s year and the SHA-256 of its public key (PEM).
    portal
        The comparison with other California agencies.
    """

    agency_name: str
    as_of: dt.datetime
    period_start: dt.date
    period_end: dt.date
    retention_days: int
    reason_codes: tuple[str, ...]
    job_titles: tuple[str, ...]
    prohibited_categories: tuple[str, ...]
    allowed_recipient_types: tuple[str, ...]
    never_alert_categories: tuple[str, ...]
    cameras: int
    shared_cameras: int
    reads: int
    reads_department: int
    hits: int
    hits_department: int
    searches: int
    searches_refused: int
    searches_by_reason: tuple[tuple[str, int, int], ...]
    organizations: tuple[OrganizationAccess, ...]
    shared_with_department: tuple[tuple[str, str], ...]
    hotlists: tuple[HotlistSummary, ...]
    never_alert_entries: int
    digest: SignedDigest
    public_key_fingerprint: str
    portal: PortalComparison

    @property
    def outside_agencies(self) -> int:
        """Number of outside organizations holding a grant in force."""
        return len(self.organizations)

    @property
    def flagged_organizations(self) -> tuple[OrganizationAccess, ...]:
        """Organizations whose grants break the law or the policy."""
        return tuple(o for o in self.organizations if o.is_flagged)


def format_count(count: int | None) -> str:
    """A count as published: 1 to 4 become "fewer than 5", zero stays 0.

    Examples
    --------
    >>> format_count(0), format_count(3), format_count(12345), format_count(None)
    ('0', 'fewer than 5', '12,345', 'not available')
    """
    if count is None:
        return "not available"
    if 0 < count < SUPPRESSION_THRESHOLD:
        return f"fewer than {SUPPRESSION_THRESHOLD}"
    return f"{count:,}"


def _is_suppressed(count: int | None) -> bool:
    return count is not None and 0 < count < SUPPRESSION_THRESHOLD


# -- collection ----------------------------------------------------------------------------
def _period(as_of: dt.datetime) -> tuple[dt.date, dt.date]:
    end = as_of.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return end - dt.timedelta(days=_PERIOD_DAYS - 1), end


def _in_period(column: str, start: dt.date, end: dt.date) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone("UTC").dt.date().is_between(start, end)


def _department_networks(store: Store) -> list[str]:
    networks = store.tables.read("networks")
    return networks.filter(pl.col("is_department_owned"))["network_id"].to_list()


def _cameras_in_service(cameras: pl.DataFrame, networks: Sequence[str], day: dt.date) -> int:
    return cameras.filter(
        pl.col("network_id").is_in(list(networks))
        & (pl.col("installed_date").is_null() | (pl.col("installed_date") <= day))
        & (pl.col("removed_date").is_null() | (pl.col("removed_date") > day))
    ).height


def _recipient_type(row: Mapping[str, Any], agencies: dict[str, Agency]) -> str:
    """The recipient's type as the registry of known agencies says (the table's if unknown)."""
    agency = find_agency(agencies, row["recipient_org"])
    return agency.organization_type if agency is not None else str(row["recipient_type"])


def _grant_problems(
    row: Mapping[str, Any], *, policy: Policy, day: dt.date, agencies: dict[str, Agency]
) -> list[str]:
    problems = []
    agency = find_agency(agencies, row["recipient_org"])
    if agency is None:
        problems.append("recipient not in the registry of known agencies")
    elif agency.organization_type != row["recipient_type"]:
        problems.append(
            f"recorded as {_RECIPIENT_LABELS.get(row['recipient_type'], row['recipient_type'])}"
            f", but the registry of known agencies lists a "
            f"{_RECIPIENT_LABELS.get(agency.organization_type, agency.organization_type)}"
        )
    kind = _recipient_type(row, agencies)
    if kind not in policy.allowed_recipient_types:
        problems.append(
            f"{_RECIPIENT_LABELS.get(kind, kind)}: may not receive California ALPR data "
            "(Civil Code 1798.90.55)"
        )
    if not (row.get("approved_by") or "").strip():
        problems.append("no named approver")
    if not (row.get("basis") or "").strip():
        problems.append("no stated legal basis")
    review = row.get("review_by_date")
    if review is not None and review < day:
        problems.append(f"review overdue since {review.isoformat()}")
    return problems


def _organizations(
    grants: pl.DataFrame,
    networks: pl.DataFrame,
    *,
    policy: Policy,
    day: dt.date,
    agencies: dict[str, Agency],
) -> tuple[OrganizationAccess, ...]:
    names = dict(networks.select("network_id", "name").iter_rows())
    outside = grants.filter(pl.col("recipient_org") != policy.agency_name)
    found: dict[str, dict[str, Any]] = {}
    for row in outside.sort("recipient_org", "grant_id").iter_rows(named=True):
        kind = _recipient_type(row, agencies)  # the registry's word, not the grant's
        entry = found.setdefault(
            row["recipient_org"],
            {"type": kind, "networks": [], "scopes": [], "problems": []},
        )
        if kind not in policy.allowed_recipient_types:
            entry["type"] = kind  # the worst kind named by any grant
        for key, value in (
            ("networks", names.get(row["network_id"], row["network_id"])),
            ("scopes", row["scope"]),
        ):
            if value not in entry[key]:
                entry[key].append(value)
        for problem in _grant_problems(row, policy=policy, day=day, agencies=agencies):
            if problem not in entry["problems"]:
                entry["problems"].append(problem)
    orgs = [
        OrganizationAccess(
            org, e["type"], tuple(e["networks"]), tuple(e["scopes"]), tuple(e["problems"])
        )
        for org, e in found.items()
    ]
    return tuple(sorted(orgs, key=lambda o: (not o.is_flagged, o.organization)))


def _hotlist_problems(row: Mapping[str, Any], *, policy: Policy) -> list[str]:
    problems = []
    screen = screen_text({"name": row["name"], "reason": row.get("reason")}, policy=policy)
    if screen.verdict != "pass":
        category = _label(screen.category or "review")
        problems.append(f"its {screen.field} states a prohibited purpose ({category})")
    if row["source"] == "custom":
        if not row.get("case_number"):
            problems.append("custom list without a case number")
        if row.get("expires_at") is None:
            problems.append("custom list without an expiry date")
        elif row["expires_at"] - row["created_at"] > dt.timedelta(
            days=policy.custom_hotlist_max_days
        ):
            problems.append(f"expiry more than {policy.custom_hotlist_max_days} days out")
    return problems


def _hotlists(
    lists: pl.DataFrame, entries: pl.DataFrame, *, policy: Policy, at: dt.datetime
) -> tuple[tuple[HotlistSummary, ...], int]:
    live = entries.filter(
        (pl.col("added_at") <= at) & (pl.col("expires_at").is_null() | (pl.col("expires_at") > at))
    ).select("hotlist_id", "category")
    barred = pl.Series(
        [is_never_alert(c, policy) for c in live["category"].to_list()], dtype=pl.Boolean
    )
    counts = dict(live.filter(~barred).group_by("hotlist_id").len().iter_rows())
    in_force = pl.col("expires_at").is_null() | (pl.col("expires_at") > at)
    active = lists.filter((pl.col("created_at") <= at) & in_force).sort("source", "name")
    out = [
        HotlistSummary(
            name=row["name"],
            source=row["source"],
            entries=int(counts.get(row["hotlist_id"], 0)),
            expires_at=row["expires_at"],
            problems=tuple(_hotlist_problems(row, policy=policy)),
        )
        for row in active.iter_rows(named=True)
    ]
    return tuple(out), int(barred.sum())


def _searches(
    events: pl.DataFrame, *, policy: Policy, start: dt.date, end: dt.date
) -> tuple[int, int, tuple[tuple[str, int, int], ...]]:
    searches = events.filter(
        pl.col("event_type").is_in(list(PAGE_SEARCH_EVENT_TYPES))
        & _in_period("occurred_at", start, end)
    ).with_columns(
        pl.when(pl.col("reason_code").is_in(list(policy.reason_codes)))
        .then(pl.col("reason_code"))
        .otherwise(pl.lit(_NO_REASON))
        .alias("reason")
    )
    refused = pl.col("outcome") == "refused"
    by_reason = (
        searches.group_by("reason")
        .agg((~refused).sum().alias("run"), refused.sum().alias("refused"))
        .sort(["run", "refused", "reason"], descending=[True, True, False])
    )
    rows = tuple((str(r), int(a), int(b)) for r, a, b in by_reason.iter_rows())
    n_refused = searches.filter(refused).height
    return searches.height - n_refused, n_refused, rows


def collect_transparency(
    store: Store,
    audit_log: Any,
    *,
    user_id: str,
    as_of: dt.datetime,
    policy: Policy | None = None,
    settings: Settings | None = None,
    portal_dir: Path | None = None,
) -> TransparencyData:
    """Gather the transparency page's figures as ``user_id`` may see them (aggregates only).

    Parameters
    ----------
    store
        The encrypted store.
    audit_log
        The :class:`~alpr_workbench.governance.AuditLog`: searches are counted from it, the
        read aggregate is audited in it, and its digest for ``as_of``'s year is signed.
    user_id
        The acting user; must be allowed to view aggregates (the gate checks and audits).
    as_of
        Time (timezone-aware) the figures describe: the period is the 30 complete UTC days
        before it; grants and hotlists are those in force at it.
    policy, settings
        Default: the settings of the store's data directory and the policy they name.
    portal_dir
        The published portal figures: the folder of the ``flock_portal_metrics`` data set, a
        folder holding a ``portal_figures*.csv`` file, or such a CSV file (default
        :func:`default_portal_dir`, the California figures shipped with the package). When
        it is missing or unreadable, the comparison says it is unavailable.

    Returns
    -------
    TransparencyData
        Exact figures; :func:`render_transparency` suppresses small counts.

    Raises
    ------
    SearchRefused
        When ``user_id`` may not view aggregates.
    """
    if as_of.tzinfo is None:
        raise ValueError("give as_of with a time zone (UTC)")
    settings = settings or load_settings(store.home)
    policy = policy or load_policy(settings.policy_file)
    retention_days = configured_retention_days(store)
    start, end = _period(as_of)
    day = as_of.astimezone(dt.UTC).date()
    gate = Gate(store, audit_log)
    summary = gate.read_summary(user_id, start=start, end=end)
    own = _department_networks(store)
    daily = summary.reads_daily
    reads_own = int(daily.filter(pl.col("network_id").is_in(own))["reads"].sum())

    networks = store.tables.read("networks")
    cameras = store.tables.read("cameras")
    grants = active_grants(store, at=as_of)
    to_us = grants.filter(pl.col("recipient_org") == policy.agency_name)
    shared_ids = sorted(set(to_us["network_id"]) - set(own))
    shared = tuple(
        (name, owner)
        for name, owner in networks.filter(pl.col("network_id").is_in(shared_ids))
        .sort("name")
        .select("name", "owner_name")
        .iter_rows()
    )
    hits = store.tables.read("hits").filter(_in_period("captured_at", start, end))
    hits_own = hits.filter(pl.col("network_id").is_in(own)).height
    run, refused, by_reason = _searches(audit_log.events(), policy=policy, start=start, end=end)
    hotlists, barred = _hotlists(
        store.tables.read("hotlists"),
        store.tables.read("hotlist_entries"),
        policy=policy,
        at=as_of,
    )
    organizations = _organizations(
        grants, networks, policy=policy, day=day,
        agencies=load_agencies(store.home, store.keystore),
    )
    department = {
        "cameras": _cameras_in_service(cameras, own, day),
        "reads": reads_own,
        "hits": hits_own,
        "searches": run,
        "retention_days": retention_days,
        "outside_agencies": len(organizations),
    }
    portal_dir = portal_dir if portal_dir is not None else default_portal_dir()
    portal = compare_with_portals(portal_dir, department=department)
    digest = audit_log.digest(day.year)  # last, so it covers this page's own aggregate event
    return TransparencyData(
        agency_name=policy.agency_name,
        as_of=as_of.astimezone(dt.UTC),
        period_start=start,
        period_end=end,
        retention_days=retention_days,
        reason_codes=policy.reason_codes,
        job_titles=policy.job_titles,
        prohibited_categories=tuple(policy.prohibited_terms),
        allowed_recipient_types=policy.allowed_recipient_types,
        never_alert_categories=policy.never_alert_categories,
        cameras=department["cameras"],
        shared_cameras=_cameras_in_service(cameras, shared_ids, day),
        reads=int(daily["reads"].sum()),
        reads_department=reads_own,
        hits=hits.height,
        hits_department=hits_own,
        searches=run,
        searches_refused=refused,
        searches_by_reason=by_reason,
        organizations=organizations,
        shared_with_department=shared,
        hotlists=hotlists,
        never_alert_entries=barred,
        digest=digest,
        public_key_fingerprint=hashlib.sha256(digest.public_key_pem.encode()).hexdigest(),
        portal=portal,
    )


# -- the portal comparison -----------------------------------------------------------------
def default_portal_dir() -> Path:
    """The California portal figures shipped with the package.

    The folder ``alpr_workbench/reports/portal_figures/`` holds ``portal_figures_ca.csv`` (the
    :func:`read_portal_metrics` of the News & Observer's ``flock_portal_metrics`` data set,
    2024-04-26), its README (source, commit, credit) and the data set's MIT licence.

    Returns
    -------
    pathlib.Path
        The folder (inside the installed package).
    """
    return Path(str(files("alpr_workbench.reports").joinpath("portal_figures")))


def _to_int(column: str) -> pl.Expr:
    """Digits in a text cell ("1,234", "30 days"), else null ("NA", "-Infinity days", ...)."""
    text = pl.col(column).cast(pl.String).str.strip_chars().str.replace_all(",", "")
    number = text.str.extract(r"^(\d+)(?:\s*days?)?$", 1)
    return number.cast(pl.Int64, strict=False)


def _is_california(agency: str | None, url: str | None) -> bool:
    if agency and _CA_TOKEN.search(agency):
        return True
    slug = (url or "").rstrip("/").rsplit("/", 1)[-1].lower()
    return "ca" in slug.split("-")


def read_portal_metrics(portal_dir: Path) -> pl.DataFrame:
    r"""Read the published portal metrics of California agencies.

    From the data set's ``latest_usage*.csv``: a portal is Californian when its display name
    carries the state code ``CA`` as a token of its own ("Palm Springs CA PD", "Chino PD
    (CA)", "Mendocino County SO-CA") or its portal address ends in a slug with a ``ca`` part
    ("yuba-county-ca-so"). Portals whose display name is ``DNU`` (the vendor's "do not use"
    marker) are left out. A portal figures file (``portal_figures*.csv``, the columns of
    :data:`PORTAL_FIGURE_COLUMNS`, ``#`` lines are comments) holds that result already and is
    read as it is.

    Parameters
    ----------
    portal_dir
        Folder holding ``latest_usage*.csv`` (columns as in the data set's README; a missing
        metric column reads as not reported) or, failing that, ``portal_figures*.csv``; or
        one such file.

    Returns
    -------
    polars.DataFrame
        ``agency``, ``retention_days``, ``cameras``, ``reads``, ``hits``, ``searches``,
        ``outside_agencies`` (Int64; null where the portal did not publish a usable value).

    Raises
    ------
    FileNotFoundError
        When ``portal_dir`` is neither such a file nor a folder holding one.
    ValueError
        When the file has no ``agency`` column, or a figures file lacks a column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "latest_usage.csv").write_text(
    ...     "agency,url,data_retention_in_days,number_of_owned_cameras\n"
    ...     "Avon IN PD,https://x/avon-in-pd,30 days,6\n"
    ...     "Chino PD (CA),https://x/chino-ca-pd,-Infinity days,\"1,024\"\n")
    >>> read_portal_metrics(folder).select("agency", "retention_days", "cameras").rows()
    [('Chino PD (CA)', None, 1024)]
    """
    source = Path(portal_dir)
    if source.is_file():
        if source.match(_FIGURES_FILE_GLOB):
            return _read_portal_figures(source)
        path = source
    else:
        found = sorted(source.glob(_PORTAL_FILE_GLOB))
        if not found:
            figures = sorted(source.glob(_FIGURES_FILE_GLOB))
            if figures:
                return _read_portal_figures(figures[-1])
            raise FileNotFoundError(
                f"no {_PORTAL_FILE_GLOB} or {_FIGURES_FILE_GLOB} in {portal_dir}"
            )
        path = found[-1]
    raw = pl.read_csv(
        path, infer_schema=False, null_values=["NA", ""], truncate_ragged_lines=True
    )
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    if "agency" not in raw.columns:
        raise ValueError(f"{path.name} has no 'agency' column")
    for column in (*_PORTAL_COLUMNS, "url", "external_organizations_with_access"):
        if column not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    raw = raw.with_columns(pl.col("agency").str.strip_chars())
    is_ca = [
        _is_california(a, u) and a != "DNU"
        for a, u in raw.select("agency", "url").iter_rows()
    ]
    partners = (
        pl.col("external_organizations_with_access")
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
        .list.unique()
        .list.len()
        .cast(pl.Int64)
    )
    return raw.filter(pl.Series(is_ca, dtype=pl.Boolean)).select(
        "agency",
        *[_to_int(src).alias(dst) for src, dst in _PORTAL_COLUMNS.items()],
        partners.alias("outside_agencies"),
    )


def _read_portal_figures(path: Path) -> pl.DataFrame:
    """A portal figures file (:data:`PORTAL_FIGURE_COLUMNS`), as :func:`read_portal_metrics`."""
    frame = pl.read_csv(path, comment_prefix="#", infer_schema=False, null_values=[""])
    missing = [c for c in PORTAL_FIGURE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path.name} lacks the column(s) {', '.join(missing)}")
    return frame.select(
        pl.col("agency"),
        *[pl.col(c).cast(pl.Int64) for c in PORTAL_FIGURE_COLUMNS[1:]],
    )


def _rank(value: int, others: Sequence[int]) -> int:
    return 1 + sum(1 for o in others if o > value)


def compare_with_portals(
    portal_dir: Path | None, *, department: Mapping[str, int | None]
) -> PortalComparison:
    """Set the department's figures beside the California portals' published figures.

    Parameters
    ----------
    portal_dir
        The published figures, as for :func:`read_portal_metrics`; ``None``, a missing path
        or one without the figures gives an unavailable section.
    department
        The department's figure per metric of :data:`COMPARISON_METRICS`.

    Returns
    -------
    PortalComparison
        Median, range and the department's rank (1 = highest) per metric.
    """
    if portal_dir is None or not Path(portal_dir).exists():
        return PortalComparison(False, "the published portal figures are not available here", 0, ())
    try:
        portals = read_portal_metrics(Path(portal_dir))
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        note = f"the published portal figures could not be read ({exc})"
        return PortalComparison(False, note, 0, ())
    rows = []
    for metric, label in COMPARISON_METRICS:
        values = portals[metric].drop_nulls().to_list()
        mine = department.get(metric)
        rows.append(
            ComparisonRow(
                metric=metric,
                label=label,
                department=mine,
                reporting=len(values),
                median=float(statistics.median(values)) if values else None,
                low=min(values) if values else None,
                high=max(values) if values else None,
                rank=None if mine is None else _rank(mine, values),
            )
        )
    note = (
        f"{portals.height} California agencies' Flock transparency portals, as scraped on "
        "2024-04-26 for \u201cPrivate Eyes\u201d, an analysis by The News & Observer (MIT "
        "licence). An agency "
        "counts as Californian when the state code CA is a separate token of its display name "
        "or of its portal's address. Missing, \u201cData Unavailable\u201d and "
        "\u201c-Infinity days\u201d values are left out of each metric."
    )
    return PortalComparison(True, note, portals.height, tuple(rows))


# -- rendering -----------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;
border-bottom:2px solid #1f4e79;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;width:100%}
th,td{border:1px solid #c8c8c8;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eef3f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.flag{background:#fde8e8}.flag-text{color:#a10000;font-weight:600}.ok{color:#1b6e1b;font-weight:600}
pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;font-size:.8rem}
.muted{color:#555;font-size:.9rem}ul.inline li{display:inline;margin-right:.8rem}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _count_cell(metric: str, count: int | None) -> str:
    return f'<td class="num" data-metric="{_e(metric)}">{_e(format_count(count))}</td>'


def _expiry(hotlist: HotlistSummary) -> str:
    if hotlist.expires_at is not None:
        return hotlist.expires_at.date().isoformat()
    return "no expiry" if hotlist.source == "custom" else "refreshed daily"


def _status_cell(problems: Sequence[str]) -> str:
    flags = "".join(f'<div class="flag-text">FLAGGED: {_e(p)}</div>' for p in problems)
    return f"<td>{flags or 'in order'}</td>"


def _label(code: str) -> str:
    return code.replace("_", " ")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _reason_chart(rows: Sequence[tuple[str, int, int]]) -> str:
    """Inline SVG bars of searches run per reason; suppressed counts get no bar."""
    shown = [(r, run) for r, run, _ in rows]
    if not shown:
        return ""
    top = max(run for _, run in shown) or 1
    bar_h, gap, label_w, width = 18, 6, 230, 640
    height = len(shown) * (bar_h + gap)
    parts = [
        f'<svg role="img" aria-label="Searches run per reason" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for i, (reason, run) in enumerate(shown):
        y = i * (bar_h + gap)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end" '
            f'font-size="12">{_e(_label(reason))}</text>'
        )
        length = 0 if _is_suppressed(run) else (width - label_w - 90) * run / top
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="#1f4e79"/>'
        )
        parts.append(
            f'<text x="{label_w + length + 6:.1f}" y="{y + bar_h - 5}" font-size="12">'
            f"{_e(format_count(run))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _policy_section(data: TransparencyData) -> str:
    allowed = " or ".join(_RECIPIENT_LABELS.get(t, t) for t in data.allowed_recipient_types)
    return f"""
<h2 id="policy">Policy and prohibited uses</h2>
<p>The system may be used only in a case the department has opened, by an authorized user, for
one of these purposes (every search names one, and the case number):</p>
<ul class="inline">{"".join(f"<li>{_e(_label(c))}</li>" for c in data.reason_codes)}</ul>
<p>Job titles allowed to use the system:</p>
<ul class="inline">{"".join(f"<li>{_e(t)}</li>" for t in data.job_titles)}</ul>
<p><strong>Prohibited uses.</strong> Every free-text reason and case title is screened, and a
search is refused when it names one of these purposes:</p>
<ul>{"".join(f"<li>{_e(_label(c))}</li>" for c in data.prohibited_categories)}</ul>
<p><strong>Sharing.</strong> Only a {_e(allowed)} may be given access (California Civil Code
1798.90.55 and SB 34); never a federal agency, an agency of another state, or a private
organization. SB 54: no department resources for immigration enforcement.</p>
<p><strong>Retention.</strong> Reads are kept <strong data-metric="retention_days">
{_e(data.retention_days)} days</strong>, then destroyed (their encryption keys are shredded),
unless a court-ordered legal hold applies.</p>"""


def _figures_section(data: TransparencyData) -> str:
    rows = [
        ("cameras", "Department cameras in service", data.cameras),
        ("shared_cameras", "Partner cameras shared with the department", data.shared_cameras),
        ("reads_department", "Vehicles read by department cameras", data.reads_department),
        ("reads", "Vehicles read, all networks the department may search", data.reads),
        ("hits_department", "Hotlist hits on department cameras", data.hits_department),
        ("hits", "Hotlist hits, all networks the department may search", data.hits),
        ("searches", "Searches run", data.searches),
        ("searches_refused", "Searches refused by the system", data.searches_refused),
        ("outside_agencies", "Outside organizations with access", data.outside_agencies),
    ]
    body = "".join(f"<tr><th>{_e(label)}</th>{_count_cell(m, n)}</tr>" for m, label, n in rows)
    return f"""
<h2 id="figures">The last 30 days</h2>
<p class="muted">{_e(data.period_start.isoformat())} to {_e(data.period_end.isoformat())} (UTC
days). Counts from 1 to {SUPPRESSION_THRESHOLD - 1} are shown as \u201cfewer than
{SUPPRESSION_THRESHOLD}\u201d so that no person can be singled out; zero is shown as 0. A
search counts once whether it was run in the workbench (a search or a single-plate lookup),
as a hotlist retro-match, or on the vendor's system.</p>
<table><tbody>{body}</tbody></table>"""


def _reasons_section(data: TransparencyData) -> str:
    body = "".join(
        f"<tr><td>{_e(_label(r))}</td>{_count_cell(f'reason:{r}:run', run)}"
        f"{_count_cell(f'reason:{r}:refused', refused)}</tr>"
        for r, run, refused in data.searches_by_reason
    )
    if not body:
        body = '<tr><td colspan="3">No searches in the period.</td></tr>'
    return f"""
<h2 id="reasons">Searches by reason</h2>
{_reason_chart(data.searches_by_reason)}
<table><thead><tr><th>Reason</th><th>Run</th><th>Refused</th></tr></thead>
<tbody>{body}</tbody></table>
<p class="muted">Refused searches are kept in the audit log with the reason they were refused
(no case, a reason off the list, a prohibited purpose, a window beyond retention, ...).</p>"""


def _organizations_section(data: TransparencyData) -> str:
    flagged = data.flagged_organizations
    improper_kind = [
        o for o in data.organizations if o.recipient_type not in data.allowed_recipient_types
    ]
    if improper_kind:
        verdict = (
            f'<p class="flag-text">{_e(len(improper_kind))} organization(s) that the law does '
            "not allow (federal, out-of-state or private) hold a grant in force. They are "
            "flagged below; the department must revoke these grants.</p>"
        )
    else:
        verdict = (
            '<p class="ok">No federal agency, agency of another state or private '
            "organization has access.</p>"
        )
    if flagged and not improper_kind:
        verdict += (
            f'<p class="flag-text">{_e(len(flagged))} grant(s) to California agencies have a '
            "problem in their paperwork; they are flagged below.</p>"
        )
    body = "".join(
        f'<tr class="{"flag" if o.is_flagged else ""}"><td>{_e(o.organization)}</td>'
        f"<td>{_e(_RECIPIENT_LABELS.get(o.recipient_type, o.recipient_type))}</td>"
        f"<td>{_e(', '.join(o.networks))}</td><td>{_e(', '.join(_label(s) for s in o.scopes))}</td>"
        f"{_status_cell(o.problems)}</tr>"
        for o in data.organizations
    )
    if not body:
        body = '<tr><td colspan="5">No outside organization has access.</td></tr>'
    shared = "".join(
        f"<li>{_e(name)} ({_e(owner)})</li>" for name, owner in data.shared_with_department
    )
    shared_html = (
        f"<p>Partner networks the department may search (their owners' opt-in grants):</p>"
        f"<ul>{shared}</ul>"
        if shared
        else "<p>No partner network is shared with the department.</p>"
    )
    return f"""
<h2 id="access">Organizations with access</h2>
<p class="muted">Read from the sharing grants in force on {_e(data.as_of.date().isoformat())},
the same table the system enforces on every search: not a hand-kept list.</p>
{verdict}
<table><thead><tr><th>Organization</th><th>Kind</th><th>Networks</th><th>Scope</th>
<th>Status</th></tr></thead><tbody>{body}</tbody></table>
{shared_html}"""


def _hotlists_section(data: TransparencyData) -> str:
    body = "".join(
        f'<tr class="{"flag" if h.problems else ""}"><td>{_e(h.name)}</td>'
        f"<td>{_e(_label(h.source))}</td>{_count_cell(f'hotlist:{h.name}', h.entries)}"
        f"<td>{_e(_expiry(h))}</td>"
        f"{_status_cell(h.problems)}</tr>"
        for h in data.hotlists
    )
    if not body:
        body = '<tr><td colspan="5">No hotlist alerts.</td></tr>'
    never = ", ".join(_label(c) for c in data.never_alert_categories)
    return f"""
<h2 id="hotlists">Hotlists that alert</h2>
<table><thead><tr><th>List</th><th>Source</th><th>Entries alerting</th><th>Expires</th>
<th>Status</th></tr></thead><tbody>{body}</tbody></table>
<p><strong>Never alert:</strong> {_e(never)}. Records in these categories are dropped when a
list is imported and counted in the audit log (SB 54); entries held in them today:
<span data-metric="never_alert_entries">{_e(format_count(data.never_alert_entries))}</span>.</p>"""


def _digest_section(data: TransparencyData) -> str:
    d = data.digest
    return f"""
<h2 id="audit">The signed audit digest for {_e(d.year)}</h2>
<p>Every search, export, sharing change and administrative act is written to a tamper-evident,
hash-chained audit log. This digest, signed with the department's Ed25519 key, fixes the state
of the log for {_e(d.year)}: {_e(f"{d.records:,}")} records (sequence {_e(d.first_seq)} to
{_e(d.last_seq)}), chain hash <code>{_e(d.chain_hash)}</code>, signed {_e(d.signed_at)}.
If a record were later removed or rewritten, the chain would no longer reach this hash.</p>
<p><strong>How to verify it.</strong> Save the digest below as <code>digest.json</code> and
save the department's public key below as <code>public_key.pem</code>, compare it with the
one the department publishes elsewhere (its SHA-256 fingerprint:
<code>{_e(data.public_key_fingerprint)}</code>), and run <code>alpr-workbench audit verify-digest
digest.json --public-key public_key.pem</code> (no password is needed; a digest signed with any
other key is refused). Anyone given the encrypted log file can also recompute the chain:
<code>alpr-workbench audit verify-digest digest.json --public-key public_key.pem --log
records.bin</code>.</p>
<pre id="digest-json">{_e(d.to_json())}</pre>
<p>Public key:</p>
<pre id="public-key">{_e(d.public_key_pem)}</pre>"""


def _portal_section(data: TransparencyData) -> str:
    p = data.portal
    if not p.available:
        return f"""
<h2 id="comparison">Compared with other California agencies</h2>
<p>Comparison unavailable: {_e(p.note)}.</p>"""
    body = []
    for row in p.rows:
        suppressed = _is_suppressed(row.department)
        rank = (
            "-"
            if row.rank is None or suppressed or not row.reporting
            else f"{_ordinal(row.rank)} of {row.reporting + 1}"
        )
        median = "-" if row.median is None else f"{row.median:,.0f}"
        span = "-" if row.low is None else f"{row.low:,} to {row.high:,}"
        body.append(
            f"<tr><td>{_e(row.label)}</td>{_count_cell(f'portal:{row.metric}', row.department)}"
            f'<td class="num">{_e(median)}</td><td class="num">{_e(span)}</td>'
            f'<td class="num">{_e(row.reporting)}</td><td class="num">{_e(rank)}</td></tr>'
        )
    return f"""
<h2 id="comparison">Compared with other California agencies</h2>
<p class="muted">{_e(p.note)} Rank 1 is the highest figure. A portal counts only the
agency's own cameras, so the department's reads and hits here are those of its own cameras.</p>
<table><thead><tr><th>Figure</th><th>{_e(data.agency_name)}</th><th>California median</th>
<th>Range</th><th>Agencies reporting</th><th>Department's rank</th></tr></thead>
<tbody>{"".join(body)}</tbody></table>"""


def render_transparency(data: TransparencyData) -> str:
    """Render the page as one self-contained HTML document (no external resources).

    Parameters
    ----------
    data
        From :func:`collect_transparency`.

    Returns
    -------
    str
        HTML5 with inline CSS and an inline SVG chart; every data value is escaped and every
        count from 1 to 4 reads "fewer than 5".
    """
    title = f"{data.agency_name}: license plate reader transparency"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">Figures as of {_e(data.as_of.isoformat(timespec="minutes"))}. Produced by the
ALPR workbench from the same governed records the system enforces; no license plate appears
on this page.</p>
{_policy_section(data)}
{_figures_section(data)}
{_reasons_section(data)}
{_organizations_section(data)}
{_hotlists_section(data)}
{_portal_section(data)}
{_digest_section(data)}
</body></html>
"""


def write_transparency(
    store: Store,
    audit_log: Any,
    *,
    user_id: str,
    out: Path,
    as_of: dt.datetime | None = None,
    portal_dir: Path | None = None,
) -> TransparencyData:
    """Collect, render and atomically write the transparency page.

    Parameters
    ----------
    store, audit_log, user_id, portal_dir
        As for :func:`collect_transparency`.
    out
        The HTML file to write (readers see the old page or the new one, never half).
    as_of
        Default: now (UTC).

    Returns
    -------
    TransparencyData
        What the page shows.
    """
    data = collect_transparency(
        store,
        audit_log,
        user_id=user_id,
        as_of=as_of or dt.datetime.now(dt.UTC),
        portal_dir=portal_dir,
    )
    atomic_write_bytes(Path(out), render_transparency(data).encode("utf-8"), mode=0o644)
    return data
