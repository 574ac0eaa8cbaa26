"""Plate text rules shared by every layer: normalisation and wildcard patterns."""

from __future__ import annotations

import re

from alpr_workbench.errors import WorkbenchError

__all__ = ["normalize_plate", "wildcard_to_regex"]

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
