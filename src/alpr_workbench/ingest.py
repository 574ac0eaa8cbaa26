"""Bring reads in from outside (camera or vendor CSV exports), store them, match them.

Every ingested batch is matched against the active hotlist entries at once, so a hit exists
for every stored read that matches — never a read that alerts later by accident of timing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.hotlist import AuditAppend, match_reads
from alpr_workbench.plates import normalize_plate
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.schema import load_table, validate_frame
from alpr_workbench.store import IngestReport, Store

__all__ = [
    "MAX_CLOCK_SKEW",
    "IngestResult",
    "InterruptedIngest",
    "check_reads",
    "ingest_csv",
    "ingest_reads",
    "interrupted_ingests",
    "place_at_camera",
    "quote_value",
    "read_reads_csv",
    "write_reads_csv",
]

#: How far past the ingesting machine's clock a read's ``captured_at`` may lie (camera clocks
#: drift a little); anything later is refused as a read dated in the future.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
_QUOTE_LIMIT = 60
_ZONED = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
#: The columns of a read that describe its camera: filled from the ``cameras`` table when an
#: ingest names its camera (``ingest-frames``), never taken from the upload.
_CAMERA_PLACE = {"network_id": "network_id", "lat": "lat", "lon": "lon"}


@dataclass(frozen=True)
class IngestResult:
    """What an ingest stored and which hits it raised."""

    report: IngestReport
    hits_added: int


def read_reads_csv(path: Path) -> pl.DataFrame:
    """Read a CSV export of reads whose columns are named as in ``data_schema/reads.yaml``.

    Times must carry a zone (ISO 8601, e.g. ``2026-10-01T08:15:00Z``); alternate readings are
    separated by ``;``; plates are normalised (upper case, no spaces or dashes).

    Raises
    ------
    WorkbenchError
        If the file cannot be parsed; schema problems are reported by the store on ingest.
    """
    spec = load_table("reads")
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkbenchError(f"{path}: cannot read as CSV: {_cap(first)}") from exc
    unknown = [c for c in frame.columns if c not in spec.columns]
    if unknown:
        shown = ", ".join(quote_value(c) for c in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise WorkbenchError(f"{path}: columns not in the reads schema: {shown}{more}")
    for name in frame.columns:  # a time without a zone is ambiguous: never guess UTC
        if spec.field(name).type != "datetime":
            continue
        values = frame.get_column(name)
        naive = values.is_not_null() & ~values.str.strip_chars().str.contains(_ZONED)
        if naive.any():
            row = int(naive.arg_true()[0])
            raise WorkbenchError(
                f"{path}: line {row + 2}, column {name!r}: {quote_value(values[row])} has no "
                "time zone; give times in UTC (ending in Z) or with an offset"
            )
    casts = []
    for name in frame.columns:
        kind = spec.field(name).type
        col = pl.col(name)
        if kind == "datetime":
            casts.append(col.str.to_datetime(time_zone="UTC", strict=False).alias(name))
        elif kind == "list[string]":
            casts.append(col.str.split(";").alias(name))
        elif name == "plate":
            casts.append(col.map_elements(normalize_plate, return_dtype=pl.String).alias(name))
        elif kind != "string":
            casts.append(col.cast(spec.field(name).polars_dtype, strict=False).alias(name))
    parsed = frame.with_columns(casts)
    for name in frame.columns:  # a value that did not parse must not pass as a silent null
        bad = parsed.get_column(name).is_null() & frame.get_column(name).is_not_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise WorkbenchError(
                f"{path}: line {row + 2}, column {name!r}: cannot read "
                f"{quote_value(frame.get_column(name)[row])} as {spec.field(name).type}"
            )
    return parsed


def write_reads_csv(reads: pl.DataFrame) -> bytes:
    """Write reads as the CSV that :func:`read_reads_csv` reads back (how a client uploads).

    Times are written in UTC with a ``Z``; alternate readings are joined with ``;`` (an empty
    list is written as an empty field).

    Parameters
    ----------
    reads
        Columns named as in ``data_schema/reads.yaml`` (any subset).

    Returns
    -------
    bytes
        UTF-8 CSV with a header line.

    Examples
    --------
    >>> import datetime as dt
    >>> frame = pl.DataFrame({"read_id": ["r1"], "captured_at": [
    ...     dt.datetime(2026, 3, 1, 8, 15, 2, tzinfo=dt.UTC)], "alternate_plates": [["7ABC12"]]})
    >>> write_reads_csv(frame).decode().splitlines()
    ['read_id,captured_at,alternate_plates', 'r1,2026-03-01T08:15:02.000000Z,7ABC12']
    """
    spec = load_table("reads")
    unknown = [c for c in reads.columns if c not in spec.columns]
    if unknown:
        raise WorkbenchError(f"columns not in the reads schema: {', '.join(unknown[:5])}")
    out = []
    for name in reads.columns:
        kind = spec.field(name).type
        col = pl.col(name)
        if kind == "datetime":
            col = col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        elif kind == "list[string]":
            col = pl.when(col.list.len() > 0).then(col.list.join(";"))
        out.append(col.alias(name))
    return reads.select(out).write_csv().encode("utf-8")


def place_at_camera(store: Store, reads: pl.DataFrame, camera_id: str) -> pl.DataFrame:
    """Give reads from one camera that camera's network and place, from the ``cameras`` table.

    Parameters
    ----------
    store
        The store whose ``cameras`` table knows the camera.
    reads
        Reads without ``network_id``, ``lat`` and ``lon`` (those come from the table);
        ``camera_id``, when present, must name the camera on every row.
    camera_id
        The camera that made the reads.

    Returns
    -------
    polars.DataFrame
        ``reads`` with ``camera_id``, ``network_id``, ``lat`` and ``lon`` filled.

    Raises
    ------
    WorkbenchError
        For an unknown camera, reads that carry their own network or place, or a row that
        names another camera.
    """
    cameras = store.tables.read("cameras").filter(pl.col("camera_id") == camera_id)
    if cameras.is_empty():
        raise WorkbenchError(
            f"unknown camera {quote_value(camera_id)} (not in the cameras table)"
        )
    given = [c for c in _CAMERA_PLACE if c in reads.columns]
    if given:
        raise WorkbenchError(
            f"reads for camera {quote_value(camera_id)} must not carry {', '.join(given)}: "
            "the cameras table gives them"
        )
    if "camera_id" in reads.columns:
        other = reads.get_column("camera_id").ne_missing(camera_id)
        if other.any():
            row = int(other.arg_true()[0])
            raise WorkbenchError(
                f"row {row}: camera_id {quote_value(reads.get_column('camera_id')[row])} is not "
                f"the camera {quote_value(camera_id)} the reads were sent for"
            )
    camera = cameras.row(0, named=True)
    return reads.with_columns(
        pl.lit(camera_id, dtype=pl.String).alias("camera_id"),
        *(pl.lit(camera[src]).alias(dst) for dst, src in _CAMERA_PLACE.items()),
    )


def quote_value(value: object, limit: int = _QUOTE_LIMIT) -> str:
    """Quote a value for an error message, cut to ``limit`` characters.

    A hostile file can hold a value of many megabytes; an error message must stay readable.

    Examples
    --------
    >>> quote_value("x" * 100, limit=8)
    "'xxxxxxxx'... (100 characters)"
    >>> quote_value("cam-1")
    "'cam-1'"
    """
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def _cap(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def check_reads(
    store: Store,
    reads: pl.DataFrame,
    *,
    now: dt.datetime,
    source: str | None = None,
    first_line: int | None = None,
) -> None:
    """Refuse reads that name an unknown camera or network, or are dated in the future.

    Parameters
    ----------
    store
        The store whose ``cameras`` and ``networks`` tables name the known sources.
    reads
        Validated reads.
    now
        The current time (timezone-aware); reads later than ``now + MAX_CLOCK_SKEW`` are refused.
    source, first_line
        How errors name the batch and its rows: ``"<source>: line <row + first_line>"`` when
        ``first_line`` is given (a CSV file), else ``"row <row>"``.

    Raises
    ------
    WorkbenchError
        Naming the first offending row and its value; nothing is stored.
    """
    if now.tzinfo is None:
        raise WorkbenchError("now must be a timezone-aware datetime")

    def where(row: int) -> str:
        place = f"line {row + first_line}" if first_line is not None else f"row {row}"
        return f"{source}: {place}" if source else place

    def refuse(mask: pl.Series, column: str, what: str) -> None:
        if mask.any():
            row = int(mask.arg_true()[0])
            value = quote_value(reads.get_column(column)[row])
            raise WorkbenchError(f"{where(row)}: unknown {what} {value} (not in the {what}s table)")

    cameras = store.tables.read("cameras").select("camera_id", "network_id")
    networks = set(store.tables.read("networks").get_column("network_id").to_list())
    owner = dict(cameras.iter_rows())
    camera = reads.get_column("camera_id")
    network = reads.get_column("network_id")
    refuse(~network.is_in(list(networks)), "network_id", "network")
    refuse(~camera.is_in(list(owner)), "camera_id", "camera")
    expected = camera.replace_strict(owner, default=None, return_dtype=pl.String)
    mismatch = expected.ne_missing(network)
    if mismatch.any():
        row = int(mismatch.arg_true()[0])
        cam = camera[row]
        raise WorkbenchError(
            f"{where(row)}: camera {quote_value(cam)} belongs to network "
            f"{quote_value(owner[cam])}, not {quote_value(network[row])}"
        )
    latest = now + MAX_CLOCK_SKEW
    future = reads.get_column("captured_at") > latest
    if future.any():
        row = int(future.arg_true()[0])
        raise WorkbenchError(
            f"{where(row)}: captured_at {reads.get_column('captured_at')[row].isoformat()} is "
            f"in the future (the clock reads {now.isoformat(timespec='seconds')})"
        )


def ingest_reads(
    store: Store,
    reads: pl.DataFrame,
    *,
    audit_append: AuditAppend,
    actor: str,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
    source: str | None = None,
    first_line: int | None = None,
) -> IngestResult:
    """Store a batch of reads (idempotent by ``read_id``), record its hits, and audit it.

    Parameters
    ----------
    store
        The opened store.
    reads
        Reads conforming to ``data_schema/reads.yaml``.
    audit_append
        Appends audit events: an ingest refused before anything is written leaves one
        ``refused`` record; a batch to be stored leaves a ``started`` record (batch id and
        digest, rows, days) appended before the commit point, under the commit lock, then
        its outcome (``allowed``, the commit done, or ``failed``). A writer killed between
        the two leaves a ``started`` record with no outcome, never stored reads without one
        (:func:`interrupted_ingests` finds them).
    actor
        The acting user.
    policy
        The department policy (loaded when ``None``).
    now
        The current time (defaults to the clock); reads dated after it are refused.
    source, first_line
        How errors and the audit record name the batch and its rows (see :func:`check_reads`).

    Raises
    ------
    SchemaValidationError
        If the batch breaks a declared rule; nothing is stored.
    WorkbenchError
        If a read names an unknown camera or network, or is dated in the future; nothing is
        stored.
    """
    policy = policy or load_policy()
    now = now or dt.datetime.now(dt.UTC)
    try:
        batch = validate_frame("reads", reads)
        check_reads(store, batch, now=now, source=source, first_line=first_line)
    except WorkbenchError as exc:
        _audit_ingest(audit_append, actor, now, source, reads.height, refused=str(exc))
        raise
    hits = match_reads(
        batch, store.tables.read("hotlist_entries"), store.tables.read("hotlists"), policy=policy
    )
    # The batch's "started" record is appended before the commit point, holding the commit
    # lock (``before_commit``): a writer killed at any moment never leaves reads stored with
    # no record of who stored them. Its outcome record follows the commit.
    batch_key = {"batch_id": f"batch-{uuid.uuid4().hex}", "batch_sha256": _batch_digest(batch)}
    started: list[IngestResult] = []

    def before_commit(report: IngestReport, hits_added: int) -> None:
        result = IngestResult(report, hits_added)
        _audit_ingest(audit_append, actor, now, source, reads.height, result=result,
                      batch=batch_key, phase="started")
        started.append(result)

    try:
        report, added = store.ingest(  # reads and hits: one commit
            batch, hits=hits, batch_id=batch_key["batch_id"], before_commit=before_commit
        )
    except Exception as exc:
        with contextlib.suppress(WorkbenchError):  # the log itself may be what failed
            if started:
                _audit_ingest(audit_append, actor, now, source, reads.height,
                              result=started[0], batch=batch_key, failed=str(exc))
            elif isinstance(exc, WorkbenchError):
                _audit_ingest(audit_append, actor, now, source, reads.height, refused=str(exc))
        raise
    result = IngestResult(report, added)
    _audit_ingest(audit_append, actor, now, source, reads.height, result=result,
                  batch=batch_key, phase="committed")
    return result


def _batch_digest(batch: pl.DataFrame) -> str:
    """SHA-256 of a batch's read ids, in order: which reads the batch carried."""
    digest = hashlib.sha256()
    for read_id in batch.get_column("read_id").to_list():
        digest.update(str(read_id).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class InterruptedIngest:
    """An ingest whose ``started`` audit record has no outcome record, or a wrong one.

    ``recorded_failed``: its outcome record says ``failed``, yet its batch is in the store
    (the writer failed after the commit point, e.g. while applying the commit journal, which
    the next process finished).
    """

    event_id: str
    occurred_at: dt.datetime
    user_id: str | None
    batch_id: str
    rows_received: int | None
    in_store: bool
    recorded_failed: bool = False

    def describe(self) -> str:
        """One line for ``verify``: who, when, which batch, and whether the store has it."""
        rows = "?" if self.rows_received is None else f"{self.rows_received:,}"
        head = (
            f"ingest {self.batch_id} started {self.occurred_at.isoformat(timespec='seconds')} "
            f"by {self.user_id} ({rows} reads; audit record {self.event_id})"
        )
        if self.recorded_failed:
            return (f"{head} was recorded as failed, but its reads ARE in the store (it "
                    "failed after its commit point)")
        where = (
            "its reads ARE in the store" if self.in_store
            else "its reads are not in the store (nothing was committed)"
        )
        return f"{head} has no outcome record, the writer was stopped: {where}"


def interrupted_ingests(
    events: pl.DataFrame, stored_batches: Collection[str]
) -> list[InterruptedIngest]:
    """The ingests with a ``started`` record and no outcome, and whether each was stored.

    An ingest recorded as ``failed`` whose batch is in the store is listed too
    (``recorded_failed``): its audit trail says the reads were not stored, and they were.

    Parameters
    ----------
    events
        The audit log's events (``AuditLog.events()``).
    stored_batches
        The batch ids the store holds (``store.reads.batch_ids()``).

    Returns
    -------
    list of InterruptedIngest
        Oldest first; empty when every started ingest has its outcome.

    Examples
    --------
    >>> import datetime as dt, json
    >>> t = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    >>> rows = [("e1", "started", "b1"), ("e2", "allowed", "b1"), ("e3", "started", "b2")]
    >>> events = pl.DataFrame({"event_id": [r[0] for r in rows], "occurred_at": [t] * 3,
    ...     "event_type": ["ingest"] * 3, "user_id": ["admin"] * 3,
    ...     "outcome": [r[1] for r in rows],
    ...     "query_json": [json.dumps({"batch_id": r[2], "rows_received": 5}) for r in rows]})
    >>> [(i.batch_id, i.in_store) for i in interrupted_ingests(events, {"b2"})]
    [('b2', True)]
    """
    ingests = events.filter(pl.col("event_type") == "ingest")
    begun: dict[str, dict[str, Any]] = {}
    ended: set[str] = set()
    failed: set[str] = set()
    for row in ingests.iter_rows(named=True):
        try:
            detail = json.loads(row.get("query_json") or "")
        except ValueError:
            continue
        batch_id = detail.get("batch_id") if isinstance(detail, dict) else None
        if not isinstance(batch_id, str):
            continue
        if row["outcome"] == "started":
            begun.setdefault(batch_id, {**row, "rows_received": detail.get("rows_received")})
        elif row["outcome"] == "failed":
            failed.add(batch_id)
        else:
            ended.add(batch_id)
    stored = set(stored_batches)
    # A "failed" outcome is wrong when the batch is stored: the writer failed after its
    # commit point (applying the journal), and the next process finished the commit.
    return [
        InterruptedIngest(
            event_id=str(row["event_id"]),
            occurred_at=row["occurred_at"],
            user_id=row.get("user_id"),
            batch_id=batch_id,
            rows_received=row["rows_received"],
            in_store=batch_id in stored,
            recorded_failed=batch_id in failed,
        )
        for batch_id, row in begun.items()
        if batch_id not in ended and (batch_id not in failed or batch_id in stored)
    ]


def ingest_csv(
    store: Store,
    path: Path,
    *,
    audit_append: AuditAppend,
    actor: str,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
    source: str | None = None,
    camera_id: str | None = None,
) -> IngestResult:
    """Read a CSV export of reads (:func:`read_reads_csv`) and ingest it (:func:`ingest_reads`).

    A file that cannot be read is refused, and the refusal is audited like any other.
    ``source`` names the file in the audit record (default: ``path``; the service passes the
    name the client gave, not its own temporary copy). With ``camera_id`` (reads recognized
    in one camera's frames), the camera's network and place come from the ``cameras`` table
    (:func:`place_at_camera`), and an unknown camera is refused.
    """
    now = now or dt.datetime.now(dt.UTC)
    label = source if source is not None else str(path)
    try:
        reads = read_reads_csv(path)
        if camera_id is not None:
            reads = place_at_camera(store, reads, camera_id)
    except WorkbenchError as exc:
        _audit_ingest(audit_append, actor, now, label, None, refused=str(exc))
        raise
    return ingest_reads(
        store,
        reads,
        audit_append=audit_append,
        actor=actor,
        policy=policy,
        now=now,
        source=label,
        first_line=2,
    )


def _audit_ingest(
    audit_append: AuditAppend,
    actor: str,
    now: dt.datetime,
    source: str | None,
    rows_received: int | None,
    *,
    result: IngestResult | None = None,
    refused: str | None = None,
    batch: dict[str, str] | None = None,
    phase: str | None = None,
    failed: str | None = None,
) -> None:
    """Append one ``ingest`` record.

    Refused before anything was written (``refused``); or, for a batch about to be stored,
    ``started`` (before the commit point), then ``committed`` (outcome ``allowed``) or
    ``failed``, each naming the batch (``batch``: its id and digest).
    """
    detail: dict[str, Any] = {"action": "ingest", "source": source, "rows_received": rows_received}
    event: dict[str, Any] = {"event_type": "ingest", "user_id": actor, "occurred_at": now}
    if batch is not None:
        detail |= batch
    if result is not None:
        r = result.report
        detail |= {
            "rows_stored": r.rows_added,
            "rows_already_stored": r.rows_already_stored,
            "days": [day.isoformat() for day in r.days],
            "hits_added": result.hits_added,
        }
    if failed is not None:
        detail["phase"] = "failed"
        event |= {"outcome": "failed", "refusal_reason": _cap(f"failed: {failed}")}
    elif result is not None:
        detail["phase"] = phase or "committed"
        outcome = "started" if phase == "started" else "allowed"
        event |= {"outcome": outcome, "row_count": result.report.rows_added}
    else:
        event |= {"outcome": "refused", "refusal_reason": _cap(refused or "refused")}
    audit_append({**event, "query_json": json.dumps(detail, sort_keys=True)})
