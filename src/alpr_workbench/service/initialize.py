"""``alpr-workbench init``: an empty data directory for the service, and its first administrator.

No synthetic data: an empty store and key store, the department's signed settings, the
``users`` table holding the first administrator only, the service's TLS certificate and a
one-time enrolment code for that administrator. Every step is audited.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from alpr_workbench.config import write_department_settings
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.registry import User, user_problem
from alpr_workbench.keys_pkcs11 import Pkcs11Config
from alpr_workbench.policy import load_policy
from alpr_workbench.service.accounts import AccountStore
from alpr_workbench.service.tls import make_loopback_certificate
from alpr_workbench.store import Store, store_paths

__all__ = ["InitResult", "init_workbench"]

_ACTOR = "workbench-init"


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_workbench` made."""

    home: Path
    admin_user_id: str
    enrolment_code: str
    certfile: Path


def init_workbench(
    home: Path,
    admin_user_id: str,
    admin_name: str,
    *,
    organization: str = "Burbank Police Department",
    job_title: str = "IT Administrator",
    retention_days: int = 30,
    passphrase: str | None = None,
    key_root: Pkcs11Config | None = None,
) -> InitResult:
    """Create an empty store, its key store and the first administrator.

    Parameters
    ----------
    home
        The new data directory (made 0700); refused when a store or key store is there.
    admin_user_id, admin_name
        The first administrator (must pass the policy's rules: no generic accounts).
    organization, job_title
        The administrator's organization (a California local agency) and job title.
    retention_days
        The department's retention period, signed into the store's settings.
    passphrase
        The key-store passphrase (default: ``ALPR_WORKBENCH_PASSPHRASE`` or
        ``ALPR_WORKBENCH_KEK``); there is no default and no demo passphrase.
    key_root
        Keep the root of the key hierarchy on a PKCS#11 token (its PIN from
        ``ALPR_WORKBENCH_PKCS11_PIN`` or ``ALPR_WORKBENCH_PKCS11_PIN_FILE``), so a purge
        reaches every copy of the key store; default: the file-only root
        (``docs/decisions/0005-pkcs11-key-root.md``).

    Returns
    -------
    InitResult
        With the administrator's one-time enrolment code (shown once).

    Raises
    ------
    WorkbenchError
        If ``home`` holds a store already, the administrator would not pass the policy, or
        no key-encryption secret is configured.
    """
    home = Path(home)
    paths = store_paths(home)
    if (paths.keys / "keystore.json").exists() or paths.data.exists():
        raise WorkbenchError(f"{home} already holds a workbench store; init makes a new one")
    policy = load_policy()
    now = dt.datetime.now(dt.UTC)
    low, high = policy.retention_days_range
    if not low <= retention_days <= high:
        raise WorkbenchError(f"retention must be between {low} and {high} days")
    admin = User(
        user_id=admin_user_id,
        full_name=admin_name,
        role="administrator",
        organization=organization,
        organization_type="ca_local_agency",
        job_title=job_title,
        is_active=True,
        approved_by=_ACTOR,
        approved_at=now,
        trained_at=now,
    )
    problem = user_problem(admin, policy=policy, now=now)
    if problem is not None:
        raise WorkbenchError(f"the first administrator is refused: {problem}")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    store = Store.create(home, passphrase=passphrase, root=key_root)
    audit = AuditLog.open(home, store.keystore)
    try:
        write_department_settings(home, store.keystore, retention_days=retention_days)
        audit.append(
            {
                "event_type": "settings_change",
                "user_id": _ACTOR,
                "outcome": "allowed",
                "query_json": json.dumps(
                    {"action": "initial_settings", "new": {"retention_days": retention_days}}
                ),
            }
        )
        users = store.tables.read("users")
        store.tables.write("users", pl.DataFrame([admin.model_dump()], schema=users.schema))
        audit.append(
            {
                "event_type": "user_change",
                "user_id": _ACTOR,
                "outcome": "allowed",
                "query_json": json.dumps(
                    {"action": "first_administrator", "user_id": admin_user_id}
                ),
            }
        )
        files = make_loopback_certificate(home)
        code = AccountStore(home, store.keystore).issue_enrolment(
            admin_user_id, issued_by=_ACTOR
        )
        audit.append(
            {
                "event_type": "user_change",
                "user_id": _ACTOR,
                "outcome": "allowed",
                "query_json": json.dumps(
                    {"service": "issue_enrolment", "target_user_id": admin_user_id}
                ),
            }
        )
    finally:
        audit.close()
    return InitResult(home, admin_user_id, code, files.certfile)
