"""Onboarding a department: users, cases, cameras and networks, imported and edited, audited.

Each import reads a CSV export (headers matched like the hotlist import's: case, spacing and
punctuation ignored, common spellings recognised, e.g. "Badge/User ID", "Case #", "Lat"), checks
every line, and then either writes the whole table at once (an upsert by id: new records are
added, listed fields of known records changed, records not in the file kept) or refuses the
whole file naming every bad line, leaving the store as it was. A blank cell leaves the stored
value unchanged. Each import and each edit is an audited action of a user whose role holds the
``administer`` permission; a refusal is audited too (docs/policy.md#a4). Legal holds are
reviewed (a new review date, with a reason) by a user holding ``manage_legal_holds``.

Rules beyond the schema, each refused with the line that breaks it: roles and job titles come
from the policy; generic or shared accounts are refused; a case's investigators must be known
users; a camera's network must be registered; dates must be real and sane (not in the future
where they record the past, a removal not before an installation). No import or edit may touch
the acting user's own record or add the acting user to a case (no self-promotion, no
self-assignment); an import never re-enables a disabled user, clears a separation or reopens a
closed case (those are explicit edits); a private network is never marked department-owned
(that would show it without its owner's grant); a text cell that a spreadsheet would run as a
formula is refused.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from alpr_workbench._csvheader import header_key
from alpr_workbench._csvsafe import FORMULA_TRIGGERS
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.admin import AdminRefused, actor_problem
from alpr_workbench.hotlist import HotlistFileError
from alpr_workbench.policy import Permission, Policy
from alpr_workbench.store import Store

__all__ = [
    "HEADERS",
    "IMPORT_EVENT_TYPES",
    "KEYS",
    "ImportFileError",
    "OnboardingFile",
    "OnboardingResult",
    "Table",
    "close_case",
    "edit_record",
    "import_csv",
    "list_records",
    "read_onboarding_csv",
    "review_legal_hold",
    "separate_user",
]

Table = Literal["users", "cases", "cameras", "networks"]
AuditAppend = Callable[[dict[str, Any]], Any]

#: The id column of each table an import upserts by.
KEYS: dict[str, str] = {
    "users": "user_id",
    "cases": "case_number",
    "cameras": "camera_id",
    "networks": "network_id",
}
#: The audit event type of each table's changes (a network's ownership decides what the gate
#: may see, so its changes are sharing changes).
IMPORT_EVENT_TYPES: dict[str, str] = {
    "users": "user_change",
    "cases": "settings_change",
    "cameras": "settings_change",
    "networks": "sharing_change",
}
_PERMISSION: Permission = "administer"

#: Header spellings recognised for each field, compared as every CSV header is (lower case,
#: letters and digits only: "Badge/User ID" is ``badge_user_id``, "Case #" is ``case``).
# fmt: off
HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "users": {
        "user_id": ("user_id", "badge_user_id", "user", "userid", "login", "login_id",
                    "username", "user_name", "badge", "badge_id", "badge_number", "badge_no",
                    "employee_id", "emp_id", "account"),
        "full_name": ("full_name", "name", "employee_name", "officer_name", "display_name"),
        "role": ("role", "workbench_role", "access_role", "alpr_role", "system_role"),
        "organization": ("organization", "organisation", "agency", "department", "employer"),
        "organization_type": ("organization_type", "organisation_type", "agency_type"),
        "job_title": ("job_title", "title", "rank", "position", "classification"),
        "is_active": ("is_active", "active", "enabled", "account_active", "account_status"),
        "approved_by": ("approved_by", "approver", "access_approved_by", "supervisor"),
        "approved_at": ("approved_at", "approval_date", "approved_date", "approved_on",
                        "access_approved", "date_approved", "approved"),
        "trained_at": ("trained_at", "training_date", "alpr_training", "alpr_training_date",
                       "trained", "training_completed", "last_training", "trained_on"),
        "separated_at": ("separated_at", "separation_date", "separated", "separated_on",
                         "termination_date", "end_date", "date_separated"),
    },
    "cases": {
        "case_number": ("case_number", "case", "case_no", "case_num", "case_id", "report_number",
                        "report_no", "incident_number", "incident_no", "rms_number", "dr_number"),
        "title": ("title", "case_title", "description", "summary", "synopsis", "case_name"),
        "offense_type": ("offense_type", "offense", "offence", "offense_category",
                         "nibrs_offense", "nibrs_category", "crime_type", "crime", "charge"),
        "status": ("status", "case_status", "disposition", "state"),
        "opened_at": ("opened_at", "opened", "date_opened", "open_date", "opened_on",
                      "report_date", "reported_date", "date_reported"),
        "closed_at": ("closed_at", "closed", "date_closed", "close_date", "closed_on",
                      "clearance_date", "cleared_date"),
        "assigned_user_ids": ("assigned_user_ids", "assigned", "assigned_to",
                              "assigned_investigators", "investigators", "investigator",
                              "assigned_investigator", "detectives", "detective"),
    },
    "cameras": {
        "camera_id": ("camera_id", "camera", "cam_id", "camera_no", "camera_number",
                      "device_id", "device", "unit_id"),
        "network_id": ("network_id", "network", "network_code", "system", "owner_network"),
        "name": ("name", "location", "location_name", "site", "intersection", "camera_location",
                 "description", "place"),
        "lat": ("lat", "latitude", "y", "gps_lat"),
        "lon": ("lon", "lng", "long", "longitude", "x", "gps_lon", "gps_long"),
        "direction": ("direction", "facing", "heading", "direction_of_travel",
                      "travel_direction", "bound", "lane_direction"),
        "installed_date": ("installed_date", "installed", "install_date", "installation_date",
                           "date_installed", "in_service", "in_service_date", "installed_on"),
        "removed_date": ("removed_date", "removed", "removal_date", "date_removed",
                         "decommissioned", "decommission_date", "out_of_service_date",
                         "removed_on"),
    },
    "networks": {
        "network_id": ("network_id", "network", "network_code", "code"),
        "name": ("name", "network_name", "display_name"),
        "owner_type": ("owner_type", "type", "network_type", "operator_type", "owner_kind",
                       "ownership"),
        "owner_name": ("owner_name", "owner", "operator", "operator_name", "owner_legal_name",
                       "legal_owner"),
        "is_department_owned": ("is_department_owned", "department_owned", "dept_owned",
                                "bpd_owned", "operated_by_department", "agency_owned"),
    },
}
# fmt: on
#: Headers known but not stored: record numbers of the source system, and sharing, which only
#: a grant recorded with its basis and review date gives (``alpr-workbench grants add``).
_KNOWN_UNUSED = ("id", "row", "record_id", "notes", "remarks", "comments", "sharing",
                 "shared_with", "sharing_status", "shares_with_bpd")  # fmt: skip

_DATE_FORMATS = ("%m/%d/%Y", "%Y/%m/%d", "%m-%d-%Y", "%m/%d/%y")
_DATETIME_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p")
_USER_ID = re.compile(r"^[a-z0-9._-]{2,40}$")
_CAMERA_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_NETWORK_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,40}$")
_EARLIEST = dt.date(1950, 1, 1)
_MAX_TEXT = 300
_TRUE = {"true", "yes", "y", "1", "active", "enabled", "t"}
_FALSE = {"false", "no", "n", "0", "inactive", "disabled", "f"}
# fmt: off
_DIRECTIONS = {
    "n": "N", "north": "N", "nb": "N", "northbound": "N",
    "ne": "NE", "northeast": "NE", "north_east": "NE", "neb": "NE", "northeastbound": "NE",
    "e": "E", "east": "E", "eb": "E", "eastbound": "E",
    "se": "SE", "southeast": "SE", "south_east": "SE", "seb": "SE", "southeastbound": "SE",
    "s": "S", "south": "S", "sb": "S", "southbound": "S",
    "sw": "SW", "southwest": "SW", "south_west": "SW", "swb": "SW", "southwestbound": "SW",
    "w": "W", "west": "W", "wb": "W", "westbound": "W",
    "nw": "NW", "northwest": "NW", "north_west": "NW", "nwb": "NW", "northwestbound": "NW",
}
_STATUSES = {
    "open": "open", "active": "open", "pending": "open", "under_investigation": "open",
    "open_active": "open", "reopened": "open", "in_progress": "open",
    "closed": "closed", "cleared": "closed", "inactive": "closed", "cleared_by_arrest": "closed",
    "closed_arrest": "closed", "exceptionally_cleared": "closed", "unfounded": "closed",
    "closed_cleared": "closed", "suspended": "closed", "closed_unfounded": "closed",
}
_OWNER_TYPES = {
    "city": "city", "municipal": "city", "department": "city", "police": "city",
    "city_owned": "city", "government": "city", "public": "city",
    "private_business": "private_business", "private": "private_business",
    "business": "private_business", "commercial": "private_business", "retail": "private_business",
    "store": "private_business", "private_company": "private_business",
    "hoa": "hoa", "homeowners_association": "hoa", "homeowner_association": "hoa",
    "homeowners_assoc": "hoa", "home_owners_association": "hoa", "neighborhood_association": "hoa",
}
# fmt: on
_ORG_TYPES = ("ca_local_agency", "ca_state_agency", "federal", "out_of_state", "private")


class ImportFileError(HotlistFileError):
    """An onboarding file could not be imported; nothing was written.

    Parameters
    ----------
    path
        The file's name as given.
    problems
        Every problem found, as ``(line, field, message)``; line 1 is the header. The message
        lists every one of them.
    """

    def __init__(self, path: object, problems: list[tuple[int, str, str]]) -> None:
        super().__init__(path, problems, shown=max(20, len(problems)))


@dataclass(frozen=True)
class OnboardingResult:
    """What an import or an edit wrote.

    Attributes
    ----------
    table
        The table written.
    rows_read
        Data lines in the file (1 for an edit).
    created
        Ids of the records added.
    changed
        For each record changed: ``{field: [old, new]}`` (values as text).
    unchanged
        Ids listed whose records already held every value given.
    ignored_columns
        Header names that were not recognised and were not imported.
    event_id
        The audit record of the action (when the audit sink returned one).
    """

    table: str
    rows_read: int
    created: tuple[str, ...]
    changed: dict[str, dict[str, list[str | None]]]
    unchanged: tuple[str, ...]
    ignored_columns: tuple[str, ...] = ()
    event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "table": self.table, "rows_read": self.rows_read, "created": list(self.created),
            "changed": self.changed, "unchanged": list(self.unchanged),
            "ignored_columns": list(self.ignored_columns),
        }  # fmt: skip


@dataclass
class OnboardingFile:
    """Lines of a file (or an edit), cells as text under their field names.

    Attributes
    ----------
    table
        The table the lines are for.
    name
        The file's name, for messages.
    rows
        ``(line number, {field: cell or None})`` for each data line.
    ignored
        Header names that were not recognised.
    problems
        Problems found before the values are checked.
    """

    table: str
    name: str
    rows: list[tuple[int, dict[str, str | None]]]
    ignored: tuple[str, ...] = ()
    problems: list[tuple[int, str, str]] = field(default_factory=list)


class _Bad(ValueError):
    """One cell's problem (becomes a ``(line, field, message)``)."""


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _header_lookup(table: str) -> dict[str, str]:
    """Each recognised header, normalised as every CSV header is (``_csvheader``), to its field."""
    return {header_key(a): f for f, aliases in HEADERS[table].items() for a in aliases}


