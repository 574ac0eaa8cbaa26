"""The read store: reads in encrypted day partitions, sorted by plate, with holds and purges."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from alpr_workbench.errors import StoreError
from alpr_workbench.keys import KeyStore
from alpr_workbench.schema import load_table, validate_frame
from alpr_workbench.store._bloom import plate_hashes
from alpr_workbench.store._commit import (
    ManifestUpdate,
    commit_lock,
    consistent,
    publish,
    recover,
)
from alpr_workbench.store._index import MANIFEST, load_index
from alpr_workbench.store._partition import Partition, warm_files
from alpr_workbench.store._readcache import READ_CACHE, CacheKey

_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")
_HOLD_DIR = re.compile(r"^hold=([A-Za-z0-9_-]+)$")
_WRITERS = 2


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did."""

    rows_received: int
    rows_added: int
    rows_already_stored: int
    days: tuple[dt.date, ...]
    added_by_day: tuple[tuple[dt.date, int], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class PurgeReport:
    """What one retention purge did."""

    as_of: dt.date
    retention_days: int
    days_purged: tuple[dt.date, ...]
    rows_destroyed: int
    rows_kept_under_hold: int
    hold_ids: tuple[str, ...] = field(default=())
    #: With the file-only key root, what the purge does not reach (older key-store copies).
    key_copies_warning: str | None = None


class ReadStore:
    """Plate reads, encrypted at rest in one partition per UTC day.

    Only the governance gate may call :meth:`scan`; everything else asks the gate.
    """

    def __init__(self, root: Path, keystore: KeyStore) -> None:
        self.spec = load_table("reads")
        self.keystore = keystore
        self.root = root
        self.days_root = root / "reads"
        self.holds_root = root / "holds"
        self._days: dict[dt.date, Partition] = {}

    # -- partitions ----------------------------------------------------------------------
    def partition(self, day: dt.date) -> Partition:
        """The partition of one UTC day (one object a day: it holds only names and paths)."""
        found = self._days.get(day)
        if found is None:
            iso = day.isoformat()
            found = self._days[day] = Partition(
                self.days_root / f"day={iso}",
                f"reads/{iso}",
                self.spec,
                self.keystore,
                f"reads day={iso}",
                index_column="plate",
            )
        return found

    def hold_partition(self, hold_id: str) -> Partition:
        """The partition holding the reads kept by legal hold ``hold_id``."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", hold_id):
            raise StoreError(f"invalid hold id {hold_id!r}")
        return Partition(
            self.holds_root / f"hold={hold_id}",
            f"holds/{hold_id}",
            self.spec,
            self.keystore,
            f"reads hold={hold_id}",
            index_column="plate",
        )

    def _index(self) -> dict[str, Any]:
        """The store's checked index of partitions (see ``store/_index.py``)."""
        recover(self.root, self.keystore)
        return consistent(self.root, self.keystore, lambda: load_index(self.root, self.keystore))

    @staticmethod
    def _days_in(index: dict[str, Any]) -> list[dt.date]:
        out = []
        for rel in index["partitions"]:
            folder, _, name = rel.partition("/")
            if folder == "reads" and (m := _DAY_DIR.match(name)):
                out.append(dt.date.fromisoformat(m.group(1)))
        return sorted(out)

    @staticmethod
    def _holds_in(index: dict[str, Any]) -> list[str]:
        out = []
        for rel in index["partitions"]:
            folder, _, name = rel.partition("/")
            if folder == "holds" and (m := _HOLD_DIR.match(name)):
                out.append(m.group(1))
        return sorted(out)

    def days(self) -> list[dt.date]:
        """Days that have committed reads, oldest first (from the authenticated index).

        Raises
        ------
        StoreError
            If the store's index is missing, altered or an older copy.
        """
        return self._days_in(self._index())

    def hold_ids(self) -> list[str]:
        """Ids of live legal-hold partitions (from the authenticated index)."""
        return self._holds_in(self._index())

    def batch_ids(self) -> set[str]:
        """Ids of the ingest batches whose reads the store holds (from the manifests).

        Decrypts nothing. Reads stored without a batch id (the demo builder, stores
        written before batch ids) are not counted.

        Raises
        ------
        StoreError
            If the index or a manifest is missing, altered or an older copy.
        """
        index = self._index()
        parts = [self.partition(day) for day in self._days_in(index)]
        parts += [self.hold_partition(hold) for hold in self._holds_in(index)]
        return {
            str(item["batch_id"])
            for part in parts
            for item in part.manifest(index)["files"]
            if item.get("batch_id")
        }

    def row_count(self) -> int:
        """Reads stored in day partitions (from the manifests; decrypts nothing)."""
        return sum(self.day_row_counts().values())

    def day_row_counts(self) -> dict[dt.date, int]:
        """Reads stored per day, oldest first (from the manifests; decrypts nothing).

        Counts are metadata, not reads: a purge plan or a summary may use them without
        going through the gate.
        """
        return {day: self.partition(day).row_count() for day in self.days()}

    # -- ingest --------------------------------------------------------------------------
    def ingest(
        self,
        frame: pl.DataFrame,
        *,
        on_day_done: Callable[[dt.date, int], None] | None = None,
    ) -> IngestReport:
        """Validate, encrypt and store a batch of reads; idempotent by ``read_id``.

        Parameters
        ----------
        frame
            Reads conforming to ``data_schema/reads.yaml``.
        on_day_done
            Called with ``(day, rows_added)`` after each day commits (progress bars).

        Returns
        -------
        IngestReport
            Counts of rows received, added and skipped because already stored.

        Raises
        ------
        SchemaValidationError
            If the batch breaks a declared rule; nothing is written.
        StoreError
            If the batch reaches into a day already purged under retention.
        """
        with commit_lock(self.root, self.keystore):
            report, updates = self.stage_ingest(frame)
            publish(self.root, self.keystore, updates)
        if on_day_done is not None:
            for day, added in report.added_by_day:
                on_day_done(day, added)
        return report

    def stage_ingest(
        self, frame: pl.DataFrame, *, batch_id: str | None = None
    ) -> tuple[IngestReport, list[ManifestUpdate]]:
        """Write the new reads of a batch into unlisted files; return the manifests to publish.

        Nothing is visible until the caller, holding :func:`commit_lock`, publishes the
        returned updates (with any others of the same ingest) in one commit. ``batch_id``
        is kept in the manifest entry of every new file, so an audit record of the batch
        can be matched with what the store holds (:meth:`batch_ids`).
        """
        batch = validate_frame("reads", frame)
        if batch.height == 0:
            return IngestReport(0, 0, 0, ()), []
        # Group rows by day with a cheap integer sort (skipped when already in day order);
        # each day is then a zero-copy slice, sorted by plate in the writer threads.
        batch = batch.with_columns(pl.col("captured_at").dt.date().alias("_day"))
        if not batch.get_column("_day").is_sorted():
            batch = batch.sort("_day")
        runs = batch.select(pl.col("_day").rle()).unnest("_day")
        by_day: dict[dt.date, pl.DataFrame] = {}
        offset = 0
        for length, day in runs.select("len", "value").iter_rows():
            by_day[day] = batch.slice(offset, length).drop("_day")
            offset += length
        days = sorted(by_day)
        shredded = self.keystore.destroyed([f"reads/{day.isoformat()}/ops" for day in days])
        if shredded:
            day = shredded[0].split("/")[1]
            raise StoreError(
                f"reads day={day}: this day was purged under retention; "
                "refusing to store reads for it again"
            )
        self.keystore.ensure_keys([k for day in days for k in self.partition(day).key_ids])

        def stage_day(day: dt.date) -> tuple[int, ManifestUpdate | None]:
            partition = self.partition(day)
            rows = by_day[day]
            if partition.exists():
                stored = partition.read(["read_id"]).get_column("read_id")
                rows = rows.filter(~pl.col("read_id").is_in(stored.implode()))
            if not rows.height:
                return 0, None
            entry = partition.stage(rows.sort(self._sort_keys()))
            if batch_id is not None:
                entry["batch_id"] = batch_id
            return rows.height, partition.update([entry], replace=False)

        with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
            staged = list(pool.map(stage_day, days))
        added = sum(n for n, _ in staged)
        updates = [u for _, u in staged if u is not None]
        report = IngestReport(
            batch.height,
            added,
            batch.height - added,
            tuple(days),
            tuple((day, n) for day, (n, _) in zip(days, staged, strict=True)),
        )
        return report, updates

    def _sort_keys(self) -> list[pl.Expr]:
        # Bytewise order equals text order for plates (ASCII) and sorts several times faster.
        return [
            pl.col(c).cast(pl.Binary) if self.spec.field(c).type == "string" else pl.col(c)
            for c in self.spec.sort_by
        ]

    # -- reading (for the gate only) -----------------------------------------------------
    def _file_scans(
        self,
        start: dt.date | None,
        end: dt.date | None,
        plates: Sequence[str] | None,
        include_holds: bool,
        *,
        per_file: bool = False,
    ) -> tuple[list[pl.LazyFrame], bool]:
        """Per-file lazy scans for the window, and whether hold copies are among them.

        Files in the read cache become one in-memory scan, or one each with ``per_file``.
        """
        hashes = plate_hashes(list(plates)) if plates is not None else None

        def snapshot() -> tuple[list[tuple[Partition, dict[str, Any]]], ...]:
            # One checked index, and the checked manifest of every partition in the window.
            index = load_index(self.root, self.keystore)
            days = [
                self.partition(day)
                for day in self._days_in(index)
                if (start is None or day >= start) and (end is None or day <= end)
            ]
            holds = [self.hold_partition(h) for h in self._holds_in(index)] if include_holds else []
            return [(p, p.manifest(index)) for p in days], [(p, p.manifest(index)) for p in holds]

        recover(self.root, self.keystore)
        in_window, held_parts = consistent(self.root, self.keystore, snapshot)
        day_files = [
            (part, path, key)
            for part, manifest in in_window
            for path, key in part.candidates(hashes, manifest)
        ]
        held_files = [
            (part, path, key)
            for part, manifest in held_parts
            for path, key in part.candidates(hashes, manifest)
        ]
        warm_files([*day_files, *held_files])
        scans = self._lazy(day_files, plates, per_file=per_file)
        if held_files:
            window = pl.lit(True)
            if start is not None:
                window &= pl.col("captured_at").dt.date() >= start
            if end is not None:
                window &= pl.col("captured_at").dt.date() <= end
            scans += [
                scan.filter(window)
                for scan in self._lazy(held_files, plates, per_file=per_file)
            ]
        if plates is not None:
            wanted = pl.col("plate").is_in(list(plates))
            scans = [scan.filter(wanted) for scan in scans]
        return scans, bool(held_files)

    def warm(self) -> int:
        """Decrypt the newest days into this process's read cache until it is full.

        The service runs this once in the background when it starts, so the first searches
        of the day do not each pay for decryption (decision 0009).

        Returns
        -------
        int
            The number of days now in the cache.
        """
        warmed = 0
        for day in sorted(self.days(), reverse=True):
            part = self.partition(day)
            try:
                files = [(part, path, key) for path, key in part.candidates()]
            except StoreError:
                continue  # a damaged day is reported by the search that reads it
            warm_files(files, estimate=False, evict=False)
            if not all(key in READ_CACHE for _, _, key in files):
                break  # full (nothing already kept is evicted), or the day does not decrypt
            warmed += 1
        return warmed

    @staticmethod
    def _lazy(
        files: list[tuple[Partition, Path, CacheKey]],
        plates: Sequence[str] | None,
        *,
        per_file: bool = False,
    ) -> list[pl.LazyFrame]:
        # Files in the read cache become one in-memory frame (only the plates' rows when
        # given), or one each (``per_file``); the others one scan each. Scans keep the
        # order of ``files``.
        memory: list[pl.DataFrame] = []
        scans: list[pl.LazyFrame] = []
        for part, path, key in files:
            rows = part.cached_rows(key, plates)
            if rows is None:
                scans.append(part.lazy_file(path, key))
            elif per_file:
                scans.append(rows.lazy())
            else:
                memory.append(rows)
        if memory:
            scans.append(pl.concat(memory, how="vertical", rechunk=False).lazy())
        return scans

    def scan(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        include_holds: bool = True,
        columns: Sequence[str] | None = None,
        plates: Sequence[str] | None = None,
    ) -> pl.LazyFrame:
        """Lazily decrypt the reads of days ``start``..``end`` (inclusive).

        Reads kept under a legal hold are included (once) when their day was purged.
        ``plates`` restricts the result to those exact plates and opens only the files whose
        sealed plate filter may hold one of them. Only the governance gate should call this.
        """
        scans, held = self._file_scans(start, end, plates, include_holds)
        if not scans:
            lazy = pl.LazyFrame(schema=self.spec.polars_schema)
        else:
            lazy = pl.concat(scans, how="vertical")
            if held:
                lazy = lazy.unique(subset="read_id", keep="first", maintain_order=True)
        return lazy.select(columns) if columns else lazy

    def query(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        where: pl.Expr | None = None,
        columns: Sequence[str] | None = None,
        plates: Sequence[str] | None = None,
        sort_by: str | None = None,
    ) -> pl.DataFrame:
        """Decrypt and collect reads of ``start``..``end`` matching ``where``.

        Files are decrypted and filtered in parallel. Only the governance gate should call this.

        Parameters
        ----------
        start, end
            The days to read (inclusive); ``None`` for no bound.
        where
            Rows to keep.
        columns
            Columns to return (all when ``None``).
        plates
            Only these exact plates (opens only the files that may hold one).
        sort_by
            A column to sort the result by, ascending (rows with equal values in no set
            order). Each file's rows are sorted as they are filtered, in parallel; days
            follow one another, so the result is then usually in order already, and is
            sorted again only when it is not (reads under a legal hold, for instance).

        Raises
        ------
        StoreError
            Naming the damaged partition when a file is corrupted or truncated.
        KeyDestroyedError
            If a partition's keys were destroyed while it was being read.
        """
        if sort_by is not None and sort_by not in self.spec.columns:
            raise StoreError(f"reads cannot be sorted by {sort_by!r}: no such column")
        # Sorting day by day pays for large results only: a few plates' rows from the read
        # cache stay one small frame (one scan per cached day cost more than it saved).
        scans, held = self._file_scans(
            start, end, plates, include_holds=True, per_file=sort_by is not None and not plates
        )
        if where is not None:
            scans = [scan.filter(where) for scan in scans]
        wanted = list(columns) if columns else self.spec.columns
        if held and "read_id" not in wanted:
            wanted = [*wanted, "read_id"]
        if sort_by is not None and sort_by not in wanted:
            wanted = [*wanted, sort_by]
        scans = [scan.select(wanted) for scan in scans]
        if sort_by is not None:
            scans = [scan.sort(sort_by) for scan in scans]
        if not scans:
            empty = pl.DataFrame(schema=self.spec.polars_schema)
            return empty.select(columns) if columns else empty
        try:
            frame = pl.concat(pl.collect_all(scans), how="vertical", rechunk=False)
        except pl.exceptions.PolarsError as exc:
            damaged = [
                p
                for day in self.days()
                if (start is None or day >= start) and (end is None or day <= end)
                for p in self.partition(day).verify()
            ]
            detail = "; ".join(damaged) if damaged else str(exc).splitlines()[0]
            raise StoreError(f"reads could not be read: {detail}") from exc
        if held:
            frame = frame.unique(subset="read_id", keep="first", maintain_order=True)
        if sort_by is not None:
            frame = _sorted(frame, sort_by)
        return frame.select(columns) if columns else frame

    # -- retention -----------------------------------------------------------------------
    def place_hold(self, hold_id: str, read_ids: Sequence[str] | pl.Series) -> int:
        """Copy the given reads into a hold partition under the hold's own keys.

        Returns
        -------
        int
            Number of reads now under the hold.
        """
        wanted = pl.Series("read_id", list(read_ids), dtype=pl.String)
        rows = (
            self.scan(include_holds=True)
            .filter(pl.col("read_id").is_in(wanted.implode()))
            .collect()
        )
        partition = self.hold_partition(hold_id)
        if partition.exists():
            raise StoreError(f"legal hold {hold_id!r} already exists")
        partition.write(rows.sort(self._sort_keys()))
        return rows.height

    def release_hold(self, hold_id: str) -> None:
        """Crypto-shred the reads kept by a released hold.

        One commit removes the hold from the store's index and destroys its master keys;
        then its files are deleted.
        """
        partition = self.hold_partition(hold_id)
        with commit_lock(self.root, self.keystore):
            publish(self.root, self.keystore, [], [partition.drop()])
        partition.forget_keys()

    def purge(self, *, as_of: dt.date, retention_days: int) -> PurgeReport:
        """Crypto-shred every day older than the retention period.

        A day ``d`` is purged when ``d < as_of - retention_days``. One commit removes the
        purged days from the store's index (so they are never reported missing) and destroys
        their master keys; then their files are deleted. Reads under legal hold live on in
        their hold partitions, under the holds' own keys. With the PKCS#11 key root the day's
        key objects on the token are destroyed too, so no copy of the files *or of the key
        store* decrypts the day again; with the file-only root, an older copy of
        ``keystore.json`` still does, and the report's ``key_copies_warning`` says so.
        """
        if retention_days < 1:
            raise StoreError("retention_days must be at least 1")
        cutoff = as_of - dt.timedelta(days=retention_days)
        purged, destroyed = [], 0
        with commit_lock(self.root, self.keystore):
            index = load_index(self.root, self.keystore)
            partitions = [self.partition(day) for day in self._days_in(index) if day < cutoff]
            for partition in partitions:
                destroyed += sum(int(f["rows"]) for f in partition.manifest(index)["files"])
            publish(self.root, self.keystore, [], [p.drop() for p in partitions])
        for partition in partitions:
            partition.forget_keys()
            purged.append(dt.date.fromisoformat(partition.key_prefix.split("/")[1]))
        held = sum(self.hold_partition(h).row_count() for h in self.hold_ids())
        return PurgeReport(
            as_of,
            retention_days,
            tuple(purged),
            destroyed,
            held,
            tuple(self.hold_ids()),
            self.keystore.purge_warning,
        )

    def rotate_keys(self) -> int:
        """Rotate the master keys of every day and hold partition; return files re-wrapped."""
        total = sum(self.partition(day).rotate_keys() for day in self.days())
        return total + sum(self.hold_partition(h).rotate_keys() for h in self.hold_ids())

    # -- integrity -----------------------------------------------------------------------
    def verify(self, index: dict[str, Any] | None = None) -> list[str]:
        """Check the index, every manifest, and that every file decrypts and authenticates.

        A partition the index lists whose manifest is missing, altered, moved or an older
        copy is a problem; so is a partition folder with a manifest the index does not list.

        Returns
        -------
        list of str
            The problems found, each naming its partition (empty when sound).
        """
        if index is None:
            try:
                index = self._index()
            except StoreError as exc:
                return [str(exc)]
        days = set(self._days_in(index))
        holds = set(self._holds_in(index))
        if self.days_root.is_dir():
            for path in self.days_root.iterdir():
                if (m := _DAY_DIR.match(path.name)) and (path / MANIFEST).is_file():
                    days.add(dt.date.fromisoformat(m.group(1)))
        if self.holds_root.is_dir():
            for path in self.holds_root.iterdir():
                if (m := _HOLD_DIR.match(path.name)) and (path / MANIFEST).is_file():
                    holds.add(m.group(1))
        problems: list[str] = []
        for day in sorted(days):
            problems.extend(self.partition(day).verify(index))
        for hold_id in sorted(holds):
            problems.extend(self.hold_partition(hold_id).verify(index))
        return problems

    def remove_orphans(self) -> int:
        """Remove leftovers of interrupted writes in every partition."""
        removed = 0
        for day in self.days():
            removed += self.partition(day).remove_orphans()
        if self.days_root.is_dir():
            for path in self.days_root.glob("day=*"):
                if not (path / MANIFEST).is_file():
                    m = _DAY_DIR.match(path.name)
                    if m:
                        removed += self.partition(
                            dt.date.fromisoformat(m.group(1))
                        ).remove_orphans()
        return removed


def _sorted(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """``frame`` sorted by ``column``: flagged as sorted when it is already, else sorted."""
    key = frame.get_column(column)
    if key.null_count() == 0 and key.is_sorted():
        return frame.with_columns(key.set_sorted())
    return frame.sort(column)
