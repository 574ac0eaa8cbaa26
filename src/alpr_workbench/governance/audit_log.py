"""The tamper-evident audit log: append-only, hash-chained, keyed, encrypted and durable.

Every access or change is one record in ``<home>/audit/records.bin``. Each record holds the
event as canonical JSON encrypted with AES-256-GCM (key ``audit/log``; the log id, seq and key
version are authenticated data), a SHA-256 link to the previous record (anyone holding the
file can recompute the chain, no key needed) and an HMAC-SHA256 over that link (key
``audit/hmac``; nobody without the key can write a chain that authenticates). A small head
file anchors the last durable record (its seq, position and chain hash, under the HMAC), so
dropping records from the end is detected too. The byte layout is documented in
:mod:`alpr_workbench.governance._chain`.

An append returns only once both the record and the head are flushed to disk (``fdatasync``),
under a thread lock and an exclusive ``flock`` (safe across threads and processes). When a
process is killed mid-append, the next open (or the next append by another process) drops
an unfinished trailing record, which was never acknowledged, keeping its bytes in a
``torn-*.bin`` file beside the log, and brings a lagging head forward over complete records
that chain and authenticate. Nothing else is ever repaired: :meth:`AuditLog.verify` reports it.

Once a year :meth:`AuditLog.digest` signs the state of the chain with Ed25519 (seed: key
``audit/signing``); :func:`verify_digest` checks it with the public key alone and, given the
encrypted records file, recomputes the keyless chain to check the log was not rewritten.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import math
import numbers
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self, cast

import polars as pl
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import KeyStoreError, SchemaValidationError, WorkbenchError
from alpr_workbench.governance._chain import (
    FILE_MAGIC,
    HASH_LEN,
    HEAD_MAC_DOMAIN,
    HEAD_SIZE,
    HEAD_SLOT,
    HEADER_LEN,
    LOG_ID_LEN,
    RECORD_MAC_DOMAIN,
    WITNESS_MAC_DOMAIN,
    WITNESS_SIZE,
    HeadSlot,
    RawRecord,
    WitnessState,
    compute_chain_hash,
    genesis_hash,
    pack_head_fields,
    pack_record,
    pack_witness,
    parse_header,
    parse_record,
    scan_chain,
    unpack_head_slot,
    unpack_witness,
)
from alpr_workbench.keys import KeyStore
from alpr_workbench.schema import FieldSpec, load_table

__all__ = [
    "AUDIT_DIR",
    "CHECKPOINTS_DIR",
    "AuditLog",
    "AuditLogError",
    "AuditRecord",
    "AuditVerification",
    "HEAD_FILE",
    "PUBLIC_KEY_FILE",
    "RECORDS_FILE",
    "SignedCheckpoint",
    "SignedDigest",
    "verify_checkpoint",
    "verify_digest",
]

AUDIT_DIR = "audit"
RECORDS_FILE = "records.bin"
HEAD_FILE = "head.bin"
PUBLIC_KEY_FILE = "public_key.pem"
CHECKPOINTS_DIR = "checkpoints"
_WITNESS = "audit"
_LOCK_FILE = ".lock"
_TABLE = "audit_events"
_ENC_KEY = "audit/log"
_MAC_KEY = "audit/hmac"
_SIGNING_KEY = "audit/signing"
_KEY_IDS = [_ENC_KEY, _MAC_KEY, _SIGNING_KEY]
#: Fields the log fills in itself; a caller may not give them.
_LOG_ASSIGNED = frozenset({"seq"})
_POLARS_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
_DIGEST_DOMAIN = b"alpr-workbench audit digest v1\n"
_CHECKPOINT_DOMAIN = b"alpr-workbench audit checkpoint v1\n"
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class AuditLogError(WorkbenchError):
    """The audit log cannot be opened, read or appended to as asked; nothing was changed."""


@dataclass(frozen=True)
class AuditRecord:
    """Receipt for one durably appended event.

    Attributes
    ----------
    seq
        Position in the log (the first record is 1).
    event_id
        The event's identifier (assigned by the log when the event had none).
    occurred_at
        When it happened (UTC, timezone-aware).
    chain_hash
        Hex SHA-256 chain hash after this record.
    """

    seq: int
    event_id: str
    occurred_at: dt.datetime
    chain_hash: str


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of :meth:`AuditLog.verify`.

    Attributes
    ----------
    ok
        True when every record chains, authenticates and decrypts, and the head anchors the
        last one.
    records
        Records checked good (all of them when ``ok``; those before the problem otherwise).
    first_bad_seq
        The first record (by position) that is wrong or missing; ``None`` when ``ok`` or when
        the problem is not tied to one record (a damaged header or head).
    problem
        What is wrong, in words; ``None`` when ``ok``.
    """

    ok: bool
    records: int
    first_bad_seq: int | None
    problem: str | None


