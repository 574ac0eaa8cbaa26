"""Split each shared evaluation set once into a tuning part and a check part.

Why (issue #17, plate recognition that holds up on photos it was never tuned on): the reader
shipped in v0.3 read 87.8 % of the dev crops it had been tuned on (recipes and thresholds were
chosen by looking at that set's errors) but 78.4 % of the hidden hold-out crops. A figure
measured on the data that shaped the recipe overstates what a new photo will see. So every
shared set (``openalpr_us_crops_dev``, ``openalpr_us_dev``) is split here, once, by a fixed
rule on the file name:

- the **tuning** part (about two thirds): look at its errors, choose recipes and thresholds on
  it;
- the **check** part (about one third): read only its aggregate figures, never its individual
  errors, so that it stays a fair check of the choices made on the tuning part.

Neither part is ever trained on. The benchmark (``benchmarks/bench_recognition.py``) and the
model card report both parts; a gap between them is a finding to state.

The rule: take the file's base name without folder and extension (``ak1165`` for
``./ak1165.png``; a photo and its annotation file share it), encode it as UTF-8, hash it with
SHA-256, and read the first 8 bytes of the digest as a big-endian integer; when it is a
multiple of 3 the file is in the check part, otherwise in the tuning part. The rule depends
on the name alone, not on the order, the folder or the rest of the set, so adding or removing
files never moves another file to the other part. Do not change it: changing it mixes parts
whose errors have been read into the check part.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import PurePath
from typing import Final, Literal

__all__ = ["CHECK", "PARTS", "TUNING", "split_of"]

Part = Literal["tuning", "check"]

TUNING: Final = "tuning"
CHECK: Final = "check"
#: The parts, in the order reports list them.
PARTS: Final[tuple[Part, Part]] = (TUNING, CHECK)


def split_of(file_name: str | os.PathLike[str]) -> Part:
    """Say which part of its evaluation set a file belongs to.

    Parameters
    ----------
    file_name
        The file's name or path (``"ak1165.png"``, ``Path("./ak1165.png")``); only its base
        name without extension counts.

    Returns
    -------
    str
        ``"tuning"`` (about two thirds of the files) or ``"check"`` (the rest), by the fixed
        rule in the module docstring.

    Raises
    ------
    ValueError
        If the name is empty or is not a string or path, since such a name has no part.

    Examples
    --------
    >>> split_of("ak1165.png")
    'tuning'
    >>> split_of("/data/openalpr_us_crops_dev/ak1165.png") == split_of("ak1165.jpg")
    True
    """
    if not isinstance(file_name, str | os.PathLike):
        raise ValueError(
            f"split_of needs a file name (str or path), not {type(file_name).__name__}"
        )
    stem = PurePath(os.fspath(file_name)).stem
    if not stem:
        raise ValueError(f"split_of needs a file name with a base name, got {file_name!r}")
    digest = hashlib.sha256(stem.encode("utf-8")).digest()
    return CHECK if int.from_bytes(digest[:8], "big") % 3 == 0 else TUNING
