"""On-disk format of the audit log and the keyless SHA-256 chain over it.

Records file (``records.bin``), all integers big-endian::

    header  : FILE_MAGIC (16 bytes) | log_id (16 random bytes)
    record  : b"AREC" | body_len u32 | body
    body    : seq u64 | enc_version u32 | mac_version u32 | nonce (12)
              | ciphertext (AES-256-GCM of the canonical JSON event, tag included)
              | prev_hash (32) | chain_hash (32) | mac (32)

    chain_hash = SHA-256(b"AREC" | prev_hash | seq | enc_version | mac_version | nonce | ciphertext)
    mac        = HMAC-SHA256(audit/hmac key, b"alpr-audit-record" | log_id | chain_hash)

The chain starts from ``genesis_hash(log_id)``. Anyone holding the file can recompute the chain
(no key needed); only a holder of the HMAC key can produce records that authenticate.

Head file (``head.bin``): two fixed 128-byte slots, written alternately (slot ``seq % 2``) in
place and flushed, so a torn head write always leaves the previous slot intact::

    slot : b"AHD1" | seq u64 | rec_start u64 | rec_end u64 | mac_version u32 | chain_hash (32)
           | mac (32) | zero padding
    mac  = HMAC-SHA256(audit/hmac key, b"alpr-audit-head" | log_id | slot bytes before mac)

A slot that is not all zeros and does not authenticate is reported, never skipped in favour of
the other slot (a spoiled newer slot must not let the older one hide the last records).

Witness file (``<key store folder>/witness-audit.bin``, outside the audit folder): one
``WITNESS_SIZE``-byte record rewritten in place and flushed after every append, so a rollback
or truncation of the audit folder is caught even when both of its files are restored::

    witness : b"AWT1" | log_id (16) | seq u64 | mac_version u32 | chain_hash (32) | mac (32)
    mac     = HMAC-SHA256(audit/hmac key, b"alpr-audit-witness" | witness bytes before mac)
"""

from __future__ import annotations

import hashlib
import hmac
import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass

FILE_MAGIC = b"ALPR-AUDIT-LOG\x00\x01"
LOG_ID_LEN = 16
HEADER_LEN = len(FILE_MAGIC) + LOG_ID_LEN
REC_MAGIC = b"AREC"
PREFIX = struct.Struct(">4sI")
FIXED = struct.Struct(">QII12s")
HASH_LEN = 32
TRAILER_LEN = 3 * HASH_LEN
GCM_TAG_LEN = 16
MIN_BODY = FIXED.size + GCM_TAG_LEN + TRAILER_LEN
MAX_BODY = 1 << 24
HEAD_MAGIC = b"AHD1"
HEAD_FIELDS = struct.Struct(">4sQQQI32s")
HEAD_SLOT = 128
HEAD_SIZE = 2 * HEAD_SLOT
RECORD_MAC_DOMAIN = b"alpr-audit-record"
HEAD_MAC_DOMAIN = b"alpr-audit-head"
_GENESIS_DOMAIN = b"alpr-workbench audit log genesis v1"
WITNESS_MAGIC = b"AWT1"
WITNESS_FIELDS = struct.Struct(">4s16sQI32s")
WITNESS_SIZE = 128
WITNESS_MAC_DOMAIN = b"alpr-audit-witness"

#: What the parsers read: file bytes, a view of them or a read-only memory map.
Buffer = bytes | memoryview | mmap.mmap


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One framed record as stored (nothing decrypted or authenticated yet)."""

    seq: int
    enc_version: int
    mac_version: int
    nonce: bytes
    ciphertext: bytes
    prev_hash: bytes
    chain_hash: bytes
    mac: bytes
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class HeadSlot:
    """The anchor: the last durable record's seq, position and chain hash."""

    seq: int
    rec_start: int
    rec_end: int
    mac_version: int
    chain_hash: bytes


@dataclass(frozen=True, slots=True)
class WitnessState:
    """The monotonic witness kept outside the audit folder: which log, how far, which hash."""

    log_id: bytes
    seq: int
    chain_hash: bytes
    mac_version: int


