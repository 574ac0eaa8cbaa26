"""Authenticated manifests and the store's index of partitions, witnessed beside the key store.

A partition's ``_manifest.json`` names its table, its partition (``reads/day=2026-10-01``), the
store generation that last wrote it and its files, under an HMAC-SHA256 with the key store's
``store/hmac`` key. ``<store>/_index.json`` lists every live partition with its generation and
the SHA-256 of its manifest, under the same HMAC, with the store's own generation. The
witness (``<keys>/witness-store.bin``) keeps the last index generation and digest, so
restoring an older copy of the store folder (index and manifests together) is caught too.

So a deleted, emptied, altered, moved, swapped or replayed manifest, and a deleted or
replayed index, is an error naming the partition, never a silently missing day. Files are
bound to their partition by their key material (see ``store/_kms.py``). The witness shares
the key store's fate: whoever restores both to an older copy can roll both back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import StoreError
from alpr_workbench.keys import KeyStore

FORMAT = 2
INDEX = "_index.json"
MANIFEST = "_manifest.json"
MAC_KEY = "store/hmac"
WITNESS = "store"
_PARTITION_KEY_PREFIXES = ("reads/", "holds/", "tables/")


class StaleStateError(StoreError):
    """The index, its witness and the manifests disagree (perhaps a commit in flight)."""


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes a MAC or digest covers: sorted, compact JSON."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def digest(doc: dict[str, Any]) -> str:
    """SHA-256 (hex) of a document's canonical form, its MAC included."""
    return hashlib.sha256(canonical(doc)).hexdigest()


def _mac(keystore: KeyStore, kind: str, body: dict[str, Any]) -> str:
    key = keystore.current_key(MAC_KEY).material
    return hmac.new(key, kind.encode() + b"\0" + canonical(body), hashlib.sha256).hexdigest()


