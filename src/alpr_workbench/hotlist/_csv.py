"""Read a state stolen-vehicle list or an NCIC-style extract from CSV."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench.hotlist._common import (
    FEED_DEFAULTS,
    HotlistFileError,
    is_never_alert,
    normalize_category,
    require_utc,
    stable_id,
)
from alpr_workbench.plates import normalize_plate
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.schema import validate_frame

#: Header spellings recognised for each entry field (compared after lower-casing and turning
#: every run of other characters into ``_``). NCIC mnemonics (LIC, LIS, LIT, VMA, VMO, VCO,
#: OCA, ORI, DOT) are included.
# fmt: off
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "plate": (
        "plate", "license_plate", "licence_plate", "lic", "lic_plate", "lic_no", "lic_num",
        "plate_number", "plate_no", "plate_num", "license", "license_number", "license_no",
        "license_plate_number", "tag", "tag_number", "tag_no", "lpn", "registration",
        "registration_number", "vrm",
    ),
    "plate_state": (
        "plate_state", "state", "lis", "lic_state", "license_state", "licence_state",
        "issuing_state", "registration_state", "reg_state", "tag_state",
    ),
    "plate_type": (
        "plate_type", "lit", "lic_type", "license_type", "licence_type", "tag_type",
        "registration_type",
    ),
    "vin": ("vin", "vin_number", "vehicle_identification_number", "vehicle_vin"),
    "vehicle_make": ("vehicle_make", "make", "vma", "veh_make"),
    "vehicle_model": ("vehicle_model", "model", "vmo", "veh_model"),
    "vehicle_color": ("vehicle_color", "vehicle_colour", "color", "colour", "vco", "veh_color"),
    "theft_date": (
        "theft_date", "date_of_theft", "dot", "stolen_date", "date_stolen", "theft",
    ),
    "originating_agency": (
        "originating_agency", "agency", "ori", "orig_agency", "originating_agency_name",
        "entering_agency", "originating_ori", "agency_name",
    ),
    "originating_case_number": (
        "originating_case_number", "oca", "case_number", "case_no", "case", "agency_case_number",
        "orig_case_number", "originating_case", "report_number",
    ),
    "category": (
        "category", "record_category", "record_type", "offense", "offense_category",
        "hotlist_category", "alert_type", "reason_code",
    ),
    "expires_at": (
        "expires_at", "expiry", "expiry_date", "expires", "expiration", "expiration_date",
        "expire_date", "purge_date", "valid_until",
    ),
    "value_usd": ("value_usd", "value", "vehicle_value", "estimated_value", "est_value"),
    "reason": ("reason", "remarks", "notes", "mis", "miscellaneous"),
    "priority": ("priority", "alert_priority"),
}
# fmt: on
_HEADER_LOOKUP = {alias: field for field, aliases in HEADER_SYNONYMS.items() for alias in aliases}
#: Columns known but not stored (record numbers of the feed, its entry times).
_KNOWN_UNUSED = ("nic", "entered_at", "date_entered", "entry_date", "record_id", "id")
#: Priority of a category when the file gives none (1 is highest).
_PRIORITY = {"felony_warrant": 1, "amber_alert": 1, "missing_person": 1}
_DATE_FORMATS = ("%m/%d/%Y", "%Y/%m/%d", "%m-%d-%Y")
_DATETIME_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p")


@dataclass(frozen=True)
class HotlistImport:
    """A hotlist file read and checked, ready for :func:`load_hotlist`.

    Attributes
    ----------
    hotlist
        One row of the ``hotlists`` table describing the list.
    entries
        Its entries (``hotlist_entries`` schema), never-alert categories already removed.
    dropped
        Rows removed because their category must never alert, counted per category as given.
    rows_read
        Data rows in the file.
    ignored_columns
        Header names that were not recognised and were not imported.
    """

    hotlist: pl.DataFrame
    entries: pl.DataFrame
    dropped: dict[str, int]
    rows_read: int
    ignored_columns: tuple[str, ...] = ()


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _map_headers(path: Path, columns: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Map file columns to entry fields; refuse a header that names a field twice."""
    mapping: dict[str, str] = {}
    problems: list[tuple[int, str, str]] = []
    ignored: list[str] = []
    for col in columns:
        key = _header_key(col)
        field = _HEADER_LOOKUP.get(key)
        if field is None:
            if key not in _KNOWN_UNUSED:
                ignored.append(col)
            continue
        if field in mapping.values():
            other = next(c for c, f in mapping.items() if f == field)
            problems.append((1, col, f"names {field!r} again (already given by {other!r})"))
            continue
        mapping[col] = field
    if "plate" not in mapping.values():
        problems.append(
            (
                1,
                "plate",
                f"no plate column (looked for {', '.join(HEADER_SYNONYMS['plate'][:6])}...)",
            )
        )
    if problems:
        raise HotlistFileError(path, problems)
    return mapping, tuple(ignored)


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _parse_expiry(text: str) -> dt.datetime | None:
    """A timestamp (naive means UTC); a bare date means through the end of that day (UTC)."""
    day = _parse_date(text)
    if day is not None:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    stamp: dt.datetime | None = None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        for fmt in _DATETIME_FORMATS:
            try:
                stamp = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if stamp is None:
        return None
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)


