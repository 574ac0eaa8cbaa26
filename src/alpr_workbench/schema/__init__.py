"""Table declarations from ``data_schema/``, turned into Arrow/Polars schemas and validators."""

from alpr_workbench.schema._spec import (
    FieldSpec,
    TableSpec,
    list_tables,
    load_table,
    schema_dir,
)
from alpr_workbench.schema._validate import empty_frame, validate_frame

__all__ = [
    "FieldSpec",
    "TableSpec",
    "empty_frame",
    "list_tables",
    "load_table",
    "schema_dir",
    "validate_frame",
]