def seal(keystore: KeyStore, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with an HMAC over it (``kind``: manifest, index, witness or journal)."""
    clean = {k: v for k, v in body.items() if k != "mac"}
    return {**clean, "mac": _mac(keystore, kind, clean)}


def is_authentic(keystore: KeyStore, kind: str, doc: dict[str, Any]) -> bool:
    """True when ``doc`` carries a valid HMAC of ``kind``."""
    mac = doc.get("mac")
    if not isinstance(mac, str):
        return False
    body = {k: v for k, v in doc.items() if k != "mac"}
    return hmac.compare_digest(mac, _mac(keystore, kind, body))


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{what} is unreadable or corrupted") from exc
    if not isinstance(doc, dict):
        raise StoreError(f"{what} is corrupted")
    return doc


def empty_index(keystore: KeyStore) -> dict[str, Any]:
    """The index of a store with no partition (generation 0)."""
    return seal(keystore, "index", {"format": FORMAT, "generation": 0, "partitions": {}})


def write_index(store_root: Path, index: dict[str, Any]) -> None:
    """Replace the index file atomically."""
    atomic_write_bytes(store_root / INDEX, json.dumps(index, indent=1).encode())


def write_witness(keystore: KeyStore, index: dict[str, Any]) -> None:
    """Record the generation and digest of ``index`` beside the key store."""
    body = {"format": FORMAT, "generation": index["generation"], "index_sha256": digest(index)}
    doc = seal(keystore, "witness", body)
    atomic_write_bytes(keystore.witness_path(WITNESS), json.dumps(doc).encode())


def read_witness(keystore: KeyStore) -> dict[str, Any] | None:
    """The authenticated witness, or ``None`` when there is none."""
    path = keystore.witness_path(WITNESS)
    if not path.is_file():
        return None
    doc = _read_json(path, f"store witness {path}")
    if not is_authentic(keystore, "witness", doc):
        raise StoreError(f"store witness {path} does not authenticate (altered?)")
    return doc


def load_index(store_root: Path, keystore: KeyStore) -> dict[str, Any]:
    """Read the index, check its HMAC and that it is the one the witness last saw.

    Raises
    ------
    StoreError
        If the index is missing, altered, or an older copy than the witness records.
    """
    witness = read_witness(keystore)
    if witness is None:
        raise StoreError(
            f"store witness {keystore.witness_path(WITNESS)} is missing: the store's index "
            "cannot be checked (deleted?)"
        )
    path = store_root / INDEX
    if not path.is_file():
        raise StoreError(f"the store's index {path} is missing (deleted?)")
    index = _read_json(path, f"the store's index {path}")
    if not is_authentic(keystore, "index", index):
        raise StoreError(f"the store's index {path} does not authenticate (altered?)")
    generation = int(index["generation"])
    if generation < int(witness["generation"]):
        raise StaleStateError(
            f"the store's index is generation {generation} but the key store witnessed "
            f"generation {witness['generation']}: an older copy of the store was restored"
        )
    if generation != int(witness["generation"]) or digest(index) != witness["index_sha256"]:
        raise StaleStateError(
            f"the store's index (generation {generation}) is not the one the key store "
            f"witnessed (generation {witness['generation']})"
        )
    return index


def check_manifest(
    keystore: KeyStore, index: dict[str, Any], rel: str, table: str, path: Path, label: str
) -> dict[str, Any]:
    """The authenticated manifest of partition ``rel`` (an empty one when it has none).

    Raises
    ------
    StoreError
        Naming the partition, when its manifest is missing, altered, belongs elsewhere, or is
        not the generation the index lists; or when it has one the index does not list.
    """
    entry = index["partitions"].get(rel)
    if entry is None:
        if path.is_file():
            raise StaleStateError(
                f"{label}: has a manifest the store's index does not list "
                "(a partition copied in from elsewhere?)"
            )
        return {"format": FORMAT, "table": table, "partition": rel, "generation": 0, "files": []}
    if not path.is_file():
        raise StaleStateError(
            f"{label}: its manifest is missing, but the store's index lists it "
            f"(generation {entry['generation']}): the partition was deleted"
        )
    doc = _read_json(path, f"{label}: manifest")
    if not is_authentic(keystore, "manifest", doc):
        raise StoreError(f"{label}: manifest does not authenticate (altered or emptied?)")
    if doc.get("partition") != rel or doc.get("table") != table:
        raise StoreError(
            f"{label}: manifest belongs to {doc.get('partition')!r}: partitions were moved "
            "or swapped"
        )
    if int(doc["generation"]) != int(entry["generation"]) or digest(doc) != entry["sha256"]:
        raise StaleStateError(
            f"{label}: manifest is generation {doc['generation']}, the store's index expects "
            f"{entry['generation']}: an older copy of the partition was restored"
        )
    return doc


def initialise(store_root: Path, keystore: KeyStore) -> None:
    """Give a new store its MAC key, empty index and witness; refuse an old-format store.

    Raises
    ------
    StoreError
        If the store was made before manifests were authenticated, or its witness is gone.
    """
    if keystore.witness_path(WITNESS).is_file():
        return
    has_key = bool(keystore.key_ids(prefix=MAC_KEY, include_destroyed=True))
    has_data = any(keystore.key_ids(prefix=p) for p in _PARTITION_KEY_PREFIXES) or any(
        store_root.glob(f"*/*/{MANIFEST}")
    )
    if has_data and not has_key:
        raise StoreError(
            f"the store in {store_root} is in an older format (format 1: manifests without "
            "authentication, no index); this version cannot open it. Create a new data "
            "directory and ingest the reads again"
        )
    if has_data or (store_root / INDEX).is_file():
        raise StoreError(
            f"store witness {keystore.witness_path(WITNESS)} is missing: the store's index "
            "cannot be checked (deleted?)"
        )
    keystore.ensure_keys([MAC_KEY])
    index = empty_index(keystore)
    store_root.mkdir(parents=True, exist_ok=True)
    write_index(store_root, index)
    write_witness(keystore, index)
