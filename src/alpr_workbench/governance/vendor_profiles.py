"""Column-mapping profiles of vendor search-audit exports, loaded from ``vendor_profiles.yaml``.

The one declaration of which header names mean which field, and of how an export's format is
told from its header, for the import (:mod:`alpr_workbench.governance.vendor_import`) and the
stand-alone audit (:mod:`alpr_workbench.reports.vendor_audit`). A profile is data: to teach the
workbench a new spelling, edit the YAML beside this module.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from alpr_workbench._csvheader import header_key
from alpr_workbench.errors import WorkbenchError

__all__ = ["HeaderMapping", "VendorProfiles", "header_key", "load_vendor_profiles"]

_RESOURCE = "vendor_profiles.yaml"


@dataclass(frozen=True)
class HeaderMapping:
    """What a header row means.

    Attributes
    ----------
    columns
        Canonical field -> index of the column that holds it (the first one when several do).
    format
        The name of the matching profile (``"flock_org_audit"``...).
    missing
        What the header lacks to be a search audit, in words (empty when it is usable).
    """

    columns: dict[str, int]
    format: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class VendorProfiles:
    """The field synonyms and the profiles of vendor exports.

    Attributes
    ----------
    headers
        Canonical field -> the header names that mean it (the first is used in messages).
    descriptions
        Canonical field -> what it holds.
    required
        Fields every export must have.
    identifying
        Fields of which an export must have at least one.
    profiles
        ``(name, markers)`` in the order tried; a profile without markers takes any file.
    """

    headers: dict[str, tuple[str, ...]]
    descriptions: dict[str, str]
    required: tuple[str, ...]
    identifying: tuple[str, ...]
    profiles: tuple[tuple[str, tuple[str, ...]], ...]

    @functools.cached_property
    def _by_key(self) -> dict[str, str]:
        return {header_key(h): f for f, names in self.headers.items() for h in names}

    def field_of(self, header: str) -> str | None:
        """The canonical field a header name means, or ``None``.

        Examples
        --------
        >>> profiles = load_vendor_profiles()
        >>> profiles.field_of("Total_Networks_Searched"), profiles.field_of("colour")
        ('networks', None)
        """
        return self._by_key.get(header_key(header))

    def label(self, field: str) -> str:
        """The name of a canonical field in messages (its first header name)."""
        return self.headers[field][0]

    def map_header(self, header: Sequence[str]) -> HeaderMapping:
        """Map a header row to canonical fields and a profile.

        Parameters
        ----------
        header
            The header cells, in order.

        Returns
        -------
        HeaderMapping
            The columns found, the profile and what is missing.

        Examples
        --------
        >>> m = load_vendor_profiles().map_header(["id", "userId", "searchDate", "reason"])
        >>> m.format, sorted(m.columns), m.missing
        ('flock_public_search_audit', ['reason', 'search_id', 'search_time', 'user'], ())
        """
        columns: dict[str, int] = {}
        for i, name in enumerate(header):
            field = self.field_of(name)
            if field is not None and field not in columns:
                columns[field] = i
        missing = [self.label(f) for f in self.required if f not in columns]
        if not any(f in columns for f in self.identifying):
            missing.append(" or ".join(repr(self.label(f)) for f in self.identifying))
        fmt = next(
            (name for name, markers in self.profiles if not markers or set(markers) & set(columns)),
            self.profiles[-1][0],
        )
        return HeaderMapping(columns=columns, format=fmt, missing=tuple(missing))


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise WorkbenchError(f"{_RESOURCE}: {where} must be a list of names")
    return tuple(raw)


@functools.cache
def load_vendor_profiles() -> VendorProfiles:
    """Load the vendor profiles shipped with the package.

    Returns
    -------
    VendorProfiles
        The synonyms and profiles.

    Raises
    ------
    WorkbenchError
        If the file is malformed (it names the entry).
    """
    text = resources.files("alpr_workbench.governance").joinpath(_RESOURCE).read_text("utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"{_RESOURCE}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("fields"), dict):
        raise WorkbenchError(f"{_RESOURCE}: no 'fields' mapping")
    headers: dict[str, tuple[str, ...]] = {}
    descriptions: dict[str, str] = {}
    seen: dict[str, str] = {}
    for field, spec in raw["fields"].items():
        if not isinstance(spec, dict):
            raise WorkbenchError(f"{_RESOURCE}: field {field!r} must be a mapping")
        names = _strings(spec.get("headers"), f"fields.{field}.headers")
        for name in names:
            other = seen.setdefault(header_key(name), field)
            if other != field:
                raise WorkbenchError(
                    f"{_RESOURCE}: header {name!r} is given for both {other!r} and {field!r}"
                )
        headers[str(field)] = names
        descriptions[str(field)] = str(spec.get("description", ""))
    profiles: list[tuple[str, tuple[str, ...]]] = []
    for entry in raw.get("profiles") or []:
        profile = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(profile, str):
            raise WorkbenchError(f"{_RESOURCE}: every profile needs a name")
        markers = entry.get("markers") or []
        where = f"profiles.{profile}.markers"
        profiles.append((profile, _strings(markers, where) if markers else ()))
    required = _strings(raw.get("required"), "required")
    identifying = _strings(raw.get("identifying"), "identifying")
    unknown = {
        f for f in (*required, *identifying, *(m for _, ms in profiles for m in ms))
    } - set(headers)
    if unknown or not profiles:
        raise WorkbenchError(
            f"{_RESOURCE}: unknown field(s) {sorted(unknown)}" if unknown else
            f"{_RESOURCE}: no profiles"
        )
    return VendorProfiles(headers, descriptions, required, identifying, tuple(profiles))
