"""Small tables (cameras, users, cases, hits...): one encrypted partition per table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench.errors import StoreError
from alpr_workbench.keys import KeyStore
from alpr_workbench.schema import list_tables, load_table, validate_frame
from alpr_workbench.store._commit import ManifestUpdate, commit_lock, publish, recover
from alpr_workbench.store._index import INDEX, MANIFEST, WITNESS
from alpr_workbench.store._partition import Partition


class TableStore:
    """Every declared table except ``reads``, each replaced atomically as a whole."""

    def __init__(self, root: Path, keystore: KeyStore) -> None:
        self.store_root = root
        self.root = root / "tables"
        self.keystore = keystore
        # table -> (stamp of manifest, index and witness; what the frame was decrypted from;
        # the frame)
        self._cache: dict[str, tuple[tuple[int, ...], _Source, pl.DataFrame]] = {}

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
        with commit_lock(self.store_root, self.keystore):
            added, update = self.stage_append(table, frame)
            if update is not None:
                publish(self.store_root, self.keystore, [update])
        return added

    def stage_append(self, table: str, frame: pl.DataFrame) -> tuple[int, ManifestUpdate | None]:
        """Stage the table with ``frame``'s new rows added; return rows added and the update.

        The caller holds :func:`commit_lock` and publishes the update (``None`` when nothing
        is new).
        """
        spec = load_table(table)
        batch = validate_frame(table, frame)
        current = self.read(table)
        if spec.primary_key and current.height:
            batch = batch.join(
                current.select(spec.primary_key), on=list(spec.primary_key), how="anti"
            )
        if not batch.height:
            return 0, None
        partition = self._partition(table)
        whole = validate_frame(table, pl.concat([current, batch], how="vertical"))
        entry = partition.stage(whole)
        return batch.height, partition.update([entry], replace=True)

    def read(self, table: str) -> pl.DataFrame:
        """Decrypt and return a whole table (empty with its schema when never written).

        Results are cached until the table's manifest or the store's index changes, so a
        revoked grant or a closed case is seen by the very next read, in this process or any
        other. When only the index changed (another table was written), the table's
        authenticated manifest is checked again, and the cached frame is kept when it lists
        the very files, unchanged on disk, that the frame was decrypted from.

        Raises
        ------
        StoreError
            If the table's manifest is missing, altered, moved or an older copy.
        """
        recover(self.store_root, self.keystore)
        partition = self._partition(table)
        stamp = _stamp(
            partition.root / MANIFEST,
            self.store_root / INDEX,
            self.keystore.witness_path(WITNESS),
        )
        cached = self._cache.get(table)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[2]
        # Checks the index, the witness, and the manifest's generation and digest: a
        # restored, altered, moved or deleted manifest raises here, cache or no cache.
        manifest = partition.manifest()
        source = (
            int(manifest["generation"]),
            tuple(
                (str(item["name"]), int(item["rows"]), int(item["bytes"]))
                for item in manifest["files"]
            ),
            tuple(key for _, key in partition.candidates(manifest=manifest)),
        )
        if cached is not None and cached[1] == source:
            frame = cached[2]
        else:
            frame = partition.read()
        if stamp is not None:
            # ``partition.read`` may have seen a newer manifest than ``source``: then the next
            # read finds a new stamp and a different manifest, and decrypts again.
            self._cache[table] = (stamp, source, frame)
        return frame

    def exists(self, table: str) -> bool:
        """True when the table has been written."""
        return self._partition(table).exists()

    def rotate_keys(self) -> int:
        """Rotate the master keys of every table; return files re-wrapped."""
        return sum(self._partition(t).rotate_keys() for t in list_tables() if t != "reads")

    def verify(self, index: dict[str, Any] | None = None) -> list[str]:
        """Check every table's manifest, and that its file decrypts and authenticates.

        Parameters
        ----------
        index
            The store's index, already loaded and checked; loaded here when ``None``.

        Returns
        -------
        list of str
            The problems found, each naming its table (empty when sound).
        """
        problems: list[str] = []
        for table in list_tables():
            if table != "reads":
                problems.extend(self._partition(table).verify(index))
        return problems


# (generation, files listed as (name, rows, bytes), files on disk as (path, size, mtime_ns))
_Source = tuple[int, tuple[tuple[str, int, int], ...], tuple[tuple[str, int, int], ...]]


def _stamp(*paths: Path) -> tuple[int, ...] | None:
    """Modification time, size and inode of each of ``paths`` (None when one is missing)."""
    stamp: tuple[int, ...] = ()
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        stamp = (*stamp, stat.st_mtime_ns, stat.st_size, stat.st_ino)
    return stamp
