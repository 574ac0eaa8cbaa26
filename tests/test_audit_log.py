"""The tamper-evident audit log: round trip, encryption, tampering, crashes, digests."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from alpr_workbench.errors import KeyStoreError, SchemaValidationError
from alpr_workbench.governance._chain import (
    HEADER_LEN,
    compute_chain_hash,
    pack_record,
    parse_header,
    parse_record,
)
from alpr_workbench.governance.audit_log import (
    AuditLog,
    AuditLogError,
    SignedDigest,
    verify_digest,
)
from alpr_workbench.keys import KeyStore
from alpr_workbench.schema import load_table, validate_frame
from conftest import PASSPHRASE

PLATE = "7QZX481"
SECRET_REASON = "stolen vehicle, victim Jane Q. Example"


def make_event(i: int, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_type": "search",
        "outcome": "allowed",
        "user_id": f"u{i % 7:03d}",
        "organization": "Burbank PD",
        "organization_type": "ca_local_agency",
        "case_number": f"26-{i:06d}",
        "reason_code": "240",
        "reason_text": SECRET_REASON,
        "plate_queried": PLATE,
        "window_from": dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        "window_to": dt.datetime(2026, 3, 2, 12, 30, tzinfo=dt.UTC),
        "networks_searched": 3,
        "row_count": i,
    }
    event.update(extra)
    return event


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    return KeyStore.create(tmp_path / "keys", passphrase=PASSPHRASE)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def filled(home: Path, keystore: KeyStore, n: int = 8) -> AuditLog:
    log = AuditLog.open(home, keystore)
    for i in range(n):
        log.append(make_event(i))
    return log


def spans(path: Path) -> list[tuple[int, int]]:
    """(start, end) of every framed record in the file."""
    data = path.read_bytes()
    out, offset = [], HEADER_LEN
    while offset < len(data):
        raw, status = parse_record(data, offset)
        assert raw is not None, status
        out.append((raw.start, raw.end))
        offset = raw.end
    return out


def rewrite(path: Path, order: list[int]) -> None:
    """Rewrite the records file with its records (1-based seqs) in ``order``."""
    data = path.read_bytes()
    parts = spans(path)
    path.write_bytes(
        data[:HEADER_LEN] + b"".join(data[s:e] for s, e in (parts[i - 1] for i in order))
    )


def reopen_and_verify(home: Path, keystore: KeyStore):
    with AuditLog.open(home, keystore) as log:
        return log.verify()


# -- round trip, encryption ------------------------------------------------------------------
def test_round_trip_and_schema(home: Path, keystore: KeyStore) -> None:
    with AuditLog.open(home, keystore) as log:
        first = log.append(make_event(0, event_id="e-0"))
        assert first.seq == 1 and first.event_id == "e-0"
        assert first.occurred_at.tzinfo is not None and len(first.chain_hash) == 64
        many = log.append_many([make_event(i) for i in range(1, 6)])
        assert [r.seq for r in many] == [2, 3, 4, 5, 6]
        assert len({r.event_id for r in many}) == 5
        assert len(log) == 6
        frame = log.events()
    assert frame.columns == load_table("audit_events").columns
    assert validate_frame("audit_events", frame).equals(frame)
    assert frame["seq"].to_list() == [1, 2, 3, 4, 5, 6]
    assert frame["plate_queried"].to_list() == [PLATE] * 6
    assert frame["row_count"].to_list() == list(range(6))
    assert frame["window_to"][0] == dt.datetime(2026, 3, 2, 12, 30, tzinfo=dt.UTC)
    assert frame["event_id"][0] == "e-0"
    assert frame["event_id"][1:].to_list() == [r.event_id for r in many]
    # reopened from disk, same content
    with AuditLog.open(home, keystore) as again:
        assert again.events().equals(frame)
        assert again.verify().ok


def test_nothing_in_clear_on_disk(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore, 5).close()
    for path in (p for p in (home / "audit").rglob("*") if p.is_file()):
        data = path.read_bytes()
        for secret in (PLATE, SECRET_REASON, "Burbank PD", "26-000003"):
            assert secret.encode() not in data, (path.name, secret)
    assert (home / "audit" / "records.bin").stat().st_mode & 0o077 == 0


def test_occurred_at_is_kept_and_converted_to_utc(home: Path, keystore: KeyStore) -> None:
    pacific = dt.timezone(dt.timedelta(hours=-8))
    when = dt.datetime(2025, 12, 31, 20, 0, 0, 123456, tzinfo=pacific)
    with AuditLog.open(home, keystore) as log:
        rec = log.append(make_event(0, occurred_at=when))
        assert rec.occurred_at == when and rec.occurred_at.tzinfo == dt.UTC
        assert log.events(year=2026)["occurred_at"].to_list() == [when]
        assert log.events(year=2025).height == 0


# -- verification of tampering ---------------------------------------------------------------
def test_verify_ok(home: Path, keystore: KeyStore) -> None:
    with filled(home, keystore) as log:
        v = log.verify()
    assert v.ok and v.records == 8 and v.first_bad_seq is None and v.problem is None


def test_edited_byte_is_named(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore).close()
    path = home / "audit" / "records.bin"
    start, end = spans(path)[4]  # record 5
    data = bytearray(path.read_bytes())
    data[(start + end) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    v = reopen_and_verify(home, keystore)
    assert not v.ok and v.first_bad_seq == 5 and v.records == 4
    assert "altered" in (v.problem or "")


def test_rewritten_chain_without_the_key_is_named(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore).close()
    path = home / "audit" / "records.bin"
    forge_keyless(path, from_seq=3)
    v = reopen_and_verify(home, keystore)
    assert not v.ok and v.first_bad_seq == 3
    assert "authentication" in (v.problem or "")


@pytest.mark.parametrize(
    ("order", "first_bad"),
    [
        ([1, 2, 3, 5, 6, 7, 8], 4),  # deleted record 4
        ([1, 2, 3, 3, 4, 5, 6, 7, 8], 4),  # duplicated record 3
        ([1, 2, 4, 3, 5, 6, 7, 8], 3),  # swapped 3 and 4
        ([2, 3, 4, 5, 6, 7, 8], 1),  # deleted the first record
        ([1, 2, 3, 4, 5, 6, 7, 8, 8], 9),  # replayed the last record at the end
    ],
    ids=["delete", "duplicate", "swap", "delete-first", "replay-at-end"],
)
def test_reordering_is_named(
    home: Path, keystore: KeyStore, order: list[int], first_bad: int
) -> None:
    filled(home, keystore).close()
    rewrite(home / "audit" / "records.bin", order)
    v = reopen_and_verify(home, keystore)
    assert not v.ok and v.first_bad_seq == first_bad and v.problem
    assert v.records == first_bad - 1


def test_tail_truncation_is_named(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore).close()
    path = home / "audit" / "records.bin"
    rewrite(path, list(range(1, 8)))  # drop record 8 whole
    with AuditLog.open(home, keystore) as log:
        v = log.verify()
        assert not v.ok and v.first_bad_seq == 8 and v.records == 7
        assert "removed from the end" in (v.problem or "")
        size = path.stat().st_size
        with pytest.raises(AuditLogError, match="integrity check"):
            log.append(make_event(99))
        assert path.stat().st_size == size  # a damaged log is never appended to or "fixed"


def test_truncation_inside_an_acknowledged_record_is_named(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore).close()
    path = home / "audit" / "records.bin"
    os.truncate(path, path.stat().st_size - 10)
    v = reopen_and_verify(home, keystore)
    assert not v.ok and v.first_bad_seq == 8


def test_deleted_records_file_is_refused(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore, 2).close()
    (home / "audit" / "records.bin").unlink()
    with pytest.raises(AuditLogError, match="deleted"):
        AuditLog.open(home, keystore)


# -- crashes -------------------------------------------------------------------------------
def test_torn_unacknowledged_record_is_dropped(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore, 5).close()
    path = home / "audit" / "records.bin"
    start, end = spans(path)[-1]
    record = path.read_bytes()[start:end]
    with open(path, "ab") as fh:  # an unfinished write of a 6th record
        fh.write(record[: len(record) // 2])
    with AuditLog.open(home, keystore) as log:
        assert len(log) == 5
        assert log.verify().ok
        assert log.append(make_event(5)).seq == 6
        assert log.verify().ok
    assert list((home / "audit").glob("torn-*.bin"))


def test_lagging_head_is_brought_forward(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore, 5).close()
    head = home / "audit" / "head.bin"
    old_head = head.read_bytes()
    with AuditLog.open(home, keystore) as log:
        log.append_many([make_event(5), make_event(6)])
    head.write_bytes(old_head)  # as if killed after the records' fsync, before the head's
    with AuditLog.open(home, keystore) as log:
        assert len(log) == 7
        assert log.verify().ok


def test_lagging_witness_is_brought_forward(home: Path, keystore: KeyStore, tmp_path: Path) -> None:
    filled(home, keystore, 3).close()
    witness = keystore.witness_path("audit")
    old_witness = witness.read_bytes()
    with AuditLog.open(home, keystore) as log:
        log.append(make_event(3))
    witness.write_bytes(old_witness)  # as if killed after the head's fsync, before the witness's
    with AuditLog.open(home, keystore) as log:
        assert len(log) == 4
        assert log.verify().ok
        assert log.append(make_event(4)).seq == 5
    assert witness.read_bytes() != old_witness


def test_an_empty_log_whose_files_vanished_is_recreated(home: Path, keystore: KeyStore) -> None:
    # Creation stopped before the first record (the witness says 0): nothing can be lost.
    AuditLog.open(home, keystore).close()
    (home / "audit" / "records.bin").unlink()
    (home / "audit" / "head.bin").unlink()
    with AuditLog.open(home, keystore) as log:
        assert log.append(make_event(0)).seq == 1
        assert log.verify().ok


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from alpr_workbench.governance.audit_log import AuditLog
    from alpr_workbench.keys import KeyStore

    keystore = KeyStore.open(Path(sys.argv[2]), passphrase=sys.argv[3])
    log = AuditLog.open(Path(sys.argv[1]), keystore)
    i = 0
    while True:
        if i % 3 == 2:
            seqs = [r.seq for r in log.append_many(
                [{"event_type": "lookup", "outcome": "allowed", "plate_queried": "7QZX481"}] * 4
            )]
        else:
            seqs = [log.append({"event_type": "search", "outcome": "refused"}).seq]
        print(" ".join(map(str, seqs)), flush=True)
        i += 1
    """
)


