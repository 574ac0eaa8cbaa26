"""Governance: the gate every read of reads passes, sharing grants and the audit log."""

from alpr_workbench.governance.admin import (
    AdminRefused,
    change_user,
    place_legal_hold,
    purge_expired,
    release_legal_hold,
    rotate_master_keys,
)
from alpr_workbench.governance.audit_log import (
    AuditLog,
    AuditLogError,
    AuditRecord,
    AuditVerification,
    SignedDigest,
    verify_digest,
)
from alpr_workbench.governance.gate import (
    Gate,
    ReadSummary,
    SearchRefused,
    SearchRequest,
    SearchResult,
)
from alpr_workbench.governance.registry import Case, User, current_username, get_case, get_user
from alpr_workbench.governance.screening import ScreenResult, is_vague_reason, screen_text
from alpr_workbench.governance.sharing import (
    SharingRefused,
    add_grant,
    grants_digest,
    revoke_grant,
    sharing_drift,
    snapshot_sharing,
    visible_networks,
)
from alpr_workbench.governance.vendor_import import (
    VendorImport,
    classify_organization,
    read_vendor_audit,
)

__all__ = [
    "AdminRefused",
    "change_user",
    "place_legal_hold",
    "purge_expired",
    "release_legal_hold",
    "rotate_master_keys",
    "snapshot_sharing",
    "AuditLog",
    "AuditLogError",
    "AuditRecord",
    "AuditVerification",
    "Case",
    "Gate",
    "ReadSummary",
    "ScreenResult",
    "SearchRefused",
    "SearchRequest",
    "SearchResult",
    "SharingRefused",
    "SignedDigest",
    "User",
    "VendorImport",
    "add_grant",
    "classify_organization",
    "current_username",
    "get_case",
    "get_user",
    "grants_digest",
    "is_vague_reason",
    "read_vendor_audit",
    "revoke_grant",
    "screen_text",
    "sharing_drift",
    "verify_digest",
    "visible_networks",
]
