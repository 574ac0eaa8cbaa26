"""Load table declarations and derive Arrow and Polars types from them."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import yaml

from alpr_workbench.errors import WorkbenchError

SUPPORTED_VERSION = 1

_POLARS_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "int32": pl.Int32(),
    "int64": pl.Int64(),
    "float32": pl.Float32(),
    "float64": pl.Float64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
    "list[string]": pl.List(pl.String()),
}
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.large_string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "list[string]": pa.large_list(pa.large_string()),
}
#: The declarations shipped inside the package (``alpr_workbench/data_schema/``).
_DEFAULT_SCHEMA_DIR = Path(str(files("alpr_workbench").joinpath("data_schema")))
_FIELD_KEYS = {"name", "type", "description", "unit", "sensitivity", "constraints"}
_CONSTRAINT_KEYS = {"required", "unique", "pattern", "enum", "min", "max"}


@dataclass(frozen=True)
class FieldSpec:
    """One declared column.

    Attributes
    ----------
    name, type, description
        Column name, declared type (see ``data_schema/README.md``) and meaning.
    unit
        Unit of measure, if any.
    sensitivity
        ``"personal"`` (encrypted with the personal-data column key) or ``"operational"``.
    required, unique, pattern, enum, minimum, maximum
        Constraints checked by :func:`alpr_workbench.schema.validate_frame`.
    """

    name: str
    type: str
    description: str
    unit: str | None
    sensitivity: str
    required: bool
    unique: bool
    pattern: str | None
    enum: tuple[str, ...] | None
    minimum: float | None
    maximum: float | None

    @property
    def polars_dtype(self) -> pl.DataType:
        """Polars dtype of the column."""
        return _POLARS_TYPES[self.type]

    @property
    def arrow_type(self) -> pa.DataType:
        """Arrow type of the column."""
        return _ARROW_TYPES[self.type]


@dataclass(frozen=True)
class TableSpec:
    """A declared table: its fields and the schemas derived from them."""

    name: str
    version: int
    description: str
    primary_key: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    sort_by: tuple[str, ...]
    partition_by: str | None

    @property
    def columns(self) -> list[str]:
        """Column names in declaration order."""
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        """Return the declaration of column ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def polars_schema(self) -> pl.Schema:
        """Polars schema of the table."""
        return pl.Schema({f.name: f.polars_dtype for f in self.fields})

    @property
    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of the table, with descriptions as field metadata."""
        return pa.schema(
            [
                pa.field(
                    f.name,
                    f.arrow_type,
                    nullable=not f.required,
                    metadata={"description": f.description, "unit": f.unit or ""},
                )
                for f in self.fields
            ],
            metadata={"table": self.name, "schema_version": str(self.version)},
        )

    @property
    def personal_columns(self) -> list[str]:
        """Columns holding personal data (plate, location, image reference...)."""
        return [f.name for f in self.fields if f.sensitivity == "personal"]

    @property
    def operational_columns(self) -> list[str]:
        """Columns holding operational data."""
        return [f.name for f in self.fields if f.sensitivity == "operational"]


def schema_dir() -> Path:
    """Return the folder holding the table declarations.

    ``ALPR_WORKBENCH_SCHEMA_DIR`` overrides the default, the ``data_schema/`` folder shipped
    inside the package (``alpr_workbench/data_schema/``).
    """
    override = os.environ.get("ALPR_WORKBENCH_SCHEMA_DIR")
    if override:
        return Path(override)
    return _DEFAULT_SCHEMA_DIR


@functools.cache
def _table_names(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in folder.glob("*.yaml")))


def list_tables() -> list[str]:
    """Names of every declared table, sorted.

    Examples
    --------
    >>> "reads" in list_tables()
    True
    """
    return list(_table_names(schema_dir()))


@functools.cache
def load_table(name: str) -> TableSpec:
    """Load and check the declaration of table ``name``.

    Parameters
    ----------
    name
        Table name (the YAML file's stem).

    Returns
    -------
    TableSpec
        The parsed declaration.

    Raises
    ------
    WorkbenchError
        If the file is missing or malformed.

    Examples
    --------
    >>> load_table("reads").field("plate").sensitivity
    'personal'
    """
    path = schema_dir() / f"{name}.yaml"
    if not path.is_file():
        raise WorkbenchError(f"no schema declared for table {name!r} (looked for {path})")
    raw = yaml.safe_load(path.read_text())
    return _parse_table(raw, path)


def _parse_table(raw: dict[str, Any], path: Path) -> TableSpec:
    def fail(msg: str) -> WorkbenchError:
        return WorkbenchError(f"{path.name}: {msg}")

    if raw.get("version") != SUPPORTED_VERSION:
        raise fail(f"unsupported schema version {raw.get('version')!r}")
    if raw.get("table") != path.stem:
        raise fail(f"table name {raw.get('table')!r} does not match the file name")
    fields = []
    seen: set[str] = set()
    for item in raw.get("fields") or []:
        unknown = set(item) - _FIELD_KEYS
        if unknown:
            raise fail(f"field {item.get('name')!r} has unknown keys {sorted(unknown)}")
        cons = item.get("constraints") or {}
        unknown = set(cons) - _CONSTRAINT_KEYS
        if unknown:
            raise fail(f"field {item['name']!r} has unknown constraints {sorted(unknown)}")
        if item["type"] not in _POLARS_TYPES:
            raise fail(f"field {item['name']!r} has unknown type {item['type']!r}")
        if item.get("sensitivity") not in ("personal", "operational"):
            raise fail(f"field {item['name']!r} needs sensitivity personal or operational")
        if not item.get("description"):
            raise fail(f"field {item['name']!r} has no description")
        if item["name"] in seen:
            raise fail(f"field {item['name']!r} is declared twice")
        seen.add(item["name"])
        fields.append(
            FieldSpec(
                name=item["name"],
                type=item["type"],
                description=item["description"],
                unit=item.get("unit"),
                sensitivity=item["sensitivity"],
                required=bool(cons.get("required", False)),
                unique=bool(cons.get("unique", False)),
                pattern=cons.get("pattern"),
                enum=tuple(cons["enum"]) if "enum" in cons else None,
                minimum=cons.get("min"),
                maximum=cons.get("max"),
            )
        )
    spec = TableSpec(
        name=raw["table"],
        version=raw["version"],
        description=raw.get("description", ""),
        primary_key=tuple(raw.get("primary_key") or ()),
        fields=tuple(fields),
        sort_by=tuple(raw.get("sort_by") or ()),
        partition_by=raw.get("partition_by"),
    )
    for col in (
        *spec.primary_key,
        *spec.sort_by,
        *([spec.partition_by] if spec.partition_by else []),
    ):
        if col not in seen:
            raise fail(f"{col!r} is named as a key but not declared as a field")
    return spec
