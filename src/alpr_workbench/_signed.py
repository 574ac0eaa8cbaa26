"""Small signed documents with a rollback witness: the department's settings and registry.

A document is JSON: its payload, a generation counter, the version of the master key that
signs it and an HMAC-SHA256 over the payload and the generation. Each write bumps the
generation and then records the generation and the file's SHA-256 in a witness beside the key
store (``KeyStore.witness_path``), authenticated under the same key. On reading, the file must
authenticate and be no older than its witness, so a hand edit, or an older (genuine) copy put
back, is an error naming the file. As with the store and the audit log, restoring the file
*together with* the key store's folder is caught only by a published audit checkpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Protocol

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import WorkbenchError

__all__ = ["SignedDocumentKeys", "read_signed_document", "write_signed_document"]


class _MasterKey(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def material(self) -> bytes: ...


class SignedDocumentKeys(Protocol):
    """What a signed document needs of a key store (a ``KeyStore``)."""

    def key_ids(self, *, prefix: str = "", include_destroyed: bool = False) -> list[str]:
        """Names of the keys starting with ``prefix``."""
        ...

    def ensure_key(self, key_id: str) -> _MasterKey:
        """The current version of ``key_id``, created on first use."""
        ...

    def get_key(self, key_id: str, version: int) -> _MasterKey:
        """One version of ``key_id``."""
        ...

    def witness_path(self, name: str) -> Path:
        """Where the witness ``name`` lives (beside the key store)."""
        ...


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def _mac(key: bytes, domain: bytes, kind: bytes, body: Any) -> str:
    return hmac.new(key, domain + b"\x00" + kind + b"\x00" + _canonical(body),
                    hashlib.sha256).hexdigest()


def _read_witness(
    keystore: SignedDocumentKeys, key_id: str, domain: bytes, witness: str
) -> dict[str, Any] | None:
    path = keystore.witness_path(witness)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        body = {"generation": int(doc["generation"]), "sha256": str(doc["sha256"])}
        key = keystore.get_key(key_id, int(doc["key_version"]))
        good = hmac.compare_digest(_mac(key.material, domain, b"witness", body), str(doc["mac"]))
    except (OSError, ValueError, KeyError, TypeError, WorkbenchError) as exc:
        raise WorkbenchError(f"the witness {path} is damaged or tampered with: {exc}") from exc
    if not good:
        raise WorkbenchError(f"the witness {path} was tampered with: its MAC does not verify")
    return body


def read_signed_document(
    path: Path,
    keystore: SignedDocumentKeys,
    *,
    key_id: str,
    domain: bytes,
    witness: str,
    field: str = "payload",
    legacy_mac: bool = False,
) -> dict[str, Any] | None:
    """The authenticated payload of the signed document at ``path``, or None if never written.

    Parameters
    ----------
    path
        The document.
    keystore
        The key store holding ``key_id`` and the witness.
    key_id, domain, witness
        The signing key, a domain separating this kind of document, and the witness's name.
    field
        The name of the payload in the file (``settings``, ``agencies``...).
    legacy_mac
        Accept a document written before generations existed (no ``generation`` field, its
        MAC checked by the caller), as long as no witness was written yet.

    Returns
    -------
    dict or None
        The payload, or None when neither the file nor any trace of it (its key, its witness)
        exists.

    Raises
    ------
    WorkbenchError
        Naming the file, when it is missing although it was written, was edited, or is an
        older copy than its witness records.
    """
    seen = _read_witness(keystore, key_id, domain, witness)
    if not path.is_file():
        if seen is not None or keystore.key_ids(prefix=key_id, include_destroyed=True):
            raise WorkbenchError(f"{path} is missing although it was written: restore it")
        return None
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
        if legacy_mac and "generation" not in doc:
            if seen is not None:
                raise WorkbenchError("it predates the generation its witness records")
            return dict(doc)
        generation = int(doc["generation"])
        payload = doc[field]
        key = keystore.get_key(key_id, int(doc["key_version"]))
        body = {"generation": generation, "payload": payload}
        good = hmac.compare_digest(_mac(key.material, domain, b"document", body), str(doc["mac"]))
    except (OSError, ValueError, KeyError, TypeError, WorkbenchError) as exc:
        raise WorkbenchError(f"{path} is damaged or tampered with: {exc}") from exc
    if not good:
        raise WorkbenchError(f"{path} was tampered with: its MAC does not verify")
    if seen is not None and (
        generation < seen["generation"]
        or (generation == seen["generation"] and hashlib.sha256(raw).hexdigest() != seen["sha256"])
    ):
        raise WorkbenchError(
            f"{path} is an older copy (generation {generation}; the witness beside the key "
            f"store records generation {seen['generation']}): it was restored or rolled back"
        )
    if not isinstance(payload, dict):
        raise WorkbenchError(f"{path} is damaged: its payload is not a mapping")
    return payload


def write_signed_document(
    path: Path,
    keystore: SignedDocumentKeys,
    payload: dict[str, Any],
    *,
    key_id: str,
    domain: bytes,
    witness: str,
    field: str = "payload",
) -> int:
    """Write ``payload`` as the next generation of the signed document, then its witness.

    The caller reads the current document first (:func:`read_signed_document`), so a
    tampered or older file is never silently replaced. A crash between the two writes leaves
    the file one generation ahead of its witness, which still reads (a newer file cannot be
    forged without the key).

    Returns
    -------
    int
        The new generation.
    """
    seen = _read_witness(keystore, key_id, domain, witness)
    current = 0
    if path.is_file():
        try:
            current = int(json.loads(path.read_bytes()).get("generation", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            current = 0
    generation = max(current, seen["generation"] if seen else 0) + 1
    key = keystore.ensure_key(key_id)
    body = {"generation": generation, "payload": payload}
    doc = {
        field: payload,
        "generation": generation,
        "key_version": key.version,
        "mac": _mac(key.material, domain, b"document", body),
    }
    raw = json.dumps(doc, indent=1, default=str).encode()
    atomic_write_bytes(path, raw)
    mark = {"generation": generation, "sha256": hashlib.sha256(raw).hexdigest()}
    atomic_write_bytes(
        keystore.witness_path(witness),
        json.dumps(
            {**mark, "key_version": key.version,
             "mac": _mac(key.material, domain, b"witness", mark)}
        ).encode(),
    )
    return generation