def _require_table(table: str) -> Table:
    if table not in KEYS:
        raise WorkbenchError(f"unknown table {table!r}: one of {', '.join(KEYS)}")
    return table  # type: ignore[return-value]


def read_onboarding_csv(table: str, data: bytes, *, name: str = "upload.csv") -> OnboardingFile:
    r"""Read an onboarding CSV's lines under their field names (no checks of the values yet).

    Parameters
    ----------
    table
        ``users``, ``cases``, ``cameras`` or ``networks``.
    data
        The file's bytes (UTF-8, header on line 1).
    name
        The file's name, for messages.

    Returns
    -------
    OnboardingFile
        The lines, with the columns that were not recognised.

    Raises
    ------
    ImportFileError
        When the file is not CSV, has no data lines, lacks the id column or names a field
        twice.

    Examples
    --------
    >>> rows = read_onboarding_csv("cases", b"Case #,Title\nBPD-2026-000123,Theft\n").rows
    >>> rows[0]
    (2, {'case_number': 'BPD-2026-000123', 'title': 'Theft'})
    """
    table = _require_table(table)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(name, [(1, "file", f"is not UTF-8 text: {exc.reason}")]) from exc
    try:
        raw = pl.read_csv(io.StringIO(text), infer_schema=False, raise_if_empty=True)
    except pl.exceptions.PolarsError as exc:
        raise ImportFileError(name, [(1, "file", f"cannot be read as CSV: {exc}")]) from exc
    lookup = _header_lookup(table)
    unused = {header_key(u) for u in _KNOWN_UNUSED}
    mapping: dict[str, str] = {}
    problems: list[tuple[int, str, str]] = []
    ignored: list[str] = []
    for col in raw.columns:
        key = header_key(col)
        target = lookup.get(key)
        if target is None:
            if key not in unused:
                ignored.append(col)
            continue
        if target in mapping.values():
            other = next(c for c, f in mapping.items() if f == target)
            problems.append((1, col, f"names {target!r} again (already given by {other!r})"))
            continue
        mapping[col] = target
    key_field = KEYS[table]
    if key_field not in mapping.values():
        looked = ", ".join(HEADERS[table][key_field][:5])
        problems.append((1, key_field, f"no {key_field} column (looked for {looked}...)"))
    if problems:
        raise ImportFileError(name, problems)
    if raw.height == 0:
        raise ImportFileError(name, [(2, "file", "no data lines")])
    frame = raw.select(pl.col(c).str.strip_chars().alias(f) for c, f in mapping.items())
    rows = [
        (i + 2, {k: (v if v else None) for k, v in row.items()})
        for i, row in enumerate(frame.iter_rows(named=True))
    ]
    return OnboardingFile(table, name, rows, tuple(ignored))


