"""The registry of known agencies: who a sharing grant may name, and what kind of body it is.

The registry ships with the package (``agencies.yaml``); the department extends it through an
audited action that writes ``<data dir>/agencies.yaml``
(:func:`alpr_workbench.governance.sharing.add_agency`). That file is signed under the key
store's ``agencies/hmac`` key with a generation that a witness beside the key store records
(:mod:`alpr_workbench._signed`), so a hand-written or hand-edited file, or an older copy, is an
error naming it, never a silent change. A department entry never overrides a shipped one, so
it cannot turn a federal agency into a local one either.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from alpr_workbench._signed import (
    SignedDocumentKeys,
    read_signed_document,
    write_signed_document,
)
from alpr_workbench.errors import WorkbenchError

__all__ = [
    "AGENCIES_FILE",
    "DEFAULT_AGENCIES_FILE",
    "Agency",
    "find_agency",
    "load_agencies",
    "write_department_agencies",
]

DEFAULT_AGENCIES_FILE = Path(__file__).with_name("agencies.yaml")
#: The department's additions, in the data directory.
AGENCIES_FILE = "agencies.yaml"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KEY_ID = "agencies/hmac"
_DOMAIN = b"alpr-agency-registry"
_WITNESS = "agencies"


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


def _department_rows(home: Path, keystore: SignedDocumentKeys) -> list[dict[str, str]]:
    path = Path(home) / AGENCIES_FILE
    payload = read_signed_document(
        path, keystore, key_id=_KEY_ID, domain=_DOMAIN, witness=_WITNESS, field="agencies"
    )
    if payload is None:
        return []
    rows = payload.get("rows")
    if not isinstance(rows, list):
        raise WorkbenchError(f"cannot read the agency registry {path}: no rows")
    return rows


def load_agencies(
    home: Path | None = None, keystore: SignedDocumentKeys | None = None
) -> dict[str, Agency]:
    """The known agencies, keyed by their name folded to lower case and single spaces.

    Parameters
    ----------
    home
        A data directory whose signed ``agencies.yaml`` adds the department's entries
        (optional).
    keystore
        The key store that authenticates that file (needed with ``home``).

    Returns
    -------
    dict of str to Agency
        The shipped registry, plus the department's entries for names it does not hold.

    Raises
    ------
    WorkbenchError
        When a registry file cannot be read or does not validate, or the department's file
        was written or edited by hand, or is an older copy.

    Examples
    --------
    >>> load_agencies()["california highway patrol"].organization_type
    'ca_state_agency'
    """
    agencies = {_key(a.name): a for a in _read(DEFAULT_AGENCIES_FILE)}
    if home is None:
        return agencies
    if keystore is None:
        raise WorkbenchError("the department's agency registry needs the key store to verify it")
    try:
        extra = tuple(Agency(**row) for row in _department_rows(home, keystore))
    except (TypeError, ValidationError) as exc:
        raise WorkbenchError(
            f"cannot read the agency registry {Path(home) / AGENCIES_FILE}: {exc}"
        ) from exc
    for agency in extra:
        agencies.setdefault(_key(agency.name), agency)
    return agencies


def write_department_agencies(
    home: Path, keystore: SignedDocumentKeys, agency: Agency
) -> tuple[int, int]:
    """Append ``agency`` to the department's signed registry; call it from an audited action.

    Returns
    -------
    tuple of int
        The registry's new generation and its number of entries.
    """
    rows = _department_rows(home, keystore)
    rows.append(agency.model_dump())
    generation = write_signed_document(
        Path(home) / AGENCIES_FILE, keystore, {"rows": rows}, key_id=_KEY_ID, domain=_DOMAIN,
        witness=_WITNESS, field="agencies",
    )
    return generation, len(rows)


def find_agency(agencies: dict[str, Agency], name: str) -> Agency | None:
    """The registry entry for ``name`` (case and spacing ignored), or None when unknown.

    Examples
    --------
    >>> find_agency(load_agencies(), "glendale police  department").state
    'CA'
    """
    return agencies.get(_key(name))
