"""Bring reads in from outside (camera or vendor CSV exports), store them, match them.

Every ingested batch is matched against the active hotlist entries at once, so a hit exists
for every stored read that matches — never a read that alerts later by accident of timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.hotlist import match_reads, record_hits
from alpr_workbench.plates import normalize_plate
from alpr_workbench.policy import Policy, load_policy
from alpr_workbench.schema import load_table, validate_frame
from alpr_workbench.store import IngestReport, Store

__all__ = ["IngestResult", "ingest_reads", "read_reads_csv"]


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
        raise WorkbenchError(f"{path}: cannot read as CSV: {str(exc).splitlines()[0]}") from exc
    unknown = [c for c in frame.columns if c not in spec.columns]
    if unknown:
        raise WorkbenchError(f"{path}: columns not in the reads schema: {unknown}")
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
                f"{frame.get_column(name)[row]!r} as {spec.field(name).type}"
            )
    return parsed


def ingest_reads(
    store: Store, reads: pl.DataFrame, *, policy: Policy | None = None
) -> IngestResult:
    """Store a batch of reads (idempotent by ``read_id``) and record the hits it raises.

    Raises
    ------
    SchemaValidationError
        If the batch breaks a declared rule; nothing is stored.
    """
    policy = policy or load_policy()
    batch = validate_frame("reads", reads)
    report = store.reads.ingest(batch)
    hits = match_reads(
        batch, store.tables.read("hotlist_entries"), store.tables.read("hotlists"), policy=policy
    )

    added = record_hits(store, hits) if hits.height else 0
    return IngestResult(report, added)
