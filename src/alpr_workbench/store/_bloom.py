"""A Bloom filter over plates, so an exact-plate lookup opens only the files that may hold it.

Plates are at most 8 characters of ``A-Z0-9`` (the schema guarantees it), so each packs
exactly into a 64-bit integer; a splitmix64 mix of that integer gives a stable, vectorised hash
that does not depend on any library's internal hash. Filters are sealed at rest (they reveal
which plates a file holds) by the partition's personal-data master key.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

import numpy as np
import polars as pl

FALSE_POSITIVE_RATE = 0.01
#: A stored plate is at most this many ASCII characters (the schema's ``^[A-Z0-9]{1,8}$``).
PLATE_BYTES = 8
_K = 7
_HEADER = struct.Struct("<4sQI")  # magic, number of bits, number of hashes
_MAGIC = b"BLM1"


def _pack(values: pl.Series | list[str]) -> np.ndarray:
    series = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.String)
    raw = series.drop_nulls().unique().to_numpy().astype(f"S{PLATE_BYTES}")
    return raw.view(np.uint64) if raw.size else np.zeros(0, dtype=np.uint64)


def packable(values: Iterable[str]) -> list[str]:
    """The ``values`` that could be stored plates' bytes: other text matches no stored plate.

    Text longer than :data:`PLATE_BYTES` or not ASCII is left out (packing would truncate or
    fail on it), so callers that look plates up by their packed bytes skip it, never err.
    """
    return [v for v in values if v.isascii() and len(v) <= PLATE_BYTES]


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _positions(keys: np.ndarray, n_bits: int, k: int) -> np.ndarray:
    h1 = _mix(keys)
    h2 = _mix(keys ^ np.uint64(0x5851F42D4C957F2D)) | np.uint64(1)
    steps = np.arange(k, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        return ((h1[None, :] + steps * h2[None, :]) % np.uint64(n_bits)).ravel()


def build_filter(values: pl.Series) -> bytes:
    """Build a serialised Bloom filter of the distinct plates in ``values``."""
    keys = _pack(values)
    n_bits = max(
        64, math.ceil(-max(len(keys), 1) * math.log(FALSE_POSITIVE_RATE) / math.log(2) ** 2)
    )
    flags = np.zeros(((n_bits + 7) // 8) * 8, dtype=bool)
    if len(keys):
        flags[_positions(keys, n_bits, _K).astype(np.int64)] = True
    bits = np.packbits(flags, bitorder="little")  # bit i of byte j is position 8*j + i
    return _HEADER.pack(_MAGIC, n_bits, _K) + bits.tobytes()


def plate_hashes(plates: list[str]) -> list[tuple[int, int]]:
    """The two base hashes of each plate, computed once per query."""
    keys = _pack(packable(plates))
    return list(
        zip(
            _mix(keys).tolist(),
            (_mix(keys ^ np.uint64(0x5851F42D4C957F2D)) | np.uint64(1)).tolist(),
            strict=True,
        )
    )


def may_contain_any(serialised: bytes, hashes: list[tuple[int, int]]) -> bool:
    """False only when none of the plates behind ``hashes`` can be in the filtered file."""
    magic, n_bits, k = _HEADER.unpack_from(serialised)
    if magic != _MAGIC:
        raise ValueError("not a plate filter")
    base = _HEADER.size
    mask = (1 << 64) - 1
    for h1, h2 in hashes:
        for i in range(k):
            pos = ((h1 + i * h2) & mask) % n_bits
            if not (serialised[base + (pos >> 3)] >> (pos & 7)) & 1:
                break
        else:
            return True
    return False
