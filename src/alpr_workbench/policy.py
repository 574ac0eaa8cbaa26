"""The department's usage and privacy policy, loaded from YAML into a validated model."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alpr_workbench.errors import WorkbenchError

__all__ = ["DEFAULT_POLICY_FILE", "Permission", "Policy", "load_policy"]

DEFAULT_POLICY_FILE = Path(__file__).with_name("department_policy.yaml")

Permission = Literal[
    "search",
    "lookup",
    "export",
    "view_aggregates",
    "manage_hotlists",
    "approve",
    "audit",
    "administer",
    "manage_grants",
    "purge",
    "rotate_keys",
    "import_vendor_audit",
    "configure",
    "manage_legal_holds",
    "work_hits",
]


class Policy(BaseModel):
    """The policy the workbench enforces (frozen; unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency_name: str
    agency_organization_type: str
    timezone: str
    case_number_pattern: str
    reason_codes: tuple[str, ...]
    reasons_requiring_text: tuple[str, ...]
    vague_reasons: tuple[str, ...]
    job_titles: tuple[str, ...]
    roles: dict[str, tuple[Permission, ...]]
    row_columns: dict[str, Literal["all"] | tuple[str, ...]]
    allowed_recipient_types: tuple[str, ...]
    organization_type_states: dict[str, str]
    agency_name_pattern: str
    prohibited_terms: dict[str, tuple[str, ...]]
    review_terms: tuple[str, ...]
    review_context_allowed: tuple[str, ...]
    review_context_window: int = Field(default=3, ge=0)
    prohibited_false_friends: tuple[str, ...] = ()
    crime_against_terms: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    surveillance_terms: tuple[str, ...] = ()
    never_alert_term_categories: tuple[str, ...] = ()
    max_networks_per_search: int
    idle_days_before_disable: int
    training_refresh_days: int
    off_hours_local: tuple[int, int]
    never_alert_categories: tuple[str, ...]
    custom_hotlist_max_days: int = 365
    retention_days_range: tuple[int, int] = Field(
        description="Smallest and largest retention (days) the department may configure."
    )
    min_pattern_literals: int = Field(ge=1)
    max_rows: int = Field(ge=1)
    max_rows_approved: int = Field(ge=1)
    max_radius_m: float = Field(gt=0, allow_inf_nan=False)
    max_polygon_area_km2: float = Field(gt=0, allow_inf_nan=False)
    max_polygon_extent_m: float = Field(gt=0, allow_inf_nan=False)
    max_cameras_per_search: int = Field(ge=1)
    broad_search_rows: int = Field(ge=1)
    reason_text_min_chars: int = Field(ge=1)
    reason_text_min_words: int = Field(ge=1)
    generic_account_id_stems: frozenset[str]
    generic_account_name_words: frozenset[str]

    def may(self, role: str, permission: Permission) -> bool:
        """True when ``role`` holds ``permission``.

        Examples
        --------
        >>> load_policy().may("auditor", "search")
        False
        """
        return permission in self.roles.get(role, ())

    def is_generic_account(self, user_id: str | None, full_name: str | None = None) -> bool:
        """True when an account looks shared or generic: the one rule the gate and audit use.

        Examples
        --------
        >>> policy = load_policy()
        >>> policy.is_generic_account("dispatch1"), policy.is_generic_account("j.rivera")
        (True, False)
        >>> policy.is_generic_account("jr", "Front Desk Login")
        True
        """
        stem = re.sub(r"[\d._-]+$", "", (user_id or "").lower())
        words = set(re.findall(r"[a-z]+", (full_name or "").lower()))
        return stem in self.generic_account_id_stems or bool(
            words & self.generic_account_name_words
        )


@functools.cache
def load_policy(path: Path | None = None) -> Policy:
    """Load and validate a policy file (default: the department policy shipped here).

    Raises
    ------
    WorkbenchError
        If the file is missing or does not validate.
    """
    path = Path(path) if path is not None else DEFAULT_POLICY_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise WorkbenchError(f"cannot read policy file {path}: {exc}") from exc
    try:
        return Policy(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WorkbenchError(f"policy file {path}: {where!r}: {first['msg']}") from exc
