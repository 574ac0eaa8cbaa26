"""One commit for many partitions: a journal renamed into place, replayed on the next open.

An ingest touches several day partitions and the hits table; a purge drops days. Each
partition's manifest is replaced atomically, but a process killed between two of them would
leave some days (or the reads without their hits) visible. So the new files are first
written, unlisted, into their partitions; then one journal naming every new manifest, every
dropped partition and the new index of partitions (see ``store/_index.py``), all under one
HMAC, is written and renamed into place — that rename is the commit point — and the
manifests, the index, the key store (keys of dropped partitions destroyed) and the index's
witness are updated from it. A journal found later (the writer was killed while applying
it) is applied again by the next process to touch the store; without a journal the unlisted
files are leftovers, ignored and later removed. Applying a journal twice gives the same
result, so replay is safe; a journal that does not authenticate, or that is not the next
generation of the witnessed index, is refused.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alpr_workbench._fsutil import atomic_write_bytes, exclusive_lock, fsync_dir
from alpr_workbench.errors import StoreError
from alpr_workbench.keys import KeyStore
from alpr_workbench.store._index import (
    FORMAT,
    MANIFEST,
    StaleStateError,
    digest,
    is_authentic,
    load_index,
    read_witness,
    seal,
    write_index,
    write_witness,
)

JOURNAL = "_commit.json"
LOCK = ".commit.lock"
_T = TypeVar("_T")


@dataclass(frozen=True)
class ManifestUpdate:
    """The new content of one partition (``manifest``: its table and files) and stale files."""

    folder: Path
    manifest: dict[str, Any]
    remove: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class PartitionDrop:
    """A partition to crypto-shred: its master keys destroyed, its folder deleted."""

    folder: Path
    key_ids: tuple[str, ...]


_HELD: set[Path] = set()  # stores whose commit lock this process holds (not re-entrant)
_HELD_MUTEX = threading.Lock()


def _held(store_root: Path) -> bool:
    with _HELD_MUTEX:
        return store_root.resolve() in _HELD


@contextmanager
def commit_lock(store_root: Path, keystore: KeyStore) -> Iterator[None]:
    """Hold the store-wide writer lock (one writer commits at a time, across processes).

    A commit a killed writer left half applied is finished first.
    """
    store_root.mkdir(parents=True, exist_ok=True)
    key = store_root.resolve()
    with exclusive_lock(store_root / LOCK):
        with _HELD_MUTEX:
            _HELD.add(key)
        try:
            if (store_root / JOURNAL).is_file():
                _apply(store_root, keystore, _load(store_root / JOURNAL))
            yield
        finally:
            with _HELD_MUTEX:
                _HELD.discard(key)


def consistent(store_root: Path, keystore: KeyStore, read: Callable[[], _T]) -> _T:
    """Run ``read``; if it saw a commit in flight, run it again once no commit is.

    Readers take no lock. A :class:`StaleStateError` (index, witness and manifests
    disagree) may mean a writer is between two of its renames, so ``read`` runs again
    under the commit lock, where a disagreement is real and raised.
    """
    try:
        return read()
    except StaleStateError:
        pass
    for _ in range(50):
        if not _held(store_root):
            with commit_lock(store_root, keystore):
                return read()
        time.sleep(0.02)  # this process is committing, perhaps in another thread: wait
        try:
            return read()
        except StaleStateError:
            pass
    return read()


def publish(
    store_root: Path,
    keystore: KeyStore,
    updates: Sequence[ManifestUpdate],
    drops: Sequence[PartitionDrop] = (),
) -> None:
    """Make every update and drop visible as one unit. The caller holds :func:`commit_lock`."""
    if not updates and not drops:
        return
    index = load_index(store_root, keystore)
    generation = int(index["generation"]) + 1
    partitions = dict(index["partitions"])
    entries = []
    for update in updates:
        rel = update.folder.relative_to(store_root).as_posix()
        manifest = seal(
            keystore,
            "manifest",
            {
                "format": FORMAT,
                "table": update.manifest["table"],
                "partition": rel,
                "generation": generation,
                "files": update.manifest["files"],
            },
        )
        partitions[rel] = {
            "table": update.manifest["table"],
            "generation": generation,
            "sha256": digest(manifest),
        }
        entries.append({"partition": rel, "manifest": manifest, "remove": list(update.remove)})
    dropped = [drop.folder.relative_to(store_root).as_posix() for drop in drops]
    for rel in dropped:
        partitions.pop(rel, None)
    new_index = seal(
        keystore, "index", {"format": FORMAT, "generation": generation, "partitions": partitions}
    )
    doc = seal(
        keystore,
        "journal",
        {
            "format": FORMAT,
            "updates": entries,
            "drops": dropped,
            "destroy": [key_id for drop in drops for key_id in drop.key_ids],
            "index": new_index,
        },
    )
    atomic_write_bytes(store_root / JOURNAL, json.dumps(doc).encode())  # the commit point
    _apply(store_root, keystore, doc)


def recover(store_root: Path, keystore: KeyStore) -> bool:
    """Finish a commit a killed writer left half applied; return True when one was found."""
    if not (store_root / JOURNAL).is_file():
        return False
    if _held(store_root):
        return False  # this process is committing; it applied any old journal first
    with commit_lock(store_root, keystore):  # applies the journal, if another process has not
        return True


def _load(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"store commit journal {path} is unreadable or corrupted") from exc
    return doc


def _inside(store_root: Path, rel: str) -> Path:
    root = store_root.resolve()
    folder = (store_root / rel).resolve()
    if root not in folder.parents:
        raise StoreError(f"store commit journal names {rel!r}, outside the store")
    return folder


def _apply(store_root: Path, keystore: KeyStore, doc: dict[str, Any]) -> None:
    path = store_root / JOURNAL
    if doc.get("format") != FORMAT or not is_authentic(keystore, "journal", doc):
        raise StoreError(f"store commit journal {path} does not authenticate; not applied")
    index = doc["index"]
    generation = int(index["generation"])
    witness = read_witness(keystore)
    seen = -1 if witness is None else int(witness["generation"])
    applied = witness is not None and witness["index_sha256"] == digest(index)
    if not (seen == generation - 1 or (seen == generation and applied)):
        raise StoreError(
            f"store commit journal {path} is for generation {generation} but the store is at "
            f"generation {seen}: a stale journal was put back; not applied"
        )
    folders = []
    for entry in doc["updates"]:
        folder = _inside(store_root, entry["partition"])
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / MANIFEST, json.dumps(entry["manifest"], indent=1).encode())
        folders.append((folder, entry.get("remove", [])))
    write_index(store_root, index)
    destroy = list(doc["destroy"])
    live = [k for k in destroy if k not in keystore.destroyed(destroy)]
    if live:
        keystore.destroy(live)  # crypto-shredding: from here no copy can be decrypted
    write_witness(keystore, index)
    for folder, names in folders:
        for name in names:
            (folder / name).unlink(missing_ok=True)
    for rel in doc["drops"]:
        folder = _inside(store_root, rel)
        shutil.rmtree(folder, ignore_errors=True)
        (folder.parent / f".{folder.name}.lock").unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    fsync_dir(store_root)
