"""The key store's PKCS#11 root: one non-extractable AES-256 key object on a token per master key.

With this root (``KeyStore.create(..., root=Pkcs11Config(...))``), every version of a master
key is first encrypted *by the token* (AES-GCM, ``CKM_AES_GCM``, the key id and version as
associated data) under a secret-key object that never leaves the token
(``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``), labelled with the master key's id
(``reads/2026-10-01/pii``). The result is then sealed under the passphrase-derived KEK as
before, so both the passphrase and the token (with its PIN) are needed. Destroying a master
key (a purge) destroys its key object (``C_DestroyObject``): every copy of ``keystore.json``,
older ones included, then holds a blob that nothing can decrypt. A small data object (a
tombstone) records on the token that the key was destroyed on purpose, so an older copy of
the key store is told "purged" rather than "damaged". See
``docs/decisions/0005-pkcs11-key-root.md``.

Configuration
-------------
The module path and the token label are kept in the key store (they are not secret). The
user PIN is given to the service only:

``ALPR_WORKBENCH_PKCS11_PIN``
    The token's user PIN.
``ALPR_WORKBENCH_PKCS11_PIN_FILE``
    A file (mode 0600 or stricter) holding the PIN.

A demo key store keeps a SoftHSM2 token in ``<data dir>/keys/softhsm/`` with its PIN in
``DEMO-PKCS11-PIN.txt`` beside it (demo mode is not for real data: a copy of that folder is a
copy of the token).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import KeyDestroyedError, KeyStoreError

__all__ = [
    "DEFAULT_MODULE",
    "DEMO_PIN_FILE",
    "Pkcs11Config",
    "Pkcs11Root",
    "create_demo_softhsm_token",
    "describe_key",
]

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
DEMO_PIN_FILE = "DEMO-PKCS11-PIN.txt"
DEMO_SOFTHSM_DIR = "softhsm"
_PIN_ENV = "ALPR_WORKBENCH_PKCS11_PIN"
_PIN_FILE_ENV = "ALPR_WORKBENCH_PKCS11_PIN_FILE"
_APPLICATION = "alpr-workbench"
_NONCE_LEN = 12

# One logged-in session per token per process: PKCS#11 logs a whole application in, so a
# second C_Login answers "already logged in" whatever PIN it is given. A later open must give
# the PIN that logged the session in (kept only as a digest), or it is refused.
_SESSIONS: dict[tuple[str, str], tuple[Any, bytes, threading.RLock]] = {}
_SESSIONS_LOCK = threading.Lock()
# The SOFTHSM2_CONF each module was loaded with: SoftHSM2 reads it once, at C_Initialize.
_LOADED_CONF: dict[str, str | None] = {}


@dataclasses.dataclass(frozen=True)
class Pkcs11Config:
    """Where the key root lives: a PKCS#11 module and a token (never the PIN).

    Parameters
    ----------
    module
        Path of the PKCS#11 library (default: Debian's SoftHSM2).
    token_label
        Label of the token holding the key objects.
    softhsm2_conf
        Only for a demo store: the SoftHSM2 configuration file, relative to the key-store
        folder, that must be in force when the module is loaded.
    """

    token_label: str
    module: str = DEFAULT_MODULE
    softhsm2_conf: str | None = None

    def to_doc(self, store_id: str) -> dict[str, Any]:
        """The key store's ``root`` entry for this configuration."""
        doc: dict[str, Any] = {
            "kind": "pkcs11",
            "module": self.module,
            "token_label": self.token_label,
            "store_id": store_id,
        }
        if self.softhsm2_conf is not None:
            doc["softhsm2_conf"] = self.softhsm2_conf
        return doc


def describe_key(key_id: str) -> str:
    """Name a master key with what it protects, for error messages.

    Examples
    --------
    >>> describe_key("reads/2026-10-01/pii")
    "master key 'reads/2026-10-01/pii' (reads of day 2026-10-01)"
    >>> describe_key("audit/log")
    "master key 'audit/log'"
    """
    if m := re.fullmatch(r"reads/(\d{4}-\d{2}-\d{2})/\w+", key_id):
        return f"master key {key_id!r} (reads of day {m.group(1)})"
    if m := re.fullmatch(r"holds/([A-Za-z0-9_-]+)/\w+", key_id):
        return f"master key {key_id!r} (legal hold {m.group(1)})"
    return f"master key {key_id!r}"


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as exc:
        raise KeyStoreError(
            "this key store's root is on a PKCS#11 token, but the python-pkcs11 binding is not "
            "installed: pip install 'alpr-workbench[hsm]'"
        ) from exc
    return pkcs11


