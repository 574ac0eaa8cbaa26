"""The store facade: one data directory, one key store, reads plus small tables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alpr_workbench.keys import KeyStore
from alpr_workbench.store._reads import ReadStore
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

    @classmethod
    def create(cls, home: Path, *, passphrase: str | None = None, demo: bool = False) -> Store:
        """Create a new data directory with an empty key store (see :meth:`KeyStore.create`)."""
        paths = store_paths(home)
        paths.home.mkdir(parents=True, exist_ok=True)
        paths.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(paths.data, 0o700)
        return cls(home, KeyStore.create(paths.keys, passphrase=passphrase, demo=demo))

    @classmethod
    def open(cls, home: Path, *, passphrase: str | None = None) -> Store:
        """Open an existing data directory (see :meth:`KeyStore.open`)."""
        return cls(home, KeyStore.open(store_paths(home).keys, passphrase=passphrase))

    def rotate_master_keys(self) -> int:
        """Rotate every master key without rewriting data; return files re-wrapped."""
        return self.reads.rotate_keys() + self.tables.rotate_keys()

    def verify(self) -> list[str]:
        """Decrypt and authenticate every stored file; return the problems found."""
        return self.reads.verify() + self.tables.verify()
