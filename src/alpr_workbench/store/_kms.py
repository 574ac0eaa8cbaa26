"""Our Parquet KMS client: data keys wrapped with AES-256-GCM master keys from the key store.

Master key identifiers given to Parquet name one column each,
``<key_id>#<column>`` (``reads/2026-10-01/pii#plate``), so the key material Parquet stores beside
each file tells us, column by column, which data key to hand to Polars' native reader. A Java
KMS client for Spark implements the same two functions over the same key store.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pyarrow.parquet.encryption as pqe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alpr_workbench.errors import KeyStoreError
from alpr_workbench.keys import KeyStore

FOOTER = "__footer__"
KEY_MATERIAL_PREFIX = "_KEY_MATERIAL_FOR_"


def split_identifier(master_key_identifier: str) -> tuple[str, str]:
    """Split ``key_id#column`` into its key id and column name."""
    key_id, sep, column = master_key_identifier.rpartition("#")
    if not sep or not key_id or not column:
        raise KeyStoreError(f"malformed master key identifier {master_key_identifier!r}")
    return key_id, column


def wrap_data_key(keystore: KeyStore, data_key: bytes, master_key_identifier: str) -> str:
    """Wrap a Parquet data key under the current version of its master key."""
    key_id, _ = split_identifier(master_key_identifier)
    master = keystore.current_key(key_id)
    nonce = os.urandom(12)
    sealed = AESGCM(master.material).encrypt(nonce, data_key, master_key_identifier.encode())
    return f"v{master.version}:" + base64.b64encode(nonce + sealed).decode("ascii")


def unwrap_data_key(keystore: KeyStore, wrapped: str, master_key_identifier: str) -> bytes:
    """Unwrap a data key wrapped by :func:`wrap_data_key`.

    Raises
    ------
    KeyDestroyedError
        If its master key was crypto-shredded.
    KeyStoreError
        If the wrapped key is malformed or does not authenticate.
    """
    key_id, _ = split_identifier(master_key_identifier)
    version_text, sep, body = wrapped.partition(":")
    if not sep or not version_text.startswith("v"):
        raise KeyStoreError(f"malformed wrapped data key for {master_key_identifier!r}")
    master = keystore.get_key(key_id, int(version_text[1:]))
    raw = base64.b64decode(body)
    try:
        return AESGCM(master.material).decrypt(raw[:12], raw[12:], master_key_identifier.encode())
    except InvalidTag as exc:
        raise KeyStoreError(
            f"data key for {master_key_identifier!r} does not authenticate"
        ) from exc


class WorkbenchKmsClient(pqe.KmsClient):  # type: ignore[misc]  # pyarrow ships no stubs
    """A ``pyarrow.parquet.encryption.KmsClient`` backed by a :class:`KeyStore`."""

    def __init__(self, keystore: KeyStore) -> None:
        super().__init__()
        self._keystore = keystore

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        """Wrap a data key (called by Parquet while writing)."""
        return wrap_data_key(self._keystore, key_bytes, master_key_identifier)

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        """Unwrap a data key (called by Parquet while reading or rotating)."""
        return unwrap_data_key(self._keystore, wrapped_key, master_key_identifier)


def key_material_path(parquet_path: Path) -> Path:
    """Where Parquet keeps the external key material of ``parquet_path``."""
    return parquet_path.with_name(KEY_MATERIAL_PREFIX + parquet_path.name + ".json")


def read_data_keys(keystore: KeyStore, parquet_path: Path) -> tuple[bytes, dict[str, bytes]]:
    """Unwrap the footer key and every column key of one file from its key material.

    Returns
    -------
    tuple
        ``(footer_key, {column: data_key})``.
    """
    path = key_material_path(parquet_path)
    try:
        store = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise KeyStoreError(f"key material for {parquet_path.name} is missing") from exc
    except ValueError as exc:
        raise KeyStoreError(f"key material for {parquet_path.name} is corrupted") from exc
    footer: bytes | None = None
    columns: dict[str, bytes] = {}
    for material_text in store.values():
        material = json.loads(material_text)
        if material.get("doubleWrapping"):
            raise KeyStoreError("double-wrapped key material is not supported")
        identifier = material["masterKeyID"]
        data_key = unwrap_data_key(keystore, material["wrappedDEK"], identifier)
        _, column = split_identifier(identifier)
        if material.get("isFooterKey"):
            footer = data_key
        else:
            columns[column] = data_key
    if footer is None:
        raise KeyStoreError(f"key material for {parquet_path.name} has no footer key")
    return footer, columns