def _read_pin(keys_dir: Path, *, demo: bool) -> str:
    pin = os.environ.get(_PIN_ENV)
    if pin:
        return pin
    pin_file = os.environ.get(_PIN_FILE_ENV)
    if not pin_file and demo and (keys_dir / DEMO_PIN_FILE).is_file():
        pin_file = str(keys_dir / DEMO_PIN_FILE)
    if not pin_file:
        raise KeyStoreError(
            f"this key store's root is on a PKCS#11 token: give the service the token's user "
            f"PIN in {_PIN_ENV} or in a 0600 file named by {_PIN_FILE_ENV}"
        )
    path = Path(pin_file)
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyStoreError(f"cannot read the token PIN file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(
            f"the token PIN file {path} is readable by others: chmod 600 {path}"
        )
    if not text:
        raise KeyStoreError(f"the token PIN file {path} is empty")
    return text


class Pkcs11Root:
    """A logged-in handle on the token that holds a key store's key-wrapping keys.

    Built by :meth:`open` from the key store's ``root`` entry; the key store calls
    :meth:`wrap`, :meth:`unwrap` and :meth:`destroy`. Key objects are found by their label
    (the master key id) and their ``CKA_ID`` (the key store's random id), so several key
    stores can share one token.
    """

    def __init__(
        self, session: Any, lock: threading.RLock, doc: dict[str, Any], pkcs11: Any
    ) -> None:
        self._session = session
        self._lock = lock
        self._token_label = str(doc["token_label"])
        self._store_id = bytes.fromhex(str(doc["store_id"]))
        self._application = f"{_APPLICATION}/{doc['store_id']}"
        self._p = pkcs11

    @classmethod
    def open(cls, keys_dir: Path, doc: dict[str, Any], *, demo: bool) -> Pkcs11Root:
        """Load the module, find the token and log in with the service's PIN.

        Parameters
        ----------
        keys_dir
            The key-store folder (a demo's SoftHSM2 configuration is relative to it).
        doc
            The key store's ``root`` entry.
        demo
            True for a demo key store (its PIN may come from ``DEMO-PKCS11-PIN.txt``).

        Raises
        ------
        KeyStoreError
            If the binding or the module is missing, the token is not there, or the PIN is
            wrong.
        """
        p = _pkcs11()
        module = str(doc.get("module") or DEFAULT_MODULE)
        label = str(doc.get("token_label") or "")
        if not label or not re.fullmatch(r"[0-9a-f]{32}", str(doc.get("store_id", ""))):
            raise KeyStoreError("the key store's PKCS#11 root entry is damaged")
        lib = _load_module(p, module, keys_dir, doc.get("softhsm2_conf"))
        pin = _read_pin(keys_dir, demo=demo)
        digest = hashlib.sha256(pin.encode()).digest()
        key = (module, label)
        with _SESSIONS_LOCK:
            cached = _SESSIONS.get(key)
            if cached is not None:
                session, known, lock = cached
                if not hmac.compare_digest(known, digest):
                    raise KeyStoreError(f"wrong user PIN for PKCS#11 token {label!r}")
                return cls(session, lock, doc, p)
            try:
                token = lib.get_token(token_label=label)
            except p.NoSuchToken as exc:
                raise KeyStoreError(
                    f"PKCS#11 token {label!r} is not present in {module}"
                    + (" (check SOFTHSM2_CONF)" if "softhsm" in module else "")
                ) from exc
            except p.MultipleTokensReturned as exc:
                raise KeyStoreError(f"more than one PKCS#11 token is labelled {label!r}") from exc
            try:
                session = token.open(rw=True, user_pin=pin)
            except p.PinIncorrect as exc:
                raise KeyStoreError(f"wrong user PIN for PKCS#11 token {label!r}") from exc
            except p.PinLocked as exc:
                raise KeyStoreError(f"the user PIN of PKCS#11 token {label!r} is locked") from exc
            except p.PKCS11Error as exc:
                raise KeyStoreError(
                    f"cannot log in to PKCS#11 token {label!r}: {type(exc).__name__}"
                ) from exc
            lock = threading.RLock()
            _SESSIONS[key] = (session, digest, lock)
            return cls(session, lock, doc, p)

    # -- the key objects -------------------------------------------------------------------
    def _find(self, object_class: Any, label: str | None = None) -> list[Any]:
        p = self._p
        attrs: dict[Any, Any] = {p.Attribute.CLASS: object_class}
        if object_class == p.ObjectClass.SECRET_KEY:
            attrs[p.Attribute.ID] = self._store_id
        else:
            attrs[p.Attribute.APPLICATION] = self._application
        if label is not None:
            attrs[p.Attribute.LABEL] = label
        return list(self._session.get_objects(attrs))

    def _key_object(self, key_id: str, *, create: bool) -> Any:
        p = self._p
        found = self._find(p.ObjectClass.SECRET_KEY, key_id)
        if len(found) > 1:
            raise KeyStoreError(
                f"PKCS#11 token {self._token_label!r} holds {len(found)} key objects for "
                f"{describe_key(key_id)}"
            )
        if found:
            return found[0]
        if self._find(p.ObjectClass.DATA, key_id):
            raise KeyDestroyedError(
                f"{describe_key(key_id)} was destroyed on PKCS#11 token {self._token_label!r} "
                "(purged): this key store file is an older copy, and what the key protected "
                "cannot be decrypted from any copy"
            )
        if not create:
            raise KeyStoreError(
                f"the key object of {describe_key(key_id)} is missing from PKCS#11 token "
                f"{self._token_label!r}, but the key was never purged: the token is damaged or "
                "is not this key store's token"
            )
        return self._session.generate_key(
            p.KeyType.AES,
            256,
            id=self._store_id,
            label=key_id,
            store=True,
            capabilities=p.MechanismFlag.ENCRYPT | p.MechanismFlag.DECRYPT,
            template={
                p.Attribute.SENSITIVE: True,
                p.Attribute.EXTRACTABLE: False,
                p.Attribute.PRIVATE: True,
            },
        )

    def wrap(self, key_id: str, aad: bytes, material: bytes, *, create: bool) -> bytes:
        """Encrypt ``material`` on the token under the key object of ``key_id``.

        With ``create``, a missing key object is generated first (a new master key).
        """
        p = self._p
        with self._lock:
            key = self._key_object(key_id, create=create)
            nonce = os.urandom(_NONCE_LEN)
            try:
                sealed = key.encrypt(
                    material, mechanism=p.Mechanism.AES_GCM, mechanism_param=p.GCMParams(nonce, aad)
                )
            except p.PKCS11Error as exc:
                raise KeyStoreError(
                    f"PKCS#11 token {self._token_label!r} could not wrap {describe_key(key_id)}: "
                    f"{type(exc).__name__}"
                ) from exc
        return nonce + bytes(sealed)

    def unwrap(self, key_id: str, aad: bytes, blob: bytes) -> bytes:
        """Decrypt on the token what :meth:`wrap` made.

        Raises
        ------
        KeyDestroyedError
            If the key object was destroyed by a purge (an older key-store copy).
        KeyStoreError
            If the key object is missing without a purge, or the blob does not authenticate.
        """
        p = self._p
        with self._lock:
            key = self._key_object(key_id, create=False)
            try:
                return bytes(
                    key.decrypt(
                        blob[_NONCE_LEN:],
                        mechanism=p.Mechanism.AES_GCM,
                        mechanism_param=p.GCMParams(blob[:_NONCE_LEN], aad),
                    )
                )
            except p.PKCS11Error as exc:
                raise KeyStoreError(
                    f"{describe_key(key_id)} does not authenticate under its key object on "
                    f"PKCS#11 token {self._token_label!r}: the key store is damaged"
                ) from exc

    def destroy(self, key_ids: Iterable[str]) -> None:
        """Destroy the key objects of ``key_ids`` and leave a tombstone for each.

        Idempotent: a key already destroyed (or never on the token) only gets its tombstone.
        """
        p = self._p
        now = dt.datetime.now(dt.UTC).isoformat()
        with self._lock:
            for key_id in key_ids:
                if not self._find(p.ObjectClass.DATA, key_id):
                    self._session.create_object(
                        {
                            p.Attribute.CLASS: p.ObjectClass.DATA,
                            p.Attribute.TOKEN: True,
                            p.Attribute.PRIVATE: True,
                            p.Attribute.LABEL: key_id,
                            p.Attribute.APPLICATION: self._application,
                            p.Attribute.VALUE: f"destroyed {now}".encode(),
                        }
                    )
                for obj in self._find(p.ObjectClass.SECRET_KEY, key_id):
                    obj.destroy()

    def sweep(self, destroyed: set[str]) -> None:
        """Destroy key objects left behind by a purge that stopped half-way."""
        p = self._p
        with self._lock:
            left = [
                str(obj[p.Attribute.LABEL])
                for obj in self._find(p.ObjectClass.SECRET_KEY)
                if str(obj[p.Attribute.LABEL]) in destroyed
            ]
        if left:
            self.destroy(left)