def _parse_money(text: str) -> float | None:
    try:
        value = float(text.replace("$", "").replace(",", "").strip())
    except ValueError:
        return None
    return value if value >= 0 and value == value else None


def _parse_priority(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 1 <= value <= 5 else None


def _convert(
    col: pl.Series, parse: Callable[[str], Any], dtype: pl.DataType
) -> tuple[pl.Series, pl.Series]:
    """Parse each distinct value once; return (values, mask of unparseable cells)."""
    uniques = col.drop_nulls().unique()
    parsed = [parse(v) for v in uniques.to_list()]
    good = [(k, v) for k, v in zip(uniques.to_list(), parsed, strict=True) if v is not None]
    table = pl.DataFrame(
        {"k": [k for k, _ in good], "v": [v for _, v in good]},
        schema={"k": pl.String, "v": dtype},
    )
    out = col.to_frame("k").join(table, on="k", how="left", maintain_order="left")["v"]
    return out, out.is_null() & col.is_not_null()


def read_hotlist_csv(
    path: Path,
    *,
    source: str,
    name: str | None = None,
    hotlist_id: str | None = None,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> HotlistImport:
    r"""Read a state stolen-vehicle list or an NCIC-style extract from a CSV file.

    Headers are matched case-insensitively, ignoring spacing and punctuation, against
    :data:`HEADER_SYNONYMS` ("License Plate", "LIC", "Plate Number" all give ``plate``).
    Plates are normalised (upper case, no spaces or dashes). Rows whose category must never
    alert (``policy.never_alert_categories``, e.g. immigration violator) are dropped and
    counted in :attr:`HotlistImport.dropped`. Dates may be ISO, ``MM/DD/YYYY`` or
    ``YYYYMMDD``; an expiry given as a bare date runs through the end of that day (UTC);
    a time without a zone is read as UTC.

    Parameters
    ----------
    path
        The CSV file (UTF-8, header on line 1).
    source
        ``"state_stolen"`` or ``"ncic"``. Custom lists are built with
        :func:`create_custom_hotlist` and :func:`add_entry`.
    name, hotlist_id
        Name and id of the list; default to the feed's usual list
        (``ca-svs`` or ``ncic-extract``).
    policy
        Policy giving the never-alert categories (default: the department policy).
    now
        Load time (UTC), stamped as the entries' ``added_at``; default: the current time.

    Returns
    -------
    HotlistImport
        The list, its entries, the dropped counts and the rows read.

    Raises
    ------
    HotlistFileError
        If the file cannot be parsed, lacks a plate column, or any row is bad: the message
        lists every bad line and field (the first 20 in the text, all in ``.problems``).

    Examples
    --------
    >>> import tempfile, datetime as dt
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "svs.csv"
    >>> _ = p.write_text("License Plate,State,Make\n7abc-123,ca,Honda\n")
    >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> imp = read_hotlist_csv(p, source="state_stolen", now=t0)
    >>> imp.entries.select("plate", "plate_state", "category").row(0)
    ('7ABC123', 'CA', 'stolen_vehicle')
    """
    if source not in FEED_DEFAULTS:
        raise HotlistFileError(
            path, [(1, "source", f"source must be one of {list(FEED_DEFAULTS)}")]
        )
    policy = policy if policy is not None else load_policy()
    now = require_utc(now, "now") if now is not None else dt.datetime.now(dt.UTC)
    default_id, default_name = FEED_DEFAULTS[source]
    hotlist_id = hotlist_id or default_id
    path = Path(path)
    try:
        raw = pl.read_csv(path, infer_schema=False, raise_if_empty=True)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise HotlistFileError(path, [(1, "file", f"cannot be read as CSV: {exc}")]) from exc
    mapping, ignored = _map_headers(path, raw.columns)
    frame = raw.select(
        pl.col(c).str.strip_chars().replace("", None).alias(f) for c, f in mapping.items()
    )
    if frame.height == 0:
        raise HotlistFileError(path, [(2, "file", "no data rows")])
    if "category" not in frame.columns:
        if source == "ncic":
            # An NCIC extract mixes record kinds; without them, barred ones cannot be removed.
            raise HotlistFileError(
                path, [(1, "category", "an NCIC extract needs a category column")]
            )
        frame = frame.with_columns(pl.lit("stolen_vehicle").alias("category"))
    problems: list[tuple[int, str, str]] = []

    def flag(mask: pl.Series, field: str, message: str) -> None:
        """Record a problem per flagged row; ``{v!r}`` in ``message`` is the cell as given."""
        col = frame[field] if field in frame.columns else None
        for row in mask.fill_null(False).arg_true().to_list():
            value = None if col is None else col[row]
            problems.append((row + 2, field, message.format(v=value)))

    cols: dict[str, pl.Series] = {}
    plate_raw = frame["plate"]
    plate = plate_raw.map_elements(normalize_plate, return_dtype=pl.String, skip_nulls=True)
    flag(plate_raw.is_null(), "plate", "plate is missing")
    flag(
        plate.is_not_null() & ~plate.str.contains(r"^[A-Z0-9]{1,8}$"),
        "plate",
        "{v!r} is not a plate (1-8 letters or digits after removing spaces and dashes)",
    )
    cols["plate"] = plate
    category = frame["category"].map_elements(
        normalize_category, return_dtype=pl.String, skip_nulls=True
    )
    if source == "state_stolen":
        category = category.fill_null("stolen_vehicle")
    flag(category.is_null(), "category", "category is missing")
    cols["category"] = category
    for field, pattern, what in (
        ("plate_state", r"^[A-Z]{2}$", "a two-letter state"),
        ("vin", r"^[A-HJ-NPR-Z0-9]{11,17}$", "a VIN (11-17 characters, no I, O or Q)"),
    ):
        if field in frame.columns:
            value = frame[field].str.to_uppercase()
            flag(~value.str.contains(pattern), field, "{v!r} is not " + what)
            cols[field] = value
    parsers: tuple[tuple[str, Callable[[str], Any], pl.DataType, str], ...] = (
        ("theft_date", _parse_date, pl.Date(), "a date (YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)"),
        ("expires_at", _parse_expiry, pl.Datetime("us", "UTC"), "a date or timestamp"),
        ("value_usd", _parse_money, pl.Float64(), "an amount of at least 0"),
        ("priority", _parse_priority, pl.Int32(), "a priority from 1 to 5"),
    )
    for field, parse, dtype, what in parsers:
        if field in frame.columns:
            value, bad = _convert(frame[field], parse, dtype)
            flag(bad, field, "{v!r} is not " + what)
            cols[field] = value
    if problems:
        raise HotlistFileError(path, problems)

    for field in ("plate_type", "vehicle_make", "vehicle_model", "vehicle_color",
                  "originating_agency", "originating_case_number", "reason"):  # fmt: skip
        if field in frame.columns:
            cols[field] = frame[field]
    if "plate_type" in cols:
        cols["plate_type"] = cols["plate_type"].str.to_lowercase()
    entries = pl.DataFrame(cols)
    barred = entries["category"].map_elements(
        lambda c: is_never_alert(c, policy), return_dtype=pl.Boolean
    )
    dropped_rows = entries.filter(barred)
    dropped = dict(sorted(dropped_rows["category"].value_counts().iter_rows()))
    entries = entries.filter(~barred)
    entries = _finish_entries(entries, hotlist_id=hotlist_id, source=source, now=now)
    hotlist = validate_frame(
        "hotlists",
        pl.DataFrame(
            {
                "hotlist_id": [hotlist_id],
                "name": [name or default_name],
                "source": [source],
                "reason": [f"Imported from {path.name}"],
                "created_at": [now],
            }
        ),
    )
    return HotlistImport(
        hotlist=hotlist,
        entries=entries,
        dropped={str(k): int(v) for k, v in dropped.items()},
        rows_read=raw.height,
        ignored_columns=ignored,
    )


def _finish_entries(
    entries: pl.DataFrame, *, hotlist_id: str, source: str, now: dt.datetime
) -> pl.DataFrame:
    """Add defaults and stable entry ids, then validate against ``hotlist_entries``."""
    label = "CA DOJ SVS" if source == "state_stolen" else "NCIC"
    defaults: list[pl.Expr] = [
        pl.lit(hotlist_id).alias("hotlist_id"),
        pl.lit(f"feed:{hotlist_id}").alias("added_by"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("added_at"),
    ]
    if "priority" not in entries.columns:
        entries = entries.with_columns(pl.lit(None, pl.Int32).alias("priority"))
    if "reason" not in entries.columns:
        entries = entries.with_columns(pl.lit(None, pl.String).alias("reason"))
    entries = entries.with_columns(
        *defaults,
        pl.col("priority").fill_null(
            pl.col("category").replace_strict(_PRIORITY, default=2, return_dtype=pl.Int32)
        ),
        pl.col("reason").fill_null(
            pl.concat_str(pl.lit(f"{label}: "), pl.col("category").str.replace_all("_", " "))
        ),
    )
    # Content-based ids stay the same across daily reloads, so hits keep pointing at the
    # record they matched; repeats of one record get an occurrence number.
    key_cols = [
        c
        for c in ("plate", "plate_state", "category", "vin", "originating_case_number")
        if c in entries.columns
    ]
    keys = entries.select(
        pl.concat_str([pl.col(c).fill_null("") for c in key_cols], separator="|").alias("k")
    )["k"]
    occurrence = keys.to_frame().select(pl.int_range(pl.len()).over("k").alias("n"))["n"]
    ids = [
        stable_id(hotlist_id, k, n)
        for k, n in zip(keys.to_list(), occurrence.to_list(), strict=True)
    ]
    entries = entries.with_columns(pl.Series("entry_id", ids, dtype=pl.String))
    return validate_frame("hotlist_entries", entries)
