"""Typed settings, read from ``<home>/workbench.toml`` and the environment.

Environment variables win over the file: ``ALPR_WORKBENCH_HOME`` (data directory) and
``ALPR_WORKBENCH_RETENTION_DAYS``. Key material never lives here (see :mod:`alpr_workbench.keys`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alpr_workbench.errors import WorkbenchError

__all__ = ["CONFIG_FILE", "Settings", "default_home", "load_settings"]

CONFIG_FILE = "workbench.toml"


class Settings(BaseModel):
    """Validated workbench settings; unknown keys are errors, not silent gaps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path
    retention_days: int = Field(
        default=30, ge=1, le=3650, description="Days a read is kept before crypto-shredding."
    )
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
    >>> load_settings(pathlib.Path(tempfile.mkdtemp())).retention_days
    30
    """
    home = Path(home) if home is not None else default_home()
    values: dict[str, object] = {}
    path = home / CONFIG_FILE
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise WorkbenchError(f"{path}: {exc}") from exc
    if "ALPR_WORKBENCH_RETENTION_DAYS" in os.environ:
        values["retention_days"] = os.environ["ALPR_WORKBENCH_RETENTION_DAYS"]
    values["home"] = home
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WorkbenchError(f"invalid setting {where!r}: {first['msg']}") from exc
