"""Plate text rules shared by every layer: normalisation and wildcard patterns."""

from __future__ import annotations

import re

import polars as pl

from alpr_workbench.errors import WorkbenchError

__all__ = ["normalize_plate", "plate_pattern_filter", "wildcard_to_regex"]


_WILDCARD = re.compile(r"^[A-Z0-9?*]{1,8}$")


def normalize_plate(text: str) -> str:
    """Upper-case a plate and drop spaces and dashes.

    Examples
    --------
    >>> normalize_plate(" 7abc-123 ")
    '7ABC123'
    """
    return re.sub(r"[\s-]", "", text).upper()


def wildcard_to_regex(pattern: str) -> str:
    """Turn a partial plate (``?`` one character, ``*`` any run) into an anchored regex.

    Raises
    ------
    WorkbenchError
        If the pattern holds anything but letters, digits, ``?`` and ``*``.

    Examples
    --------
    >>> wildcard_to_regex("7ab?12*")
    '^7AB[A-Z0-9]12[A-Z0-9]*$'
    """
    text = normalize_plate(pattern)
    if not _WILDCARD.fullmatch(text):
        raise WorkbenchError(
            f"partial plate {pattern!r} may hold only letters, digits, '?' and '*' (8 at most)"
        )
    return "^" + text.replace("?", "[A-Z0-9]").replace("*", "[A-Z0-9]*") + "$"


def plate_pattern_filter(pattern: str, *, column: str = "plate") -> pl.Expr:
    """A Polars filter for a partial plate that can also skip row groups.

    Besides the anchored regex, the pattern's leading known characters become a range on the
    (plate-sorted) column, which readers check against row-group statistics.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"plate": ["7ABC123", "7ABD129", "8ABC123"]})
    >>> df.filter(plate_pattern_filter("7AB?12*"))["plate"].to_list()
    ['7ABC123', '7ABD129']
    """
    regex = wildcard_to_regex(pattern)
    expr = pl.col(column).str.contains(regex)
    prefix = re.match(r"\^([A-Z0-9]*)", regex)
    literal = prefix.group(1) if prefix else ""
    if literal:
        upper = literal[:-1] + chr(ord(literal[-1]) + 1)
        expr = (pl.col(column) >= literal) & (pl.col(column) < upper) & expr
    return expr
