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
    columns: list[pl.Series | pl.Expr] = []
    for field in spec.fields:
        if field.name not in frame.columns:
            if field.required:
                raise SchemaValidationError(table, field.name, None, "required column is missing")
            columns.append(pl.lit(None, dtype=field.polars_dtype).alias(field.name))
            continue
        columns.append(_conform_column(spec, field, frame.get_column(field.name)))
    out = frame.select(columns)
    _check_constraints(spec, out)
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


def _rules(field: FieldSpec) -> list[tuple[pl.Expr, str]]:
    """(violation mask, rule in words) for every declared constraint of one column."""
    col = pl.col(field.name)
    rules: list[tuple[pl.Expr, str]] = []
    if field.required:
        rules.append((col.is_null(), "required value is missing"))
    if field.type in ("float32", "float64"):
        rules.append((col.is_nan(), "value is NaN"))
    if field.pattern is not None and field.type == "string":
        rules.append((~col.str.contains(field.pattern), f"does not match pattern {field.pattern}"))
    if field.enum is not None:
        rules.append((~col.is_in(list(field.enum)), f"is not one of {list(field.enum)}"))
    if field.minimum is not None:
        rules.append((col < field.minimum, f"value below minimum {field.minimum}"))
    if field.maximum is not None:
        rules.append((col > field.maximum, f"value above maximum {field.maximum}"))
    if field.unique:
        rules.append((col.is_duplicated() & col.is_not_null(), "duplicate value within the batch"))
    return rules


def _suspect(mask: pl.Expr, rule: str, name: str) -> pl.Expr:
    """Cheap per-rule flag; for uniqueness a hash count (exact check only when it fires)."""
    if rule.startswith("duplicate"):
        values = pl.col(name).drop_nulls()
        return (values.hash().n_unique() != values.len()).cast(pl.UInt32)
    return mask.fill_null(False).sum()


def _check_constraints(spec: TableSpec, frame: pl.DataFrame) -> None:
    checks = [(field, mask, rule) for field in spec.fields for mask, rule in _rules(field)]
    if not checks or frame.height == 0:
        return
    # One parallel pass computes every rule's violation count; details only on failure.
    counts = frame.select(
        _suspect(mask, rule, field.name).alias(str(i))
        for i, (field, mask, rule) in enumerate(checks)
    ).row(0)
    for (field, mask, rule), count in zip(checks, counts, strict=True):
        if count and frame.select(mask.fill_null(False).any()).item():
            row = int(frame.select(mask.fill_null(False).arg_max()).item())
            value = frame.get_column(field.name)[row]
            if field.type in ("string", "list[string]") or "pattern" in rule or "one of" in rule:
                rule = (
                    f"value {value!r} {rule}"
                    if not rule.startswith(("value", "required", "duplicate"))
                    else rule
                )
            if rule.startswith("duplicate"):
                rule = f"duplicate value {value!r} within the batch"
            raise SchemaValidationError(spec.name, field.name, row, rule)
