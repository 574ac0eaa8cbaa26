"""The PKCS#11 key root on a real SoftHSM2 token (issue #15, "Key custody").

See docs/decisions/0005-pkcs11-key-root.md. Skips, naming the reason, without SoftHSM2 or
python-pkcs11.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from alpr_workbench.errors import KeyDestroyedError, KeyStoreError, StoreError
from alpr_workbench.keys import KEYSTORE_FILE, KeyStore
from alpr_workbench.keys_pkcs11 import Pkcs11Config
from alpr_workbench.store import Store
from conftest import PASSPHRASE, make_reads
from hsm_fixtures import new_token, requires_softhsm

pytestmark = requires_softhsm

DAY1, DAY2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
AS_OF = dt.date(2026, 10, 3)  # with 1 day of retention, DAY1 is purged and DAY2 kept


@pytest.fixture
def token(monkeypatch):
    config, pin = new_token()
    monkeypatch.setenv("ALPR_WORKBENCH_PKCS11_PIN", pin)
    return config


@pytest.fixture
def hsm_store(tmp_path, token):
    store = Store.create(tmp_path / "home", passphrase=PASSPHRASE, root=token)
    store.ingest(make_reads(400, start=DAY1, days=2))
    return store


def _day(store, day):
    return store.reads.query(day, day)


def _token_session(config):
    import pkcs11

    return pkcs11.lib(config.module).get_token(token_label=config.token_label)


def test_store_records_the_root_but_no_pin_and_reads_both_days(hsm_store, token):
    assert hsm_store.keystore.key_root == "pkcs11"
    assert hsm_store.keystore.purge_warning is None
    doc = json.loads((hsm_store.home / "keys" / KEYSTORE_FILE).read_text())
    assert doc["root"]["kind"] == "pkcs11" and doc["root"]["token_label"] == token.token_label
    assert "pin" not in json.dumps(doc["root"]).lower()
    assert _day(hsm_store, DAY1).height > 0 and _day(hsm_store, DAY2).height > 0
    reopened = Store.open(hsm_store.home, passphrase=PASSPHRASE)
    assert reopened.reads.query().height == 400


def test_key_objects_are_non_extractable_aes256_labelled_by_key_id(hsm_store, token):
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    session = _token_session(token).open()  # the store's login covers this session too
    try:
        keys = {
            str(o[Attribute.LABEL]): o
            for o in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
        }
        for key_id in ("reads/2026-10-01/pii", "reads/2026-10-01/ops", "reads/2026-10-02/pii"):
            obj = keys[key_id]
            assert obj[Attribute.VALUE_LEN] == 32
            assert obj[Attribute.SENSITIVE] is True and obj[Attribute.EXTRACTABLE] is False
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                obj[Attribute.VALUE]
    finally:
        session.close()


def test_purge_reaches_an_older_copy_of_the_data_directory_and_key_store(hsm_store, tmp_path):
    backup = tmp_path / "backup"
    shutil.copytree(hsm_store.home, backup)  # data directory and keystore.json, before the purge
    report = hsm_store.reads.purge(as_of=AS_OF, retention_days=1)
    assert report.days_purged == (DAY1,)
    assert report.key_copies_warning is None  # nothing left for an operator to destroy

    copy = Store.open(backup, passphrase=PASSPHRASE)  # same token, same PIN
    with pytest.raises(KeyDestroyedError, match=r"2026-10-01.*purged.*older copy"):
        _day(copy, DAY1)
    assert _day(copy, DAY2).height > 0
    keystore = KeyStore.open(backup / "keys", passphrase=PASSPHRASE)
    with pytest.raises(KeyDestroyedError, match="reads of day 2026-10-01"):
        keystore.current_key("reads/2026-10-01/pii")


def test_wrong_pin_is_refused(hsm_store, tmp_path, monkeypatch):
    monkeypatch.setenv("ALPR_WORKBENCH_PKCS11_PIN", "000000")
    with pytest.raises(KeyStoreError, match="wrong user PIN"):
        Store.open(hsm_store.home, passphrase=PASSPHRASE)
    config, _right_pin = new_token()  # a token this process never logged in to
    with pytest.raises(KeyStoreError, match="wrong user PIN"):
        KeyStore.create(tmp_path / "k2", passphrase=PASSPHRASE, root=config)
    assert not (tmp_path / "k2" / KEYSTORE_FILE).exists()


def test_pin_only_from_the_environment_or_a_private_file(hsm_store, tmp_path, monkeypatch, token):
    monkeypatch.delenv("ALPR_WORKBENCH_PKCS11_PIN")
    with pytest.raises(KeyStoreError, match="ALPR_WORKBENCH_PKCS11_PIN"):
        Store.open(hsm_store.home, passphrase=PASSPHRASE)
    pin_file = tmp_path / "pin"
    pin_file.write_text("x")
    pin_file.chmod(0o644)
    monkeypatch.setenv("ALPR_WORKBENCH_PKCS11_PIN_FILE", str(pin_file))
    with pytest.raises(KeyStoreError, match="readable by others"):
        Store.open(hsm_store.home, passphrase=PASSPHRASE)


def test_legal_hold_survives_the_purge_of_its_day(hsm_store, tmp_path):
    held = _day(hsm_store, DAY1)["read_id"].head(5)
    hsm_store.reads.place_hold("case-7", held)
    backup = tmp_path / "backup"
    shutil.copytree(hsm_store.home, backup)
    hsm_store.reads.purge(as_of=AS_OF, retention_days=1)
    after = Store.open(hsm_store.home, passphrase=PASSPHRASE).reads.query(DAY1, DAY1)
    assert sorted(after["read_id"]) == sorted(held)
    assert not hsm_store.keystore.is_destroyed("holds/case-7/pii")


def test_missing_key_object_of_an_unpurged_day_is_named_as_damage(hsm_store, token):
    from pkcs11 import Attribute, ObjectClass

    session = _token_session(token).open(rw=True)
    try:
        for obj in session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: "reads/2026-10-02/pii"}
        ):
            obj.destroy()
    finally:
        session.close()
    fresh = Store.open(hsm_store.home, passphrase=PASSPHRASE)
    with pytest.raises(StoreError, match=r"2026-10-02.*missing.*never purged") as info:
        _day(fresh, DAY2)
    assert not isinstance(info.value, KeyDestroyedError)


def test_rotation_and_a_new_passphrase_keep_the_token_layer(hsm_store, tmp_path):
    backup = tmp_path / "backup"
    assert hsm_store.rotate_master_keys() > 0
    hsm_store.keystore.change_passphrase("another long passphrase")
    shutil.copytree(hsm_store.home, backup)
    reopened = Store.open(hsm_store.home, passphrase="another long passphrase")
    assert reopened.reads.query().height == 400
    hsm_store.reads.purge(as_of=AS_OF, retention_days=1)
    copy = Store.open(backup, passphrase="another long passphrase")
    with pytest.raises(KeyDestroyedError, match="2026-10-01"):
        _day(copy, DAY1)  # every version of the day's keys went with the token object


def test_missing_module_and_missing_token_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPR_WORKBENCH_PKCS11_PIN", "123456")
    missing_module = Pkcs11Config(token_label="x", module=str(tmp_path / "libnone.so"))
    with pytest.raises(KeyStoreError, match="module .*libnone.so is missing"):
        KeyStore.create(tmp_path / "a", passphrase=PASSPHRASE, root=missing_module)
    new_token()  # the module is loaded with the tests' token folder
    with pytest.raises(KeyStoreError, match="token 'no-such-token' is not present"):
        KeyStore.create(
            tmp_path / "b", passphrase=PASSPHRASE, root=Pkcs11Config(token_label="no-such-token")
        )