def test_kill_9_loses_no_acknowledged_record(
    home: Path, keystore: KeyStore, tmp_path: Path
) -> None:
    AuditLog.open(home, keystore).close()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(home), str(tmp_path / "keys"), PASSPHRASE],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    printed: list[int] = []
    try:
        while len(printed) < 400:
            line = child.stdout.readline()
            assert line, "the child stopped early"
            printed.extend(int(s) for s in line.split())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
        child.stdout.close()
    printed.extend(int(s) for line in rest.splitlines() for s in line.split())
    assert printed == list(range(1, len(printed) + 1))
    with AuditLog.open(home, keystore) as log:
        assert log.verify().ok
        # every acknowledged record is there; at most one more write was in flight
        assert len(printed) <= len(log) <= len(printed) + 4
        assert log.events()["seq"].to_list() == list(range(1, len(log) + 1))
        assert log.append(make_event(0)).seq == len(log)


# -- keys --------------------------------------------------------------------------------------
def test_wrong_key_store_cannot_read(home: Path, keystore: KeyStore, tmp_path: Path) -> None:
    filled(home, keystore, 3).close()
    with pytest.raises(KeyStoreError):
        KeyStore.open(tmp_path / "keys", passphrase="not the passphrase at all")
    stranger = KeyStore.create(tmp_path / "other-keys", passphrase=PASSPHRASE)
    with pytest.raises(KeyStoreError, match="audit/"):
        AuditLog.open(home, stranger)
    AuditLog.open(tmp_path / "other-home", stranger).close()  # now it has audit keys of its own
    with pytest.raises(AuditLogError, match="wrong key store"):
        AuditLog.open(home, stranger)


