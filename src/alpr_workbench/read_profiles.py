"""Plate-read exports of ALPR systems, mapped to the store's read columns by profiles (data).

A profile (``read_profiles.yaml`` beside this module) names the headers an export uses for
each read column of ``data_schema/reads.yaml``, its time format and zone, and the scale of its
confidence. :func:`map_reads_export` turns such an export into reads (without the camera's
network and place, which the service fills from its cameras table), and refuses the file whole,
naming every bad line, when any line cannot be mapped. To teach the workbench another export,
add a profile to the YAML, not code.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from alpr_workbench._csvheader import header_key
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.plates import normalize_plate
from alpr_workbench.schema import load_table

__all__ = [
    "ReadProfile",
    "detect_read_profile",
    "is_reads_layout",
    "load_read_profiles",
    "map_reads_export",
]

_RESOURCE = "read_profiles.yaml"
#: Read columns a profile may fill; the camera's network and place come from the cameras table.
_MAPPABLE = ("read_id", "camera_id", "captured_at", "plate", "plate_state", "confidence_pct",
             "image_ref")
_NEEDED = ("plate", "captured_at", "confidence_pct")
_EPOCHS = {"epoch_ms": 1000.0, "epoch_s": 1.0}
_SHOWN = 20  # bad lines listed in one error; the count says how many more


@dataclass(frozen=True)
class ReadProfile:
    """How one system's read export maps to the store's read columns.

    Attributes
    ----------
    name, system, documented
        The profile's name (``--profile``), the system in words, where its fields are documented.
    columns
        Read column -> the export's header(s) (``captured_at`` may join a date and a time).
    optional
        Read columns whose header may be missing from a file.
    id_from
        ``"column"`` (``read_id`` derives from the export's own id) or ``"row"``.
    time_format, time_zone
        ``iso8601``, ``epoch_ms``, ``epoch_s`` or a strftime pattern; the zone of times that
        carry no offset (``None``: such a time is refused unless the caller gives one).
    confidence_scale
        Multiplies the export's confidence into percent.
    plate_state_pattern
        Captures the two-letter state from the export's region value, when it has one.
    """

    name: str
    system: str
    documented: str
    columns: dict[str, tuple[str, ...]]
    optional: frozenset[str]
    id_from: str
    time_format: str
    time_zone: str | None
    confidence_scale: float
    plate_state_pattern: re.Pattern[str] | None

    @property
    def required_headers(self) -> tuple[str, ...]:
        """The headers a file must have for this profile to match it."""
        return tuple(h for col, hs in self.columns.items() if col not in self.optional
                     for h in hs)

    def matches(self, header: Sequence[str]) -> bool:
        """Whether a header row has every header this profile needs.

        Examples
        --------
        >>> p = load_read_profiles()["openalpr_webserver_group"]
        >>> p.matches(["pk", "Best Plate", "best_confidence", "epoch_time_start", "camera"])
        True
        >>> p.matches(["pk", "best_plate"])
        False
        """
        keys = {header_key(h) for h in header}
        return all(header_key(h) in keys for h in self.required_headers)


def _fail(where: str, what: str) -> WorkbenchError:
    return WorkbenchError(f"{_RESOURCE}: {where}: {what}")


def _parse_profile(name: str, raw: Any) -> ReadProfile:
    if not isinstance(raw, dict):
        raise _fail(name, "must be a mapping")
    unknown = set(raw) - {"system", "documented", "columns", "optional", "id_from", "time",
                          "confidence_scale", "plate_state_pattern"}
    if unknown:
        raise _fail(name, f"unknown key(s) {sorted(unknown)}")
    cols = raw.get("columns")
    if not isinstance(cols, dict):
        raise _fail(name, "needs a 'columns' mapping")
    columns: dict[str, tuple[str, ...]] = {}
    for col, headers in cols.items():
        if col not in _MAPPABLE:
            raise _fail(name, f"column {col!r} is not one a profile fills ({', '.join(_MAPPABLE)})")
        names = [headers] if isinstance(headers, str) else headers
        if (not isinstance(names, list) or not names
                or not all(isinstance(h, str) and header_key(h) for h in names)
                or (len(names) > 1 and col != "captured_at")):
            raise _fail(name, f"columns.{col} must name one header (captured_at: one or more)")
        columns[str(col)] = tuple(names)
    missing = [c for c in _NEEDED if c not in columns]
    optional = frozenset(raw.get("optional") or ())
    if missing or not optional <= set(columns) - set(_NEEDED):
        raise _fail(name, f"needs columns {missing}" if missing else
                    "optional may name only mapped columns other than plate, time, confidence")
    id_from = raw.get("id_from")
    if id_from not in ("column", "row") or (id_from == "column") != ("read_id" in columns):
        raise _fail(name, "id_from must be 'column' (with columns.read_id) or 'row' (without)")
    time = raw.get("time")
    if not isinstance(time, dict) or not isinstance(time.get("format"), str):
        raise _fail(name, "needs time.format")
    zone = time.get("zone")
    if zone is not None:
        _zone(str(zone), f"{_RESOURCE}: {name}: time.zone")
    scale = raw.get("confidence_scale", 1)
    if not isinstance(scale, int | float) or scale <= 0:
        raise _fail(name, "confidence_scale must be a positive number")
    pattern = raw.get("plate_state_pattern")
    try:
        compiled = re.compile(pattern, re.IGNORECASE) if pattern is not None else None
    except (re.error, TypeError) as exc:
        raise _fail(name, f"plate_state_pattern: {exc}") from exc
    if compiled is not None and compiled.groups != 1:
        raise _fail(name, "plate_state_pattern needs exactly one group")
    return ReadProfile(
        name=str(name), system=str(raw.get("system", "")),
        documented=" ".join(str(raw.get("documented", "")).split()), columns=columns,
        optional=optional, id_from=str(id_from), time_format=time["format"],
        time_zone=str(zone) if zone is not None else None, confidence_scale=float(scale),
        plate_state_pattern=compiled,
    )


@functools.cache
def load_read_profiles() -> dict[str, ReadProfile]:
    """Load the read-export profiles shipped with the package.

    Returns
    -------
    dict[str, ReadProfile]
        By name, in the file's order.

    Raises
    ------
    WorkbenchError
        If the file is malformed (naming the profile and the entry).

    Examples
    --------
    >>> "genetec_autovu_sharpv" in load_read_profiles()
    True
    """
    text = resources.files("alpr_workbench").joinpath(_RESOURCE).read_text("utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"{_RESOURCE}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("profiles"), dict):
        raise WorkbenchError(f"{_RESOURCE}: no 'profiles' mapping")
    return {str(n): _parse_profile(str(n), p) for n, p in raw["profiles"].items()}


def is_reads_layout(header: Sequence[str]) -> bool:
    """Whether a header names only columns of ``data_schema/reads.yaml`` (no profile needed).

    Examples
    --------
    >>> is_reads_layout(["read_id", "plate"]), is_reads_layout(["best_plate"])
    (True, False)
    """
    columns = set(load_table("reads").columns)
    return bool(header) and all(h in columns for h in header)


def detect_read_profile(header: Sequence[str], *, source: str = "the file") -> ReadProfile:
    """The one profile whose headers a header row has.

    Parameters
    ----------
    header
        The header cells, in order.
    source
        How errors name the file.

    Raises
    ------
    WorkbenchError
        When no profile matches, or several do (naming them: give ``--profile``).

    Examples
    --------
    >>> detect_read_profile(["timestamp", "plate", "score", "dscore", "file"]).name
    'platerecognizer_stream_csv'
    """
    profiles = load_read_profiles()
    found = [p for p in profiles.values() if p.matches(header)]
    if len(found) == 1:
        return found[0]
    if found:
        raise WorkbenchError(
            f"{source}: the header matches several read-export profiles: "
            f"{', '.join(p.name for p in found)}; give --profile NAME"
        )
    shown = ", ".join(repr(h) for h in header[:8]) + (" ..." if len(header) > 8 else "")
    known = "; ".join(f"{p.name} ({', '.join(p.required_headers)})" for p in profiles.values())
    raise WorkbenchError(
        f"{source}: no read-export profile matches the header ({shown}), and it is not the "
        f"reads layout of data_schema/reads.yaml. Known profiles and the headers each needs: "
        f"{known}. Give --profile NAME, or add a profile to read_profiles.yaml"
    )


def _zone(name: str, what: str) -> dt.tzinfo:
    if name.upper() == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise WorkbenchError(f"{what} {name!r} is not a time zone (e.g. UTC, "
                             "America/Los_Angeles)") from exc


def _quote(value: object, limit: int = 40) -> str:
    text = str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}..."


def _parse_time(text: str, profile: ReadProfile, zone: dt.tzinfo | None) -> dt.datetime:
    """A cell's time in UTC; ``ValueError`` says why it cannot be read."""
    fmt = profile.time_format
    if fmt in _EPOCHS:
        seconds = float(text) / _EPOCHS[fmt]
        if not math.isfinite(seconds):
            raise ValueError("not a number")
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    when = dt.datetime.fromisoformat(text) if fmt == "iso8601" else dt.datetime.strptime(text, fmt)
    if when.tzinfo is None:
        if zone is None:
            raise ValueError("has no time zone; give --time-zone NAME (e.g. UTC)")
        when = when.replace(tzinfo=zone)
    return when.astimezone(dt.UTC)


def _read_id(profile: ReadProfile, *parts: str) -> str:
    digest = hashlib.sha256("\0".join((profile.name, *parts)).encode()).hexdigest()
    return f"{profile.name[:20]}:{digest[:40]}"


def map_reads_export(
    path: Path,
    *,
    profile: str | None = None,
    camera_id: str | None = None,
    time_zone: str | None = None,
) -> tuple[ReadProfile, pl.DataFrame]:
    """Map a vendor's read export to reads, or refuse it whole naming every bad line.

    Parameters
    ----------
    path
        The CSV export.
    profile
        The profile's name; ``None``: the one profile the header matches.
    camera_id
        The camera of every read when the export names none (and, when it does, the only camera
        its lines may name).
    time_zone
        The zone of times that carry no offset, where the profile declares none.

    Returns
    -------
    tuple[ReadProfile, polars.DataFrame]
        The profile used, and reads with ``read_id``, ``camera_id``, ``captured_at`` (UTC),
        ``plate``, ``plate_state``, ``confidence_pct``, ``image_ref`` and ``source``
        (``"vendor_import"``); the camera's network and place are left to the service.

    Raises
    ------
    WorkbenchError
        For an unreadable file, an unknown or unmatched profile, missing headers, or bad lines
        (each named with its line number and the problem); nothing is returned then.
    """
    profiles = load_read_profiles()
    if profile is not None and profile not in profiles:
        raise WorkbenchError(f"unknown read-export profile {profile!r}; known: "
                             f"{', '.join(profiles)}")
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise WorkbenchError(f"{path}: cannot read as CSV: {first}") from exc
    header = frame.columns
    chosen = profiles[profile] if profile is not None else detect_read_profile(
        header, source=str(path))
    index: dict[str, str] = {}
    for name in header:
        index.setdefault(header_key(name), name)
    absent = [h for h in chosen.required_headers if header_key(h) not in index]
    if absent:
        raise WorkbenchError(f"{path}: not a {chosen.name} export: no column "
                             f"{', '.join(repr(h) for h in absent)}")
    if "camera_id" not in chosen.columns and camera_id is None:
        raise WorkbenchError(f"{path}: a {chosen.name} export names no camera; give --camera ID")
    zone = _zone(time_zone, "--time-zone") if time_zone is not None else (
        _zone(chosen.time_zone, "time.zone") if chosen.time_zone else None)
    cells = {col: [index[header_key(h)] for h in hs] for col, hs in chosen.columns.items()
             if all(header_key(h) in index for h in hs)}
    pattern = load_table("reads").field("plate").pattern or r"^[A-Z0-9]{1,8}$"
    rows: list[dict[str, Any]] = []
    bad: list[str] = []
    first_line: dict[str, int] = {}
    for n, row in enumerate(frame.iter_rows(named=True), start=2):

        def cell(col: str, row: dict[str, Any] = row) -> str:
            names = cells.get(col)
            if not names:
                return ""
            return " ".join((row[c] or "").strip() for c in names).strip()

        problems: list[str] = []
        plate = normalize_plate(cell("plate"))
        if not re.fullmatch(pattern, plate):
            problems.append(f"plate {_quote(cell('plate'))} is not a plate (1-8 letters/digits)")
        when: dt.datetime | None = None
        try:
            when = _parse_time(cell("captured_at"), chosen, zone)
        except (ValueError, OverflowError, OSError) as exc:
            why = str(exc) if "time zone" in str(exc) else f"not a {chosen.time_format} time"
            problems.append(f"time {_quote(cell('captured_at'))}: {why}")
        confidence: float | None = None
        try:
            confidence = float(cell("confidence_pct")) * chosen.confidence_scale
        except ValueError:
            problems.append(f"confidence {_quote(cell('confidence_pct'))} is not a number")
        if confidence is not None and not 0 <= confidence <= 100:
            problems.append(f"confidence {_quote(cell('confidence_pct'))} is outside 0-100%")
        camera = cell("camera_id") if "camera_id" in chosen.columns else str(camera_id)
        if not camera:
            problems.append("no camera")
        elif camera_id is not None and camera != camera_id:
            problems.append(f"camera {_quote(camera)} is not --camera {_quote(camera_id)}")
        state: str | None = None
        region = cell("plate_state")
        if region and chosen.plate_state_pattern is not None:
            found = chosen.plate_state_pattern.fullmatch(region)
            state = found.group(1).upper() if found else None
        if chosen.id_from == "column":
            own = cell("read_id")
            if not own:
                problems.append(f"no id in column {chosen.columns['read_id'][0]!r}")
            read_id = _read_id(chosen, own)
        else:
            read_id = _read_id(chosen, camera, when.isoformat() if when else "", plate)
        if not problems and read_id in first_line:
            problems.append(f"the same read as line {first_line[read_id]}")
        if problems:
            bad.append(f"line {n}: {'; '.join(problems)}")
            continue
        first_line[read_id] = n
        rows.append({"read_id": read_id, "camera_id": camera, "captured_at": when,
                     "plate": plate, "plate_state": state, "confidence_pct": confidence,
                     "image_ref": cell("image_ref") or None, "source": "vendor_import"})
    if bad:
        more = f"\n  ... and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        raise WorkbenchError(
            f"{path}: {len(bad)} bad line(s) in a {chosen.name} export; nothing was stored:\n  "
            + "\n  ".join(bad[:_SHOWN]) + more
        )
    schema = load_table("reads").polars_schema
    columns = [*_MAPPABLE, "source"]
    return chosen, pl.DataFrame(rows, schema={c: schema[c] for c in columns})