# -- cell parsers ------------------------------------------------------------------------------
def _text(value: str) -> str:
    if value.startswith(FORMULA_TRIGGERS):
        raise _Bad(f"{value[:40]!r} starts like a spreadsheet formula; refused")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise _Bad(f"{value[:40]!r} holds control characters")
    if len(value) > _MAX_TEXT:
        raise _Bad(f"is longer than {_MAX_TEXT} characters")
    return value


def _day(value: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        day = None
        for fmt in _DATE_FORMATS:
            try:
                day = dt.datetime.strptime(value, fmt).date()
                break
            except ValueError:
                continue
    if day is None:
        raise _Bad(f"{value[:40]!r} is not a date (YYYY-MM-DD or MM/DD/YYYY)")
    if day < _EARLIEST:
        raise _Bad(f"{value!r} is before {_EARLIEST.year}")
    return day


def _moment(value: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A date (local midnight) or a time (naive: local), as UTC."""
    try:
        return dt.datetime.combine(_day(value), dt.time(), zone).astimezone(dt.UTC)
    except _Bad:
        pass
    stamp: dt.datetime | None = None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        for fmt in _DATETIME_FORMATS:
            try:
                stamp = dt.datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if stamp is None:
        raise _Bad(f"{value[:40]!r} is not a date or time")
    if stamp.date() < _EARLIEST:
        raise _Bad(f"{value!r} is before {_EARLIEST.year}")
    local = stamp.replace(tzinfo=zone) if stamp.tzinfo is None else stamp
    return local.astimezone(dt.UTC)


def _flag(value: str) -> bool:
    key = _header_key(value)
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise _Bad(f"{value[:40]!r} is not yes or no")


def _number(value: str, low: float, high: float, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _Bad(f"{value[:40]!r} is not a {what}") from None
    if not low <= number <= high:
        raise _Bad(f"{value!r} is not a {what} (from {low:g} to {high:g})")
    return number


def _choice(value: str, choices: dict[str, str], what: str) -> str:
    found = choices.get(_header_key(value))
    if found is None:
        raise _Bad(f"{value[:40]!r} is not {what}")
    return found


@dataclass
class _Context:
    """What the checks of one import or edit need."""

    store: Store
    policy: Policy
    now: dt.datetime
    actor: str
    zone: zoneinfo.ZoneInfo
    stored: dict[str, dict[str, Any]]
    users: set[str]
    networks: set[str]
    edit: bool = False

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()


def _past(moment: dt.datetime, ctx: _Context) -> dt.datetime:
    if moment > ctx.now + dt.timedelta(minutes=5):
        raise _Bad(f"{moment.astimezone(ctx.zone):%Y-%m-%d %H:%M} is in the future")
    return moment


def _field_parsers(table: Table, ctx: _Context) -> dict[str, Callable[[str], Any]]:
    policy, zone = ctx.policy, ctx.zone
    titles = {t.lower(): t for t in policy.job_titles}

    def user_id(v: str) -> str:
        u = v.lower()
        if not _USER_ID.match(u):
            raise _Bad(f"{v[:40]!r} is not a user id (2-40 of a-z, 0-9, '.', '_', '-')")
        return u

    def role(v: str) -> str:
        r = _header_key(v)
        if r not in policy.roles:
            raise _Bad(f"{v[:40]!r} is not a role of the policy ({', '.join(policy.roles)})")
        return r

    def job_title(v: str) -> str:
        found = titles.get(" ".join(v.split()).lower())
        if found is None:
            raise _Bad(f"{v[:40]!r} is not a job title the policy allows")
        return found

    def org_type(v: str) -> str:
        t = _header_key(v)
        if t not in _ORG_TYPES:
            raise _Bad(f"{v[:40]!r} is not one of {', '.join(_ORG_TYPES)}")
        return t

    def case_number(v: str) -> str:
        c = v.upper()
        if not re.fullmatch(policy.case_number_pattern, c):
            raise _Bad(f"{v[:40]!r} does not match the case-number format")
        return c

    def offense(v: str) -> str:
        o = _header_key(v)
        if o not in policy.reason_codes:
            raise _Bad(f"{v[:40]!r} is not an offense category of the policy")
        return o

    def assigned(v: str) -> list[str]:
        names = [n.lower() for n in re.split(r"[;,|\s]+", v) if n]
        unknown = [n for n in names if n not in ctx.users]
        if unknown:
            raise _Bad(f"unknown user(s) {', '.join(repr(n[:40]) for n in unknown)}")
        return sorted(set(names))

    def camera_id(v: str) -> str:
        if not _CAMERA_ID.match(v):
            raise _Bad(f"{v[:40]!r} is not a camera id (1-40 letters, digits, '_', '-')")
        return v

    def network_ref(v: str) -> str:
        n = v.lower()
        if n not in ctx.networks:
            raise _Bad(f"network {v[:40]!r} is not registered (import networks first)")
        return n

    def network_id(v: str) -> str:
        n = v.lower()
        if not _NETWORK_ID.match(n):
            raise _Bad(f"{v[:40]!r} is not a network id (2-41 of a-z, 0-9, '_', '-')")
        return n

    def past_moment(v: str) -> dt.datetime:
        return _past(_moment(v, zone), ctx)

    def past_day(v: str) -> dt.date:
        day = _day(v)
        if day > ctx.today:
            raise _Bad(f"{day} is in the future")
        return day

    parsers: dict[str, dict[str, Callable[[str], Any]]] = {
        "users": {
            "user_id": user_id, "full_name": _text, "role": role, "organization": _text,
            "organization_type": org_type, "job_title": job_title, "is_active": _flag,
            "approved_by": _text, "approved_at": past_moment, "trained_at": past_moment,
            "separated_at": lambda v: _moment(v, zone),
        },
        "cases": {
            "case_number": case_number, "title": _text, "offense_type": offense,
            "status": lambda v: _choice(v, _STATUSES, "a case status (open or closed)"),
            "opened_at": past_moment, "closed_at": past_moment, "assigned_user_ids": assigned,
        },
        "cameras": {
            "camera_id": camera_id, "network_id": network_ref, "name": _text,
            "lat": lambda v: _number(v, -90, 90, "latitude"),
            "lon": lambda v: _number(v, -180, 180, "longitude"),
            "direction": lambda v: _choice(v, _DIRECTIONS, "a direction (N, NE, ... NW)"),
            "installed_date": past_day, "removed_date": _day,
        },
        "networks": {
            "network_id": network_id, "name": _text,
            "owner_type": lambda v: _choice(v, _OWNER_TYPES, "city, private business or HOA"),
            "owner_name": _text, "is_department_owned": _flag,
        },
    }  # fmt: skip
    return parsers[table]


#: Fields a new record must have, beyond its id (others get defaults or stay empty).
_REQUIRED = {
    "users": ("full_name", "role", "job_title"),
    "cases": ("title", "offense_type", "opened_at"),
    "cameras": ("network_id", "name", "lat", "lon", "direction", "installed_date"),
    "networks": ("name", "owner_type", "owner_name"),
}
#: Fields an edit may empty (give ``""``).
_CLEARABLE = {
    "users": ("approved_by", "separated_at"),
    "cases": ("closed_at", "assigned_user_ids"),
    "cameras": ("removed_date",),
    "networks": (),
}


def _defaults(table: Table, row: dict[str, Any], ctx: _Context) -> None:
    """Fill a new record's defaults in place."""
    if table == "users":
        row.setdefault("organization", ctx.policy.agency_name)
        row.setdefault("organization_type", ctx.policy.agency_organization_type)
        row.setdefault("is_active", True)
    elif table == "cases":
        row.setdefault("status", "closed" if row.get("closed_at") else "open")
    elif table == "networks":
        row.setdefault("is_department_owned", row.get("owner_type") == "city")
        row["created_at"] = ctx.now


def _record_problems(table: Table, key: str, new: dict[str, Any], old: dict[str, Any] | None,
                     ctx: _Context) -> list[tuple[str, str]]:
    """Rules over a whole record (after merging), as ``(field, message)``."""
    out: list[tuple[str, str]] = []
    changed = {k for k, v in new.items() if old is None or old.get(k) != v}
    if table == "users":
        if key == ctx.actor and changed:
            out.append(("user_id", "you may not change your own record (ask another "
                                   "administrator)"))
        if ctx.policy.is_generic_account(key, new.get("full_name")):
            out.append(("user_id", f"{key!r} looks like a shared or generic account"))
        if old is not None and not ctx.edit:
            if old.get("is_active") is False and new.get("is_active") is True:
                out.append(("is_active", f"{key!r} is disabled; an import does not re-enable "
                                         "a user (use `users edit`)"))
            if old.get("separated_at") is not None and new.get("separated_at") != old.get(
                "separated_at"
            ):
                out.append(("separated_at", f"{key!r} has separated; an import does not change "
                                            "a separation (use `users edit`)"))
        approved = new.get("approved_at")
        separated = new.get("separated_at")
        if separated is not None and approved is not None and separated < approved:
            out.append(("separated_at", "is before the access approval"))
    elif table == "cases":
        assigned = new.get("assigned_user_ids") or []
        before = (old or {}).get("assigned_user_ids") or []
        if ctx.actor in assigned and ctx.actor not in before:
            out.append(("assigned_user_ids", "you may not assign yourself to a case (ask "
                                             "another administrator)"))
        status, closed, opened = new.get("status"), new.get("closed_at"), new.get("opened_at")
        if old is not None and not ctx.edit and old.get("status") == "closed" and status == "open":
            out.append(("status", f"case {key!r} is closed; an import does not reopen a case "
                                  "(use `cases edit`)"))
        if status == "open" and closed is not None:
            out.append(("closed_at", "an open case has no closing date"))
        if closed is not None and opened is not None and closed < opened:
            out.append(("closed_at", "is before the case was opened"))
    elif table == "cameras":
        installed, removed = new.get("installed_date"), new.get("removed_date")
        if removed is not None and installed is not None and removed < installed:
            out.append(("removed_date", "is before the installation"))
        if new.get("lat") == 0 and new.get("lon") == 0:
            out.append(("lat", "0, 0 is not a camera's place"))
    elif table == "networks":
        # Judged against the stored record too: otherwise renaming a private network's
        # operator to the city in the same edit makes it department-owned, searched with no
        # grant (docs/policy.md#a4).
        before = (old or {}).get("owner_type")
        if old is not None and before != "city" and new.get("owner_type") == "city":
            out.append(("owner_type", f"network {key!r} is privately operated ({before}); "
                                      "an edit does not hand it to the city: add the city's "
                                      "cameras under a city network, or share this one by a "
                                      "grant (`grants add`)"))
        elif new.get("is_department_owned") and new.get("owner_type") != "city":
            out.append(("is_department_owned", "a privately operated network is never "
                                               "department-owned: its owner shares it by a "
                                               "grant (`grants add`)"))
    return out


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def _context(store: Store, table: Table, *, actor: str, policy: Policy,
             now: dt.datetime, edit: bool) -> tuple[_Context, pl.DataFrame]:
    current = store.tables.read(table)
    key = KEYS[table]
    stored = {str(r[key]): r for r in current.iter_rows(named=True)}
    users = set(store.tables.read("users")["user_id"].to_list())
    networks = set(store.tables.read("networks")["network_id"].to_list())
    ctx = _Context(store, policy, now, actor, zoneinfo.ZoneInfo(policy.timezone), stored,
                   users, networks, edit)
    return ctx, current


def _plan(
    parsed: OnboardingFile, ctx: _Context
) -> tuple[dict[str, dict[str, Any]], OnboardingResult, list[tuple[int, str, str]]]:
    """Check every line; return the merged records to write, the result and the problems."""
    table = _require_table(parsed.table)
    key_field = KEYS[table]
    parsers = _field_parsers(table, ctx)
    problems = list(parsed.problems)
    merged: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    created: list[str] = []
    changed: dict[str, dict[str, list[str | None]]] = {}
    unchanged: list[str] = []
    for line, cells in parsed.rows:
        values: dict[str, Any] = {}
        bad = False
        for name, cell in cells.items():
            if cell is None:
                if ctx.edit and name in _CLEARABLE[table]:
                    values[name] = None
                elif ctx.edit and name != key_field:
                    problems.append((line, name, f"{name} may not be emptied"))
                    bad = True
                continue
            try:
                values[name] = parsers[name](cell)
            except _Bad as exc:
                problems.append((line, name, str(exc)))
                bad = True
        key = values.get(key_field)
        if key is None:
            if not bad:
                problems.append((line, key_field, f"{key_field} is missing"))
            continue
        if key in first_line:
            problems.append((line, key_field, f"{key!r} is listed again (first on line "
                                              f"{first_line[key]})"))
            continue
        first_line[key] = line
        old = ctx.stored.get(key)
        if ctx.edit and old is None:
            problems.append((line, key_field, f"unknown {table[:-1]} {key!r}"))
            continue
        new = dict(old) if old is not None else {}
        if table == "cases" and new.get("assigned_user_ids") is not None:
            new["assigned_user_ids"] = list(new["assigned_user_ids"])
        new.update(values)
        if old is None:
            _defaults(table, new, ctx)
            # A field given but bad is named once, as bad, not again as missing.
            missing = [f for f in _REQUIRED[table] if new.get(f) is None and cells.get(f) is None]
            problems.extend((line, f, f"{f} is missing (needed for a new record)")
                            for f in missing)
            if missing:
                continue
        if table == "cases" and new.get("status") == "closed" and new.get("closed_at") is None:
            new["closed_at"] = ctx.now
        if bad:
            continue
        problems.extend((line, f, m) for f, m in _record_problems(table, key, new, old, ctx))
        merged[key] = new
        if old is None:
            created.append(key)
        else:
            diff = {f: [_show(old.get(f)), _show(v)] for f, v in new.items()
                    if _show(old.get(f)) != _show(v)}
            if diff:
                changed[key] = diff
            else:
                unchanged.append(key)
    result = OnboardingResult(table, len(parsed.rows), tuple(created), changed,
                              tuple(unchanged), parsed.ignored)
    return merged, result, problems


def _audit(audit: AuditAppend, event_type: str, actor: str, now: dt.datetime,
           details: dict[str, Any], problem: str | None = None, rows: int | None = None,
           case_number: str | None = None) -> str | None:
    record = audit({
        "event_type": event_type, "occurred_at": now, "user_id": actor,
        "case_number": case_number,
        "query_json": json.dumps(details, default=str, sort_keys=True),
        "outcome": "refused" if problem else "allowed", "refusal_reason": problem,
        "row_count": rows,
    })  # fmt: skip
    event_id = getattr(record, "event_id", None)
    return str(event_id) if event_id is not None else None


def _check_actor(store: Store, audit: AuditAppend, *, event_type: str, actor: str, action: str,
                 details: dict[str, Any], policy: Policy, now: dt.datetime,
                 permission: Permission = _PERMISSION) -> None:
    problem = actor_problem(store, actor=actor, permission=permission, action=action,
                            policy=policy, now=now)
    if problem is not None:
        _audit(audit, event_type, actor, now, details, problem)
        raise AdminRefused(problem)


def _write(store: Store, table: Table, current: pl.DataFrame,
           merged: dict[str, dict[str, Any]]) -> None:
    """Replace the table with the merged records (one atomic write; kept order, new last)."""
    if not merged:
        return
    key = KEYS[table]
    rows = [merged.get(str(r[key]), r) for r in current.iter_rows(named=True)]
    known = {str(r[key]) for r in current.iter_rows(named=True)}
    rows += [r for k, r in merged.items() if k not in known]
    store.tables.write(table, pl.DataFrame(rows, schema=current.schema))


def _apply(store: Store, audit: AuditAppend, parsed: OnboardingFile, *, action: str, actor: str,
           policy: Policy, now: dt.datetime, edit: bool,
           extra: dict[str, Any] | None = None) -> OnboardingResult:
    table = _require_table(parsed.table)
    event_type = IMPORT_EVENT_TYPES[table]
    base: dict[str, Any] = {"action": action, "table": table, "source": parsed.name,
                            "rows_read": len(parsed.rows), **(extra or {})}
    _check_actor(store, audit, event_type=event_type, actor=actor,
                 action=f"{action.replace('_', ' ')}", details=base, policy=policy, now=now)
    ctx, current = _context(store, table, actor=actor, policy=policy, now=now, edit=edit)
    merged, result, problems = _plan(parsed, ctx)
    if problems:
        error = ImportFileError(parsed.name, problems)
        shown = [f"line {ln}, {f}: {m}" for ln, f, m in error.problems[:50]]
        lines = len({ln for ln, _, _ in problems})
        _audit(audit, event_type, actor, now, {**base, "problems": shown},
               f"{len(problems)} problem(s) on {lines} line(s); nothing was written")
        raise error
    try:
        _write(store, table, current, merged)
    except WorkbenchError as exc:
        _audit(audit, event_type, actor, now, base, str(exc))
        raise
    details = {**base, **result.to_dict()}
    case = None
    if table == "cases" and len(merged) == 1:
        case = next(iter(merged))
    event_id = _audit(audit, event_type, actor, now, details,
                      rows=len(result.created) + len(result.changed), case_number=case)
    return OnboardingResult(result.table, result.rows_read, result.created, result.changed,
                            result.unchanged, result.ignored_columns, event_id)


def import_csv(
    store: Store,
    audit: AuditAppend,
    table: str,
    data: bytes,
    *,
    actor: str,
    policy: Policy,
    now: dt.datetime,
    name: str = "upload.csv",
) -> OnboardingResult:
    """Import users, cases, cameras or networks from a CSV export: all lines, or none.

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    table
        ``users``, ``cases``, ``cameras`` or ``networks``.
    data
        The CSV file's bytes; headers as in :data:`HEADERS` (examples/README.md).
    actor
        The acting user; needs the ``administer`` permission.
    policy
        The policy giving the roles, job titles, offense categories, case-number format and
        time zone (a date or time without a zone is the department's local time).
    now
        Current time (UTC).
    name
        The file's name, for messages and the audit record.

    Returns
    -------
    OnboardingResult
        Records created, changed (field by field, before and after) and unchanged.

    Raises
    ------
    AdminRefused
        When the actor may not administer (audited).
    ImportFileError
        When any line is bad: every bad line is named, nothing is written (audited).
    """
    try:
        parsed = read_onboarding_csv(table, data, name=name)
    except ImportFileError as exc:  # an unreadable file is refused like a bad line (audited)
        parsed = OnboardingFile(_require_table(table), name, [], problems=list(exc.problems))
    return _apply(store, audit, parsed, action=f"import_{parsed.table}", actor=actor,
                  policy=policy, now=now, edit=False)


def edit_record(
    store: Store,
    audit: AuditAppend,
    table: str,
    key: str,
    changes: dict[str, str],
    *,
    actor: str,
    policy: Policy,
    now: dt.datetime,
    reason: str = "",
) -> OnboardingResult:
    """Change fields of one known record, checked like an import line (audited).

    Values are text, as in a CSV cell (``""`` empties a field that may be empty, e.g. a
    camera's ``removed_date``). An edit may re-enable a user, clear a separation or reopen a
    case, which an import never does.

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    table
        ``users``, ``cases``, ``cameras`` or ``networks``.
    key
        The record's id.
    changes
        Field name (or a recognised header spelling) to new value.
    actor
        The acting user; needs the ``administer`` permission.
    policy
        The policy (roles, job titles, offense categories, time zone).
    now
        Current time (UTC).
    reason
        Why, kept in the audit record.

    Returns
    -------
    OnboardingResult
        With the record in ``changed`` (or ``unchanged``).

    Raises
    ------
    AdminRefused
        When the actor may not administer (audited).
    ImportFileError
        When the record is unknown, a field unknown or a value bad (audited).
    """
    table = _require_table(table)
    lookup = _header_lookup(table)
    key_field = KEYS[table]
    cells: dict[str, str | None] = {key_field: key}
    problems: list[tuple[int, str, str]] = []
    editable = ", ".join(f for f in HEADERS[table] if f != key_field)
    for name, value in changes.items():
        target = lookup.get(header_key(name))
        if target is None or target == key_field:
            problems.append((2, name[:40], f"{name[:40]!r} is not a field that can be edited "
                                           f"({editable})"))
            continue
        cells[target] = value.strip() or None
    if not changes:
        problems.append((2, "changes", "no change given"))
    parsed = OnboardingFile(table, f"{table[:-1]} {key[:60]}", [(2, cells)], (), problems)
    return _apply(store, audit, parsed, action=f"edit_{table}", actor=actor, policy=policy,
                  now=now, edit=True, extra={"key": key[:80], "reason": reason[:500]})


def separate_user(
    store: Store,
    audit: AuditAppend,
    user_id: str,
    *,
    actor: str,
    policy: Policy,
    now: dt.datetime,
    separated_at: dt.datetime | None = None,
    reason: str = "",
) -> OnboardingResult:
    """Record that a user left the department: separated and disabled at once (audited).

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    user_id
        The user who left.
    actor
        The acting user; needs ``administer`` and may not separate themselves.
    policy
        The policy.
    now
        Current time (UTC).
    separated_at
        When (UTC; default: now).
    reason
        Why, kept in the audit record.

    Returns
    -------
    OnboardingResult
        The change made.

    Raises
    ------
    AdminRefused, ImportFileError
        As :func:`edit_record`.
    """
    when = (separated_at or now).astimezone(dt.UTC).isoformat()
    return edit_record(store, audit, "users", user_id,
                       {"separated_at": when, "is_active": "no"}, actor=actor, policy=policy,
                       now=now, reason=reason or "separated")


def close_case(
    store: Store,
    audit: AuditAppend,
    case_number: str,
    *,
    actor: str,
    policy: Policy,
    now: dt.datetime,
    reason: str = "",
) -> OnboardingResult:
    """Close an open case now: no search may name it afterwards (audited).

    Raises
    ------
    AdminRefused
        When the actor may not administer (audited).
    ImportFileError
        When the case is unknown or already closed (audited).
    """
    stored = store.tables.read("cases").filter(pl.col("case_number") == case_number)
    if stored.height and stored["status"][0] == "closed":
        parsed = OnboardingFile("cases", f"case {case_number[:60]}", [],
                         problems=[(2, "status", f"case {case_number!r} is already closed")])
    else:
        parsed = OnboardingFile("cases", f"case {case_number[:60]}", [(2, {
            "case_number": case_number, "status": "closed",
            "closed_at": now.astimezone(dt.UTC).isoformat()})])
    return _apply(store, audit, parsed, action="close_case", actor=actor, policy=policy,
                  now=now, edit=True, extra={"key": case_number[:80], "reason": reason[:500]})


def review_legal_hold(
    store: Store,
    audit: AuditAppend,
    hold_id: str,
    *,
    review_by_date: dt.date,
    reason: str,
    actor: str,
    policy: Policy,
    now: dt.datetime,
) -> dt.date:
    """Review a legal hold: keep it until a new review date, saying why (audited).

    Parameters
    ----------
    store, audit
        The store and the audit sink.
    hold_id
        A hold in force (not released).
    review_by_date
        The next review; after today.
    reason
        Why the reads must still be kept.
    actor
        The acting user; needs ``manage_legal_holds``.
    policy
        The policy giving the roles.
    now
        Current time (UTC).

    Returns
    -------
    datetime.date
        The review date it replaced.

    Raises
    ------
    AdminRefused
        When the actor may not manage legal holds, the hold is unknown or released, the date
        not in the future or the reason empty (audited as a refused ``hold`` event).
    """
    details: dict[str, Any] = {"action": "review_hold", "hold_id": hold_id[:80],
                               "review_by_date": review_by_date, "reason": reason[:1000]}
    _check_actor(store, audit, event_type="hold", actor=actor, action="review a legal hold",
                 details=details, policy=policy, now=now, permission="manage_legal_holds")
    holds = store.tables.read("legal_holds")
    row = holds.filter(pl.col("hold_id") == hold_id)
    problem: str | None = None
    if row.is_empty():
        problem = f"unknown hold {hold_id[:80]!r}"
    elif row["released_at"][0] is not None:
        problem = f"legal hold {hold_id!r} was released; there is nothing to review"
    elif review_by_date <= now.date():
        problem = "the new review date must be in the future"
    elif not reason.strip():
        problem = "a review needs a reason"
    elif reason.strip().startswith(FORMULA_TRIGGERS):
        problem = "the reason starts like a spreadsheet formula"
    case = None if row.is_empty() else str(row["case_number"][0])
    if problem is not None:
        _audit(audit, "hold", actor, now, details, problem, case_number=case)
        raise AdminRefused(problem)
    old: dt.date = row["review_by_date"][0]
    store.tables.write(
        "legal_holds",
        holds.with_columns(
            pl.when(pl.col("hold_id") == hold_id)
            .then(pl.lit(review_by_date, dtype=pl.Date))
            .otherwise(pl.col("review_by_date"))
            .alias("review_by_date")
        ),
    )
    _audit(audit, "hold", actor, now, {**details, "old_review_by_date": old}, rows=0,
           case_number=case)
    return old


def list_records(store: Store, table: str) -> pl.DataFrame:
    """The whole table, sorted by id (for the administrators' list commands)."""
    name = _require_table(table)
    return store.tables.read(name).sort(KEYS[name])
