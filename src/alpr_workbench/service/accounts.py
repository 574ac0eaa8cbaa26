"""Sign-in credentials, kept by the service only: password hashes, TOTP secrets, enrolment codes.

The credentials live in one file, ``<home>/service/accounts.json`` (0600), sealed with
AES-256-GCM under the key store's ``service/accounts`` master key, so only the process that
holds the key-encryption secret (the service) can read or change them; an edited or swapped
file does not authenticate. Per account:

- the password, hashed with argon2id (argon2-cffi's defaults: memory-hard);
- the TOTP secret (RFC 6238, 30-second steps, 6 digits) and the last step a code was accepted
  for, so a code works once;
- at most one enrolment code, kept as its SHA-256 (the code holds 120 random bits), with its
  expiry; it is consumed by the enrolment that uses it.

The file carries a generation, raised by every write, inside the seal. A witness beside the
key store (``<keys>/witness-accounts.bin``, sealed under the same key) records the last
generation and the file's SHA-256, so restoring an *older* sealed copy of the file (from
before a password change, before an enrolment code was consumed, or before a TOTP code was
used) is an error naming the file, as for the audit log and the store. The file is written
before its witness; a file exactly one generation ahead of its witness is a write cut short
by a crash, accepted and witnessed. Like the store's witness, this one shares the key store's
fate: whoever restores both to an older copy can roll both back.

Whether an account may sign in also depends on the store's ``users`` table (the account must
match a user in good standing); the service checks that, not this module. See
``docs/decisions/0003-service-boundary.md``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alpr_workbench._fsutil import atomic_write_bytes, exclusive_lock
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.keys import KeyStore

__all__ = [
    "ACCOUNTS_FILE",
    "ENROLMENT_TTL",
    "MIN_PASSWORD_CHARS",
    "WITNESS",
    "AccountError",
    "AccountStore",
    "Enrolment",
]

#: The sealed credentials file, relative to the data directory.
ACCOUNTS_FILE = Path("service") / "accounts.json"
#: How long an enrolment code stays valid.
ENROLMENT_TTL = dt.timedelta(hours=72)
#: The shortest password an account may choose.
MIN_PASSWORD_CHARS = 12

#: The name of the accounts file's witness (:meth:`KeyStore.witness_path`).
WITNESS = "accounts"

_KEY_ID = "service/accounts"
_AAD = b"alpr-workbench service accounts v1"
_WITNESS_AAD = b"alpr-workbench service accounts witness v1"
_FORMAT = 2  # 1: the first slice, without a generation (read once, then witnessed)
_ISSUER = "ALPR Workbench"
_HASHER = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
# Checked when the account is unknown or has no password, so timing reveals nothing.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class AccountError(WorkbenchError):
    """A credential operation failed; the message is safe to show the caller."""


@dataclass(frozen=True)
class Enrolment:
    """What an enrolment returns: the TOTP secret to put in an authenticator app."""

    user_id: str
    totp_secret: str
    otpauth_uri: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _code_digest(code: str) -> str:
    return hashlib.sha256(b"alpr-enrolment-code\x00" + code.encode("utf-8")).hexdigest()


class AccountStore:
    """The service's credentials for the data directory ``home``.

    Parameters
    ----------
    home
        The data directory.
    keystore
        Its key store (the service's; clients never hold it).
    clock
        Current UTC time (tests pin it).

    Examples
    --------
    >>> import tempfile, pathlib, pyotp
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> keys = KeyStore.create(home / "keys", passphrase="an example passphrase")
    >>> accounts = AccountStore(home, keys)
    >>> code = accounts.issue_enrolment("jdoe", issued_by="admin1")
    >>> enrolled = accounts.enroll("jdoe", code, "a long new password")
    >>> totp = pyotp.TOTP(enrolled.totp_secret).now()
    >>> accounts.check_credentials("jdoe", "a long new password", totp)
    True
    >>> accounts.check_credentials("jdoe", "a long new password", totp)  # used once only
    False
    """

    def __init__(
        self, home: Path, keystore: KeyStore, *, clock: Callable[[], dt.datetime] = _now
    ) -> None:
        self._path = Path(home) / ACCOUNTS_FILE
        self._keystore = keystore
        self._clock = clock
        self._mutex = threading.RLock()
        self._generation = 0  # of the file as last loaded or saved

    # -- file ----------------------------------------------------------------------------
    def _lock(self) -> Any:
        return exclusive_lock(self._path.with_name(".accounts.lock"))

    def _seal(self, plain: dict[str, Any], aad: bytes) -> bytes:
        """``plain`` sealed under the current accounts key, as the JSON bytes of a file."""
        key = self._keystore.ensure_key(_KEY_ID)
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(key.material).encrypt(
            nonce, json.dumps(plain, sort_keys=True).encode(), aad
        )
        doc = {
            "format": _FORMAT,
            "key_version": key.version,
            "sealed": base64.b64encode(sealed).decode("ascii"),
        }
        return json.dumps(doc).encode()

    def _unseal(self, data: bytes, aad: bytes) -> tuple[int, dict[str, Any]]:
        """The format and the plaintext of a sealed file's bytes (raises when it is not one)."""
        doc = json.loads(data)
        if doc.get("format") not in (1, _FORMAT):
            raise ValueError("unknown format")
        key = self._keystore.get_key(_KEY_ID, int(doc["key_version"]))
        raw = base64.b64decode(doc["sealed"], validate=True)
        plain = json.loads(AESGCM(key.material).decrypt(raw[:12], raw[12:], aad))
        if not isinstance(plain, dict):
            raise ValueError("not an object")
        return int(doc["format"]), plain

    def _read_witness(self) -> tuple[int, str] | None:
        """The witnessed (generation, file SHA-256), or ``None`` when there is no witness."""
        path = self._keystore.witness_path(WITNESS)
        if not path.is_file():
            return None
        try:
            _, body = self._unseal(path.read_bytes(), _WITNESS_AAD)
            return int(body["generation"]), str(body["file_sha256"])
        except (OSError, ValueError, KeyError, TypeError, InvalidTag, WorkbenchError) as exc:
            raise AccountError(
                f"the accounts witness {path} does not authenticate: it is damaged or was "
                "tampered with"
            ) from exc

    def _write_witness(self, generation: int, data: bytes) -> None:
        body = {"generation": generation, "file_sha256": hashlib.sha256(data).hexdigest()}
        atomic_write_bytes(
            self._keystore.witness_path(WITNESS), self._seal(body, _WITNESS_AAD), mode=0o600
        )

    def _load(self) -> dict[str, dict[str, Any]]:
        """The accounts, checked against the witness; call with the file lock held."""
        witness = self._read_witness()
        witness_path = self._keystore.witness_path(WITNESS)
        if not self._path.is_file():
            fresh = witness[0] == 0 if witness is not None else not self._keystore.key_ids(
                prefix=_KEY_ID, include_destroyed=True
            )
            if not fresh:
                raise AccountError(
                    f"{self._path} is missing although accounts were created: restore it"
                )
            self._generation = 0
            return {}
        try:
            data = self._path.read_bytes()
            file_format, plain = self._unseal(data, _AAD)
            users = plain["users"]
            generation = int(plain.get("generation", 0)) if file_format > 1 else 0
        except (OSError, ValueError, KeyError, TypeError, InvalidTag, WorkbenchError) as exc:
            raise AccountError(
                f"{self._path} does not authenticate: it is damaged or was tampered with"
            ) from exc
        if not isinstance(users, dict):
            raise AccountError(f"{self._path} does not hold accounts")
        if witness is None:
            if file_format > 1:
                raise AccountError(
                    f"the accounts witness {witness_path} is missing (deleted?): whether "
                    f"{self._path} is an older copy cannot be checked"
                )
            # A first-slice file, never witnessed: it is witnessed from its next write on.
        elif generation < witness[0] or (
            generation == witness[0] and hashlib.sha256(data).hexdigest() != witness[1]
        ):
            raise AccountError(
                f"{self._path} is generation {generation} but {witness_path} witnessed "
                f"generation {witness[0]}: an older copy of {self._path} was restored"
            )
        elif generation > witness[0] + 1:
            raise AccountError(
                f"{self._path} is generation {generation} but its witness {witness_path} is "
                f"generation {witness[0]}: an older copy of the witness was restored"
            )
        elif generation == witness[0] + 1:  # killed between the file's write and the witness's
            self._write_witness(generation, data)
        self._generation = generation
        return users

    def _save(self, users: dict[str, dict[str, Any]]) -> None:
        """Write the accounts one generation on, then witness them; call after :meth:`_load`."""
        if self._generation == 0 and not self._keystore.witness_path(WITNESS).is_file():
            # Witness what is there (nothing, or a first-slice file) before the first write,
            # so that from now on a deleted witness is noticed.
            self._write_witness(0, self._path.read_bytes() if self._path.is_file() else b"")
        generation = self._generation + 1
        data = self._seal({"users": users, "generation": generation}, _AAD)
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(self._path, data, mode=0o600)
        self._write_witness(generation, data)
        self._generation = generation

    # -- enrolment -----------------------------------------------------------------------
    def issue_enrolment(
        self, user_id: str, *, issued_by: str, ttl: dt.timedelta = ENROLMENT_TTL
    ) -> str:
        """Draw a one-time enrolment code for ``user_id``; keep only its hash.

        A new code replaces any earlier one. Enrolling with it sets a new password and TOTP
        secret (the way to reset a forgotten password or a lost phone, too).

        Returns
        -------
        str
            The code, to hand to the user once; it cannot be recovered later.
        """
        code = secrets.token_urlsafe(15)  # 120 random bits
        with self._mutex, self._lock():
            users = self._load()
            entry = users.setdefault(user_id, {})
            entry["enrolment"] = {
                "code_sha256": _code_digest(code),
                "expires_at": (self._clock() + ttl).isoformat(),
                "issued_by": issued_by,
            }
            self._save(users)
        return code

    def enroll(self, user_id: str, code: str, new_password: str) -> Enrolment:
        """Consume ``code`` and give ``user_id`` a new password and TOTP secret.

        Raises
        ------
        AccountError
            For a wrong, used or expired code (one message for all three), or a password
            shorter than :data:`MIN_PASSWORD_CHARS` or equal to the user id.
        """
        if len(new_password) < MIN_PASSWORD_CHARS or new_password == user_id:
            raise AccountError(
                f"choose a password of at least {MIN_PASSWORD_CHARS} characters, "
                "not your user name"
            )
        password_hash = _HASHER.hash(new_password)
        secret = pyotp.random_base32()
        with self._mutex, self._lock():
            users = self._load()
            pending = users.get(user_id, {}).get("enrolment")
            good = isinstance(pending, dict) and hmac.compare_digest(
                str(pending.get("code_sha256", "")), _code_digest(code)
            )
            expires = pending.get("expires_at") if isinstance(pending, dict) else None
            if not good or expires is None or self._clock() >= dt.datetime.fromisoformat(expires):
                raise AccountError("invalid, used or expired enrolment code")
            users[user_id] = {
                "password_argon2": password_hash,
                "totp_secret": secret,
                "totp_last_step": -1,
                "enrolled_at": self._clock().isoformat(),
            }
            self._save(users)
        uri = pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name=_ISSUER)
        return Enrolment(user_id, secret, uri)

    # -- sign-in -------------------------------------------------------------------------
    def check_credentials(self, user_id: str, password: str, totp_code: str) -> bool:
        """True when the password and the TOTP code are both right; the code is then used up.

        The password is always hashed (a dummy hash for unknown accounts), so timing does not
        reveal which accounts exist. A TOTP code is accepted for the current 30-second step or
        the one before or after (clock drift), and only for a step later than the last one
        accepted, so an observed code cannot be replayed.
        """
        with self._mutex, self._lock():
            entry = self._load().get(user_id, {})
        stored = entry.get("password_argon2") or _DUMMY_HASH
        try:
            password_ok = _HASHER.verify(stored, password) and stored is not _DUMMY_HASH
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            password_ok = False
        secret = entry.get("totp_secret")
        if not password_ok or not isinstance(secret, str):
            return False
        step = self._matching_step(secret, totp_code)
        if step is None:
            return False
        with self._mutex, self._lock():
            users = self._load()
            current = users.get(user_id)
            if current is None or current.get("totp_secret") != secret:
                return False
            if step <= int(current.get("totp_last_step", -1)):
                return False  # a replayed (or older) code
            current["totp_last_step"] = step
            self._save(users)
        return True

    def _matching_step(self, secret: str, code: str) -> int | None:
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            return None
        totp = pyotp.TOTP(secret)
        now = self._clock()
        step = int(now.timestamp()) // totp.interval
        for candidate in (step - 1, step, step + 1):
            expected = totp.generate_otp(candidate)
            if hmac.compare_digest(expected, code):
                return candidate
        return None

    def is_enrolled(self, user_id: str) -> bool:
        """True when ``user_id`` has a password and a TOTP secret."""
        with self._mutex, self._lock():
            return bool(self._load().get(user_id, {}).get("password_argon2"))
