"""The registry of known agencies: who a sharing grant may name, and what kind of body it is.

The registry ships with the package (``agencies.yaml``); the department extends it through an
audited action that writes ``<data dir>/agencies.yaml``
(:func:`alpr_workbench.governance.sharing.add_agency`). A department entry never overrides a
shipped one, so a hand edit cannot turn a federal agency into a local one.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from alpr_workbench.errors import WorkbenchError

__all__ = [
    "AGENCIES_FILE",
    "DEFAULT_AGENCIES_FILE",
    "Agency",
    "find_agency",
    "load_agencies",
]

DEFAULT_AGENCIES_FILE = Path(__file__).with_name("agencies.yaml")
#: The department's additions, in the data directory.
AGENCIES_FILE = "agencies.yaml"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Agency(BaseModel):
    """A known organization (frozen; unknown fields are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    organization_type: str
    state: str


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


def _read(path: Path) -> tuple[Agency, ...]:
    """The file's entries; parsed once per version of the file (the gate asks every search)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise WorkbenchError(f"cannot read the agency registry {path}: {exc}") from exc
    return _parse(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _parse(path: str, mtime_ns: int, size: int) -> tuple[Agency, ...]:
    try:
        raw = yaml.load(Path(path).read_text(), Loader=_LOADER) or {}
        return tuple(Agency(**row) for row in raw.get("agencies") or [])
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValidationError) as exc:
        raise WorkbenchError(f"cannot read the agency registry {path}: {exc}") from exc


def load_agencies(home: Path | None = None) -> dict[str, Agency]:
    """The known agencies, keyed by their name folded to lower case and single spaces.

    Parameters
    ----------
    home
        A data directory whose ``agencies.yaml`` adds the department's entries (optional).

    Returns
    -------
    dict of str to Agency
        The shipped registry, plus the department's entries for names it does not hold.

    Raises
    ------
    WorkbenchError
        When a registry file cannot be read or does not validate.

    Examples
    --------
    >>> load_agencies()["california highway patrol"].organization_type
    'ca_state_agency'
    """
    agencies = {_key(a.name): a for a in _read(DEFAULT_AGENCIES_FILE)}
    extra = Path(home) / AGENCIES_FILE if home is not None else None
    if extra is not None and extra.is_file():
        for agency in _read(extra):
            agencies.setdefault(_key(agency.name), agency)
    return agencies


def find_agency(agencies: dict[str, Agency], name: str) -> Agency | None:
    """The registry entry for ``name`` (case and spacing ignored), or None when unknown.

    Examples
    --------
    >>> find_agency(load_agencies(), "glendale police  department").state
    'CA'
    """
    return agencies.get(_key(name))
