"""The store facade: one data directory, one key store, reads plus small tables."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from alpr_workbench.errors import StoreError
from alpr_workbench.keys import KeyStore
from alpr_workbench.keys_pkcs11 import Pkcs11Config
from alpr_workbench.store._commit import commit_lock, publish, recover
from alpr_workbench.store._index import initialise, load_index
from alpr_workbench.store._reads import IngestReport, ReadStore
from alpr_workbench.store._tables import TableStore


@dataclass(frozen=True)
class StorePaths:
    """Where a data directory keeps its parts."""

    home: Path
    keys: Path
    data: Path


def store_paths(home: Path) -> StorePaths:
    """Folder layout of a workbench data directory."""
    home = Path(home)
    return StorePaths(home=home, keys=home / "keys", data=home / "store")


class Store:
    """An opened data directory: ``reads`` (day partitions) and ``tables`` (everything else).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> store = Store.create(home, passphrase="correct horse battery staple")
    >>> store.reads.days()
    []
    """

    def __init__(self, home: Path, keystore: KeyStore) -> None:
        paths = store_paths(home)
        self.home = paths.home
        self.keystore = keystore
        self.reads = ReadStore(paths.data, keystore)
        self.tables = TableStore(paths.data, keystore)
        initialise(paths.data, keystore)
        recover(paths.data, keystore)

    def ingest(
        self,
        reads: pl.DataFrame,
        *,
        hits: pl.DataFrame | None = None,
        batch_id: str | None = None,
        before_commit: Callable[[IngestReport, int], None] | None = None,
    ) -> tuple[IngestReport, int]:
        """Store a batch of reads and the hits it raised, visible as one unit or not at all.

        Every new file is written unlisted first; one journal then commits every day's
        manifest and the hits table together (see ``store/_commit.py``). A process killed at
        any moment leaves the whole batch, with its hits, or none of it.

        Parameters
        ----------
        reads, hits
            The batch and the hits it raised.
        batch_id
            Kept in the manifest entry of every new file (see :meth:`ReadStore.batch_ids`).
        before_commit
            Called with what the commit will add (the report and the hits), after every
            file is written and before the commit point, holding the commit lock: the
            ingest's audit record goes here, so no batch is ever stored without one. If it
            raises, nothing is committed.

        Returns
        -------
        tuple
            The read store's :class:`IngestReport` and the number of hits added.
        """
        with commit_lock(self.reads.root, self.keystore):
            report, updates = self.reads.stage_ingest(reads, batch_id=batch_id)
            added = 0
            if hits is not None and hits.height:
                added, update = self.tables.stage_append("hits", hits)
                if update is not None:
                    updates.append(update)
            if before_commit is not None:
                before_commit(report, added)
            publish(self.reads.root, self.keystore, updates)
        return report, added

    @classmethod
    def create(
        cls,
        home: Path,
        *,
        passphrase: str | None = None,
        demo: bool = False,
        root: Pkcs11Config | None = None,
    ) -> Store:
        """Create a new data directory with an empty key store (see :meth:`KeyStore.create`).

        ``root`` puts the key root on a PKCS#11 token, so a purge reaches every copy of the
        key store (``docs/decisions/0005-pkcs11-key-root.md``).
        """
        paths = store_paths(home)
        paths.home.mkdir(parents=True, exist_ok=True)
        paths.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(paths.data, 0o700)
        return cls(
            home, KeyStore.create(paths.keys, passphrase=passphrase, demo=demo, root=root)
        )

    @classmethod
    def open(cls, home: Path, *, passphrase: str | None = None) -> Store:
        """Open an existing data directory (see :meth:`KeyStore.open`)."""
        return cls(home, KeyStore.open(store_paths(home).keys, passphrase=passphrase))

    def rotate_master_keys(self) -> int:
        """Rotate every master key without rewriting data; return files re-wrapped."""
        return self.reads.rotate_keys() + self.tables.rotate_keys()

    def verify(self) -> list[str]:
        """Check the index, every manifest and every file; return the problems found.

        Runs under the commit lock, so a concurrent writer is never mistaken for damage. A
        missing, emptied, altered, moved, swapped or replayed partition, manifest or index is
        a problem naming it; crypto-shredded (purged) partitions are not, since the purge
        removed them from the index in the same commit.
        """
        with commit_lock(self.reads.root, self.keystore):
            try:
                index = load_index(self.reads.root, self.keystore)
            except StoreError as exc:
                return [str(exc)]
            return self.reads.verify(index) + self.tables.verify(index)
