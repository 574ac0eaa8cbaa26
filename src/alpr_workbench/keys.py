"""The key store: AES-256 master keys, wrapped under a key-encryption key (KEK).

The KEK comes from a passphrase through scrypt (memory-hard) or from a 32-byte secret in the
environment. There is no default passphrase. Master keys are named (``reads/2026-10-01/pii``),
versioned (rotation adds a version; old versions stay until destroyed) and can be destroyed,
which is how retention crypto-shreds a day of reads.

Environment
-----------
``ALPR_WORKBENCH_KEK``
    URL-safe base64 of a 32-byte key-encryption key (for services; takes precedence).
``ALPR_WORKBENCH_PASSPHRASE``
    Passphrase from which the KEK is derived with scrypt.

Key roots
---------
With the default **file** root, the KEK alone protects the master keys, so a copy of
``keystore.json`` taken before a purge, opened with the unchanged passphrase, still decrypts
the purged day: older copies of the key store must be destroyed too (``purge`` says so). With
the **PKCS#11** root (``alpr_workbench.keys_pkcs11``), each master key is also wrapped on a
token under its own non-extractable key object, which a purge destroys, so no copy of the key
store decrypts a purged day. See ``docs/decisions/0005-pkcs11-key-root.md``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from alpr_workbench._fsutil import atomic_write_bytes, exclusive_lock
from alpr_workbench.errors import KeyDestroyedError, KeyStoreError
from alpr_workbench.keys_pkcs11 import Pkcs11Config, Pkcs11Root

__all__ = [
    "KEYSTORE_FILE",
    "DEMO_PASSPHRASE_FILE",
    "FILE_ROOT_PURGE_WARNING",
    "KeyStore",
    "MasterKey",
    "resolve_kek_source",
]

KEYSTORE_FILE = "keystore.json"
DEMO_PASSPHRASE_FILE = "DEMO-PASSPHRASE.txt"
_FORMAT = 1
_CHECK_PLAINTEXT = b"alpr-workbench key store v1"
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1
_MIN_PASSPHRASE_LEN = 12
#: What a purge under the file-only key root does not reach (shown by ``purge``).
FILE_ROOT_PURGE_WARNING = (
    "This key store keeps its root in a file (keys/keystore.json): any older copy of that "
    "file (a backup, a snapshot) still decrypts the purged days with the unchanged "
    "passphrase. Destroy every older copy of keystore.json too, or the purge does not hold. "
    "A PKCS#11 key root (init --key-root pkcs11) makes a purge reach every copy."
)


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(12)
    return _b64e(nonce + AESGCM(key).encrypt(nonce, plaintext, aad))


def _open(key: bytes, sealed: str, aad: bytes) -> bytes:
    raw = _b64d(sealed)
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad)


@dataclass(frozen=True)
class MasterKey:
    """One version of a named master key (key material stays in memory only)."""

    key_id: str
    version: int
    material: bytes

    def __repr__(self) -> str:  # never print key material
        return f"MasterKey(key_id={self.key_id!r}, version={self.version})"


def resolve_kek_source(keys_dir: Path, *, passphrase: str | None = None) -> tuple[str, bytes | str]:
    """Find where the key-encryption key comes from, without a default.

    Order: explicit ``passphrase``; ``ALPR_WORKBENCH_KEK``; ``ALPR_WORKBENCH_PASSPHRASE``;
    the demo passphrase file, only for a key store created in demo mode.

    Returns
    -------
    tuple
        ``("kek", bytes)`` or ``("passphrase", str)``.

    Raises
    ------
    KeyStoreError
        When no source is configured.
    """
    if passphrase is not None:
        return "passphrase", passphrase
    env_kek = os.environ.get("ALPR_WORKBENCH_KEK")
    if env_kek:
        try:
            kek = base64.urlsafe_b64decode(env_kek.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise KeyStoreError("ALPR_WORKBENCH_KEK is not valid base64") from exc
        if len(kek) != 32:
            raise KeyStoreError("ALPR_WORKBENCH_KEK must decode to exactly 32 bytes")
        return "kek", kek
    env_pass = os.environ.get("ALPR_WORKBENCH_PASSPHRASE")
    if env_pass:
        return "passphrase", env_pass
    demo_file = keys_dir / DEMO_PASSPHRASE_FILE
    store_file = keys_dir / KEYSTORE_FILE
    if demo_file.is_file() and store_file.is_file():
        try:
            is_demo = json.loads(store_file.read_text()).get("demo") is True
        except (OSError, ValueError):
            is_demo = False
        if is_demo:
            return "passphrase", demo_file.read_text().strip()
    raise KeyStoreError(
        "no key-encryption secret configured: set ALPR_WORKBENCH_PASSPHRASE (or "
        "ALPR_WORKBENCH_KEK, 32 bytes, URL-safe base64). There is no default passphrase."
    )


class KeyStore:
    """Named, versioned AES-256 master keys kept encrypted in one 0600 file.

    Use :meth:`create` for a new store and :meth:`open` for an existing one. All changes
    are written atomically under a file lock, so a crash never leaves a half-written store.
    """

    def __init__(
        self, path: Path, kek: bytes, doc: dict[str, Any], root: Pkcs11Root | None = None
    ) -> None:
        self._path = path
        self._kek = kek
        self._doc = doc
        self._root = root
        self._cache: dict[tuple[str, int], bytes] = {}
        self._mutex = threading.RLock()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        keys_dir: Path,
        *,
        passphrase: str | None = None,
        demo: bool = False,
        root: Pkcs11Config | None = None,
    ) -> KeyStore:
        """Create a new, empty key store in ``keys_dir``.

        Parameters
        ----------
        keys_dir
            Folder for the key store (created with mode 0700).
        passphrase
            Passphrase for the KEK; otherwise taken from the environment. In ``demo`` mode
            with no passphrase, a random one is generated and written to
            ``DEMO-PASSPHRASE.txt`` (0600) beside the store.
        demo
            Mark the store as a demo store (not for real data).
        root
            Keep the key root on a PKCS#11 token (module, token label); the user PIN comes
            from ``ALPR_WORKBENCH_PKCS11_PIN`` or ``ALPR_WORKBENCH_PKCS11_PIN_FILE``. Default:
            the file-only root.

        Raises
        ------
        KeyStoreError
            If a store already exists there, or no secret is available, or the passphrase
            is too short, or the token cannot be used (module, token or PIN).
        """
        keys_dir = Path(keys_dir)
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(keys_dir, 0o700)
        path = keys_dir / KEYSTORE_FILE
        if path.exists():
            raise KeyStoreError(f"a key store already exists at {path}")
        if (
            demo
            and passphrase is None
            and not (
                os.environ.get("ALPR_WORKBENCH_KEK") or os.environ.get("ALPR_WORKBENCH_PASSPHRASE")
            )
        ):
            passphrase = secrets.token_urlsafe(24)
            atomic_write_bytes(keys_dir / DEMO_PASSPHRASE_FILE, passphrase.encode() + b"\n")
        kind, secret = resolve_kek_source(keys_dir, passphrase=passphrase)
        doc: dict[str, Any] = {"format": _FORMAT, "demo": demo, "keys": {}}
        if kind == "passphrase":
            assert isinstance(secret, str)
            if len(secret) < _MIN_PASSPHRASE_LEN:
                raise KeyStoreError(
                    f"passphrase too short: use at least {_MIN_PASSPHRASE_LEN} characters"
                )
            salt = os.urandom(16)
            doc["kdf"] = {
                "name": "scrypt",
                "salt": _b64e(salt),
                "n": _SCRYPT_N,
                "r": _SCRYPT_R,
                "p": _SCRYPT_P,
            }
            kek = _derive(secret, doc["kdf"])
        else:
            assert isinstance(secret, bytes)
            doc["kdf"] = {"name": "raw"}
            kek = secret
        doc["check"] = _seal(kek, _CHECK_PLAINTEXT, b"check")
        pkcs11_root = None
        if root is not None:
            doc["root"] = root.to_doc(secrets.token_hex(16))
            pkcs11_root = Pkcs11Root.open(keys_dir, doc["root"], demo=demo)
        store = cls(path, kek, doc, pkcs11_root)
        with exclusive_lock(keys_dir / ".lock"):
            store._save()
        return store

    @classmethod
    def open(cls, keys_dir: Path, *, passphrase: str | None = None) -> KeyStore:
        """Open the key store in ``keys_dir``.

        Raises
        ------
        KeyStoreError
            If the store is missing or corrupted, or the secret is wrong.
        """
        keys_dir = Path(keys_dir)
        path = keys_dir / KEYSTORE_FILE
        if not path.is_file():
            raise KeyStoreError(f"no key store at {path}")
        doc = _load_doc(path)
        kind, secret = resolve_kek_source(keys_dir, passphrase=passphrase)
        kdf = doc.get("kdf", {})
        if kind == "passphrase":
            if kdf.get("name") != "scrypt":
                raise KeyStoreError("this key store uses ALPR_WORKBENCH_KEK, not a passphrase")
            assert isinstance(secret, str)
            kek = _derive(secret, kdf)
        else:
            if kdf.get("name") != "raw":
                raise KeyStoreError("this key store needs its passphrase, not ALPR_WORKBENCH_KEK")
            assert isinstance(secret, bytes)
            kek = secret
        try:
            ok = _open(kek, doc["check"], b"check") == _CHECK_PLAINTEXT
        except (InvalidTag, KeyError, ValueError):
            ok = False
        if not ok:
            raise KeyStoreError("wrong passphrase or key-encryption key for this key store")
        root = None
        if doc.get("root") is not None:
            if not isinstance(doc["root"], dict) or doc["root"].get("kind") != "pkcs11":
                raise KeyStoreError(f"key store {path} names an unknown key root")
            root = Pkcs11Root.open(keys_dir, doc["root"], demo=doc.get("demo") is True)
            # A purge that stopped between the key store and the token left key objects.
            root.sweep({k for k, v in doc["keys"].items() if v.get("destroyed_at")})
        return cls(path, kek, doc, root)

    def witness_path(self, name: str) -> Path:
        """Where the witness ``name`` of a log kept elsewhere lives: beside the key store.

        A witness is a small monotonic record (e.g. the audit log's last sequence number and
        chain hash) that its owner authenticates with one of this store's master keys. It
        sits here, outside the folder it vouches for, so that deleting or restoring that
        folder does not also delete or restore the witness.

        Parameters
        ----------
        name
            Short lowercase name of the witness (``audit``).

        Returns
        -------
        pathlib.Path
            ``<key store folder>/witness-<name>.bin`` (it may not exist yet).
        """
        if not name.isascii() or not name.isalnum() or not name.islower():
            raise KeyStoreError(f"witness name {name!r} must be lowercase letters and digits")
        return self._path.parent / f"witness-{name}.bin"

    @property
    def key_root(self) -> str:
        """Where the root of the key hierarchy is: ``"file"`` or ``"pkcs11"``."""
        return "file" if self._root is None else "pkcs11"

    @property
    def purge_warning(self) -> str | None:
        """What a purge does not reach with this key root, or None (PKCS#11 root)."""
        return FILE_ROOT_PURGE_WARNING if self._root is None else None

    @property
    def is_demo(self) -> bool:
        """True for a store created by the demo (not for real data)."""
        return bool(self._doc.get("demo"))

    # -- key operations ------------------------------------------------------------------
    def key_ids(self, *, prefix: str = "", include_destroyed: bool = False) -> list[str]:
        """List key ids starting with ``prefix``."""
        with self._mutex:
            return sorted(
                k
                for k, v in self._doc["keys"].items()
                if k.startswith(prefix) and (include_destroyed or not v.get("destroyed_at"))
            )

    def ensure_key(self, key_id: str) -> MasterKey:
        """Return the current version of ``key_id``, creating the key if it does not exist.

        Raises
        ------
        KeyDestroyedError
            If the key was destroyed (a destroyed key is never re-created).
        """
        with self._mutex:
            self._reload()
            entry = self._doc["keys"].get(key_id)
            if entry is None:
                self._add_version(key_id)
                entry = self._doc["keys"][key_id]
            if entry.get("destroyed_at"):
                raise KeyDestroyedError(f"master key {key_id!r} was destroyed")
            return self.get_key(key_id, entry["versions"][-1]["version"])

    def ensure_keys(self, key_ids: list[str]) -> None:
        """Create every missing key of ``key_ids`` in one durable write.

        Raises
        ------
        KeyDestroyedError
            If one of them was destroyed.
        """
        with self._mutex, exclusive_lock(self._path.parent / ".lock"):
            self._reload()
            changed = False
            for key_id in key_ids:
                entry = self._doc["keys"].get(key_id)
                if entry is None:
                    self._new_version_locked(key_id)
                    changed = True
                elif entry.get("destroyed_at"):
                    raise KeyDestroyedError(f"master key {key_id!r} was destroyed")
            if changed:
                self._save()

    def current_key(self, key_id: str) -> MasterKey:
        """Return the current version of an existing key."""
        with self._mutex:
            entry = self._entry(key_id)
            return self.get_key(key_id, entry["versions"][-1]["version"])

    def get_key(self, key_id: str, version: int) -> MasterKey:
        """Return one version of a key.

        Raises
        ------
        KeyStoreError
            If the key or version is unknown.
        KeyDestroyedError
            If it was destroyed.
        """
        with self._mutex:
            cached = self._cache.get((key_id, version))
            if cached is not None:
                return MasterKey(key_id, version, cached)
            entry = self._entry(key_id)
            for item in entry["versions"]:
                if item["version"] == version:
                    if item.get("wrapped") is None:
                        raise KeyDestroyedError(
                            f"version {version} of master key {key_id!r} was destroyed"
                        )
                    material = self._unwrap(key_id, version, item["wrapped"])
                    self._cache[(key_id, version)] = material
                    return MasterKey(key_id, version, material)
            raise KeyStoreError(f"master key {key_id!r} has no version {version}")

    def rotate(self, key_id: str) -> MasterKey:
        """Add a new version of ``key_id`` and make it current (old versions stay readable)."""
        with self._mutex:
            self._reload()
            self._entry(key_id)
            self._add_version(key_id)
            return self.current_key(key_id)

    def retire_versions(self, key_id: str, *, keep: int) -> None:
        """Destroy every version of ``key_id`` older than ``keep`` (after a re-wrap)."""
        with self._mutex, exclusive_lock(self._path.parent / ".lock"):
            self._reload()
            entry = self._entry(key_id)
            for item in entry["versions"]:
                if item["version"] < keep:
                    item["wrapped"] = None
                    self._cache.pop((key_id, item["version"]), None)
            self._save()

    def destroy(self, key_ids: list[str]) -> None:
        """Crypto-shred ``key_ids``: every version's material is erased from the store.

        With the PKCS#11 root, each key's object on the token is destroyed as well, so no
        copy of the key store (older ones included) can decrypt what the keys protected.
        With the file-only root, an older copy of ``keystore.json`` still can (see
        :data:`FILE_ROOT_PURGE_WARNING`).
        """
        with self._mutex, exclusive_lock(self._path.parent / ".lock"):
            self._reload()
            now = dt.datetime.now(dt.UTC).isoformat()
            known = []
            for key_id in key_ids:
                entry = self._doc["keys"].get(key_id)
                if entry is None:
                    continue
                known.append(key_id)
                for item in entry["versions"]:
                    item["wrapped"] = None
                    self._cache.pop((key_id, item["version"]), None)
                entry["destroyed_at"] = now
            self._save()
            if self._root is not None:
                # After the save: a crash in between leaves objects that `open` sweeps.
                self._root.destroy(known)

    def is_destroyed(self, key_id: str) -> bool:
        """True when ``key_id`` exists and was destroyed."""
        with self._mutex:
            self._reload()
            entry = self._doc["keys"].get(key_id)
            return bool(entry and entry.get("destroyed_at"))

    def destroyed(self, key_ids: list[str]) -> list[str]:
        """Those of ``key_ids`` that exist and were destroyed (one read of the store)."""
        with self._mutex:
            self._reload()
            keys = self._doc["keys"]
            return [k for k in key_ids if keys.get(k, {}).get("destroyed_at")]

    def change_passphrase(self, new_passphrase: str) -> None:
        """Re-wrap every master key under a KEK from ``new_passphrase`` (no data rewrite)."""
        if len(new_passphrase) < _MIN_PASSPHRASE_LEN:
            raise KeyStoreError(
                f"passphrase too short: use at least {_MIN_PASSPHRASE_LEN} characters"
            )
        with self._mutex, exclusive_lock(self._path.parent / ".lock"):
            self._reload()
            kdf = {
                "name": "scrypt",
                "salt": _b64e(os.urandom(16)),
                "n": _SCRYPT_N,
                "r": _SCRYPT_R,
                "p": _SCRYPT_P,
            }
            new_kek = _derive(new_passphrase, kdf)
            for key_id, entry in self._doc["keys"].items():
                for item in entry["versions"]:
                    if item.get("wrapped") is not None:
                        aad = _aad(key_id, item["version"])
                        # Only the KEK layer changes; a token's wrapping stays inside it.
                        inner = self._open_outer(key_id, item["version"], item["wrapped"])
                        item["wrapped"] = _seal(new_kek, inner, aad)
            self._doc["kdf"] = kdf
            self._doc["check"] = _seal(new_kek, _CHECK_PLAINTEXT, b"check")
            self._kek = new_kek
            self._save()

    # -- internals -----------------------------------------------------------------------
    def _unwrap(self, key_id: str, version: int, wrapped: str) -> bytes:
        """Unseal one master key version, or say clearly that the key store is damaged."""
        inner = self._open_outer(key_id, version, wrapped)
        if self._root is None:
            return inner
        return self._root.unwrap(key_id, _aad(key_id, version), inner)

    def _open_outer(self, key_id: str, version: int, wrapped: str) -> bytes:
        try:
            return _open(self._kek, wrapped, _aad(key_id, version))
        except (InvalidTag, ValueError) as exc:
            raise KeyStoreError(
                f"key store {self._path}: master key {key_id!r} version {version} does not "
                "authenticate; the key store is damaged or the passphrase is wrong"
            ) from exc

    def _wrap(self, key_id: str, version: int, material: bytes) -> str:
        aad = _aad(key_id, version)
        inner = material
        if self._root is not None:
            inner = self._root.wrap(key_id, aad, material, create=version == 1)
        return _seal(self._kek, inner, aad)

    def _entry(self, key_id: str) -> dict[str, Any]:
        entry = self._doc["keys"].get(key_id)
        if entry is None:
            self._reload()
            entry = self._doc["keys"].get(key_id)
        if entry is None:
            raise KeyStoreError(f"no master key {key_id!r} in the key store")
        if entry.get("destroyed_at"):
            raise KeyDestroyedError(f"master key {key_id!r} was destroyed")
        result: dict[str, Any] = entry
        return result

    def _add_version(self, key_id: str) -> None:
        with exclusive_lock(self._path.parent / ".lock"):
            self._reload()
            self._new_version_locked(key_id)
            self._save()

    def _new_version_locked(self, key_id: str) -> None:
        entry = self._doc["keys"].setdefault(key_id, {"versions": []})
        if entry.get("destroyed_at"):
            raise KeyDestroyedError(f"master key {key_id!r} was destroyed")
        version = (entry["versions"][-1]["version"] + 1) if entry["versions"] else 1
        material = os.urandom(32)
        entry["versions"].append(
            {
                "version": version,
                "created_at": dt.datetime.now(dt.UTC).isoformat(),
                "wrapped": self._wrap(key_id, version, material),
            }
        )
        self._cache[(key_id, version)] = material

    def _reload(self) -> None:
        # Another process may have added or destroyed keys since we loaded the file.
        if self._path.is_file():
            self._doc = _load_doc(self._path)
            live = {
                (k, item["version"])
                for k, v in self._doc["keys"].items()
                for item in v["versions"]
                if item.get("wrapped") is not None
            }
            for cached in list(self._cache):
                if cached not in live:
                    del self._cache[cached]

    def _save(self) -> None:
        atomic_write_bytes(self._path, json.dumps(self._doc, indent=1, sort_keys=True).encode())


def _aad(key_id: str, version: int) -> bytes:
    return f"{key_id}@{version}".encode()


def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
    return Scrypt(
        salt=_b64d(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])
    ).derive(passphrase.encode("utf-8"))


def _load_doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"key store {path} is unreadable or corrupted") from exc
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or "keys" not in doc:
        raise KeyStoreError(f"key store {path} is corrupted or of an unknown format")
    return doc