def _load_module(p: Any, module: str, keys_dir: Path, conf: Any) -> Any:
    wanted: str | None = None
    if conf is not None:
        wanted = str((keys_dir / str(conf)).resolve())
        if not Path(wanted).is_file():
            raise KeyStoreError(f"the demo SoftHSM2 configuration {wanted} is missing")
    with _SESSIONS_LOCK:
        if module in _LOADED_CONF:
            if wanted is not None and _LOADED_CONF[module] != wanted:
                raise KeyStoreError(
                    f"this process already loaded {module} with another SoftHSM2 "
                    "configuration; open this demo store in its own process"
                )
        else:
            if not Path(module).is_file():
                raise KeyStoreError(
                    f"PKCS#11 module {module} is missing (Debian: apt-get install softhsm2, or "
                    "give the path of your HSM's module)"
                )
            if wanted is not None:
                os.environ["SOFTHSM2_CONF"] = wanted
            _LOADED_CONF[module] = wanted or os.environ.get("SOFTHSM2_CONF")
    try:
        return p.lib(module)
    except p.PKCS11Error as exc:
        with _SESSIONS_LOCK:
            _LOADED_CONF.pop(module, None)
        raise KeyStoreError(f"cannot load PKCS#11 module {module}: {exc}") from exc


def create_demo_softhsm_token(keys_dir: Path) -> Pkcs11Config:
    """Create a SoftHSM2 token for a demo key store, in ``<keys_dir>/softhsm/``.

    Writes ``softhsm2.conf`` and the token folder there, and a random user PIN in
    ``DEMO-PKCS11-PIN.txt`` (0600) beside the key store. Demo only: a copy of that folder is
    a copy of the token.

    Raises
    ------
    KeyStoreError
        If SoftHSM2 (``softhsm2-util`` and its module) is not installed.
    """
    util = shutil.which("softhsm2-util")
    if util is None or not Path(DEFAULT_MODULE).is_file():
        raise KeyStoreError(
            "--key-root softhsm needs SoftHSM2 (Debian: apt-get install softhsm2; "
            "`make softhsm` does it as root)"
        )
    keys_dir = Path(keys_dir)
    base = keys_dir / DEMO_SOFTHSM_DIR
    tokens = base / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    base.chmod(0o700)
    conf = base / "softhsm2.conf"
    atomic_write_bytes(
        conf,
        f"directories.tokendir = {tokens.resolve()}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n".encode(),
    )
    pin = secrets.token_hex(8)
    label = "alpr-workbench-demo"
    env = {**os.environ, "SOFTHSM2_CONF": str(conf.resolve())}
    result = subprocess.run(  # noqa: S603  (fixed argv, no shell)
        [util, "--init-token", "--free", "--label", label, "--pin", pin,
         "--so-pin", secrets.token_hex(8)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise KeyStoreError(f"softhsm2-util could not create the demo token: {result.stderr}")
    atomic_write_bytes(keys_dir / DEMO_PIN_FILE, pin.encode() + b"\n")
    return Pkcs11Config(
        token_label=label, softhsm2_conf=f"{DEMO_SOFTHSM_DIR}/softhsm2.conf"
    )
