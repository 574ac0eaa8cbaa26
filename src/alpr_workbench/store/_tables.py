"""Small tables (cameras, users, cases, hits...): one encrypted partition per table."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from alpr_workbench.errors import StoreError
from alpr_workbench.keys import KeyStore
from alpr_workbench.schema import list_tables, load_table, validate_frame
from alpr_workbench.store._partition import Partition


class TableStore:
    """Every declared table except ``reads``, each replaced atomically as a whole."""

    def __init__(self, root: Path, keystore: KeyStore) -> None:
        self.root = root / "tables"
        self.keystore = keystore
        self._cache: dict[str, tuple[tuple[int, int, int], pl.DataFrame]] = {}

    def _partition(self, table: str) -> Partition:
        if table == "reads":
            raise StoreError("reads live in the read store, not the table store")
        if table not in list_tables():
            raise StoreError(f"unknown table {table!r}")
        return Partition(
            self.root / table, f"tables/{table}", load_table(table), self.keystore, f"table {table}"
        )

    def write(self, table: str, frame: pl.DataFrame) -> None:
        """Validate ``frame`` and make it the table's whole content, atomically."""
        batch = validate_frame(table, frame)
        self._partition(table).write(batch, replace=True)

    def append(self, table: str, frame: pl.DataFrame) -> int:
        """Add rows to a table; rows whose primary key is already stored are skipped.

        Returns
        -------
        int
            Rows added.
        """
        spec = load_table(table)
        batch = validate_frame(table, frame)
        current = self.read(table)
        if spec.primary_key and current.height:
            batch = batch.join(
                current.select(spec.primary_key), on=list(spec.primary_key), how="anti"
            )
        if batch.height:
            self.write(table, pl.concat([current, batch], how="vertical"))
        return batch.height

    def read(self, table: str) -> pl.DataFrame:
        """Decrypt and return a whole table (empty with its schema when never written).

        Results are cached until the table's manifest changes, so a revoked grant or a closed
        case is seen by the very next read, in this process or any other.
        """
        partition = self._partition(table)
        manifest = partition.root / "_manifest.json"
        try:
            stat = manifest.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            stamp = None
        cached = self._cache.get(table)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        frame = partition.read()
        if stamp is not None:
            self._cache[table] = (stamp, frame)
        return frame

    def exists(self, table: str) -> bool:
        """True when the table has been written."""
        return self._partition(table).exists()

    def rotate_keys(self) -> int:
        """Rotate the master keys of every table; return files re-wrapped."""
        return sum(self._partition(t).rotate_keys() for t in list_tables() if t != "reads")

    def verify(self) -> list[str]:
        """Decrypt and authenticate every table; return the problems found."""
        problems: list[str] = []
        for table in list_tables():
            if table != "reads":
                problems.extend(self._partition(table).verify())
        return problems
