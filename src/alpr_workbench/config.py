"""Typed settings.

Two kinds, kept apart on purpose:

- :class:`Settings`, read from ``<home>/workbench.toml`` (``ALPR_WORKBENCH_HOME`` names the data
  directory): conveniences of whoever runs the workbench.
- :class:`DepartmentSettings`, the department's rules for its store (retention), kept in
  ``<home>/department_settings.json`` and authenticated with HMAC-SHA256 under the key store's
  ``settings/hmac`` master key. Nobody changes them from the environment, an argument or a
  text editor: :func:`load_department_settings` refuses a tampered or removed file.

Key material never lives here (see :mod:`alpr_workbench.keys`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tomllib
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alpr_workbench._fsutil import atomic_write_bytes
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


class _MasterKey(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def material(self) -> bytes: ...


class SettingsKeys(Protocol):
    """What the department settings need of a key store (a ``KeyStore``)."""

    def key_ids(self, *, prefix: str = "", include_destroyed: bool = False) -> list[str]:
        """Names of the keys starting with ``prefix``."""
        ...

    def ensure_key(self, key_id: str) -> _MasterKey:
        """The current version of ``key_id``, created on first use."""
        ...

    def get_key(self, key_id: str, version: int) -> _MasterKey:
        """One version of ``key_id``."""
        ...


def _mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, _MAC_DOMAIN + body, hashlib.sha256).hexdigest()


def _body(settings: DepartmentSettings) -> bytes:
    return json.dumps(settings.model_dump(), sort_keys=True, separators=(",", ":")).encode()


def load_department_settings(home: Path, keystore: SettingsKeys) -> DepartmentSettings:
    """The department's authenticated settings for the store at ``home``.

    The defaults apply until :func:`write_department_settings` first writes the file; from
    then on the file must be present and authenticate.

    Raises
    ------
    WorkbenchError
        If the file was tampered with, removed, or does not validate.

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
    if not path.is_file():
        if keystore.key_ids(prefix=_SETTINGS_KEY, include_destroyed=True):
            raise WorkbenchError(
                f"{path} is missing although the department's settings were written: "
                "restore it from a backup"
            )
        return DepartmentSettings()
    try:
        doc = json.loads(path.read_text())
        settings = DepartmentSettings(**doc["settings"])
        key = keystore.get_key(_SETTINGS_KEY, int(doc["key_version"]))
        good = hmac.compare_digest(_mac(key.material, _body(settings)), str(doc["mac"]))
    except (OSError, ValueError, KeyError, TypeError, WorkbenchError) as exc:
        raise WorkbenchError(f"{path} is damaged or tampered with: {exc}") from exc
    if not good:
        raise WorkbenchError(f"{path} was tampered with: its MAC does not verify")
    return settings


def write_department_settings(home: Path, keystore: SettingsKeys, **values: int) -> None:
    """Set the department's settings (e.g. ``retention_days``), authenticated, durably.

    Values not given keep their current setting. Call it from an audited admin action.

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
    key = keystore.ensure_key(_SETTINGS_KEY)
    doc = {
        "settings": settings.model_dump(),
        "key_version": key.version,
        "mac": _mac(key.material, _body(settings)),
    }
    atomic_write_bytes(Path(home) / DEPARTMENT_SETTINGS_FILE, json.dumps(doc, indent=1).encode())
