"""Import a vendor's exported search log (Flock audit CSVs) as ``audit_events`` rows.

Two layouts are recognised from their header names, whatever their order, case or
punctuation, and whatever extra columns they carry:

* ``flock_org_audit``: the Organization / Network Audit export (``ID, Name, Org Name,
  Total Networks Searched, Time Frame, License Plate, Reason, Case #, Filters, Search Time,
  Search Type, Text Prompt, Moderation`` and optionally ``Total Devices Searched``,
  ``Offense Type``), including copies whose columns were renamed (``Org_Name``) or dropped by a
  redaction, and whose ``Time Frame`` was split into start and end columns;
* ``flock_public_search_audit``: the transparency portal's "Public Search Audit"
  (``id, userId, searchDate, cameraCount`` or ``networkCount``, ``reason``, optionally a case
  number and offense type).

Every record of the file ends up either in ``events`` or in ``rejected`` (with the physical
line where the record starts and the reason), so ``len(events) + len(rejected) == rows_read``.
Times without a zone are read as UTC, which is what Flock exports use.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.vendor_profiles import header_key, load_vendor_profiles
from alpr_workbench.schema import empty_frame, validate_frame

__all__ = ["VendorImport", "classify_organization", "read_vendor_audit"]

ORG_AUDIT = "flock_org_audit"
PUBLIC_AUDIT = "flock_public_search_audit"

# Which header names mean which field, and how the format is told from the header, are
# declared once, as data, in vendor_profiles.yaml (governance/vendor_profiles.py).
_TIMESTAMP = re.compile(
    r"\d{1,2}/\d{1,2}/\d{4},?\s+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[AaPp]\.?[Mm]\.?)?"
    r"(?:\s*(?:UTC|GMT|Z))?"
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})?"
)
_US_FORMATS = (
    "%m/%d/%Y, %I:%M:%S %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y, %I:%M %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y, %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y, %H:%M",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y, %I:%M:%S.%f %p",
    "%m/%d/%Y %H:%M:%S.%f",
)


@dataclass(frozen=True)
class VendorImport:
    """A vendor audit export read into audit events.

    Attributes
    ----------
    format
        ``"flock_org_audit"`` or ``"flock_public_search_audit"``.
    rows_read
        Records in the file after the header (blank lines are not records).
    events
        One ``audit_events`` row per accepted record (``event_type`` ``"vendor_search"``),
        already conformed by :func:`alpr_workbench.schema.validate_frame`.
    rejected
        The records that could not be read: ``line`` (the physical line, 1-based, where the
        record starts), ``reason`` and ``raw`` (the record's text as in the file).
    columns
        Canonical field (``vendor_profiles.yaml``) -> the key of its cell in each event's
        ``query_json`` (the header name as in the file), for the fields the file has.
    """

    format: str
    rows_read: int
    events: pl.DataFrame
    rejected: pl.DataFrame
    columns: dict[str, str] = dataclasses.field(default_factory=dict)


class _RowError(ValueError):
    """A record that cannot become an event; the message says why."""


def _parse_time(text: str, what: str) -> dt.datetime:
    """Read one timestamp as UTC; naive times are taken as UTC (Flock exports use UTC)."""
    raw = " ".join(text.split())
    if not raw:
        raise _RowError(f"missing {what}")
    value = re.sub(r"\s*(?:UTC|GMT)$", "", raw, flags=re.IGNORECASE)
    value = re.sub(r"([AaPp])\.?([Mm])\.?$", r"\1\2", value).upper()
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        for fmt in _US_FORMATS:
            try:
                parsed = dt.datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise _RowError(f"unreadable {what} {raw!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _parse_window(
    frame: str | None, start: str | None, end: str | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The searched window, from one ``Time Frame`` cell or from start/end cells; else nulls."""
    if start or end:
        parts = [start or "", end or ""]
    else:
        parts = _TIMESTAMP.findall(frame or "")
        if len(parts) != 2:
            return None, None
    out: list[dt.datetime | None] = []
    for part in parts:
        try:
            out.append(_parse_time(part, "time frame"))
        except _RowError:
            out.append(None)
    return out[0], out[1]


def _parse_count(text: str | None, what: str) -> int | None:
    if text is None or not text.strip():
        return None
    value = text.strip().replace(",", "").replace("_", "")
    try:
        number = float(value)
    except ValueError:
        raise _RowError(f"{what} is not a number: {text.strip()!r}") from None
    if number != int(number) or number < 0:
        raise _RowError(f"{what} is not a whole number >= 0: {text.strip()!r}")
    if number > 2**31 - 1:
        raise _RowError(f"{what} is too large: {text.strip()!r}")
    return int(number)


def _blank_to_none(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def _records(text: str) -> Iterator[tuple[int, list[str], str, str | None]]:
    """(first physical line, fields, raw text, csv error) of every record.

    Quoted cells spanning several lines stay in one record; a record the csv module cannot
    parse (a NUL byte...) comes back with its error so that it can be rejected, not lost.
    """
    lines = list(io.StringIO(text, newline=""))
    reader = csv.reader(io.StringIO(text, newline=""))
    previous_end = 0
    while True:
        error: str | None = None
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields, error = [], f"unreadable CSV record: {exc}"
        start, previous_end = previous_end + 1, max(reader.line_num, previous_end + 1)
        raw = "".join(lines[start - 1 : previous_end]).rstrip("\r\n")
        if error is None and previous_end >= len(lines) and raw.count('"') % 2:
            # An opening quote that is never closed swallows the rest of the file.
            error = "unterminated quoted field (it runs to the end of the file)"
        yield start, fields, raw, error


def read_vendor_audit(path: Path, *, organization: str | None = None) -> VendorImport:
    r"""Read a vendor's exported search-audit CSV into audit events.

    Parameters
    ----------
    path
        The CSV file (UTF-8, with or without a byte-order mark).
    organization
        Organization to record when the file has no organization column, or the cell is
        blank (the portal's export and redacted copies have none).

    Returns
    -------
    VendorImport
        The detected format, the number of records read, the events (``outcome``
        ``"allowed"``, or ``"refused"`` when the vendor's moderation blocked the search) and
        the rejected records with their line and reason.

    Raises
    ------
    WorkbenchError
        If the file cannot be read, is empty, or its header lacks the columns of a search
        audit (the message names them).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "audit.csv").write_text(
    ...     "id,userId,searchDate,networkCount,reason\n"
    ...     "a1,u1,2025-06-18 00:02:04.789,3,stolen vehicle\n"
    ...     "a2,u1,yesterday,3,robbery\n"
    ... )
    >>> result = read_vendor_audit(folder / "audit.csv", organization="Eugene OR PD")
    >>> result.format, result.rows_read, result.events.height
    ('flock_public_search_audit', 2, 1)
    >>> result.events.row(0, named=True)["organization_type"]
    'out_of_state'
    >>> result.rejected.row(0)
    (3, "unreadable search time 'yesterday'", 'a2,u1,yesterday,3,robbery')
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise WorkbenchError(f"cannot read vendor audit {path}: {exc}") from exc
    records = _records(text)
    header_record = next(records, None)
    while header_record is not None and not any(f.strip() for f in header_record[1]):
        if header_record[3] is not None:
            raise WorkbenchError(f"vendor audit {path}: {header_record[3]} on line 1")
        header_record = next(records, None)
    if header_record is None:
        raise WorkbenchError(f"vendor audit {path} is empty: no header row")
    header = [h.strip() for h in header_record[1]]
    mapping = load_vendor_profiles().map_header(header)
    columns, fmt = mapping.columns, mapping.format
    if mapping.missing:
        raise WorkbenchError(
            f"{path.name} is not a recognisable vendor search audit: missing column(s) "
            f"{', '.join(mapping.missing)} (found {', '.join(repr(h) for h in header) or 'none'})"
        )
    # Disambiguate repeated header names so the raw row keeps every cell in query_json.
    keys: list[str] = []
    for name in header:
        key, n = name or "column", 2
        while key in keys:
            key, n = f"{name}_{n}", n + 1
        keys.append(key)
    header_keys = [header_key(h) for h in header]

    events: list[dict[str, Any]] = []
    rejected: list[tuple[int, str, str]] = []
    seen_ids: dict[str, int] = {}
    rows_read = 0
    for line, fields, raw, error in records:
        if error is None and not any(f.strip() for f in fields):
            continue  # a blank line is not a record
        rows_read += 1
        try:
            if error is not None:
                raise _RowError(error)
            events.append(
                _event(fmt, line, fields, raw, keys, header_keys, columns, organization, seen_ids)
            )
        except _RowError as exc:
            rejected.append((line, str(exc), raw))

    frame = pl.DataFrame(events, schema=empty_frame("audit_events").schema)
    return VendorImport(
        format=fmt,
        rows_read=rows_read,
        events=validate_frame("audit_events", frame),
        rejected=pl.DataFrame(
            rejected,
            schema={"line": pl.Int64, "reason": pl.String, "raw": pl.String},
            orient="row",
        ),
        columns={name: keys[i] for name, i in columns.items()},
    )


def _event(
    fmt: str,
    line: int,
    fields: list[str],
    raw: str,
    keys: list[str],
    header_keys: list[str],
    columns: dict[str, int],
    organization: str | None,
    seen_ids: dict[str, int],
) -> dict[str, Any]:
    """One record as an ``audit_events`` row; raises _RowError when it is malformed."""
    if [header_key(f) for f in fields] == header_keys:
        raise _RowError("repeated header row")
    if len(fields) != len(keys):
        # Trailing empty cells (a trailing comma) are harmless; anything else is not.
        if len(fields) < len(keys) or any(f.strip() for f in fields[len(keys) :]):
            raise _RowError(f"expected {len(keys)} fields, found {len(fields)}")
        fields = fields[: len(keys)]

    def cell(field: str) -> str | None:
        return _blank_to_none(fields[columns[field]]) if field in columns else None

    occurred_at = _parse_time(cell("search_time") or "", "search time")
    search_id = cell("search_id")
    if "search_id" in columns:
        if search_id is None:
            raise _RowError("missing search id")
        if search_id in seen_ids:
            raise _RowError(
                f"duplicate search id {search_id!r} (first on line {seen_ids[search_id]})"
            )
        seen_ids[search_id] = line
        event_id = f"{fmt}:{search_id}"
    else:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
        event_id = f"{fmt}:line{line}:{digest}"
    networks = _parse_count(cell("networks"), "networks searched")
    _parse_count(cell("devices"), "devices searched")  # checked; kept in query_json
    window_from, window_to = _parse_window(
        fields[columns["time_frame"]] if "time_frame" in columns else None,
        cell("time_frame_start"),
        cell("time_frame_end"),
    )
    org = cell("organization") or _blank_to_none(organization)
    moderation = (cell("moderation") or "").lower()
    blocked = moderation in {"block", "blocked", "deny", "denied"}
    return {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "event_type": "vendor_search",
        "user_id": cell("user"),
        "organization": org,
        "organization_type": classify_organization(org),
        "case_number": cell("case_number"),
        "reason_code": cell("offense_type"),
        "reason_text": cell("reason"),
        "plate_queried": cell("plate"),
        "window_from": window_from,
        "window_to": window_to,
        "networks_searched": networks,
        "query_json": json.dumps(dict(zip(keys, fields, strict=True)), ensure_ascii=False),
        "outcome": "refused" if blocked else "allowed",
        "refusal_reason": f"vendor moderation: {cell('moderation')}" if blocked else None,
        "row_count": None,
    }


# --- organizations ---------------------------------------------------------------------------

_STATES = {
    "AL": "alabama",
    "AK": "alaska",
    "AZ": "arizona",
    "AR": "arkansas",
    "CO": "colorado",
    "CT": "connecticut",
    "DE": "delaware",
    "FL": "florida",
    "GA": "georgia",
    "HI": "hawaii",
    "ID": "idaho",
    "IL": "illinois",
    "IN": "indiana",
    "IA": "iowa",
    "KS": "kansas",
    "KY": "kentucky",
    "LA": "louisiana",
    "ME": "maine",
    "MD": "maryland",
    "MA": "massachusetts",
    "MI": "michigan",
    "MN": "minnesota",
    "MS": "mississippi",
    "MO": "missouri",
    "MT": "montana",
    "NE": "nebraska",
    "NV": "nevada",
    "NH": "new hampshire",
    "NJ": "new jersey",
    "NM": "new mexico",
    "NY": "new york",
    "NC": "north carolina",
    "ND": "north dakota",
    "OH": "ohio",
    "OK": "oklahoma",
    "OR": "oregon",
    "PA": "pennsylvania",
    "RI": "rhode island",
    "SC": "south carolina",
    "SD": "south dakota",
    "TN": "tennessee",
    "TX": "texas",
    "UT": "utah",
    "VT": "vermont",
    "VA": "virginia",
    "WA": "washington",
    "WV": "west virginia",
    "WI": "wisconsin",
    "WY": "wyoming",
    "DC": "district of columbia",
    "PR": "puerto rico",
}
_FEDERAL_WORDS = {
    "federal",
    "hsi",
    "ice",
    "cbp",
    "fbi",
    "dea",
    "atf",
    "usbp",
    "uscis",
    "usms",
    "usss",
    "dhs",
    "ero",
    "tsa",
    "uspis",
    "ncis",
    "usdoj",
    "usao",
}
_FEDERAL_PHRASES = (
    "us marshal",
    "united states",
    "homeland security",
    "border patrol",
    "customs and border",
    "immigration and customs",
    "secret service",
    "bureau of alcohol",
    "drug enforcement",
    "federal bureau",
    "us attorney",
    "us department of",
    "department of justice",
    "us forest service",
    "national park service",
    "postal inspection",
    "us army",
    "us navy",
    "us air force",
    "us coast guard",
)
_CA_STATE_PHRASES = (
    "chp",
    "california highway patrol",
    "ca highway patrol",
    "california department",
    "ca department",
    "ca doj",
    "california doj",
    "california attorney general",
    "cal fire",
    "cdcr",
    "ca dmv",
    "california dmv",
    "state of california",
    "california state",
    "ca state parole",
    "california state parks",
)
_PRIVATE_WORDS = {
    "inc",
    "llc",
    "corp",
    "corporation",
    "company",
    "ltd",
    "hoa",
    "homeowners",
    "apartments",
    "mall",
    "store",
    "stores",
    "bail",
    "bonds",
    "repossession",
    "towing",
    "security",
    "property",
    "properties",
    "management",
    "residents",
    "community",
    "lowes",
    "depot",
    "walmart",
    "target",
    "business",
    "shopping",
}
_LOCAL_WORDS = {
    "pd",
    "police",
    "sheriff",
    "sheriffs",
    "so",
    "sd",
    "county",
    "city",
    "da",
    "marshal",
    "district",
    "attorney",
    "constable",
    "dept",
    "department",
    "lapd",
    "lasd",
    "public",
    "safety",
    "probation",
    "parole",
}


def classify_organization(name: str | None) -> str | None:
    """Classify an organization name for the sharing rules of Civil Code 1798.90.55.

    Parameters
    ----------
    name
        The organization as a vendor names it (``"Okaloosa County FL SO"``, ``"HSI Los
        Angeles"``, ``"Glendale PD"``).

    Returns
    -------
    str or None
        ``"federal"``, ``"out_of_state"`` (a US state other than California, by full name
        or by an upper-case two-letter code after the place name), ``"ca_state_agency"``,
        ``"private"``, ``"ca_local_agency"`` (a police department, sheriff, city or county
        that names no other state), or ``None`` when the name says nothing usable.

    Examples
    --------
    >>> [classify_organization(n) for n in ("Eugene OR PD", "HSI", "CHP", "Glendale PD")]
    ['out_of_state', 'federal', 'ca_state_agency', 'ca_local_agency']
    >>> classify_organization("LA County Sheriff"), classify_organization("Acme HOA")
    ('ca_local_agency', 'private')
    >>> classify_organization("") is None
    True
    """
    if name is None or not name.strip():
        return None
    original = re.sub(r"\b([A-Za-z])\.(?=[A-Za-z]\.)", r"\1", name)  # U.S. -> US
    original = original.replace(".", "")
    cased = re.findall(r"[A-Za-z0-9]+", original)
    words = [w.lower() for w in cased]
    text = " " + " ".join(words) + " "
    word_set = set(words)
    if any(f" {p} " in text for p in _CA_STATE_PHRASES):
        return "ca_state_agency"
    if (
        "[federal]" in name.lower()
        or word_set & _FEDERAL_WORDS
        or words[:1] == ["us"]
        or any(f" {p} " in text for p in _FEDERAL_PHRASES)
    ):
        return "federal"
    # Out of state: a full state name that is not part of a county or city name ("Nevada
    # County" and "Nevada City" are in California), or an upper-case code after a place name
    # ("Eugene OR PD"; "LA County" and "Port of LA" are Los Angeles).
    for state in _STATES.values():
        at = text.find(f" {state} ")
        while at >= 0:
            after = text[at + len(state) + 2 :].split(" ", 1)[0]
            if after not in {"county", "city", "co"}:
                return "out_of_state"
            at = text.find(f" {state} ", at + 1)
    for i, word in enumerate(cased):
        if i == 0 or word not in _STATES:
            continue
        after = words[i + 1] if i + 1 < len(words) else ""
        before = words[i - 1]
        if word == "LA" and (after in {"county", "city"} or before == "of"):
            continue
        if word == "CO" and after in {"so", "sd", "sheriff", "sheriffs"}:
            continue  # "Kern CO SO": CO is "county" here
        return "out_of_state"
    if word_set & _PRIVATE_WORDS and not word_set & {"pd", "police", "sheriff", "so"}:
        return "private"
    if word_set & _LOCAL_WORDS or "california" in word_set or "CA" in cased:
        return "ca_local_agency"
    return None