def test_error_messages_hold_no_key_material(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore, 2).close()
    secrets = [keystore.current_key(k).material for k in ("audit/log", "audit/hmac")]
    rewrite(home / "audit" / "records.bin", [2, 1])
    with AuditLog.open(home, keystore) as log:
        with pytest.raises(AuditLogError) as info:
            log.append(make_event(0))
        text = str(info.value) + repr(log.verify())
    for material in secrets:
        assert material.hex() not in text and repr(material) not in text


# -- digests -----------------------------------------------------------------------------------
def test_digest_verifies_with_the_public_key_alone(home: Path, keystore: KeyStore) -> None:
    with AuditLog.open(home, keystore) as log:
        for i, year in enumerate([2025, 2025, 2026, 2025, 2026, 2026]):
            log.append(make_event(i, occurred_at=dt.datetime(year, 6, 1, i, tzinfo=dt.UTC)))
        digest = log.digest(2025)
        pem = log.public_key_pem()
        empty = log.digest(2019)
    assert (digest.first_seq, digest.last_seq, digest.records) == (1, 4, 3)
    assert (home / "audit" / "public_key.pem").read_text() == pem
    published = SignedDigest.from_json(digest.to_json())
    assert published == digest
    assert verify_digest(published, pem)
    assert verify_digest(published, pem, log_path=home / "audit" / "records.bin")
    assert verify_digest(published, pem, log_path=home)
    assert empty.records == 0 and verify_digest(empty, pem, log_path=home)
    # any altered field breaks the signature
    for change in (
        {"records": 4},
        {"last_seq": 5},
        {"year": 2024},
        {"chain_hash": "00" * 32},
        {"signed_at": "2030-01-01T00:00:00+00:00"},
    ):
        forged = SignedDigest(**{**digest.__dict__, **change})
        assert not verify_digest(forged, pem), change
    # another key: neither its signature nor its public key passes
    with AuditLog.open(home.parent / "elsewhere", keystore_for(home.parent)) as other:
        other.append(make_event(0, occurred_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
        foreign = other.digest(2025)
        other_pem = other.public_key_pem()
    assert not verify_digest(digest, other_pem)
    assert not verify_digest(foreign, pem)
    resigned = SignedDigest(**{**foreign.__dict__, "public_key_pem": pem})
    assert not verify_digest(resigned, pem)
    with pytest.raises(AuditLogError, match="public key"):
        verify_digest(digest, "not a key")


def keystore_for(base: Path) -> KeyStore:
    return KeyStore.create(base / "elsewhere-keys", passphrase=PASSPHRASE)


def test_verify_digest_detects_a_rewritten_log(home: Path, keystore: KeyStore) -> None:
    with filled(home, keystore, 6) as log:
        year = dt.datetime.now(dt.UTC).year
        digest = log.digest(year)
        pem = log.public_key_pem()
    path = home / "audit" / "records.bin"
    assert verify_digest(digest, pem, log_path=path)
    original = path.read_bytes()
    forge_keyless(path, from_seq=2)  # edited, then the keyless chain recomputed
    assert not verify_digest(digest, pem, log_path=path)
    path.write_bytes(original)
    rewrite(path, [1, 2, 3, 4, 5])
    assert not verify_digest(digest, pem, log_path=path)


def test_digest_refuses_a_broken_log(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore, 4).close()
    rewrite(home / "audit" / "records.bin", [1, 3, 2, 4])
    with AuditLog.open(home, keystore) as log, pytest.raises(AuditLogError, match="integrity"):
        log.digest(dt.datetime.now(dt.UTC).year)


# -- concurrency -----------------------------------------------------------------------------
def test_concurrent_appends_keep_the_chain(home: Path, keystore: KeyStore) -> None:
    log = AuditLog.open(home, keystore)
    other = AuditLog.open(home, keystore)  # a second handle, as another process would have
    seqs: list[int] = []
    errors: list[BaseException] = []

    def work(handle: AuditLog, n: int) -> None:
        try:
            for i in range(n):
                if i % 10 == 0:
                    seqs.extend(r.seq for r in handle.append_many([make_event(i)] * 3))
                else:
                    seqs.append(handle.append(make_event(i)).seq)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(h, 60)) for h in (log, log, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total = 3 * (60 + 6 * 2)
    assert sorted(seqs) == list(range(1, total + 1))
    v = other.verify()
    assert v.ok and v.records == total
    assert len(log) == total
    log.close()
    other.close()


# -- schema validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "column", "rule"),
    [
        ({"plate": "7QZX481"}, "plate", "not declared"),
        ({"event_type": None}, "event_type", "required"),
        ({"outcome": None}, "outcome", "required"),
        ({"outcome": "maybe"}, "outcome", "not one of"),
        ({"organization_type": "federal-ish"}, "organization_type", "not one of"),
        ({"occurred_at": dt.datetime(2026, 1, 1)}, "occurred_at", "naive"),
        ({"occurred_at": "2026-01-01T00:00:00Z"}, "occurred_at", "timezone-aware"),
        ({"row_count": -1}, "row_count", "minimum"),
        ({"row_count": "12"}, "row_count", "int64"),
        ({"networks_searched": 2**40}, "networks_searched", "int32"),
        ({"seq": 5}, "seq", "assigned by the audit log"),
    ],
)
def test_schema_errors_name_the_field_and_write_nothing(
    home: Path, keystore: KeyStore, change: dict[str, Any], column: str, rule: str
) -> None:
    with AuditLog.open(home, keystore) as log:
        log.append(make_event(0))
        size = log.records_path.stat().st_size
        event = make_event(1, **change)
        event = {k: v for k, v in event.items() if v is not None}
        with pytest.raises(SchemaValidationError, match=rule) as info:
            log.append(event)
        assert info.value.column == column
        with pytest.raises(SchemaValidationError) as info:
            log.append_many([make_event(2), event])
        assert info.value.column == column and info.value.row == 1
        assert len(log) == 1 and log.records_path.stat().st_size == size


def test_rows_of_a_conformed_frame_append(home: Path, keystore: KeyStore) -> None:
    from alpr_workbench.schema import empty_frame

    frame = pl.concat(
        [empty_frame("audit_events"), pl.DataFrame([make_event(i) for i in range(3)])],
        how="diagonal_relaxed",
    )
    with AuditLog.open(home, keystore) as log:
        records = log.append_many(frame.to_dicts())  # seq and other absent fields are null
        assert [r.seq for r in records] == [1, 2, 3]
        events = log.events()
    assert validate_frame("audit_events", events).equals(events)
    for column in ("plate_queried", "row_count", "window_from", "query_json"):
        assert events[column].to_list() == frame[column].to_list(), column


def test_event_ids_are_unique(home: Path, keystore: KeyStore) -> None:
    with AuditLog.open(home, keystore) as log:
        log.append(make_event(0, event_id="dup"))
        with pytest.raises(SchemaValidationError, match="already in the audit log"):
            log.append(make_event(1, event_id="dup"))
        with pytest.raises(SchemaValidationError, match="within the batch") as info:
            log.append_many([make_event(2, event_id="x"), make_event(3, event_id="x")])
        assert info.value.row == 1
        assert len(log) == 1
    with AuditLog.open(home, keystore) as log:  # also after reopening
        with pytest.raises(SchemaValidationError, match="already in the audit log"):
            log.append(make_event(1, event_id="dup"))
        assert log.append(make_event(1, event_id="fresh")).seq == 2
    assert pl.Series(["dup", "fresh"]).equals(
        reopen_events(home, keystore)["event_id"], check_names=False
    )


def reopen_events(home: Path, keystore: KeyStore) -> pl.DataFrame:
    with AuditLog.open(home, keystore) as log:
        return log.events()


# -- helpers that forge ------------------------------------------------------------------------
def forge_keyless(path: Path, *, from_seq: int) -> None:
    """Edit record ``from_seq`` and recompute the keyless chain after it (MACs left stale)."""
    data = path.read_bytes()
    log_id = parse_header(data)
    assert log_id is not None
    out, offset, prev = [data[:HEADER_LEN]], HEADER_LEN, None
    while offset < len(data):
        raw, _ = parse_record(data, offset)
        assert raw is not None
        ct = raw.ciphertext
        if raw.seq == from_seq:
            ct = bytes([ct[0] ^ 0xFF]) + ct[1:]
        prev_hash = raw.prev_hash if prev is None else prev
        chain = compute_chain_hash(
            prev_hash, raw.seq, raw.enc_version, raw.mac_version, raw.nonce, ct
        )
        out.append(
            pack_record(
                raw.seq, raw.enc_version, raw.mac_version, raw.nonce, ct, prev_hash, chain, raw.mac
            )
        )
        prev = chain
        offset = raw.end
    path.write_bytes(b"".join(out))


def test_altered_last_record_refuses_appends(home: Path, keystore: KeyStore) -> None:
    filled(home, keystore, 4).close()
    path = home / "audit" / "records.bin"
    start, end = spans(path)[-1]
    data = bytearray(path.read_bytes())
    data[start + 40] ^= 0x01
    path.write_bytes(bytes(data))
    with AuditLog.open(home, keystore) as log:
        with pytest.raises(AuditLogError, match="integrity check"):
            log.append(make_event(9))
        v = log.verify()
        assert not v.ok and v.first_bad_seq == 4
        with pytest.raises(AuditLogError, match="integrity check"):
            log.events()


def test_early_and_late_years_keep_their_timestamps(home: Path, keystore: KeyStore) -> None:
    times = [
        dt.datetime(987, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ]
    with AuditLog.open(home, keystore) as log:
        records = log.append_many([make_event(i, occurred_at=t) for i, t in enumerate(times)])
        assert [r.occurred_at for r in records] == times
        assert log.events()["occurred_at"].to_list() == times
        assert log.events(year=987).height == 1
        assert log.digest(987).records == 1
