"""Decrypted data files kept in this process's memory, so repeated searches skip decryption.

The service is the only process that holds keys and reads the store (decision 0003); it runs
for days, and every exact-plate search over a month opens the ~20 day files a frequent plate
appears in. Decrypting each costs ~2 ms of fixed Parquet work however few rows it keeps
(decision 0007), so the service keeps whole decrypted files here, least recently used out first,
within a byte budget (decision 0009).

What it keeps is what the service could decrypt at any moment anyway: it does not widen who can
read what (every search still passes the gate and is audited), and nothing is written to disk.
Crypto-shredding still holds: a purge or a released hold calls :meth:`ReadCache.forget` for the
partition in the same process that destroyed its keys, before it returns. Entries are keyed by
``(path, size, mtime_ns)``; data files are never rewritten under their (random) names, and
every search still checks the authenticated manifest first, so a file the manifest no longer
lists is never served from here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from alpr_workbench.store._bloom import PLATE_BYTES, packable

#: Default budget: enough for about three months of the synthetic city's reads (~40 k a day).
DEFAULT_BUDGET_BYTES = 1 << 30

CacheKey = tuple[str, int, int]


@dataclass(frozen=True)
class CachedFile:
    """One decrypted file, and its index column as a sorted byte array when it is sorted."""

    frame: pl.DataFrame
    sorted_keys: np.ndarray | None

    @classmethod
    def of(cls, frame: pl.DataFrame, index_column: str | None) -> CachedFile:
        """Keep ``frame``; its ``index_column`` becomes searchable when sorted and short ASCII."""
        keys = None
        if index_column is not None:
            column = frame.get_column(index_column)
            longest = column.str.len_bytes().max()
            short = column.null_count() == 0 and (
                longest is None or (isinstance(longest, int) and longest <= PLATE_BYTES)
            )
            if short and column.str.contains(r"^[\x00-\x7f]*$").all() and column.is_sorted():
                keys = column.to_numpy().astype(f"S{PLATE_BYTES}")
        return cls(frame, keys)

    @property
    def size(self) -> int:
        """Bytes this entry holds in memory (approximately)."""
        extra = self.sorted_keys.nbytes if self.sorted_keys is not None else 0
        return int(self.frame.estimated_size()) + extra

    def rows_of(self, values: Sequence[str]) -> pl.DataFrame:
        """The rows whose index value is one of ``values`` (all rows without a sorted index)."""
        if self.sorted_keys is None:
            return self.frame
        wanted = np.unique(np.array(packable(values), dtype=f"S{PLATE_BYTES}"))
        first = np.searchsorted(self.sorted_keys, wanted, side="left")
        last = np.searchsorted(self.sorted_keys, wanted, side="right")
        pieces = [self.frame.slice(int(a), int(b - a)) for a, b in zip(first, last, strict=True)
                  if b > a]
        return pl.concat(pieces, how="vertical", rechunk=False) if pieces else self.frame.clear()


class ReadCache:
    """A least-recently-used map of decrypted files, bounded by their in-memory size.

    Parameters
    ----------
    budget_bytes
        Most bytes of decoded frames to keep; 0 turns the cache off.
    """

    def __init__(self, budget_bytes: int) -> None:
        self._frames: OrderedDict[CacheKey, tuple[CachedFile, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._used = 0
        self._budget = 0
        self._forgets = 0
        self.set_budget(budget_bytes)

    @property
    def budget(self) -> int:
        """The byte budget (0: off)."""
        return self._budget

    @property
    def used(self) -> int:
        """Bytes of decoded frames kept now."""
        return self._used

    def set_budget(self, budget_bytes: int) -> None:
        """Change the budget, dropping the least recently used frames that no longer fit.

        Raises
        ------
        ValueError
            If ``budget_bytes`` is negative.
        """
        if budget_bytes < 0:
            raise ValueError(f"read cache budget must be 0 or more bytes, not {budget_bytes}")
        with self._lock:
            self._budget = budget_bytes
            self._shrink(0)

    def get(self, key: CacheKey) -> CachedFile | None:
        """The decrypted file behind ``key``, or None when not kept."""
        with self._lock:
            hit = self._frames.get(key)
            if hit is None:
                return None
            self._frames.move_to_end(key)
            return hit[0]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._frames

    @property
    def generation(self) -> int:
        """How many times :meth:`forget` ran; give it to :meth:`put` as ``since``."""
        with self._lock:
            return self._forgets

    def room_for(self, n_bytes: int) -> bool:
        """Whether frames of ``n_bytes`` in all would fit in the budget at all."""
        return 0 < n_bytes <= self._budget

    def put(self, key: CacheKey, entry: CachedFile, *, since: int, evict: bool = True) -> None:
        """Keep ``entry`` (evicting the least recently used); one over budget is not kept.

        ``since`` is :attr:`generation` read before the file was decrypted: when a partition
        was forgotten (purged) meanwhile, nothing is kept, so a purge never races a fill.
        With ``evict=False`` the entry is kept only if it fits without evicting another.
        """
        size = entry.size
        with self._lock:
            if size > self._budget or since != self._forgets:
                return
            if not evict and self._used + size > self._budget:
                return
            old = self._frames.pop(key, None)
            if old is not None:
                self._used -= old[1]
            self._shrink(size)
            self._frames[key] = (entry, size)
            self._used += size

    def forget(self, folder: str) -> None:
        """Drop every frame of a file under ``folder`` (a path ending in the separator)."""
        with self._lock:
            self._forgets += 1
            for key in [k for k in self._frames if k[0].startswith(folder)]:
                self._used -= self._frames.pop(key)[1]

    def _shrink(self, incoming: int) -> None:
        while self._frames and self._used + incoming > self._budget:
            _, (_, size) = self._frames.popitem(last=False)
            self._used -= size


#: The process's one cache (the service sets its budget from `serve --read-cache-mb`).
READ_CACHE = ReadCache(DEFAULT_BUDGET_BYTES)
