"""Our Parquet KMS client: data keys wrapped with AES-256-GCM master keys from the key store.

Master key identifiers given to Parquet name the master key, the file and the column,
``<key_id>#<file id>#<column>`` (``reads/2026-10-01/pii#part-3f2a…#plate``), so the key
material Parquet stores beside each file tells us, column by column, which data key to hand to
Polars' native reader. The identifier is the AEAD's associated data when a data key is
wrapped, so it binds each file to its partition and its name: a file (with its key material)
moved to another partition, or put under another file's name, is refused before it is
decrypted (:func:`read_data_keys` with ``key_prefix``). A Java KMS client for Spark implements
the same two functions over the same key store.
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


def make_identifier(key_id: str, file_id: str, column: str) -> str:
    """The master key identifier of one column of one file."""
    return f"{key_id}#{file_id}#{column}"


def parse_identifier(master_key_identifier: str) -> tuple[str, str, str]:
    """Split ``key_id#file_id#column`` into its key id, file id and column name."""
    parts = master_key_identifier.split("#")
    if len(parts) != 3 or not all(parts):
        raise KeyStoreError(f"malformed master key identifier {master_key_identifier!r}")
    return parts[0], parts[1], parts[2]


def split_identifier(master_key_identifier: str) -> tuple[str, str]:
    """Split ``key_id#file_id#column`` into its key id and column name."""
    key_id, _, column = parse_identifier(master_key_identifier)
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


def read_data_keys(
    keystore: KeyStore, parquet_path: Path, *, key_prefix: str | None = None
) -> tuple[bytes, dict[str, bytes]]:
    """Unwrap the footer key and every column key of one file from its key material.

    Parameters
    ----------
    keystore
        Where the master keys live.
    parquet_path
        The data file.
    key_prefix
        The master-key prefix of the partition the file is read from (``reads/2026-10-01``);
        every key must then be bound to that partition and to this file's name.

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
        if key_prefix is not None:
            _check_binding(identifier, key_prefix, parquet_path)
        data_key = unwrap_data_key(keystore, material["wrappedDEK"], identifier)
        _, column = split_identifier(identifier)
        if material.get("isFooterKey"):
            footer = data_key
        else:
            columns[column] = data_key
    if footer is None:
        raise KeyStoreError(f"key material for {parquet_path.name} has no footer key")
    return footer, columns


def _check_binding(identifier: str, key_prefix: str, parquet_path: Path) -> None:
    key_id, file_id, _ = parse_identifier(identifier)
    owner = key_id.rpartition("/")[0]
    if owner != key_prefix or file_id != parquet_path.stem:
        raise KeyStoreError(
            f"{parquet_path.name} is bound to {owner} file {file_id}, not to this partition "
            "and name: a file moved or swapped from elsewhere"
        )
