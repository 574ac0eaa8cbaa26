import base64
import json
import os
import stat

import pytest

from alpr_workbench.errors import KeyDestroyedError, KeyStoreError
from alpr_workbench.keys import DEMO_PASSPHRASE_FILE, KEYSTORE_FILE, KeyStore
from conftest import PASSPHRASE


def test_there_is_no_default_passphrase(tmp_path):
    with pytest.raises(KeyStoreError, match="no default passphrase"):
        KeyStore.create(tmp_path / "keys")
    assert not (tmp_path / "keys" / KEYSTORE_FILE).exists()


def test_short_passphrase_is_refused(tmp_path):
    with pytest.raises(KeyStoreError, match="too short"):
        KeyStore.create(tmp_path / "keys", passphrase="hunter2")


def test_store_file_and_folder_are_private(tmp_path):
    KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE).ensure_key("k")
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / KEYSTORE_FILE).st_mode) == 0o600


def test_master_keys_are_256_bit_and_never_stored_in_clear(tmp_path):
    ks = KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
    key = ks.ensure_key("reads/2026-10-01/pii")
    assert len(key.material) == 32
    raw = (tmp_path / "keys" / KEYSTORE_FILE).read_bytes()
    assert key.material not in raw and base64.b64encode(key.material) not in raw
    assert "material" not in repr(key) and key.material.hex() not in repr(key)


def test_reopen_with_right_wrong_and_missing_secret(tmp_path):
    ks = KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
    original = ks.ensure_key("k").material
    assert (
        KeyStore.open(tmp_path / "keys", passphrase=PASSPHRASE).current_key("k").material
        == original
    )
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyStore.open(tmp_path / "keys", passphrase="a different passphrase")
    with pytest.raises(KeyStoreError, match="no key-encryption secret"):
        KeyStore.open(tmp_path / "keys")


def test_passphrase_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPR_WORKBENCH_PASSPHRASE", PASSPHRASE)
    KeyStore.create(tmp_path / "keys").ensure_key("k")
    assert KeyStore.open(tmp_path / "keys").current_key("k").version == 1


def test_raw_kek_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPR_WORKBENCH_KEK", base64.urlsafe_b64encode(os.urandom(32)).decode())
    KeyStore.create(tmp_path / "keys").ensure_key("k")
    assert KeyStore.open(tmp_path / "keys").current_key("k").version == 1
    monkeypatch.setenv("ALPR_WORKBENCH_KEK", base64.urlsafe_b64encode(os.urandom(16)).decode())
    with pytest.raises(KeyStoreError, match="32 bytes"):
        KeyStore.open(tmp_path / "keys")


def test_demo_store_generates_a_private_random_passphrase(tmp_path):
    KeyStore.create(tmp_path / "a", demo=True)
    KeyStore.create(tmp_path / "b", demo=True)
    pa = (tmp_path / "a" / DEMO_PASSPHRASE_FILE).read_text()
    pb = (tmp_path / "b" / DEMO_PASSPHRASE_FILE).read_text()
    assert pa != pb and len(pa.strip()) >= 24
    assert stat.S_IMODE(os.stat(tmp_path / "a" / DEMO_PASSPHRASE_FILE).st_mode) == 0o600
    assert KeyStore.open(tmp_path / "a").is_demo


def test_demo_passphrase_file_is_not_trusted_for_a_real_store(tmp_path):
    KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
    (tmp_path / "keys" / DEMO_PASSPHRASE_FILE).write_text(PASSPHRASE)
    with pytest.raises(KeyStoreError, match="no key-encryption secret"):
        KeyStore.open(tmp_path / "keys")


def test_rotation_keeps_old_versions_until_retired(tmp_path):
    ks = KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
    v1 = ks.ensure_key("k")
    v2 = ks.rotate("k")
    assert v2.version == 2 and v2.material != v1.material
    assert ks.get_key("k", 1).material == v1.material
    ks.retire_versions("k", keep=2)
    with pytest.raises(KeyDestroyedError):
        KeyStore.open(tmp_path / "keys", passphrase=PASSPHRASE).get_key("k", 1)


def test_destroyed_keys_are_gone_for_good(tmp_path):
    ks = KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
    material = ks.ensure_key("day").material
    ks.destroy(["day"])
    with pytest.raises(KeyDestroyedError):
        ks.get_key("day", 1)
    with pytest.raises(KeyDestroyedError):
        ks.ensure_key("day")  # never silently re-created
    reopened = KeyStore.open(tmp_path / "keys", passphrase=PASSPHRASE)
    with pytest.raises(KeyDestroyedError):
        reopened.current_key("day")
    doc = json.loads((tmp_path / "keys" / KEYSTORE_FILE).read_text())
    assert all(v["wrapped"] is None for v in doc["keys"]["day"]["versions"])
    assert base64.b64encode(material) not in (tmp_path / "keys" / KEYSTORE_FILE).read_bytes()


def test_change_passphrase_rewraps_without_changing_keys(tmp_path):
    ks = KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
    material = ks.ensure_key("k").material
    ks.change_passphrase("an entirely new passphrase")
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyStore.open(tmp_path / "keys", passphrase=PASSPHRASE)
    again = KeyStore.open(tmp_path / "keys", passphrase="an entirely new passphrase")
    assert again.current_key("k").material == material


@pytest.mark.parametrize("garbage", [b"", b"{not json", b'{"format": 99, "keys": {}}'])
def test_corrupted_store_is_reported(tmp_path, garbage):
    KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
    (tmp_path / "keys" / KEYSTORE_FILE).write_bytes(garbage)
    with pytest.raises(KeyStoreError, match="corrupted"):
        KeyStore.open(tmp_path / "keys", passphrase=PASSPHRASE)


def test_creating_over_an_existing_store_is_refused(tmp_path):
    KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
    with pytest.raises(KeyStoreError, match="already exists"):
        KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)