class _SignedJson:
    """What a signed digest and a signed checkpoint share: JSON form, parsing, signed message.

    Subclasses are frozen dataclasses naming ``_WHAT`` (words for errors), ``_DOMAIN`` (the
    signature's domain separator) and ``_TYPES`` (each field's kind: ``"int"``, ``"int?"``
    or ``"str"``).
    """

    _WHAT: ClassVar[str]
    _DOMAIN: ClassVar[bytes]
    _TYPES: ClassVar[dict[str, str]]

    def to_json(self) -> str:
        """Serialise as JSON (indented, sorted keys).

        Returns
        -------
        str
            The JSON text.
        """
        return json.dumps(asdict(cast(Any, self)), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Read one written by :meth:`to_json` (not yet verified).

        Parameters
        ----------
        text
            The JSON text.

        Returns
        -------
        Self
            The parsed object; verify it before trusting it.

        Raises
        ------
        AuditLogError
            If the text is not valid JSON, lacks or adds a field, or a field has the wrong type.
        """
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise AuditLogError(f"the {cls._WHAT} is not valid JSON") from exc
        names = set(cls._TYPES)
        if not isinstance(raw, dict) or set(raw) != names:
            raise AuditLogError(f"a signed {cls._WHAT} has exactly the fields {sorted(names)}")
        kinds: dict[str, Callable[[object], bool]] = {
            "int": _is_int,
            "int?": lambda v: v is None or _is_int(v),
            "str": lambda v: isinstance(v, str),
        }
        if not all(kinds[kind](raw[name]) for name, kind in cls._TYPES.items()):
            raise AuditLogError(f"a signed {cls._WHAT} field has the wrong type")
        return cls(**raw)

    def _message(self) -> bytes:
        payload = {k: v for k, v in asdict(cast(Any, self)).items() if k != "signature"}
        return self._DOMAIN + json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedDigest(_SignedJson):
    """A yearly digest of the audit log, signed with Ed25519.

    Attributes
    ----------
    year
        Calendar year (UTC) of the events covered.
    first_seq, last_seq
        First and last record whose ``occurred_at`` falls in ``year`` (``None`` if none).
    records
        Number of records whose ``occurred_at`` falls in ``year``.
    chain_hash
        Hex chain hash after record ``last_seq`` (the chain's starting hash when there is none).
    signed_at
        When the digest was signed (ISO 8601, UTC).
    public_key_pem
        The Ed25519 public key (PEM) the digest claims to be signed by.
    signature
        Base64 Ed25519 signature over every other field.
    """

    year: int
    first_seq: int | None
    last_seq: int | None
    records: int
    chain_hash: str
    signed_at: str
    public_key_pem: str
    signature: str

    _WHAT: ClassVar[str] = "digest"
    _DOMAIN: ClassVar[bytes] = _DIGEST_DOMAIN
    _TYPES: ClassVar[dict[str, str]] = {
        "year": "int", "first_seq": "int?", "last_seq": "int?", "records": "int",
        "chain_hash": "str", "signed_at": "str", "public_key_pem": "str", "signature": "str",
    }


@dataclass(frozen=True)
class SignedCheckpoint(_SignedJson):
    """A checkpoint of the audit log (how far it went, and its chain hash), signed with Ed25519.

    One is written to ``<home>/audit/checkpoints/`` on the first append of each UTC day, and
    on demand (``alpr-workbench audit checkpoint``). Publish them: a log rewritten later, even
    by a holder of the keys, no longer reaches ``chain_hash`` at ``seq``.

    Attributes
    ----------
    log_id
        Hex id of the log (from the records file's header).
    seq
        Records in the log when it was signed (0 for an empty log).
    chain_hash
        Hex keyless chain hash after record ``seq``.
    signed_at
        When it was signed (ISO 8601, UTC).
    public_key_pem
        The log's Ed25519 public key (check it against one obtained independently).
    signature
        Base64 Ed25519 signature over the other fields.
    """

    log_id: str
    seq: int
    chain_hash: str
    signed_at: str
    public_key_pem: str
    signature: str

    _WHAT: ClassVar[str] = "checkpoint"
    _DOMAIN: ClassVar[bytes] = _CHECKPOINT_DOMAIN
    _TYPES: ClassVar[dict[str, str]] = {
        "log_id": "str", "seq": "int", "chain_hash": "str", "signed_at": "str",
        "public_key_pem": "str", "signature": "str",
    }


# -- event validation (per event, no polars frame: appends must stay fast) -------------------
@dataclass(frozen=True)
class _Rule:
    spec: FieldSpec
    pattern: re.Pattern[str] | None
    enum: frozenset[str] | None


def _rules() -> dict[str, _Rule]:
    spec = load_table(_TABLE)
    return {
        f.name: _Rule(
            f,
            re.compile(f.pattern) if f.pattern else None,
            frozenset(f.enum) if f.enum is not None else None,
        )
        for f in spec.fields
    }


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _fail(column: str | None, row: int | None, rule: str) -> SchemaValidationError:
    return SchemaValidationError(_TABLE, column, row, rule)


def _to_utc(value: object, name: str, row: int | None) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise _fail(name, row, f"expected a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _fail(name, row, "naive timestamp (no time zone); give UTC times")
    return value.astimezone(dt.UTC)


def _normalise_value(rule: _Rule, value: object, row: int | None) -> Any:
    f = rule.spec
    kind = f.type
    out: Any
    if kind == "string":
        if not isinstance(value, str):
            raise _fail(f.name, row, f"expected a string, got {type(value).__name__}")
        out = value
    elif kind in _INT_RANGES:
        if not _is_int(value):
            raise _fail(f.name, row, f"value {value!r} cannot be read as {kind}")
        out = int(value)  # type: ignore[call-overload]
        low, high = _INT_RANGES[kind]
        if not low <= out <= high:
            raise _fail(f.name, row, f"value {out} does not fit in {kind}")
    elif kind in ("float32", "float64"):
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise _fail(f.name, row, f"value {value!r} cannot be read as {kind}")
        out = float(value)
        if math.isnan(out):
            raise _fail(f.name, row, "value is NaN")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _fail(f.name, row, f"value {value!r} cannot be read as bool")
        out = value
    elif kind == "datetime":
        out = _format_ts(_to_utc(value, f.name, row))
    elif kind == "date":
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise _fail(f.name, row, f"expected a date, got {type(value).__name__}")
        out = value.isoformat()
    elif kind == "list[string]":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise _fail(f.name, row, "expected a list of strings")
        out = list(value)
    else:  # pragma: no cover - the schema loader admits no other type
        raise _fail(f.name, row, f"type {kind} is not supported in the audit log")
    if rule.pattern is not None and not rule.pattern.search(out):
        raise _fail(f.name, row, f"value {out!r} does not match pattern {f.pattern}")
    if rule.enum is not None and out not in rule.enum:
        raise _fail(f.name, row, f"value {out!r} is not one of {list(f.enum or ())}")
    if f.minimum is not None and out < f.minimum:
        raise _fail(f.name, row, f"value below minimum {f.minimum}")
    if f.maximum is not None and out > f.maximum:
        raise _fail(f.name, row, f"value above maximum {f.maximum}")
    return out


def _normalise_event(
    rules: dict[str, _Rule], event: Mapping[str, Any], row: int | None, now: dt.datetime
) -> tuple[dict[str, Any], bool]:
    """Return the event as JSON-ready values, and whether the caller gave its event_id."""
    if not isinstance(event, Mapping):
        raise _fail(None, row, f"an event is a mapping of fields, got {type(event).__name__}")
    doc: dict[str, Any] = {}
    for name, value in event.items():
        rule = rules.get(name)
        if rule is None:
            raise _fail(str(name), row, "field is not declared in the schema")
        if value is None:
            continue  # a null is an absent field (rows of a conformed frame carry them)
        if name in _LOG_ASSIGNED:
            raise _fail(name, row, "assigned by the audit log; do not give it")
        doc[name] = _normalise_value(rule, value, row)
    given_id = "event_id" in doc
    if not given_id:
        doc["event_id"] = str(uuid.uuid4())
    if "occurred_at" not in doc:
        doc["occurred_at"] = _format_ts(now)
    for name, rule in rules.items():
        if rule.spec.required and name not in doc and name not in _LOG_ASSIGNED:
            raise _fail(name, row, "required value is missing")
    return doc, given_id


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _format_ts(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` for a UTC datetime (fixed width, so it sorts)."""
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=dt.UTC)


def _aad(log_id: bytes, seq: int, enc_version: int) -> bytes:
    return log_id + seq.to_bytes(8, "big") + enc_version.to_bytes(4, "big")


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, length, offset)
        if not chunk:
            break
        chunks.append(chunk)
        length -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class AuditLog:
    """The tamper-evident audit log kept under ``<home>/audit/``.

    Open it with :meth:`open`. Instances are safe to share between threads, and several
    processes may append to the same log at once.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from alpr_workbench.keys import KeyStore
    >>> tmp = tempfile.TemporaryDirectory()
    >>> home = Path(tmp.name)
    >>> keystore = KeyStore.create(home / "keys", passphrase="an example passphrase")
    >>> log = AuditLog.open(home, keystore)
    >>> log.append({"event_type": "search", "outcome": "allowed", "plate_queried": "7ABC123"}).seq
    1
    >>> log.verify().ok
    True
    >>> log.events()["plate_queried"].to_list()
    ['7ABC123']
    >>> log.close()
    >>> tmp.cleanup()
    """

    def __init__(self, directory: Path, keystore: KeyStore, log_id: bytes, lock_fd: int) -> None:
        self._dir = directory
        self._keystore = keystore
        self._log_id = log_id
        self._lock_fd = lock_fd
        self._mutex = threading.RLock()
        self._rules = _rules()
        self._genesis = genesis_hash(log_id)
        self._rec_fd = -1
        self._head_fd = -1
        self._witness_fd = -1
        self._witness_path = keystore.witness_path(_WITNESS)
        self._checkpoint_day: str | None = None
        self._aead: dict[int, AESGCM] = {}
        self._mac_keys: dict[int, bytes] = {}
        enc = keystore.current_key(_ENC_KEY)
        mac = keystore.current_key(_MAC_KEY)
        self._enc_version = enc.version
        self._mac_version = mac.version
        self._aead[enc.version] = AESGCM(enc.material)
        self._mac_keys[mac.version] = mac.material
        self._record_mac = hmac.new(mac.material, RECORD_MAC_DOMAIN + log_id, hashlib.sha256)
        self._head_mac = hmac.new(mac.material, HEAD_MAC_DOMAIN + log_id, hashlib.sha256)
        # Tail state: seq, chain hash and position of the last anchored record.
        self._seq = 0
        self._chain = self._genesis
        self._start = HEADER_LEN
        self._end = HEADER_LEN
        self._damage: str | None = None
        self._ids: set[str] | None = None

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, home: Path, keystore: KeyStore) -> AuditLog:
        """Open the audit log of ``home``, creating ``<home>/audit/`` on first use.

        Parameters
        ----------
        home
            Workbench home folder.
        keystore
            The key store holding ``audit/log``, ``audit/hmac`` and ``audit/signing``
            (created with the log).

        Returns
        -------
        AuditLog
            The open log. A torn trailing record left by a killed process is dropped and a
            lagging head brought forward; any other damage leaves the log readable for
            :meth:`verify` but refuses appends.

        Raises
        ------
        AuditLogError
            If the log's files were removed while its keys exist, the records file is not an
            audit log, or the log does not authenticate with ``keystore``.
        KeyStoreError
            If ``keystore`` lacks the log's keys.
        """
        directory = Path(home) / AUDIT_DIR
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                log_id = cls._create_or_check(directory, keystore)
                log = cls(directory, keystore, log_id, lock_fd)
                try:
                    log._open_files()
                    log._recover_locked(at_open=True)
                    log._write_public_key()
                except BaseException:
                    log._close_files()
                    raise
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(lock_fd)
            raise
        return log

    @staticmethod
    def _create_or_check(directory: Path, keystore: KeyStore) -> bytes:
        records = directory / RECORDS_FILE
        head = directory / HEAD_FILE
        # The log's keys exist only once a log was created with this key store: never start
        # a new, empty log over a deleted one.
        existed = bool(
            set(keystore.key_ids(prefix="audit/", include_destroyed=True)) & set(_KEY_IDS)
        )
        if not records.exists():
            if head.exists():
                raise AuditLogError(
                    f"the audit log's records file {records} is missing but its head exists: "
                    "it was deleted or moved"
                )
            if existed:
                log_id = _unfinished_creation(keystore)
                if log_id is None:
                    raise AuditLogError(
                        f"the audit log in {directory} is missing, but the key store holds its "
                        "keys and its witness: it was deleted or moved. A new log is never "
                        "started over an old one; restore the log from a backup."
                    )
            else:
                keystore.ensure_keys(_KEY_IDS)
                log_id = os.urandom(LOG_ID_LEN)
                mac = keystore.current_key(_MAC_KEY)
                witness = WitnessState(log_id, 0, genesis_hash(log_id), mac.version)
                atomic_write_bytes(
                    keystore.witness_path(_WITNESS), pack_witness(witness, mac.material)
                )
            atomic_write_bytes(records, FILE_MAGIC + log_id)
        with open(records, "rb") as fh:
            log_id_read = parse_header(fh.read(HEADER_LEN))
        if log_id_read is None:
            raise AuditLogError(f"{records} is not an audit log (its header is damaged)")
        if not head.exists():
            if records.stat().st_size > HEADER_LEN or _unfinished_creation(keystore) != log_id_read:
                return log_id_read  # damaged: the head was removed; verify will report it
            # A new log whose creation was interrupted before the head was written.
            mac = keystore.current_key(_MAC_KEY)
            slot = _head_slot_bytes(
                mac.material,
                log_id_read,
                HeadSlot(0, HEADER_LEN, HEADER_LEN, mac.version, genesis_hash(log_id_read)),
            )
            atomic_write_bytes(head, slot + bytes(HEAD_SIZE - len(slot)))
        return log_id_read

    def _open_files(self) -> None:
        self._rec_fd = os.open(self._dir / RECORDS_FILE, os.O_RDWR | os.O_APPEND)
        head = self._dir / HEAD_FILE
        if head.exists():
            self._head_fd = os.open(head, os.O_RDWR)
        if self._witness_path.exists():
            self._witness_fd = os.open(self._witness_path, os.O_RDWR)

    def _close_files(self) -> None:
        for fd in (self._rec_fd, self._head_fd, self._witness_fd):
            if fd >= 0:
                os.close(fd)
        self._rec_fd = self._head_fd = self._witness_fd = -1

    def close(self) -> None:
        """Release the log's files (appends after this raise)."""
        with self._mutex:
            self._close_files()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def records_path(self) -> Path:
        """The encrypted records file (what :func:`verify_digest` takes as ``log_path``)."""
        return self._dir / RECORDS_FILE

    # -- keys ---------------------------------------------------------------------------
    def _aead_for(self, version: int) -> AESGCM:
        aead = self._aead.get(version)
        if aead is None:
            aead = AESGCM(self._keystore.get_key(_ENC_KEY, version).material)
            self._aead[version] = aead
        return aead

    def _mac_key(self, version: int) -> bytes:
        key = self._mac_keys.get(version)
        if key is None:
            key = self._keystore.get_key(_MAC_KEY, version).material
            self._mac_keys[version] = key
        return key

    def _record_mac_ok(self, raw: RawRecord) -> bool:
        if raw.mac_version == self._mac_version:
            m = self._record_mac.copy()
        else:
            try:
                key = self._mac_key(raw.mac_version)
            except KeyStoreError:
                return False
            m = hmac.new(key, RECORD_MAC_DOMAIN + self._log_id, hashlib.sha256)
        m.update(raw.chain_hash)
        return hmac.compare_digest(m.digest(), raw.mac)

    def _signing_key(self) -> Ed25519PrivateKey:
        material = self._keystore.current_key(_SIGNING_KEY).material
        return Ed25519PrivateKey.from_private_bytes(material)

    def public_key_pem(self) -> str:
        """The Ed25519 public key (PEM) that verifies this log's digests.

        Returns
        -------
        str
            PEM text (SubjectPublicKeyInfo), also kept in ``<home>/audit/public_key.pem``.
        """
        return (
            self._signing_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def _write_public_key(self) -> None:
        path = self._dir / PUBLIC_KEY_FILE
        pem = self.public_key_pem().encode("ascii")
        if not path.is_file() or path.read_bytes() != pem:
            atomic_write_bytes(path, pem, mode=0o644)

    # -- locking and the tail -----------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            if self._lock_fd < 0 or self._rec_fd < 0:
                raise AuditLogError("the audit log is closed")
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _read_head(self) -> HeadSlot | None:
        if self._head_fd < 0:
            return None
        data = _pread_all(self._head_fd, HEAD_SIZE, 0)
        best: HeadSlot | None = None
        for i in range(2):
            raw_slot = data[i * HEAD_SLOT : (i + 1) * HEAD_SLOT]
            if len(raw_slot) == HEAD_SLOT and not any(raw_slot):
                continue  # never written (a new log has only slot 0)
            parsed = unpack_head_slot(raw_slot)
            if parsed is None:
                return None  # a spoiled slot is a finding: never fall back to the other one
            head, covered, mac = parsed
            try:
                key = self._mac_key(head.mac_version)
            except KeyStoreError:
                return None
            expected = hmac.new(key, HEAD_MAC_DOMAIN + self._log_id + covered, hashlib.sha256)
            if not hmac.compare_digest(expected.digest(), mac) or head.seq % 2 != i:
                return None
            if best is None or head.seq > best.seq:
                best = head
        return best

    def _read_witness(self) -> tuple[WitnessState | None, str | None]:
        """The authenticated witness beside the key store, or ``None`` and the problem."""
        where = f"the audit log's witness {self._witness_path}"
        if self._witness_fd < 0:
            return None, f"{where} is missing (deleted, or the log was replaced)"
        data = _pread_all(self._witness_fd, WITNESS_SIZE, 0)
        parsed = unpack_witness(data)
        if parsed is None:
            return None, f"{where} is damaged"
        witness, covered, mac = parsed
        try:
            key = self._mac_key(witness.mac_version)
        except KeyStoreError:
            return None, f"{where} fails authentication"
        expected = hmac.new(key, WITNESS_MAC_DOMAIN + covered, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, mac):
            return None, f"{where} fails authentication"
        if witness.log_id != self._log_id:
            return None, f"{where} belongs to another log (this log was replaced)"
        return witness, None

    def _write_witness(self, seq: int, chain: bytes) -> None:
        witness = WitnessState(self._log_id, seq, chain, self._mac_version)
        os.pwrite(self._witness_fd, pack_witness(witness, self._mac_keys[self._mac_version]), 0)
        os.fdatasync(self._witness_fd)

    def _write_head(self, seq: int, start: int, end: int, chain: bytes) -> None:
        slot = HeadSlot(seq, start, end, self._mac_version, chain)
        m = self._head_mac.copy()
        covered = pack_head_fields(slot)
        m.update(covered)
        os.pwrite(self._head_fd, covered + m.digest(), (seq % 2) * HEAD_SLOT)
        os.fdatasync(self._head_fd)

    def _sync_locked(self) -> None:
        """Catch up with appends by other processes (cheap when there were none)."""
        if self._damage is not None or os.fstat(self._rec_fd).st_size != self._end:
            self._recover_locked(at_open=False)

    def _recover_locked(self, *, at_open: bool) -> None:
        """Find the anchored tail; drop a torn unacknowledged record; bring the head forward."""
        self._damage = None
        self._ids = None
        size = os.fstat(self._rec_fd).st_size
        head = self._read_head()
        if head is None:
            if at_open:
                self._check_keys_match()
            self._damage = "the head anchor is missing or fails authentication"
            return
        if size < head.rec_end:
            self._damage = (
                f"the records file ends before record {head.seq}, which the head anchors: "
                "records were removed from the end"
            )
            return
        if head.seq == 0:
            anchored_ok = head.rec_end == HEADER_LEN and head.chain_hash == self._genesis
        else:
            data = _pread_all(self._rec_fd, head.rec_end - head.rec_start, head.rec_start)
            raw, _ = parse_record(data, 0)
            anchored_ok = (
                raw is not None
                and raw.end == len(data)
                and raw.seq == head.seq
                and raw.chain_hash == head.chain_hash
                and raw.chain_hash
                == compute_chain_hash(
                    raw.prev_hash,
                    raw.seq,
                    raw.enc_version,
                    raw.mac_version,
                    raw.nonce,
                    raw.ciphertext,
                )
                and self._record_mac_ok(raw)
            )
        if not anchored_ok:
            self._damage = f"record {head.seq}, which the head anchors, was altered or moved"
            return
        tail = _pread_all(self._rec_fd, size - head.rec_end, head.rec_end)
        last: list[RawRecord] = []

        def authenticate(raw: RawRecord) -> str | None:
            if not self._record_mac_ok(raw):
                return "fails authentication"
            last[:] = [raw]
            return None

        scan = scan_chain(
            tail,
            self._log_id,
            start=0,
            first_seq=head.seq + 1,
            prev_hash=head.chain_hash,
            on_record=authenticate,
        )
        if scan.problem is not None and not scan.torn:
            self._damage = f"record {scan.first_bad_seq}: {scan.problem}"
            return
        seq, chain, start, end = head.seq, head.chain_hash, head.rec_start, head.rec_end
        if last:
            seq, chain = last[0].seq, last[0].chain_hash
            start, end = head.rec_end + last[0].start, head.rec_end + last[0].end
        witness, problem = self._read_witness()
        if witness is None:
            self._damage = problem
            return
        problem = self._witness_mismatch(witness, seq, chain)
        if problem is not None:
            self._damage = problem
            return
        if end < size:  # a torn, never-acknowledged record: keep its bytes aside, then drop it
            torn = self._dir / f"torn-{end}-{os.urandom(4).hex()}.bin"
            atomic_write_bytes(torn, tail[end - head.rec_end :])
            os.ftruncate(self._rec_fd, end)
            os.fsync(self._rec_fd)
        if seq != head.seq:
            self._write_head(seq, start, end, chain)
        if seq != witness.seq:  # a crash between the head's write and the witness's
            self._write_witness(seq, chain)
        self._seq, self._chain, self._start, self._end = seq, chain, start, end

    def _witness_mismatch(
        self, witness: WitnessState, last_seq: int, last_chain: bytes
    ) -> str | None:
        """Compare the anchored tail with the witness (read the chain only when they differ)."""
        if witness.seq > last_seq:
            return _rolled_back(witness.seq, last_seq)
        if witness.seq == last_seq:
            chain = last_chain
        else:
            data = _pread_all(self._rec_fd, os.fstat(self._rec_fd).st_size, 0)
            scan = scan_chain(data, self._log_id, stop_after_seq=witness.seq)
            chain = scan.last_chain if scan.last_seq == witness.seq else b""
        if chain != witness.chain_hash:
            return _not_witnessed(witness.seq)
        return None

    def _check_keys_match(self) -> None:
        """At open with no valid head: refuse a key store that cannot authenticate the log."""
        data = _pread_all(self._rec_fd, 1 << 16, HEADER_LEN)
        raw, _ = parse_record(data, 0)
        if raw is None or not self._record_mac_ok(raw):
            raise AuditLogError(
                "the audit log does not authenticate with this key store (wrong key store, "
                "or its head and first record were both altered)"
            )

    def _require_writable(self) -> None:
        if self._damage is not None:
            raise AuditLogError(
                f"the audit log failed its integrity check ({self._damage}); nothing was "
                "appended. Run verify and investigate before appending again."
            )
        if self._head_fd < 0:
            raise AuditLogError("the audit log's head file is missing; nothing was appended")
        if self._witness_fd < 0:
            raise AuditLogError("the audit log's witness is missing; nothing was appended")

    # -- appending ----------------------------------------------------------------------
    def append(self, event: Mapping[str, Any]) -> AuditRecord:
        """Append one event durably.

        Parameters
        ----------
        event
            Fields of ``audit_events`` (see ``data_schema/audit_events.yaml``). ``event_id``
            is assigned (a UUID) when absent; ``occurred_at`` defaults to now and must be a
            timezone-aware datetime when given. ``seq`` is assigned by the log.

        Returns
        -------
        AuditRecord
            The record's seq, event id, time and chain hash. It is on disk when this returns.

        Raises
        ------
        SchemaValidationError
            Naming the field, for an undeclared field, a missing required field, a value of
            the wrong type, outside its enum or range, or an event id already in the log.
            Nothing is written.
        AuditLogError
            If the log is damaged or closed, or the write failed (nothing was appended).
        """
        now = dt.datetime.now(dt.UTC)
        doc, given = _normalise_event(self._rules, event, None, now)
        return self._append_docs([doc], [given], single=True)[0]

    def append_many(self, events: Sequence[Mapping[str, Any]]) -> list[AuditRecord]:
        """Append several events in one durable write.

        Every event is validated before anything is written, so either all are appended
        or none.

        Parameters
        ----------
        events
            Events as for :meth:`append`.

        Returns
        -------
        list of AuditRecord
            One receipt per event, in order.

        Raises
        ------
        SchemaValidationError
            Naming the field and the event's index in ``events``; nothing is written.
        AuditLogError
            As for :meth:`append`.
        """
        now = dt.datetime.now(dt.UTC)
        docs, given = [], []
        seen: set[str] = set()
        for row, event in enumerate(events):
            doc, was_given = _normalise_event(self._rules, event, row, now)
            if doc["event_id"] in seen:
                raise _fail(
                    "event_id", row, f"duplicate value {doc['event_id']!r} within the batch"
                )
            seen.add(doc["event_id"])
            docs.append(doc)
            given.append(was_given)
        if not docs:
            return []
        return self._append_docs(docs, given, single=False)

    def _append_docs(
        self, docs: list[dict[str, Any]], given: list[bool], *, single: bool
    ) -> list[AuditRecord]:
        with self._locked():
            self._sync_locked()
            self._require_writable()
            if any(given):
                ids = self._known_ids_locked()
                for row, (doc, was_given) in enumerate(zip(docs, given, strict=True)):
                    if was_given and doc["event_id"] in ids:
                        raise _fail(
                            "event_id",
                            None if single else row,
                            f"event id {doc['event_id']!r} is already in the audit log",
                        )
            aead = self._aead[self._enc_version]
            seq, chain, offset = self._seq, self._chain, self._end
            parts: list[bytes] = []
            receipts: list[AuditRecord] = []
            starts: list[int] = []
            for doc in docs:
                seq += 1
                nonce = os.urandom(12)
                ct = aead.encrypt(
                    nonce, _canonical(doc), _aad(self._log_id, seq, self._enc_version)
                )
                prev = chain
                chain = compute_chain_hash(
                    prev, seq, self._enc_version, self._mac_version, nonce, ct
                )
                m = self._record_mac.copy()
                m.update(chain)
                record = pack_record(
                    seq, self._enc_version, self._mac_version, nonce, ct, prev, chain, m.digest()
                )
                starts.append(offset)
                offset += len(record)
                parts.append(record)
                receipts.append(
                    AuditRecord(seq, doc["event_id"], _parse_ts(doc["occurred_at"]), chain.hex())
                )
            old_end = self._end
            try:
                _write_all(self._rec_fd, b"".join(parts))
                os.fdatasync(self._rec_fd)
            except OSError as exc:
                self._undo_write(old_end)
                raise AuditLogError(f"could not append to the audit log: {exc.strerror}") from exc
            try:
                self._write_head(seq, starts[-1], offset, chain)
                self._write_witness(seq, chain)
            except OSError as exc:
                # The records are durable; the next sync brings the head and witness forward.
                self._damage = "the head or the witness could not be updated"
                raise AuditLogError(
                    f"the audit log's head or witness could not be updated: {exc.strerror}"
                ) from exc
            self._seq, self._chain, self._start, self._end = seq, chain, starts[-1], offset
            if self._ids is not None:
                self._ids.update(doc["event_id"] for doc in docs)
            self._checkpoint_daily_locked()
            return receipts

    def _undo_write(self, old_end: int) -> None:
        try:
            os.ftruncate(self._rec_fd, old_end)
            os.fsync(self._rec_fd)
        except OSError:
            self._damage = "a failed append could not be rolled back"

    def _known_ids_locked(self) -> set[str]:
        if self._ids is None:
            ids: set[str] = set()
            checked = self._check(lambda raw, doc: ids.add(doc["event_id"]), limit=self._end)
            if not checked.ok:
                raise AuditLogError(f"the audit log failed its integrity check ({checked.problem})")
            self._ids = ids
        return self._ids

    def __len__(self) -> int:
        """Number of records in the log."""
        with self._locked():
            self._sync_locked()
            return self._seq

    # -- reading and verifying ----------------------------------------------------------
    def _snapshot(self) -> tuple[int, _Anchors]:
        with self._locked():
            self._sync_locked()
            witness, problem = self._read_witness()
            return os.fstat(self._rec_fd).st_size, _Anchors(self._read_head(), witness, problem)

    def _check(
        self,
        on_doc: Callable[[RawRecord, dict[str, Any]], object] | None,
        *,
        limit: int,
        anchors: _Anchors | None = None,
    ) -> AuditVerification:
        """One pass over the first ``limit`` bytes: chain, HMAC, decryption, unique ids.

        With ``anchors``, the end of the chain is also checked against the witness kept
        beside the key store and against the head.
        """
        if limit < HEADER_LEN:
            problem = "the records file is shorter than its header"
            return AuditVerification(False, 0, None, problem)
        with open(self._dir / RECORDS_FILE, "rb") as fh:
            buf = fh.read(limit)
        if parse_header(buf) != self._log_id:
            problem = "the records file header was altered"
            return AuditVerification(False, 0, None, problem)
        seen: dict[str, int] = {}
        witnessed_seq = -1 if anchors is None or anchors.witness is None else anchors.witness.seq
        witnessed_chain = [self._genesis]

        def check(raw: RawRecord) -> str | None:
            if raw.seq == witnessed_seq:
                witnessed_chain[0] = raw.chain_hash
            if not self._record_mac_ok(raw):
                return "fails authentication (rewritten without the audit key)"
            try:
                aad = _aad(self._log_id, raw.seq, raw.enc_version)
                plain = self._aead_for(raw.enc_version).decrypt(raw.nonce, raw.ciphertext, aad)
                doc = json.loads(plain)
            except (InvalidTag, KeyStoreError, ValueError):
                return "cannot be decrypted or parsed"
            event_id = doc.get("event_id") if isinstance(doc, dict) else None
            if not isinstance(event_id, str):
                return "holds no event id"
            if event_id in seen:
                return f"repeats event id {event_id!r} of record {seen[event_id]}"
            seen[event_id] = raw.seq
            if on_doc is not None:
                on_doc(raw, doc)
            return None

        scan = scan_chain(buf, self._log_id, on_record=check)
        if scan.problem is not None:
            text = f"record {scan.first_bad_seq}: {scan.problem}"
            return AuditVerification(False, scan.records, scan.first_bad_seq, text)
        if anchors is not None:
            if anchors.witness is None:
                return AuditVerification(False, scan.records, None, anchors.witness_problem)
            if anchors.witness.seq > scan.last_seq:
                text = _rolled_back(anchors.witness.seq, scan.last_seq)
                return AuditVerification(False, scan.records, scan.last_seq + 1, text)
            if witnessed_chain[0] != anchors.witness.chain_hash:
                text = _not_witnessed(anchors.witness.seq)
                return AuditVerification(False, scan.records, anchors.witness.seq, text)
            head_problem = _compare_head(anchors.head, scan.last_seq, scan.last_chain)
            if head_problem is not None:
                bad, text = head_problem
                return AuditVerification(False, scan.records, bad, text)
        return AuditVerification(True, scan.records, None, None)

    def verify(self) -> AuditVerification:
        """Check the whole log: framing, order, chain, HMAC, decryption and the head anchor.

        Returns
        -------
        AuditVerification
            ``ok`` and the number of records, or the first bad record and the problem. Edits,
            deletions, insertions, reorderings and truncation are each caught at the first
            record they touch.

        Examples
        --------
        See :class:`AuditLog`.
        """
        size, anchors = self._snapshot()
        return self._check(None, limit=size, anchors=anchors)

    def _checked_docs(self) -> list[tuple[RawRecord, dict[str, Any]]]:
        size, anchors = self._snapshot()
        docs: list[tuple[RawRecord, dict[str, Any]]] = []
        v = self._check(lambda raw, doc: docs.append((raw, doc)), limit=size, anchors=anchors)
        if not v.ok:
            raise AuditLogError(f"the audit log failed its integrity check: {v.problem}")
        return docs

    def events(self, *, year: int | None = None) -> pl.DataFrame:
        """Decrypt the log's events.

        Parameters
        ----------
        year
            Only events whose ``occurred_at`` falls in this UTC year.

        Returns
        -------
        polars.DataFrame
            Columns and dtypes of the ``audit_events`` schema, ordered by ``seq``.

        Raises
        ------
        AuditLogError
            If the log fails verification (run :meth:`verify` for the details).
        """
        prefix = None if year is None else f"{year:04d}-"
        docs = [
            (raw, doc)
            for raw, doc in self._checked_docs()
            if prefix is None or doc["occurred_at"].startswith(prefix)
        ]
        spec = load_table(_TABLE)
        columns: dict[str, pl.Series] = {}
        for f in spec.fields:
            if f.name == "seq":
                values: list[Any] = [raw.seq for raw, _ in docs]
            else:
                values = [doc.get(f.name) for _, doc in docs]
            if f.type == "datetime":
                columns[f.name] = pl.Series(f.name, values, dtype=pl.String).str.to_datetime(
                    _POLARS_TS_FORMAT, time_unit="us", time_zone="UTC"
                )
            elif f.type == "date":
                columns[f.name] = pl.Series(f.name, values, dtype=pl.String).str.to_date("%Y-%m-%d")
            else:
                columns[f.name] = pl.Series(f.name, values, dtype=f.polars_dtype)
        return pl.DataFrame(columns)

    def digest(self, year: int) -> SignedDigest:
        """Sign the state of the chain for one year of events with Ed25519.

        Parameters
        ----------
        year
            Calendar year (UTC) of ``occurred_at``.

        Returns
        -------
        SignedDigest
            First and last seq and count of that year's records, the chain hash after the
            last one, and the signature; check it with :func:`verify_digest`.

        Raises
        ------
        AuditLogError
            If the log fails verification (a broken log is never signed).
        """
        prefix = f"{year:04d}-"
        first: int | None = None
        last: int | None = None
        count = 0
        chain = self._genesis
        for raw, doc in self._checked_docs():
            if doc["occurred_at"].startswith(prefix):
                first = raw.seq if first is None else first
                last, chain = raw.seq, raw.chain_hash
                count += 1
        unsigned = SignedDigest(
            year=year,
            first_seq=first,
            last_seq=last,
            records=count,
            chain_hash=chain.hex(),
            signed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            public_key_pem=self.public_key_pem(),
            signature="",
        )
        signature = self._signing_key().sign(unsigned._message())
        return SignedDigest(
            **{**asdict(unsigned), "signature": base64.b64encode(signature).decode("ascii")}
        )

    # -- checkpoints ---------------------------------------------------------------------
    def _sign_checkpoint(self, seq: int, chain: bytes) -> SignedCheckpoint:
        unsigned = SignedCheckpoint(
            log_id=self._log_id.hex(),
            seq=seq,
            chain_hash=chain.hex(),
            signed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            public_key_pem=self.public_key_pem(),
            signature="",
        )
        signature = self._signing_key().sign(unsigned._message())
        return SignedCheckpoint(
            **{**asdict(unsigned), "signature": base64.b64encode(signature).decode("ascii")}
        )

    def _write_checkpoint(self, checkpoint: SignedCheckpoint, day: str) -> Path:
        folder = self._dir / CHECKPOINTS_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{day}-{checkpoint.seq:012d}.json"
        atomic_write_bytes(path, (checkpoint.to_json() + "\n").encode("ascii"), mode=0o644)
        return path

    def _checkpoint_daily_locked(self) -> None:
        """On the first append of each UTC day, sign and keep a checkpoint of the log."""
        day = dt.datetime.now(dt.UTC).date().isoformat()
        if self._checkpoint_day == day:
            return
        if not any((self._dir / CHECKPOINTS_DIR).glob(f"{day}-*.json")):
            self._write_checkpoint(self._sign_checkpoint(self._seq, self._chain), day)
        self._checkpoint_day = day

    def checkpoint(self) -> SignedCheckpoint:
        """Verify the whole log, then sign and keep a checkpoint of it now.

        A checkpoint is also written on the first append of each UTC day. Each one is kept as
        ``<home>/audit/checkpoints/<YYYY-MM-DD>-<seq>.json``; publish them (the transparency
        page, another agency) so that a later rewrite, even by a holder of the keys, is
        caught by :func:`verify_checkpoint`.

        Returns
        -------
        SignedCheckpoint
            The log id, the number of records, the chain hash after the last one and the
            Ed25519 signature.

        Raises
        ------
        AuditLogError
            If the log fails verification (a broken log is never signed).
        """
        v = self.verify()
        if not v.ok:
            raise AuditLogError(f"the audit log failed its integrity check: {v.problem}")
        with self._locked():
            self._sync_locked()
            self._require_writable()
            signed = self._sign_checkpoint(self._seq, self._chain)
            self._write_checkpoint(signed, dt.datetime.now(dt.UTC).date().isoformat())
        return signed


@dataclass(frozen=True)
class _Anchors:
    """What the end of the chain is checked against: the head and the witness."""

    head: HeadSlot | None
    witness: WitnessState | None
    witness_problem: str | None


def _unfinished_creation(keystore: KeyStore) -> bytes | None:
    """The log id of a log whose creation stopped before its first record, if any.

    Only an authenticated witness at record 0 proves that no record was ever acknowledged;
    then, and only then, a missing records file or head may be (re)created.
    """
    path = keystore.witness_path(_WITNESS)
    try:
        parsed = unpack_witness(path.read_bytes())
    except OSError:
        return None
    if parsed is None:
        return None
    witness, covered, mac = parsed
    try:
        key = keystore.get_key(_MAC_KEY, witness.mac_version).material
    except KeyStoreError:
        return None
    expected = hmac.new(key, WITNESS_MAC_DOMAIN + covered, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac) or witness.seq != 0:
        return None
    if witness.chain_hash != genesis_hash(witness.log_id):
        return None
    return witness.log_id


def _rolled_back(witnessed: int, last_seq: int) -> str:
    return (
        f"record {last_seq + 1}: missing; the log ends at record {last_seq} but the witness "
        f"kept beside the key store records {witnessed} (records were removed from the end, "
        "or the log was rolled back to an older copy)"
    )


def _not_witnessed(seq: int) -> str:
    return (
        f"record {seq}: does not match the chain hash in the witness kept beside the key "
        "store (the log was replaced or rewritten)"
    )


def _head_slot_bytes(mac_key: bytes, log_id: bytes, head: HeadSlot) -> bytes:
    covered = pack_head_fields(head)
    mac = hmac.new(mac_key, HEAD_MAC_DOMAIN + log_id + covered, hashlib.sha256).digest()
    return covered + mac


def _compare_head(
    head: HeadSlot | None, last_seq: int, last_chain: bytes
) -> tuple[int | None, str] | None:
    if head is None:
        return None, (
            "the head anchor is missing or fails authentication, so removal of records from "
            "the end cannot be ruled out"
        )
    if head.seq > last_seq:
        return last_seq + 1, (
            f"record {last_seq + 1}: missing; the log ends at record {last_seq} but its head "
            f"anchors record {head.seq} (records were removed from the end)"
        )
    if head.seq < last_seq:
        return head.seq + 1, (
            f"record {head.seq + 1}: not anchored by the head (the head anchors record {head.seq})"
        )
    if head.chain_hash != last_chain:
        return head.seq, f"record {head.seq}: does not match the chain hash in the head anchor"
    return None


def _load_public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise AuditLogError("the public key is not a readable PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AuditLogError("the public key is not an Ed25519 key")
    return key


def _resolve_log_path(path: Path) -> Path:
    path = Path(path)
    for candidate in (path, path / RECORDS_FILE, path / AUDIT_DIR / RECORDS_FILE):
        if candidate.is_file():
            return candidate
    raise AuditLogError(f"no audit records file at {path}")


def verify_digest(
    digest: SignedDigest, public_key_pem: str, *, log_path: Path | None = None
) -> bool:
    """Check a signed yearly digest with the public key alone.

    Parameters
    ----------
    digest
        The digest, e.g. from :meth:`SignedDigest.from_json`.
    public_key_pem
        The log's Ed25519 public key (PEM), obtained independently of the digest.
    log_path
        Optionally the encrypted records file (or the audit folder, or the home holding it).
        The keyless SHA-256 chain is then recomputed from the file and must reach
        ``digest.chain_hash`` at ``digest.last_seq``. No key is needed.

    Returns
    -------
    bool
        True when the signature is valid for ``public_key_pem`` (and the digest names that
        key), and, with ``log_path``, the file's chain matches.

    Raises
    ------
    AuditLogError
        If ``public_key_pem`` is not an Ed25519 public key, or ``log_path`` has no records file.
    """
    if not _signed_by(public_key_pem, digest.public_key_pem, digest.signature, digest._message()):
        return False
    first, last = digest.first_seq, digest.last_seq
    if (first is None) != (last is None) or (first is None and digest.records != 0):
        return False
    if (
        first is not None
        and last is not None
        and not (1 <= first <= last and 1 <= digest.records <= last - first + 1)
    ):
        return False
    if log_path is None:
        return True
    data = _resolve_log_path(log_path).read_bytes()
    log_id = parse_header(data)
    if log_id is None:
        return False
    if last is None:
        return genesis_hash(log_id).hex() == digest.chain_hash
    scan = scan_chain(data, log_id, stop_after_seq=last)
    return (
        scan.problem is None
        and scan.last_seq == last
        and len(scan.last_chain) == HASH_LEN
        and scan.last_chain.hex() == digest.chain_hash
    )


def _signed_by(public_key_pem: str, claimed_pem: str, signature_b64: str, message: bytes) -> bool:
    """True when ``message`` is signed by ``public_key_pem``, the key the document names."""
    key = _load_public_key(public_key_pem)
    raw_key = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        claimed = _load_public_key(claimed_pem)
        signature = base64.b64decode(signature_b64.encode("ascii"), validate=True)
    except (AuditLogError, ValueError, UnicodeEncodeError):
        return False
    if claimed.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) != raw_key:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def verify_checkpoint(
    checkpoint: SignedCheckpoint, public_key_pem: str, *, log_path: Path | None = None
) -> bool:
    """Check a published checkpoint with the public key alone, and against the current log.

    Parameters
    ----------
    checkpoint
        The checkpoint, e.g. from :meth:`SignedCheckpoint.from_json`.
    public_key_pem
        The log's Ed25519 public key (PEM), obtained independently of the checkpoint.
    log_path
        Optionally the encrypted records file (or the audit folder, or the home holding it).
        It must be the same log, and its keyless SHA-256 chain must reach
        ``checkpoint.chain_hash`` at record ``checkpoint.seq``. No key is needed.

    Returns
    -------
    bool
        True when the signature is valid for ``public_key_pem`` (and the checkpoint names
        that key), and, with ``log_path``, the log still holds exactly what was signed.

    Raises
    ------
    AuditLogError
        If ``public_key_pem`` is not an Ed25519 public key, or ``log_path`` has no records file.
    """
    if not _signed_by(
        public_key_pem, checkpoint.public_key_pem, checkpoint.signature, checkpoint._message()
    ):
        return False
    if checkpoint.seq < 0:
        return False
    if log_path is None:
        return True
    data = _resolve_log_path(log_path).read_bytes()
    log_id = parse_header(data)
    if log_id is None or log_id.hex() != checkpoint.log_id:
        return False
    if checkpoint.seq == 0:
        return genesis_hash(log_id).hex() == checkpoint.chain_hash
    scan = scan_chain(data, log_id, stop_after_seq=checkpoint.seq)
    return (
        scan.problem is None
        and scan.last_seq == checkpoint.seq
        and scan.last_chain.hex() == checkpoint.chain_hash
    )
