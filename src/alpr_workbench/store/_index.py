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

A long-running process (the service) reads the witness, the index and a manifest per day on
every search. It remembers what it already authenticated, keyed on the file's exact bytes and
the MAC key (``docs/decisions/0007-store-search-speed.md``): every read still reads the file,
and any change of content, however small and whatever its timestamps, is parsed and
authenticated again. Only the checks of generation and digest are repeated on cached documents,
so a swapped, replayed or deleted file is refused exactly as without the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
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
_CACHE_LIMIT = 4096

# (kind, path) -> (raw bytes, MAC key fingerprint, authenticated document, its digest)
_AUTHENTIC: dict[tuple[str, str], tuple[bytes, bytes, dict[str, Any], str]] = {}
_AUTHENTIC_LOCK = threading.Lock()


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


def _parse_json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise StoreError(f"{what} is unreadable or corrupted") from exc
    if not isinstance(doc, dict):
        raise StoreError(f"{what} is corrupted")
    return doc


def _read_authentic(
    keystore: KeyStore, kind: str, path: Path, what: str
) -> tuple[dict[str, Any], str] | None:
    """The document in ``path`` and its digest when it carries a valid HMAC of ``kind``.

    Returns ``None`` when it does not authenticate. The file is read every time; a document
    already authenticated with the same bytes under the same MAC key is not parsed and
    authenticated again. The returned document is shared: callers copy what they change.

    Raises
    ------
    StoreError
        If the file cannot be read or is not a JSON object.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"{what} is unreadable or corrupted") from exc
    fingerprint = hashlib.sha256(b"cache\0" + keystore.current_key(MAC_KEY).material).digest()
    slot = (kind, str(path))
    with _AUTHENTIC_LOCK:
        hit = _AUTHENTIC.get(slot)
    if hit is not None and hit[0] == raw and hmac.compare_digest(hit[1], fingerprint):
        return hit[2], hit[3]
    doc = _parse_json(raw, what)
    if not is_authentic(keystore, kind, doc):
        forget_authentic(path)
        return None
    entry = (raw, fingerprint, doc, digest(doc))
    with _AUTHENTIC_LOCK:
        if len(_AUTHENTIC) >= _CACHE_LIMIT:
            _AUTHENTIC.clear()
        _AUTHENTIC[slot] = entry
    return doc, entry[3]


def forget_authentic(path: Path) -> None:
    """Drop what this process remembers of ``path`` (a file removed or found altered)."""
    with _AUTHENTIC_LOCK:
        for slot in [s for s in _AUTHENTIC if s[1] == str(path)]:
            del _AUTHENTIC[slot]


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
        forget_authentic(path)
        return None
    found = _read_authentic(keystore, "witness", path, f"store witness {path}")
    if found is None:
        raise StoreError(f"store witness {path} does not authenticate (altered?)")
    return dict(found[0])


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
        forget_authentic(path)
        raise StoreError(f"the store's index {path} is missing (deleted?)")
    found = _read_authentic(keystore, "index", path, f"the store's index {path}")
    if found is None:
        raise StoreError(f"the store's index {path} does not authenticate (altered?)")
    index, index_sha256 = found
    generation = int(index["generation"])
    if generation < int(witness["generation"]):
        raise StaleStateError(
            f"the store's index is generation {generation} but the key store witnessed "
            f"generation {witness['generation']}: an older copy of the store was restored"
        )
    if generation != int(witness["generation"]) or index_sha256 != witness["index_sha256"]:
        raise StaleStateError(
            f"the store's index (generation {generation}) is not the one the key store "
            f"witnessed (generation {witness['generation']})"
        )
    return {**index, "partitions": dict(index["partitions"])}


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
        forget_authentic(path)
        raise StaleStateError(
            f"{label}: its manifest is missing, but the store's index lists it "
            f"(generation {entry['generation']}): the partition was deleted"
        )
    found = _read_authentic(keystore, "manifest", path, f"{label}: manifest")
    if found is None:
        raise StoreError(f"{label}: manifest does not authenticate (altered or emptied?)")
    doc, doc_sha256 = found
    if doc.get("partition") != rel or doc.get("table") != table:
        raise StoreError(
            f"{label}: manifest belongs to {doc.get('partition')!r}: partitions were moved "
            "or swapped"
        )
    if int(doc["generation"]) != int(entry["generation"]) or doc_sha256 != entry["sha256"]:
        raise StaleStateError(
            f"{label}: manifest is generation {doc['generation']}, the store's index expects "
            f"{entry['generation']}: an older copy of the partition was restored"
        )
    return {**doc, "files": [dict(item) for item in doc["files"]]}


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
