"""One encrypted partition: a folder of Parquet files listed in an atomic manifest.

A file becomes visible only when the manifest that lists it is renamed into place, so a
process killed at any moment leaves the partition as it was before, or with the new file
complete. Files not listed in the manifest are leftovers of an interrupted write and are
ignored, then removed by :meth:`Partition.remove_orphans`. The manifest is authenticated and
listed in the store's index (``store/_index.py``), and each file is bound to its partition
and name by its key material (``store/_kms.py``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import struct
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pqe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alpr_workbench._fsutil import atomic_write_bytes, exclusive_lock, fsync_dir, fsync_file
from alpr_workbench.errors import KeyDestroyedError, KeyStoreError, StoreError
from alpr_workbench.keys import KeyStore
from alpr_workbench.schema import TableSpec
from alpr_workbench.store._bloom import build_filter, may_contain_any
from alpr_workbench.store._commit import (
    ManifestUpdate,
    PartitionDrop,
    commit_lock,
    consistent,
    publish,
)
from alpr_workbench.store._index import MANIFEST, check_manifest, load_index
from alpr_workbench.store._kms import (
    FOOTER,
    WorkbenchKmsClient,
    key_material_path,
    make_identifier,
    read_data_keys,
)
from alpr_workbench.store._readcache import READ_CACHE, CachedFile, CacheKey

STAGING = ".staging"
# Small enough that an exact plate lookup decodes about 4k rows a file (decision 0007).
ROW_GROUP_ROWS = 4_096
_LOW_CARDINALITY = {
    "camera_id",
    "network_id",
    "plate_state",
    "vehicle_make",
    "vehicle_color",
    "vehicle_type",
    "source",
    "hotlist_id",
    "hotlist_source",
    "disposition",
    "match_tier",
    "event_type",
    "outcome",
    "organization",
    "role",
}

_KEY_CACHE: dict[tuple[str, int, int], tuple[bytes, dict[str, bytes]]] = {}
_INDEX_CACHE: dict[tuple[str, int, int], bytes] = {}
_KEY_CACHE_LOCK = threading.Lock()
INDEX_PREFIX = "_INDEX_FOR_"


class Partition:
    """An encrypted, manifest-committed folder of Parquet files for one table.

    Parameters
    ----------
    root
        The partition folder (``.../reads/day=2026-10-01``). Nothing sensitive in the path.
    key_prefix
        Prefix of this partition's master keys; ``<prefix>/pii`` protects personal columns
        and ``<prefix>/ops`` operational columns and the footer.
    spec
        The table declaration.
    keystore
        Where the master keys live.
    label
        How errors name the partition (``reads day=2026-10-01``).
    index_column
        Column (``plate``) to keep a sealed Bloom filter of, for exact lookups.
    """

    def __init__(
        self,
        root: Path,
        key_prefix: str,
        spec: TableSpec,
        keystore: KeyStore,
        label: str,
        *,
        index_column: str | None = None,
    ) -> None:
        self.root = root
        self.key_prefix = key_prefix
        self.spec = spec
        self.keystore = keystore
        self.label = label
        self.index_column = index_column

    # -- keys ----------------------------------------------------------------------------
    @property
    def key_ids(self) -> list[str]:
        """Master key ids of this partition."""
        return [f"{self.key_prefix}/pii", f"{self.key_prefix}/ops"]

    def _encryption_config(self, file_id: str) -> pqe.EncryptionConfiguration:
        column_keys: dict[str, list[str]] = {}
        for field in self.spec.fields:
            kind = "pii" if field.sensitivity == "personal" else "ops"
            column_keys[make_identifier(f"{self.key_prefix}/{kind}", file_id, field.name)] = [
                field.name
            ]
        return pqe.EncryptionConfiguration(
            footer_key=make_identifier(f"{self.key_prefix}/ops", file_id, FOOTER),
            column_keys=column_keys,
            encryption_algorithm="AES_GCM_V1",
            plaintext_footer=False,
            double_wrapping=False,
            data_key_length_bits=256,
            internal_key_material=False,
            cache_lifetime=None,
        )

    # -- manifest ------------------------------------------------------------------------
    @functools.cached_property
    def rel(self) -> str:
        """The partition's name in the store's index (``reads/day=2026-10-01``)."""
        return self.root.relative_to(self.store_root).as_posix()

    def manifest(self, index: dict[str, Any] | None = None) -> dict[str, Any]:
        """The committed, authenticated manifest (an empty one when the partition has none).

        Parameters
        ----------
        index
            The store's index, already loaded and checked; loaded here when ``None``.

        Raises
        ------
        StoreError
            Naming the partition, when its manifest is missing, altered, moved, swapped or an
            older copy (see ``store/_index.py``).
        """

        def load(idx: dict[str, Any] | None) -> dict[str, Any]:
            if idx is None:
                idx = load_index(self.store_root, self.keystore)
            return check_manifest(
                self.keystore, idx, self.rel, self.spec.name, self.root / MANIFEST, self.label
            )

        if index is not None:
            return load(index)
        return consistent(self.store_root, self.keystore, lambda: load(None))

    def drop(self) -> PartitionDrop:
        """What a commit needs to crypto-shred this partition."""
        return PartitionDrop(self.root, tuple(self.key_ids))

    def files(self) -> list[Path]:
        """Committed data files."""
        return [self.root / item["name"] for item in self.manifest()["files"]]

    def row_count(self) -> int:
        """Rows in the committed files (from the manifest)."""
        return sum(int(item["rows"]) for item in self.manifest()["files"])

    def exists(self) -> bool:
        """True when the partition has committed files."""
        return bool(self.manifest()["files"])

    # -- writing -------------------------------------------------------------------------
    def write(self, frame: pl.DataFrame, *, replace: bool = False) -> None:
        """Encrypt ``frame`` into a new file and commit it.

        Parameters
        ----------
        frame
            Rows conforming to the table's schema, already sorted as they should be stored.
        replace
            Commit the new file in place of every existing one (small tables).
        """
        with commit_lock(self.store_root, self.keystore), self.lock():
            entry = self.stage(frame)
            publish(self.store_root, self.keystore, [self.update([entry], replace=replace)])

    @property
    def store_root(self) -> Path:
        """The store folder (``<data dir>/store``) whose journal commits this partition."""
        return self.root.parent.parent

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Lock this partition alone (writers and key rotation)."""
        return exclusive_lock(self.root.parent / f".{self.root.name}.lock")

    def update(self, entries: Sequence[dict[str, Any]], *, replace: bool) -> ManifestUpdate:
        """The manifest that lists ``entries`` too (or only them, with ``replace``)."""
        doc = self.manifest()
        old = [item["name"] for item in doc["files"]] if replace else []
        doc["files"] = [*entries] if replace else [*doc["files"], *entries]
        remove = [
            p.name
            for name in old
            for p in (self.root / name, key_material_path(self.root / name),
                      index_path(self.root / name))
        ]
        return ManifestUpdate(self.root, doc, tuple(remove))

    def stage(self, frame: pl.DataFrame) -> dict[str, Any]:
        """Encrypt ``frame`` into a new file, not yet listed; return its manifest entry.

        The file stays invisible (a leftover, later removed) until a manifest lists it.
        """
        self.keystore.ensure_keys(self.key_ids)
        staging = self.root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        file_id = f"part-{uuid.uuid4().hex}"
        name = f"{file_id}.parquet"
        tmp_path = staging / name
        table = frame.to_arrow().cast(self.spec.arrow_schema)
        factory = pqe.CryptoFactory(lambda _config: WorkbenchKmsClient(self.keystore))
        props = factory.file_encryption_properties(
            pqe.KmsConnectionConfig(),
            self._encryption_config(file_id),
            str(tmp_path),
            pafs.LocalFileSystem(),
        )
        dictionary = [c for c in self.spec.columns if c in _LOW_CARDINALITY]
        pq.write_table(
            table,
            tmp_path,
            encryption_properties=props,
            compression="zstd",
            row_group_size=ROW_GROUP_ROWS,
            use_dictionary=dictionary or False,
            write_statistics=self._statistics_columns(),
        )

        material = key_material_path(tmp_path)
        fsync_file(tmp_path)
        fsync_file(material)
        final = self.root / name
        if self.index_column is not None:
            index = index_path(tmp_path)
            index.write_bytes(
                self._seal_index(build_filter(frame.get_column(self.index_column)), name)
            )
            fsync_file(index)
            os.replace(index, index_path(final))
        os.replace(material, key_material_path(final))
        os.replace(tmp_path, final)
        with contextlib.suppress(OSError):
            staging.rmdir()
        fsync_dir(self.root)
        return {"name": name, "rows": table.num_rows, "bytes": final.stat().st_size}

    def _statistics_columns(self) -> list[str] | bool:
        # Statistics cost write time; keep those that let readers skip row groups.
        if not self.spec.sort_by:
            return True
        useful = [*self.spec.sort_by, "camera_id", "network_id"]
        return [c for c in self.spec.columns if c in useful]

    # -- reading ------------------------------------------------------------------------
    def scan(
        self,
        plates: list[tuple[int, int]] | None = None,
        *,
        manifest: dict[str, Any] | None = None,
    ) -> list[pl.LazyFrame]:
        """One lazy, natively decrypted scan per committed file.

        ``plates`` (from :func:`plate_hashes`) skips files whose plate filter rules them out.
        ``manifest`` is the partition's checked manifest, when the caller already has it.
        A file already decrypted into this process's read cache (:func:`warm_files`) is
        served from memory.

        Raises
        ------
        KeyDestroyedError
            If the partition was crypto-shredded.
        StoreError
            If a listed file is missing, truncated, or bound to another partition or name.
        """
        return [self.lazy_file(path, key) for path, key in self.candidates(plates, manifest)]

    def candidates(
        self,
        plates: list[tuple[int, int]] | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> list[tuple[Path, CacheKey]]:
        """The committed files a scan must read, each with its cache key.

        Raises
        ------
        StoreError
            If a listed file is missing or has the wrong size.
        """
        listed = []
        for item in (manifest if manifest is not None else self.manifest())["files"]:
            path = self.root / item["name"]
            try:
                stat = path.stat()
            except FileNotFoundError as exc:
                raise StoreError(f"{self.label}: data file {path.name} is missing") from exc
            if stat.st_size != item["bytes"]:
                raise StoreError(f"{self.label}: {path.name} has the wrong size (truncated?)")
            if plates is not None and not self._may_contain(path, stat.st_mtime_ns, plates):
                continue
            listed.append((path, (str(path), stat.st_size, stat.st_mtime_ns)))
        return listed

    def cached_rows(self, key: CacheKey, plates: Sequence[str] | None) -> pl.DataFrame | None:
        """The decrypted rows of a file from the read cache (only ``plates``' when given).

        None when the file is not in the cache. Callers still filter on ``plates``.
        """
        cached = READ_CACHE.get(key)
        if cached is None:
            return None
        return cached.frame if plates is None else cached.rows_of(plates)

    def lazy_file(self, path: Path, key: CacheKey) -> pl.LazyFrame:
        """The decrypted rows of one file listed by :meth:`candidates`, lazily.

        Served from the read cache when the file is there, else scanned from disk.
        """
        cached = READ_CACHE.get(key)
        if cached is not None:
            return cached.frame.lazy()
        footer, columns = self._data_keys(path, key[1])
        props = pl.ParquetDecryptionProperties(footer_key=footer, column_keys=columns)
        # A column declared after the file was written (e.g. reads' frame_count) reads as
        # empty: its declaration is optional, and older stores still open.
        return pl.scan_parquet(path, decryption=props, schema=_polars_schema(self.spec),
                               missing_columns="insert")

    def _data_keys(self, path: Path, size: int) -> tuple[bytes, dict[str, bytes]]:
        # A data file is never rewritten under its name (a random file id); a file put in
        # its place does not decrypt with the cached keys (AES-GCM), so the cache fails closed.
        cache_key = (str(path), size, os.stat(path).st_mtime_ns)
        with _KEY_CACHE_LOCK:
            hit = _KEY_CACHE.get(cache_key)
        if hit is not None:
            return hit
        try:
            footer, by_column = read_data_keys(self.keystore, path, key_prefix=self.key_prefix)
            keys = (footer, self._leaf_paths(by_column))
        except KeyDestroyedError as exc:
            raise KeyDestroyedError(
                f"{self.label}: its master key was destroyed; the data cannot be decrypted "
                f"({exc})"
            ) from exc
        except KeyStoreError as exc:
            raise StoreError(f"{self.label}: {exc}") from exc
        with _KEY_CACHE_LOCK:
            _KEY_CACHE[cache_key] = keys
        return keys

    # -- plate index -------------------------------------------------------------------
    def _seal_index(self, payload: bytes, name: str) -> bytes:
        master = self.keystore.current_key(f"{self.key_prefix}/pii")
        nonce = os.urandom(12)
        aad = f"{self.key_prefix}/index#{name}".encode()
        sealed = AESGCM(master.material).encrypt(nonce, payload, aad)
        return struct.pack("<I", master.version) + nonce + sealed

    def _open_index(self, path: Path) -> bytes:
        blob = index_path(path).read_bytes()
        (version,) = struct.unpack_from("<I", blob)
        master = self.keystore.get_key(f"{self.key_prefix}/pii", version)
        aad = f"{self.key_prefix}/index#{path.name}".encode()
        try:
            return AESGCM(master.material).decrypt(blob[4:16], blob[16:], aad)
        except InvalidTag as exc:
            raise StoreError(
                f"{self.label}: plate index of {path.name} does not authenticate"
            ) from exc

    def _may_contain(self, path: Path, mtime_ns: int, plates: list[tuple[int, int]]) -> bool:
        if not index_path(path).is_file():
            return True  # no index: the file must be scanned
        cache_key = (str(path), mtime_ns, -1)
        with _KEY_CACHE_LOCK:
            payload = _INDEX_CACHE.get(cache_key)
        if payload is None:
            try:
                payload = self._open_index(path)
            except KeyDestroyedError as exc:
                raise KeyDestroyedError(
                    f"{self.label}: its master key was destroyed; the data cannot be decrypted"
                ) from exc
            with _KEY_CACHE_LOCK:
                _INDEX_CACHE[cache_key] = payload
        return may_contain_any(payload, plates)

    def _leaf_paths(self, by_column: dict[str, bytes]) -> dict[str, bytes]:
        # Parquet names a list column's values by its leaf path; Polars wants that path.
        out = {}
        for column, key in by_column.items():
            is_list = column in self.spec.columns and self.spec.field(column).type.startswith(
                "list"
            )
            out[f"{column}.list.element" if is_list else column] = key
        return out

    def read(self, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """Decrypt and return the whole partition (or some columns of it)."""
        scans = self.scan()
        if not scans:
            frame = pl.DataFrame(schema=self.spec.polars_schema)
            return frame.select(columns) if columns else frame
        lazy = pl.concat(scans, how="vertical")
        if columns:
            lazy = lazy.select(columns)
        try:
            return lazy.collect()
        except pl.exceptions.PolarsError as exc:
            raise StoreError(f"{self.label}: cannot read: {_clean(exc)}") from exc

    def verify(self, index: dict[str, Any] | None = None) -> list[str]:
        """Check the manifest, and that every committed file decrypts and authenticates.

        Returns
        -------
        list of str
            The problems found, each naming the partition (empty when sound).
        """
        problems = []
        try:
            manifest = self.manifest(index)
        except StoreError as exc:
            return [str(exc)]
        for item in manifest["files"]:
            path = self.root / item["name"]
            if not path.is_file():
                problems.append(f"{self.label}: {item['name']} is missing")
                continue
            if path.stat().st_size != item["bytes"]:
                problems.append(f"{self.label}: {item['name']} has the wrong size (truncated?)")
                continue
            try:
                footer, columns = read_data_keys(self.keystore, path, key_prefix=self.key_prefix)
                props = pl.ParquetDecryptionProperties(
                    footer_key=footer, column_keys=self._leaf_paths(columns)
                )
                rows = pl.scan_parquet(path, decryption=props).collect().height
            except (pl.exceptions.PolarsError, KeyStoreError, OSError) as exc:
                problems.append(f"{self.label}: {item['name']} does not decrypt: {_clean(exc)}")
                continue
            if rows != item["rows"]:
                problems.append(
                    f"{self.label}: {item['name']} holds {rows} rows, manifest {item['rows']}"
                )
        return problems

    def rotate_keys(self) -> int:
        """Rotate this partition's master keys without rewriting any data file.

        Each file's data keys are re-wrapped under a new master key version in its key
        material; then the old versions are destroyed. Returns the number of files re-wrapped.
        """
        with exclusive_lock(self.root.parent / f".{self.root.name}.lock"):
            files = self.files()
            if not files:
                return 0
            versions = {key_id: self.keystore.rotate(key_id).version for key_id in self.key_ids}
            factory = pqe.CryptoFactory(lambda _config: WorkbenchKmsClient(self.keystore))
            for path in files:
                factory.rotate_master_keys(
                    pqe.KmsConnectionConfig(),
                    str(path),
                    pafs.LocalFileSystem(),
                    double_wrapping=False,
                    cache_lifetime_seconds=1,
                )
                fsync_file(key_material_path(path))
                if index_path(path).is_file():
                    payload = self._open_index(path)
                    atomic_write_bytes(index_path(path), self._seal_index(payload, path.name))
            fsync_dir(self.root)
            for key_id, version in versions.items():
                self.keystore.retire_versions(key_id, keep=version)
            _forget_keys(self.root)
            return len(files)

    # -- housekeeping --------------------------------------------------------------------
    def remove_orphans(self) -> int:
        """Delete files left by interrupted writes; return how many were removed."""
        if not self.root.is_dir():
            return 0
        listed = {item["name"] for item in self.manifest()["files"]}
        removed = 0
        shutil.rmtree(self.root / STAGING, ignore_errors=True)
        for path in self.root.glob("part-*.parquet"):
            if path.name not in listed:
                self._remove_file(path)
                removed += 1
        for path in self.root.glob(".*.tmp-*"):
            path.unlink(missing_ok=True)
        return removed

    def forget_keys(self) -> None:
        """Drop this process's cached data keys and plate filters of the partition."""
        _forget_keys(self.root)

    @staticmethod
    def _remove_file(path: Path) -> None:
        path.unlink(missing_ok=True)
        key_material_path(path).unlink(missing_ok=True)
        index_path(path).unlink(missing_ok=True)


_SCHEMAS: dict[int, tuple[TableSpec, pl.Schema]] = {}


def _polars_schema(spec: TableSpec) -> pl.Schema:
    """The Polars schema of ``spec``, built once per table declaration (not once per file)."""
    hit = _SCHEMAS.get(id(spec))
    if hit is None or hit[0] is not spec:
        hit = (spec, spec.polars_schema)
        _SCHEMAS[id(spec)] = hit
    return hit[1]


def index_path(parquet_path: Path) -> Path:
    """Where the sealed plate filter of ``parquet_path`` lives."""
    return parquet_path.with_name(INDEX_PREFIX + parquet_path.name + ".bin")


def _forget_keys(root: Path) -> None:
    with _KEY_CACHE_LOCK:
        for cache in (_KEY_CACHE, _INDEX_CACHE):
            for cached in [k for k in cache if k[0].startswith(str(root) + os.sep)]:
                del cache[cached]
    READ_CACHE.forget(str(root) + os.sep)


#: Decoded frames are about this many times their encrypted file (measured 5.0x on day files).
_DECODED_PER_FILE_BYTE = 6


def warm_files(
    files: Sequence[tuple[Partition, Path, CacheKey]], *, estimate: bool = True,
    evict: bool = True,
) -> None:
    """Decrypt, in parallel, those of ``files`` not in the read cache yet, and keep them there.

    Nothing happens when the cache is off, or (``estimate``) when the files would not fit in
    it by their size on disk: a search over a year does not decrypt the year whole. With
    ``evict=False`` only files that fit beside those kept are kept. A file that does not
    decrypt is left alone: the scan that reads it next reports it, naming its partition.
    """
    todo = [(part, path, key) for part, path, key in files if key not in READ_CACHE]
    on_disk = sum(key[1] for _, _, key in todo)
    if not todo or not READ_CACHE.room_for(on_disk * _DECODED_PER_FILE_BYTE if estimate else 1):
        return
    generation = READ_CACHE.generation
    try:
        frames = pl.collect_all([part.lazy_file(path, key) for part, path, key in todo])
    except (pl.exceptions.PolarsError, StoreError, KeyStoreError, OSError):
        return
    for (part, path, key), frame in zip(todo, frames, strict=True):
        entry = CachedFile.of(frame, part.index_column)
        with contextlib.suppress(OSError):
            stat = path.stat()
            if (str(path), stat.st_size, stat.st_mtime_ns) == key:  # not replaced meanwhile
                READ_CACHE.put(key, entry, since=generation, evict=evict)


def _clean(exc: BaseException) -> str:
    """First line of an error, which never contains key material."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
