"""Exceptions shared by every layer of the workbench."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class SchemaValidationError(WorkbenchError, ValueError):
    """A batch broke a rule declared in ``data_schema/``.

    Parameters
    ----------
    table
        Table being validated.
    column
        Offending column (or ``None`` for table-level problems).
    row
        Zero-based index of the first offending row within the batch, if any.
    rule
        The rule that was broken, in words.
    """

    def __init__(self, table: str, column: str | None, row: int | None, rule: str) -> None:
        self.table = table
        self.column = column
        self.row = row
        self.rule = rule
        where = f"table {table!r}"
        if column is not None:
            where += f", column {column!r}"
        if row is not None:
            where += f", row {row}"
        super().__init__(f"{where}: {rule}")


class StoreError(WorkbenchError):
    """The encrypted store could not complete an operation; nothing was changed."""


class KeyStoreError(WorkbenchError):
    """The key store is missing, locked, corrupted or lacks a key."""


class KeyDestroyedError(KeyStoreError):
    """The master key was destroyed (crypto-shredded); the data it protected is gone."""


class PatternTooBroad(WorkbenchError):
    """A pattern search would compare more pairs of reads than one search may."""
