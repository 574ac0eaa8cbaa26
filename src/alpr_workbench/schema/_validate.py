"""Check a batch against its table declaration and conform it to the declared schema."""

from __future__ import annotations

import polars as pl

from alpr_workbench.errors import SchemaValidationError
from alpr_workbench.schema._spec import FieldSpec, TableSpec, load_table


def empty_frame(table: str) -> pl.DataFrame:
    """Return an empty frame with the declared schema of ``table``.

    Examples
    --------
    >>> empty_frame("cameras").columns[:2]
    ['camera_id', 'network_id']
    """
    return pl.DataFrame(schema=load_table(table).polars_schema)


def validate_frame(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Validate ``frame`` against the declaration of ``table``.

    Parameters
    ----------
    table
        Declared table name.
    frame
        The batch. Optional columns may be missing (they become nulls); undeclared columns
        are refused.

    Returns
    -------
    polars.DataFrame
        The batch with declared column order and dtypes; timestamps in UTC.

    Raises
    ------
    SchemaValidationError
        Naming the table, the column, the first offending row and the rule broken.

    Examples
    --------
    >>> import polars as pl
    >>> try:
    ...     validate_frame("cameras", pl.DataFrame({"camera_id": ["c1"]}))
    ... except SchemaValidationError as exc:
    ...     print(exc)
    table 'cameras', column 'network_id': required column is missing
    """
    spec = load_table(table)
    if not isinstance(frame, pl.DataFrame):
        raise SchemaValidationError(
            table, None, None, f"expected a polars DataFrame, got {type(frame).__name__}"
        )
    extra = [c for c in frame.columns if c not in spec.columns]
    if extra:
        raise SchemaValidationError(table, extra[0], None, "column is not declared in the schema")
    columns = []
    for field in spec.fields:
        if field.name not in frame.columns:
            if field.required:
                raise SchemaValidationError(table, field.name, None, "required column is missing")
            columns.append(pl.Series(field.name, [None] * frame.height, dtype=field.polars_dtype))
            continue
        columns.append(_conform_column(spec, field, frame.get_column(field.name)))
    out = pl.DataFrame(columns)
    for field in spec.fields:
        _check_constraints(spec, field, out.get_column(field.name))
    return out


def _first(mask: pl.Series) -> int | None:
    idx = mask.fill_null(False).arg_true()
    return int(idx[0]) if len(idx) else None


def _conform_column(spec: TableSpec, field: FieldSpec, col: pl.Series) -> pl.Series:
    target = field.polars_dtype
    if col.dtype == pl.Null:
        return pl.Series(field.name, [None] * len(col), dtype=target)
    if field.type == "datetime":
        if not isinstance(col.dtype, pl.Datetime):
            raise SchemaValidationError(
                spec.name,
                field.name,
                None,
                f"expected a UTC timestamp, got {col.dtype}",
            )
        if col.dtype.time_zone is None:
            raise SchemaValidationError(
                spec.name,
                field.name,
                _first(col.is_not_null()),
                "naive timestamp (no time zone); give UTC times",
            )
        return col.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if field.type == "date" and isinstance(col.dtype, pl.Datetime):
        raise SchemaValidationError(
            spec.name, field.name, None, f"expected a date, got {col.dtype}"
        )
    if col.dtype == target:
        return col
    cast = col.cast(target, strict=False)
    bad = cast.is_null() & col.is_not_null()
    if bad.any():
        raise SchemaValidationError(
            spec.name,
            field.name,
            _first(bad),
            f"value {col[_first(bad)]!r} cannot be read as {field.type}",
        )
    return cast


def _check_constraints(spec: TableSpec, field: FieldSpec, col: pl.Series) -> None:
    def fail(mask: pl.Series, rule: str) -> None:
        row = _first(mask)
        if row is not None:
            raise SchemaValidationError(spec.name, field.name, row, rule)

    if field.required:
        fail(col.is_null(), "required value is missing")
    if field.type in ("float32", "float64"):
        fail(col.is_nan(), "value is NaN")
    if field.pattern is not None and field.type == "string":
        bad = ~col.str.contains(field.pattern)
        row = _first(bad)
        if row is not None:
            raise SchemaValidationError(
                spec.name,
                field.name,
                row,
                f"value {col[row]!r} does not match pattern {field.pattern}",
            )
    if field.enum is not None:
        bad = ~col.is_in(list(field.enum))
        row = _first(bad)
        if row is not None:
            raise SchemaValidationError(
                spec.name,
                field.name,
                row,
                f"value {col[row]!r} is not one of {list(field.enum)}",
            )
    if field.minimum is not None:
        fail(col < field.minimum, f"value below minimum {field.minimum}")
    if field.maximum is not None:
        fail(col > field.maximum, f"value above maximum {field.maximum}")
    if field.unique:
        dup = col.is_duplicated() & col.is_not_null()
        row = _first(dup)
        if row is not None:
            raise SchemaValidationError(
                spec.name, field.name, row, f"duplicate value {col[row]!r} within the batch"
            )
