"""The encrypted store: the only code that touches Parquet files.

Parquet Modular Encryption (AES-256-GCM, encrypted footer), one column key per column wrapped
under per-partition master keys (personal vs operational), external key material so master
keys rotate without rewriting data, each file bound to its partition and name, authenticated
manifests and index of partitions committed through one journal (see
``docs/decisions/0002-authenticated-partitions.md``), crypto-shredding retention and legal
holds, and an in-memory cache of decrypted day files for the service (decision 0009).
"""

from alpr_workbench.store._holder import StoreBusyError, hold_store
from alpr_workbench.store._readcache import READ_CACHE, ReadCache
from alpr_workbench.store._reads import IngestReport, PurgeReport, ReadStore
from alpr_workbench.store._store import Store, store_paths
from alpr_workbench.store._tables import TableStore

__all__ = [
    "IngestReport",
    "PurgeReport",
    "READ_CACHE",
    "ReadCache",
    "ReadStore",
    "Store",
    "StoreBusyError",
    "TableStore",
    "hold_store",
    "store_paths",
]
