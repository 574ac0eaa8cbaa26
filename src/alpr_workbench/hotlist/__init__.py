"""Hotlists, hits and outcomes.

Import state stolen-vehicle lists and NCIC-style extracts from CSV (never-alert categories
such as immigration violator are dropped and counted), create custom lists tied to a case,
add, change and delete entries (every change audited), match batches of reads against the
entries alerting at capture time (exact and confusable tiers), and record dispositions and
the outcomes that follow a confirmed hit.

Layer 4: imports only ``schema``, ``policy``, ``plates``, ``store`` and ``errors``. Audit
records go through an ``audit_append`` callable supplied by the caller (the governance
layer's audit log in production, a list in tests); permission checks (who may manage
hotlists) belong to that caller too.
"""

from alpr_workbench.hotlist._common import (
    AuditAppend,
    HotlistFileError,
    HotlistRefusedError,
    is_never_alert,
    normalize_category,
)
from alpr_workbench.hotlist._csv import HEADER_SYNONYMS, HotlistImport, read_hotlist_csv
from alpr_workbench.hotlist._hits import (
    DISPOSITIONS,
    OUTCOME_TYPES,
    record_disposition,
    record_hits,
    record_outcome,
)
from alpr_workbench.hotlist._manage import (
    CHANGEABLE_FIELDS,
    HotlistLoad,
    add_entry,
    change_entry,
    create_custom_hotlist,
    delete_entry,
    load_hotlist,
)
from alpr_workbench.hotlist._match import (
    CONFUSABLE,
    active_entries,
    confusable_key,
    match_reads,
)

__all__ = [
    "CHANGEABLE_FIELDS",
    "CONFUSABLE",
    "DISPOSITIONS",
    "HEADER_SYNONYMS",
    "OUTCOME_TYPES",
    "AuditAppend",
    "HotlistFileError",
    "HotlistImport",
    "HotlistLoad",
    "HotlistRefusedError",
    "active_entries",
    "add_entry",
    "change_entry",
    "confusable_key",
    "create_custom_hotlist",
    "delete_entry",
    "is_never_alert",
    "load_hotlist",
    "match_reads",
    "normalize_category",
    "read_hotlist_csv",
    "record_disposition",
    "record_hits",
    "record_outcome",
]