@dataclass(frozen=True, slots=True)
class ChainScan:
    """Result of walking the chain: where it stopped and why."""

    records: int
    last_seq: int
    last_chain: bytes
    end: int
    first_bad_seq: int | None
    problem: str | None
    torn: bool


def genesis_hash(log_id: bytes) -> bytes:
    """Chain hash before the first record of the log ``log_id``."""
    return hashlib.sha256(_GENESIS_DOMAIN + log_id).digest()


def compute_chain_hash(
    prev_hash: bytes, seq: int, enc_version: int, mac_version: int, nonce: bytes, ct: bytes
) -> bytes:
    """SHA-256 link of one record to its predecessor (keyless)."""
    h = hashlib.sha256(REC_MAGIC)
    h.update(prev_hash)
    h.update(FIXED.pack(seq, enc_version, mac_version, nonce))
    h.update(ct)
    return h.digest()


def pack_record(
    seq: int,
    enc_version: int,
    mac_version: int,
    nonce: bytes,
    ct: bytes,
    prev_hash: bytes,
    chain_hash: bytes,
    mac: bytes,
) -> bytes:
    """Frame one record for appending."""
    body_len = FIXED.size + len(ct) + TRAILER_LEN
    return b"".join(
        (
            PREFIX.pack(REC_MAGIC, body_len),
            FIXED.pack(seq, enc_version, mac_version, nonce),
            ct,
            prev_hash,
            chain_hash,
            mac,
        )
    )


def parse_header(buf: Buffer) -> bytes | None:
    """Return the log id from the file header, or ``None`` when the header is not ours."""
    if len(buf) < HEADER_LEN or bytes(buf[: len(FILE_MAGIC)]) != FILE_MAGIC:
        return None
    return bytes(buf[len(FILE_MAGIC) : HEADER_LEN])


def parse_record(buf: Buffer, offset: int) -> tuple[RawRecord | None, str]:
    """Parse the record starting at ``offset``.

    Returns
    -------
    tuple
        ``(record, "ok")``; ``(None, "torn")`` when the bytes end before the record does (or
        are all zero: an unfinished write); ``(None, "malformed")`` otherwise.
    """
    remaining = len(buf) - offset
    if remaining < PREFIX.size:
        return None, "torn"
    magic, body_len = PREFIX.unpack_from(buf, offset)
    if magic != REC_MAGIC or not MIN_BODY <= body_len <= MAX_BODY:
        if not any(bytes(buf[offset:])):
            return None, "torn"
        return None, "malformed"
    if remaining < PREFIX.size + body_len:
        return None, "torn"
    pos = offset + PREFIX.size
    seq, enc_version, mac_version, nonce = FIXED.unpack_from(buf, pos)
    ct_end = pos + body_len - TRAILER_LEN
    ct = bytes(buf[pos + FIXED.size : ct_end])
    trailer = bytes(buf[ct_end : ct_end + TRAILER_LEN])
    return (
        RawRecord(
            seq=seq,
            enc_version=enc_version,
            mac_version=mac_version,
            nonce=nonce,
            ciphertext=ct,
            prev_hash=trailer[:HASH_LEN],
            chain_hash=trailer[HASH_LEN : 2 * HASH_LEN],
            mac=trailer[2 * HASH_LEN :],
            start=offset,
            end=ct_end + TRAILER_LEN,
        ),
        "ok",
    )


def check_link(raw: RawRecord, expected_seq: int, prev_hash: bytes) -> str | None:
    """Keyless checks of one record against its expected position; a problem or ``None``."""
    if raw.seq != expected_seq:
        if raw.seq < expected_seq:
            what = "a record was inserted, duplicated or moved here"
        else:
            what = "records are missing here (deleted or moved)"
        return f"expected record {expected_seq} but found record {raw.seq}: {what}"
    if raw.prev_hash != prev_hash:
        return "does not chain to the previous record (a record before it was removed or changed)"
    recomputed = compute_chain_hash(
        raw.prev_hash, raw.seq, raw.enc_version, raw.mac_version, raw.nonce, raw.ciphertext
    )
    if recomputed != raw.chain_hash:
        return "its contents were altered (chain hash does not match)"
    return None


