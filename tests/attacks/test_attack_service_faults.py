"""Attacks on the service's credentials file: an older copy of ``accounts.json`` is refused.

``<home>/service/accounts.json`` is sealed (AES-256-GCM) under the key store, so it cannot be
edited; but until the witness, an *older* sealed copy authenticated just as well: restoring it
undid a password change, revived a consumed enrolment code, or rewound the last TOTP step so
an observed code worked again. Each attack restores such a copy and must get an error that
names the file (issue #15).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pyotp
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alpr_workbench.keys import KeyStore
from alpr_workbench.service.accounts import ACCOUNTS_FILE, WITNESS, AccountError, AccountStore

PASSPHRASE = "accounts attack passphrase, not a secret"
OLD_PASSWORD = "the first long password"
NEW_PASSWORD = "the second long password"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def keys(home: Path) -> KeyStore:
    return KeyStore.create(home / "keys", passphrase=PASSPHRASE)


def _snapshot(path: Path) -> bytes:
    return path.read_bytes()


def _restore(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _enrolled(home: Path, keys: KeyStore) -> tuple[AccountStore, str]:
    accounts = AccountStore(home, keys)
    code = accounts.issue_enrolment("jdoe", issued_by="admin1")
    secret = accounts.enroll("jdoe", code, OLD_PASSWORD).totp_secret
    return accounts, secret


def test_an_older_copy_from_before_a_password_change_is_refused(home, keys):
    accounts, _ = _enrolled(home, keys)
    path = home / ACCOUNTS_FILE
    before = _snapshot(path)
    code = accounts.issue_enrolment("jdoe", issued_by="admin1")  # a reset
    secret = accounts.enroll("jdoe", code, NEW_PASSWORD).totp_secret
    _restore(path, before)  # the attacker knows the old password
    fresh = AccountStore(home, keys)  # as after a service restart
    with pytest.raises(AccountError, match="accounts.json.*older copy"):
        fresh.check_credentials("jdoe", OLD_PASSWORD, pyotp.TOTP(secret).now())


def test_an_older_copy_from_before_the_enrolment_was_consumed_is_refused(home, keys):
    accounts = AccountStore(home, keys)
    path = home / ACCOUNTS_FILE
    code = accounts.issue_enrolment("jdoe", issued_by="admin1")
    before = _snapshot(path)
    accounts.enroll("jdoe", code, OLD_PASSWORD)
    _restore(path, before)  # the code would work a second time
    with pytest.raises(AccountError, match=str(path)):
        AccountStore(home, keys).enroll("jdoe", code, "an attacker's password")


def test_an_older_copy_that_rewinds_the_last_totp_step_is_refused(home, keys):
    accounts, secret = _enrolled(home, keys)
    path = home / ACCOUNTS_FILE
    before = _snapshot(path)
    code = pyotp.TOTP(secret).now()
    assert accounts.check_credentials("jdoe", OLD_PASSWORD, code)
    _restore(path, before)  # an observed code would be accepted again
    with pytest.raises(AccountError, match="older copy"):
        accounts.check_credentials("jdoe", OLD_PASSWORD, code)


def test_a_deleted_witness_is_an_error_naming_it(home, keys):
    accounts, _ = _enrolled(home, keys)
    witness = keys.witness_path(WITNESS)
    witness.unlink()
    with pytest.raises(AccountError, match=str(witness)):
        accounts.is_enrolled("jdoe")


def test_an_edited_witness_does_not_authenticate(home, keys):
    accounts, _ = _enrolled(home, keys)
    witness = keys.witness_path(WITNESS)
    data = bytearray(witness.read_bytes())
    data[-3] ^= 1
    witness.write_bytes(bytes(data))
    with pytest.raises(AccountError, match="witness"):
        accounts.is_enrolled("jdoe")


def test_a_witness_two_generations_behind_is_refused(home, keys):
    accounts = AccountStore(home, keys)
    witness = keys.witness_path(WITNESS)
    accounts.issue_enrolment("jdoe", issued_by="admin1")
    old_witness = witness.read_bytes()
    accounts.issue_enrolment("jdoe", issued_by="admin1")
    accounts.issue_enrolment("jdoe", issued_by="admin1")
    witness.write_bytes(old_witness)  # the witness restored instead of the file
    with pytest.raises(AccountError, match="witness"):
        accounts.is_enrolled("jdoe")


def test_a_crash_between_the_file_and_its_witness_is_repaired_then_rollback_still_caught(
    home, keys
):
    accounts = AccountStore(home, keys)
    path, witness = home / ACCOUNTS_FILE, keys.witness_path(WITNESS)
    accounts.issue_enrolment("jdoe", issued_by="admin1")
    file_before, witness_before = path.read_bytes(), witness.read_bytes()
    code = accounts.issue_enrolment("jdoe", issued_by="admin1")
    witness.write_bytes(witness_before)  # as if killed after the file's write
    enrolled = AccountStore(home, keys).enroll("jdoe", code, OLD_PASSWORD)  # accepted
    assert enrolled.user_id == "jdoe"
    path.write_bytes(file_before)
    with pytest.raises(AccountError, match="older copy"):
        AccountStore(home, keys).is_enrolled("jdoe")


def test_a_first_slice_file_without_generation_is_upgraded(home, keys):
    """A file written before the witness existed opens once and gains a witness."""
    key = keys.ensure_key("service/accounts")
    nonce = os.urandom(12)
    plain = json.dumps({"users": {"jdoe": {"enrolment": None}}}).encode()
    sealed = nonce + AESGCM(key.material).encrypt(
        nonce, plain, b"alpr-workbench service accounts v1"
    )
    path = home / ACCOUNTS_FILE
    path.parent.mkdir(parents=True)
    doc = {"format": 1, "key_version": key.version, "sealed": base64.b64encode(sealed).decode()}
    path.write_text(json.dumps(doc))
    legacy = path.read_bytes()
    accounts = AccountStore(home, keys)
    assert not accounts.is_enrolled("jdoe")
    accounts.issue_enrolment("jdoe", issued_by="admin1")
    assert keys.witness_path(WITNESS).is_file()
    path.write_bytes(legacy)  # once witnessed, the legacy copy is an older copy too
    with pytest.raises(AccountError, match="older copy"):
        AccountStore(home, keys).is_enrolled("jdoe")
