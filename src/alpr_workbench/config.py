"""Typed settings.

Two kinds, kept apart on purpose:

- :class:`Settings`, read from ``<home>/workbench.toml`` (``ALPR_WORKBENCH_HOME`` names the data
  directory): conveniences of whoever runs the workbench.
- :class:`DepartmentSettings`, the department's rules for its store (retention), kept in
  ``<home>/department_settings.json`` and authenticated with HMAC-SHA256 under the key store's
  ``settings/hmac`` master key, with a generation counter whose latest value a witness beside
  the key store records. Nobody changes them from the environment, an argument, a text
  editor or an older copy: :func:`load_department_settings` refuses a tampered, removed or
  rolled-back file.

Key material never lives here (see :mod:`alpr_workbench.keys`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alpr_workbench._signed import (
    SignedDocumentKeys,
    read_signed_document,
    write_signed_document,
)
from alpr_workbench.errors import WorkbenchError

__all__ = [
    "CONFIG_FILE",
    "DEPARTMENT_SETTINGS_FILE",
    "DepartmentSettings",
    "Settings",
    "SettingsKeys",
    "default_home",
    "load_department_settings",
    "load_settings",
    "write_department_settings",
]

CONFIG_FILE = "workbench.toml"
DEPARTMENT_SETTINGS_FILE = "department_settings.json"
_SETTINGS_KEY = "settings/hmac"
_MAC_DOMAIN = b"alpr-department-settings\x00"


class Settings(BaseModel):
    """Validated workbench settings; unknown keys are errors, not silent gaps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path
    program_budget_usd: float = Field(
        default=150_000.0, ge=0, description="Yearly cost of the ALPR program."
    )
    agency_name: str = "Burbank Police Department"
    staff_hours_saved_per_recovery: float = Field(
        default=6.0, ge=0,
        description="Assumption: investigator hours an ALPR-assisted recovery saves.",
    )
    policy_file: Path | None = Field(default=None, description="Custom policy YAML, if any.")



def default_home() -> Path:
    """The data directory: ``ALPR_WORKBENCH_HOME`` or ``~/.local/share/alpr-workbench``."""
    env = os.environ.get("ALPR_WORKBENCH_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "alpr-workbench"


def load_settings(home: Path | None = None) -> Settings:
    """Load settings for ``home`` (default :func:`default_home`).

    Raises
    ------
    WorkbenchError
        If the config file or an environment value is invalid.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> load_settings(pathlib.Path(tempfile.mkdtemp())).program_budget_usd
    150000.0
    """
    home = Path(home) if home is not None else default_home()
    values: dict[str, object] = {}
    path = home / CONFIG_FILE
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise WorkbenchError(f"{path}: {exc}") from exc
    if "retention_days" in values:
        raise WorkbenchError(
            f"{path}: retention_days is not a workbench.toml setting: retention is the "
            f"department's, kept signed in {DEPARTMENT_SETTINGS_FILE}; change it with "
            "`alpr-workbench settings set --retention-days N --user ADMIN` (audited)"
        )
    values["home"] = home
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WorkbenchError(f"invalid setting {where!r}: {first['msg']}") from exc


class DepartmentSettings(BaseModel):
    """The department's settings for its store (frozen; unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retention_days: int = Field(
        default=30, ge=1, description="Days a read is kept before crypto-shredding."
    )


SettingsKeys = SignedDocumentKeys
_WITNESS = "settings"


def _mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, _MAC_DOMAIN + body, hashlib.sha256).hexdigest()


def _body(settings: DepartmentSettings) -> bytes:
    return json.dumps(settings.model_dump(), sort_keys=True, separators=(",", ":")).encode()


def _legacy(path: Path, keystore: SettingsKeys, doc: dict[str, object]) -> DepartmentSettings:
    """A settings file written before generations existed (its own MAC, no witness yet)."""
    try:
        settings = DepartmentSettings(**doc["settings"])  # type: ignore[arg-type]
        key = keystore.get_key(_SETTINGS_KEY, int(doc["key_version"]))  # type: ignore[call-overload]
        good = hmac.compare_digest(_mac(key.material, _body(settings)), str(doc["mac"]))
    except (OSError, ValueError, KeyError, TypeError, WorkbenchError) as exc:
        raise WorkbenchError(f"{path} is damaged or tampered with: {exc}") from exc
    if not good:
        raise WorkbenchError(f"{path} was tampered with: its MAC does not verify")
    return settings


def load_department_settings(home: Path, keystore: SettingsKeys) -> DepartmentSettings:
    """The department's authenticated settings for the store at ``home``.

    The defaults apply until :func:`write_department_settings` first writes the file; from
    then on the file must be present, authenticate, and be the latest generation written (a
    witness beside the key store records it), so an older copy put back is an error.

    Raises
    ------
    WorkbenchError
        If the file was tampered with, removed, restored from an older copy, or does not
        validate.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from alpr_workbench.keys import KeyStore
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> keys = KeyStore.create(home / "keys", passphrase="an example passphrase")
    >>> write_department_settings(home, keys, retention_days=60)
    >>> load_department_settings(home, keys).retention_days
    60
    """
    path = Path(home) / DEPARTMENT_SETTINGS_FILE
    payload = read_signed_document(
        path, keystore, key_id=_SETTINGS_KEY, domain=_MAC_DOMAIN, witness=_WITNESS,
        field="settings", legacy_mac=True,
    )
    if payload is None:
        return DepartmentSettings()
    if "generation" not in json.loads(path.read_text()):
        return _legacy(path, keystore, payload)
    try:
        return DepartmentSettings(**payload)
    except ValidationError as exc:
        raise WorkbenchError(f"{path} is damaged: {exc.errors()[0]['msg']}") from exc


def write_department_settings(home: Path, keystore: SettingsKeys, **values: int) -> None:
    """Set the department's settings (e.g. ``retention_days``), authenticated, durably.

    Values not given keep their current setting. Each write is a new generation, recorded in
    the witness beside the key store. Call it from an audited admin action.

    Raises
    ------
    WorkbenchError
        If a value is invalid or the current file does not authenticate.
    """
    current = load_department_settings(home, keystore)
    try:
        settings = DepartmentSettings(**{**current.model_dump(), **values})
    except ValidationError as exc:
        raise WorkbenchError(f"invalid department setting: {exc.errors()[0]['msg']}") from exc
    write_signed_document(
        Path(home) / DEPARTMENT_SETTINGS_FILE, keystore, settings.model_dump(),
        key_id=_SETTINGS_KEY, domain=_MAC_DOMAIN, witness=_WITNESS, field="settings",
    )