def scan_chain(
    buf: Buffer,
    log_id: bytes,
    *,
    start: int = HEADER_LEN,
    first_seq: int = 1,
    prev_hash: bytes | None = None,
    stop_after_seq: int | None = None,
    on_record: Callable[[RawRecord], str | None] | None = None,
) -> ChainScan:
    """Walk the chain from ``start`` and stop at the first problem.

    Parameters
    ----------
    buf
        The records file (or a snapshot of it).
    log_id
        Log id from the header (it seeds the chain).
    start, first_seq, prev_hash
        Where to begin: byte offset, the seq expected there and the chain hash before it
        (defaults: the first record and the genesis hash).
    stop_after_seq
        Stop once this record has been checked.
    on_record
        Extra keyed check per record (HMAC, decryption); returns a problem or ``None``.

    Returns
    -------
    ChainScan
        Records checked good, the last good seq and chain hash, the byte offset after it and,
        on failure, the first bad seq and the problem in words. ``torn`` is true when the scan
        stopped only because the file ends inside a record (or in zero fill).
    """
    offset = start
    expected = first_seq
    chain = genesis_hash(log_id) if prev_hash is None else prev_hash
    good = 0
    size = len(buf)
    while offset < size and (stop_after_seq is None or expected <= stop_after_seq):
        raw, status = parse_record(buf, offset)
        if raw is None:
            detail = (
                "the file ends inside it (incomplete write or truncation)"
                if status == "torn"
                else f"unreadable framing at byte offset {offset}"
            )
            return ChainScan(
                good, expected - 1, chain, offset, expected, detail, torn=status == "torn"
            )
        problem = check_link(raw, expected, chain)
        if problem is None and on_record is not None:
            problem = on_record(raw)
        if problem is not None:
            return ChainScan(good, expected - 1, chain, offset, expected, problem, torn=False)
        chain = raw.chain_hash
        offset = raw.end
        good += 1
        expected += 1
    return ChainScan(good, expected - 1, chain, offset, None, None, torn=False)


def pack_head_fields(head: HeadSlot) -> bytes:
    """Slot bytes covered by the head's MAC."""
    return HEAD_FIELDS.pack(
        HEAD_MAGIC, head.seq, head.rec_start, head.rec_end, head.mac_version, head.chain_hash
    )


def unpack_head_slot(slot: bytes) -> tuple[HeadSlot, bytes, bytes] | None:
    """Split one slot into (head, MAC-covered bytes, MAC); ``None`` if it is not a head."""
    if len(slot) < HEAD_FIELDS.size + HASH_LEN or slot[:4] != HEAD_MAGIC:
        return None
    _, seq, rec_start, rec_end, mac_version, chain = HEAD_FIELDS.unpack_from(slot, 0)
    covered = slot[: HEAD_FIELDS.size]
    mac = slot[HEAD_FIELDS.size : HEAD_FIELDS.size + HASH_LEN]
    return HeadSlot(seq, rec_start, rec_end, mac_version, chain), covered, mac


def pack_witness(witness: WitnessState, mac_key: bytes) -> bytes:
    """The witness file's bytes (fields, HMAC, zero padding to ``WITNESS_SIZE``)."""
    covered = WITNESS_FIELDS.pack(
        WITNESS_MAGIC, witness.log_id, witness.seq, witness.mac_version, witness.chain_hash
    )
    mac = hmac.new(mac_key, WITNESS_MAC_DOMAIN + covered, hashlib.sha256).digest()
    return (covered + mac).ljust(WITNESS_SIZE, b"\0")


def unpack_witness(data: bytes) -> tuple[WitnessState, bytes, bytes] | None:
    """Split witness bytes into (state, MAC-covered bytes, MAC); ``None`` if not a witness."""
    if len(data) < WITNESS_FIELDS.size + HASH_LEN or data[:4] != WITNESS_MAGIC:
        return None
    _, log_id, seq, mac_version, chain = WITNESS_FIELDS.unpack_from(data, 0)
    covered = data[: WITNESS_FIELDS.size]
    mac = data[WITNESS_FIELDS.size : WITNESS_FIELDS.size + HASH_LEN]
    return WitnessState(log_id, seq, chain, mac_version), covered, mac
