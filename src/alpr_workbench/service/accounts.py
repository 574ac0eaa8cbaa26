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

_KEY_ID = "service/accounts"
_AAD = b"alpr-workbench service accounts v1"
_FORMAT = 1
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

    # -- file ----------------------------------------------------------------------------
    def _lock(self) -> Any:
        return exclusive_lock(self._path.with_name(".accounts.lock"))

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self._path.is_file():
            if self._keystore.key_ids(prefix=_KEY_ID, include_destroyed=True):
                raise AccountError(
                    f"{self._path} is missing although accounts were created: restore it"
                )
            return {}
        try:
            doc = json.loads(self._path.read_text())
            if doc.get("format") != _FORMAT:
                raise ValueError("unknown format")
            key = self._keystore.get_key(_KEY_ID, int(doc["key_version"]))
            raw = base64.b64decode(doc["sealed"], validate=True)
            plain = AESGCM(key.material).decrypt(raw[:12], raw[12:], _AAD)
            users = json.loads(plain)["users"]
        except (OSError, ValueError, KeyError, TypeError, InvalidTag, WorkbenchError) as exc:
            raise AccountError(
                f"{self._path} does not authenticate: it is damaged or was tampered with"
            ) from exc
        if not isinstance(users, dict):
            raise AccountError(f"{self._path} does not hold accounts")
        return users

    def _save(self, users: dict[str, dict[str, Any]]) -> None:
        key = self._keystore.ensure_key(_KEY_ID)
        nonce = os.urandom(12)
        plain = json.dumps({"users": users}, sort_keys=True).encode()
        sealed = nonce + AESGCM(key.material).encrypt(nonce, plain, _AAD)
        doc = {
            "format": _FORMAT,
            "key_version": key.version,
            "sealed": base64.b64encode(sealed).decode("ascii"),
        }
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(self._path, json.dumps(doc).encode(), mode=0o600)

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
        with self._mutex:
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
        with self._mutex:
            return bool(self._load().get(user_id, {}).get("password_argon2"))
