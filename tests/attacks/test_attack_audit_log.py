"""Attacks on the tamper-evident audit log (issue #14): deletion, rollback, rewrite.

Each test is the tampering as an attacker with access to the data directory would do it
(and, for the checkpoint, as a holder of the keys would do it), and asserts that it is now
refused or reported. Real key stores and real files; nothing of ours is mocked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.governance import _chain
from alpr_workbench.governance.audit_log import AuditLog, AuditLogError
from alpr_workbench.keys import KeyStore
from alpr_workbench.store import Store
from conftest import PASSPHRASE

runner = CliRunner()


def event(i: int) -> dict[str, Any]:
    return {"event_type": "search", "outcome": "allowed", "user_id": f"u{i:03d}", "row_count": i}


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    return KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def fill(home: Path, keystore: KeyStore, n: int) -> None:
    with AuditLog.open(home, keystore) as log:
        for i in range(n):
            log.append(event(i))


def verify(home: Path, keystore: KeyStore) -> tuple[bool, str]:
    """Open and verify, as ``audit verify`` does; a refusal to open counts as a finding."""
    try:
        with AuditLog.open(home, keystore) as log:
            v = log.verify()
    except AuditLogError as exc:
        return False, str(exc)
    return v.ok, v.problem or ""


def record_spans(path: Path) -> list[tuple[int, int]]:
    data = path.read_bytes()
    out, offset = [], _chain.HEADER_LEN
    while offset < len(data):
        raw, status = _chain.parse_record(data, offset)
        assert raw is not None, status
        out.append((raw.start, raw.end))
        offset = raw.end
    return out


# -- 1. deleting the log ---------------------------------------------------------------------
@pytest.mark.parametrize("what", ["both files", "whole folder"])
def test_deleting_the_log_does_not_start_a_new_one(
    home: Path, keystore: KeyStore, what: str
) -> None:
    fill(home, keystore, 5)
    audit = home / "audit"
    if what == "whole folder":
        shutil.rmtree(audit)
    else:
        (audit / "records.bin").unlink()
        (audit / "head.bin").unlink()
    with pytest.raises(AuditLogError, match="deleted"):
        AuditLog.open(home, keystore)
    assert not (audit / "records.bin").exists()  # no fresh, empty log was started


def test_cli_verify_reports_a_deleted_log_as_tampering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPR_WORKBENCH_PASSPHRASE", PASSPHRASE)
    home = tmp_path / "home"
    store = Store.create(home, passphrase=PASSPHRASE)
    fill(home, store.keystore, 3)
    shutil.rmtree(home / "audit")
    result = runner.invoke(app, ["audit", "verify", "--data-dir", str(home)])
    assert result.exit_code == 1, result.output
    assert "intact" not in result.output
    assert "damaged" in result.output and "deleted" in result.output


# -- 2. rollback and truncation ---------------------------------------------------------------
def test_restoring_an_older_copy_of_both_files_is_caught(
    home: Path, keystore: KeyStore, tmp_path: Path
) -> None:
    fill(home, keystore, 3)
    backup = tmp_path / "backup"
    shutil.copytree(home / "audit", backup)
    with AuditLog.open(home, keystore) as log:
        for i in range(3, 6):
            log.append(event(i))
    for name in ("records.bin", "head.bin"):
        shutil.copy2(backup / name, home / "audit" / name)
    ok, problem = verify(home, keystore)
    assert not ok
    assert "witness" in problem and "record 4" in problem
    with AuditLog.open(home, keystore) as log, pytest.raises(AuditLogError, match="integrity"):
        log.append(event(99))  # a rolled-back log is never appended to


def test_dropping_the_last_record_and_spoiling_the_newer_head_slot_is_caught(
    home: Path, keystore: KeyStore
) -> None:
    fill(home, keystore, 8)
    records, head = home / "audit" / "records.bin", home / "audit" / "head.bin"
    start, _ = record_spans(records)[-1]
    records.write_bytes(records.read_bytes()[:start])  # drop record 8
    data = bytearray(head.read_bytes())
    slot = (8 % 2) * _chain.HEAD_SLOT  # the slot anchoring record 8
    data[slot : slot + _chain.HEAD_SLOT] = bytes(range(_chain.HEAD_SLOT))
    head.write_bytes(bytes(data))
    ok, problem = verify(home, keystore)
    assert not ok and "record 8" in problem


def test_a_spoiled_newer_head_slot_is_reported_not_skipped(home: Path, keystore: KeyStore) -> None:
    fill(home, keystore, 4)
    head = home / "audit" / "head.bin"
    data = bytearray(head.read_bytes())
    data[(4 % 2) * _chain.HEAD_SLOT + 20] ^= 0x01
    head.write_bytes(bytes(data))
    ok, problem = verify(home, keystore)
    assert not ok and "head" in problem


def test_deleting_the_witness_is_caught(home: Path, keystore: KeyStore, tmp_path: Path) -> None:
    fill(home, keystore, 3)
    witnesses = [p for p in (tmp_path / "keys").iterdir() if "witness" in p.name]
    assert witnesses, "the log keeps a witness beside the key store"
    for path in witnesses:
        path.unlink()
    ok, problem = verify(home, keystore)
    assert not ok and "witness" in problem


# -- 3. a rewrite by a key holder, caught against a published checkpoint ----------------------
def rewrite_with_the_keys(home: Path, keystore: KeyStore, *, from_seq: int) -> None:
    """What a holder of the keys can do: re-encrypt, re-chain and re-MAC the log from a record,
    then re-anchor the head and the witness, so that the local verify passes."""
    enc = keystore.current_key("audit/log")
    mac_key = keystore.current_key("audit/hmac")
    path = home / "audit" / "records.bin"
    data = path.read_bytes()
    log_id = _chain.parse_header(data)
    assert log_id is not None
    aead = AESGCM(enc.material)
    out = [data[: _chain.HEADER_LEN]]
    chain = _chain.genesis_hash(log_id)
    offset = _chain.HEADER_LEN
    seq = start = 0
    while offset < len(data):
        raw, _ = _chain.parse_record(data, offset)
        assert raw is not None
        seq, start = raw.seq, sum(len(p) for p in out)
        aad = log_id + seq.to_bytes(8, "big") + raw.enc_version.to_bytes(4, "big")
        ct = raw.ciphertext
        if seq >= from_seq:
            doc = json.loads(aead.decrypt(raw.nonce, ct, aad))
            doc["outcome"] = "refused"  # the rewrite
            ct = aead.encrypt(raw.nonce, json.dumps(doc, sort_keys=True).encode(), aad)
        prev = chain
        chain = _chain.compute_chain_hash(
            prev, seq, raw.enc_version, raw.mac_version, raw.nonce, ct
        )
        mac = hmac.new(
            mac_key.material, _chain.RECORD_MAC_DOMAIN + log_id + chain, hashlib.sha256
        ).digest()
        out.append(
            _chain.pack_record(
                seq, raw.enc_version, raw.mac_version, raw.nonce, ct, prev, chain, mac
            )
        )
        offset = raw.end
    new = b"".join(out)
    path.write_bytes(new)
    head = _chain.HeadSlot(seq, start, len(new), mac_key.version, chain)
    covered = _chain.pack_head_fields(head)
    slot = (
        covered
        + hmac.new(
            mac_key.material, _chain.HEAD_MAC_DOMAIN + log_id + covered, hashlib.sha256
        ).digest()
    )
    head_bytes = bytearray((home / "audit" / "head.bin").read_bytes())
    at = (seq % 2) * _chain.HEAD_SLOT
    head_bytes[at : at + len(slot)] = slot
    (home / "audit" / "head.bin").write_bytes(bytes(head_bytes))
    for witness in (p for p in keystore.witness_path("audit").parent.glob("*witness*")):
        w = _chain.WitnessState(log_id, seq, chain, mac_key.version)
        witness.write_bytes(_chain.pack_witness(w, mac_key.material))


def test_a_rewrite_by_a_key_holder_fails_the_published_checkpoint(
    home: Path, keystore: KeyStore, tmp_path: Path
) -> None:
    from alpr_workbench.governance.audit_log import SignedCheckpoint, verify_checkpoint

    fill(home, keystore, 4)
    published = sorted((home / "audit" / "checkpoints").glob("*.json"))
    assert published, "the first append of the day writes a signed checkpoint"
    with AuditLog.open(home, keystore) as log:
        public_key = log.public_key_pem()
        checkpoint = log.checkpoint()
    copy = tmp_path / "published.json"
    copy.write_text(checkpoint.to_json())
    assert verify_checkpoint(
        SignedCheckpoint.from_json(copy.read_text()), public_key, log_path=home
    )

    rewrite_with_the_keys(home, keystore, from_seq=1)
    assert verify(home, keystore) == (True, "")  # the key holder fooled the local verify...
    for path in [*published, copy]:  # ...but not any checkpoint published before
        cp = SignedCheckpoint.from_json(path.read_text())
        assert not verify_checkpoint(cp, public_key, log_path=home)


def test_a_forged_checkpoint_or_a_foreign_key_does_not_verify(
    home: Path, keystore: KeyStore, tmp_path: Path
) -> None:
    from alpr_workbench.governance.audit_log import SignedCheckpoint, verify_checkpoint

    fill(home, keystore, 2)
    with AuditLog.open(home, keystore) as log:
        cp = log.checkpoint()
        public_key = log.public_key_pem()
    other_keys = KeyStore.create(tmp_path / "k2", passphrase=PASSPHRASE)
    with AuditLog.open(tmp_path / "h2", other_keys) as other:
        foreign = other.public_key_pem()
    raw = json.loads(cp.to_json())
    raw["seq"] = 1
    assert not verify_checkpoint(SignedCheckpoint.from_json(json.dumps(raw)), public_key)
    assert not verify_checkpoint(cp, foreign)
    assert verify_checkpoint(cp, public_key, log_path=home)


def test_cli_checkpoint_and_verify_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPR_WORKBENCH_PASSPHRASE", PASSPHRASE)
    home = tmp_path / "home"
    store = Store.create(home, passphrase=PASSPHRASE)
    fill(home, store.keystore, 3)
    out = tmp_path / "cp.json"
    made = runner.invoke(app, ["audit", "checkpoint", "--out", str(out), "--data-dir", str(home)])
    assert made.exit_code == 0, made.output
    pem = home / "audit" / "public_key.pem"
    args = ["audit", "verify-checkpoint", str(out), "--public-key", str(pem), "--log", str(home)]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    rewrite_with_the_keys(home, store.keystore, from_seq=1)
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1, bad.output
    assert "NOT" in bad.output
