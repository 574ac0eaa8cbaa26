"""Plate text rules shared by every layer: normalisation and wildcard patterns."""

from __future__ import annotations

import re

import polars as pl

from alpr_workbench.errors import WorkbenchError

__all__ = [
    "PlateTextError",
    "canonical_pattern",
    "canonical_plate",
    "normalize_plate",
    "pattern_literals",
    "plate_pattern_filter",
    "wildcard_to_regex",
]


_WILDCARD = re.compile(r"^[A-Z0-9?*]{1,8}$")
_PLATE = re.compile(r"^[A-Z0-9]{1,8}$")
# What a person may type between a plate's characters: ASCII space and hyphen, nothing else
# (no tab, no-break or em space, zero-width character or look-alike dash).
_SEPARATORS = re.compile(r"[ -]")


class PlateTextError(WorkbenchError, ValueError):
    """A plate or partial plate that is not plain plate text (a ``ValueError`` for pydantic)."""


def _canonical(text: str, allowed: re.Pattern[str], what: str) -> str:
    if not text.isascii():
        raise PlateTextError(
            f"{what} {text!r} holds a character outside ASCII letters, digits, '?', '*', "
            "space and '-' (Unicode spaces, full-width or look-alike characters are refused)"
        )
    canonical = _SEPARATORS.sub("", text).upper()
    if not allowed.fullmatch(canonical):
        raise PlateTextError(
            f"{what} {text!r} may hold only letters, digits"
            + (", '?' and '*'" if allowed is _WILDCARD else "")
            + " (8 at most), optionally separated by spaces or '-'"
        )
    return canonical


def canonical_plate(text: str) -> str:
    """The one form of an exact plate every check and query sees, or an error.

    Raises
    ------
    PlateTextError
        If the text holds anything but ASCII letters, digits, spaces and hyphens, or more
        than 8 characters.

    Examples
    --------
    >>> canonical_plate(" 7abc-123 ")
    '7ABC123'
    """
    return _canonical(text, _PLATE, "plate")


def canonical_pattern(text: str) -> str:
    """The one form of a partial plate every check and query sees, or an error.

    Raises
    ------
    PlateTextError
        If the text holds anything but ASCII letters, digits, ``?``, ``*``, spaces and
        hyphens, or more than 8 characters.

    Examples
    --------
    >>> canonical_pattern("7ab-?12*")
    '7AB?12*'
    >>> canonical_pattern("---*")
    '*'
    """
    return _canonical(text, _WILDCARD, "partial plate")


def pattern_literals(pattern: str) -> int:
    """How many known characters (letters and digits) a partial plate holds.

    Examples
    --------
    >>> pattern_literals("7AB?12*"), pattern_literals("---*")
    (5, 0)
    """
    return sum(c.isascii() and c.isalnum() for c in pattern)


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
    PlateTextError
        If the pattern is not a partial plate (see :func:`canonical_pattern`).

    Examples
    --------
    >>> wildcard_to_regex("7ab?12*")
    '^7AB[A-Z0-9]12[A-Z0-9]*$'
    """
    text = canonical_pattern(pattern)
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
