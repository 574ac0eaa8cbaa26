"""The encrypted store: the only code that touches Parquet files.

Parquet Modular Encryption (AES-256-GCM, encrypted footer), one column key per column wrapped
under per-partition master keys (personal vs operational), external key material so master
keys rotate without rewriting data, each file bound to its partition and name, authenticated
manifests and index of partitions committed through one journal (see
``docs/decisions/0002-authenticated-partitions.md``), crypto-shredding retention and legal
holds.
"""

from alpr_workbench.store._reads import IngestReport, PurgeReport, ReadStore
from alpr_workbench.store._store import Store, store_paths
from alpr_workbench.store._tables import TableStore

__all__ = ["IngestReport", "PurgeReport", "ReadStore", "Store", "TableStore", "store_paths"]
