"""Issue #15 ("Key custody"): a key-store copy taken before a purge decrypts the purged day.

The attack: copy the data directory and ``keys/keystore.json`` (an ordinary backup), let the
retention purge run, then open the copy with the unchanged passphrase and read the purged day.
With the file-only key root it still works; that is the honest limit, and the README and
``purge`` say so. With the PKCS#11 key root the purge destroyed the day's key objects on the
token, so the copy decrypts nothing of that day. See docs/decisions/0005-pkcs11-key-root.md.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from alpr_workbench.errors import KeyDestroyedError
from alpr_workbench.keys import FILE_ROOT_PURGE_WARNING
from alpr_workbench.store import Store
from conftest import PASSPHRASE, make_reads
from hsm_fixtures import new_token, requires_softhsm

pytestmark = pytest.mark.attack

README = Path(__file__).resolve().parents[2] / "README.md"
DAY1, DAY2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
AS_OF = dt.date(2026, 10, 3)  # with 1 day of retention, DAY1 is purged and DAY2 kept


def _backup_then_purge(store: Store, backup: Path) -> Store:
    store.ingest(make_reads(300, start=DAY1, days=2))
    shutil.copytree(store.home, backup)
    report = store.reads.purge(as_of=AS_OF, retention_days=1)
    assert report.days_purged == (DAY1,)
    assert store.reads.query(DAY1, DAY1).height == 0
    return Store.open(backup, passphrase=PASSPHRASE)


def test_file_root_backup_still_decrypts_a_purged_day_and_purge_says_so(tmp_path):
    store = Store.create(tmp_path / "home", passphrase=PASSPHRASE)
    copy = _backup_then_purge(store, tmp_path / "backup")
    # The honest limit: the attack succeeds with the file-only root ...
    assert copy.reads.query(DAY1, DAY1).height > 0
    # ... and every purge says plainly what else must be destroyed,
    assert store.keystore.purge_warning == FILE_ROOT_PURGE_WARNING
    assert "older copy of that file" in FILE_ROOT_PURGE_WARNING
    again = store.reads.purge(as_of=AS_OF, retention_days=1)
    assert again.key_copies_warning == FILE_ROOT_PURGE_WARNING
    # ... as does the README's security section.
    security = README.read_text().split("## Security", 1)[1].split("\n## ", 1)[0]
    assert "older copies of `keys/keystore.json` must be destroyed" in security
    assert "--key-root pkcs11" in security


@requires_softhsm
def test_pkcs11_root_backup_cannot_decrypt_a_purged_day(tmp_path, monkeypatch):
    config, pin = new_token()
    monkeypatch.setenv("ALPR_WORKBENCH_PKCS11_PIN", pin)
    store = Store.create(tmp_path / "home", passphrase=PASSPHRASE, root=config)
    copy = _backup_then_purge(store, tmp_path / "backup")
    with pytest.raises(KeyDestroyedError, match="2026-10-01"):
        copy.reads.query(DAY1, DAY1)
    with pytest.raises(KeyDestroyedError, match="older copy"):
        copy.keystore.get_key("reads/2026-10-01/pii", 1)
    assert copy.reads.query(DAY2, DAY2).height > 0  # the kept day still reads
    assert store.keystore.purge_warning is None
