import datetime as dt

import polars as pl
import pytest

from alpr_workbench.errors import SchemaValidationError
from alpr_workbench.schema import empty_frame, list_tables, load_table, validate_frame
from conftest import make_reads

EXPECTED_TABLES = {
    "networks",
    "cameras",
    "reads",
    "hotlists",
    "hotlist_entries",
    "hits",
    "outcomes",
    "cases",
    "users",
    "sharing_grants",
    "legal_holds",
    "audit_events",
    "search_approvals",
    "oidc_bindings",
}


def test_every_table_is_declared_and_builds():
    assert set(list_tables()) == EXPECTED_TABLES
    for name in list_tables():
        spec = load_table(name)
        assert spec.arrow_schema.names == spec.columns
        assert list(spec.polars_schema) == spec.columns
        assert empty_frame(name).schema == spec.polars_schema
        assert set(spec.primary_key) <= set(spec.columns)
        for field in spec.fields:
            assert field.description.strip(), (name, field.name)
            # naming conventions (docs/conventions.md §4)
            if field.type == "datetime":
                assert field.name.endswith("_at") or field.name.startswith("window_"), field.name
            if field.type == "bool":
                assert field.name.startswith(("is_", "has_")), field.name


def test_read_carries_what_the_issue_requires():
    cols = set(load_table("reads").columns)
    assert {
        "read_id",
        "camera_id",
        "network_id",
        "captured_at",
        "plate",
        "plate_state",
        "confidence_pct",
        "alternate_plates",
        "box_x_px",
        "box_y_px",
        "box_w_px",
        "box_h_px",
        "vehicle_make",
        "vehicle_color",
        "vehicle_type",
        "image_ref",
    } <= cols
    assert set(load_table("reads").personal_columns) >= {"plate", "lat", "lon", "image_ref"}


def test_valid_batch_is_conformed():
    out = validate_frame("reads", make_reads(50))
    assert out.columns == load_table("reads").columns
    assert out.schema["captured_at"] == pl.Datetime("us", "UTC")
    assert out["box_x_px"].null_count() == 50  # optional columns filled


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("plate", "7AB-123", "does not match pattern"),
        ("plate", "7ab c12", "does not match pattern"),
        ("lat", 95.0, "above maximum"),
        ("lon", -181.0, "below minimum"),
        ("confidence_pct", 101.0, "above maximum"),
        ("source", "fax", "is not one of"),
        ("camera_id", None, "required value is missing"),
    ],
)
def test_bad_values_name_table_column_row_and_rule(column, value, rule):
    frame = make_reads(20)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .cast(frame.schema[column])
        .alias(column)
    )
    with pytest.raises(SchemaValidationError) as info:
        validate_frame("reads", frame)
    err = info.value
    assert (err.table, err.column, err.row) == ("reads", column, 7)
    assert rule in str(err)
    assert "table 'reads'" in str(err) and f"column {column!r}" in str(err) and "row 7" in str(err)


def test_naive_timestamps_are_refused():
    frame = make_reads(5).with_columns(pl.col("captured_at").dt.replace_time_zone(None))
    with pytest.raises(SchemaValidationError, match="naive timestamp"):
        validate_frame("reads", frame)


def test_other_time_zones_are_converted_to_utc():
    frame = make_reads(5)
    local = frame.with_columns(pl.col("captured_at").dt.convert_time_zone("America/Los_Angeles"))
    out = validate_frame("reads", local)
    assert out["captured_at"].to_list() == frame["captured_at"].to_list()


def test_duplicate_ids_within_a_batch_are_refused():
    frame = make_reads(10)
    frame = pl.concat([frame, frame.slice(3, 1)])
    with pytest.raises(SchemaValidationError, match="duplicate value") as info:
        validate_frame("reads", frame)
    assert info.value.row == 3


def test_missing_required_and_unknown_columns():
    with pytest.raises(SchemaValidationError, match="required column is missing"):
        validate_frame("reads", make_reads(5).drop("plate"))
    with pytest.raises(SchemaValidationError, match="not declared"):
        validate_frame("reads", make_reads(5).with_columns(pl.lit(1).alias("driver_name")))


def test_uncastable_value_is_named():
    frame = pl.DataFrame(
        {
            "camera_id": ["c1"],
            "network_id": ["n"],
            "name": ["x"],
            "lat": ["north"],
            "lon": [1.0],
            "direction": ["N"],
            "installed_date": [dt.date(2026, 1, 1)],
        }
    )
    with pytest.raises(SchemaValidationError, match="cannot be read as float64"):
        validate_frame("cameras", frame)


def test_not_a_frame():
    with pytest.raises(SchemaValidationError, match="expected a polars DataFrame"):
        validate_frame("reads", {"plate": ["X"]})  # type: ignore[arg-type]


# Fields the synthetic city leaves empty on purpose, and the component that fills them.
FILLED_ELSEWHERE = {
    ("cameras", "removed_date"): "set when a camera is decommissioned",
    ("legal_holds", "released_at"): "governance.admin.release_legal_hold",
    ("audit_events", "refusal_reason"): "the gate, on a refusal",
    ("audit_events", "seq"): "the audit log, on append",
    ("reads", "frame_count"): "ingest-frames, when several frames of one vehicle vote",
    ("users", "person_id"): "an administrator, `users set-person` (tests/test_person_id.py)",
}


def test_every_declared_field_is_used():
    import datetime as dt

    from alpr_workbench.synth import CityConfig, generate_city, generate_day

    city = generate_city(CityConfig(days=30, scale=0.05))
    days = [generate_day(city, city.config.start_date + dt.timedelta(days=i)) for i in range(30)]
    frames = {
        name: getattr(city, name)
        for name in list_tables()
        # Written only by the service (approvals, OIDC sign-in); their own tests fill them.
        if name not in ("reads", "hits", "outcomes", "search_approvals", "oidc_bindings")
    }
    frames["reads"] = pl.concat([d.reads for d in days])
    frames["hits"] = pl.concat([d.hits for d in days])
    frames["outcomes"] = pl.concat([d.outcomes for d in days])
    unused = [
        (name, col)
        for name, frame in frames.items()
        for col in load_table(name).columns
        if frame.get_column(col).null_count() == frame.height
        and (name, col) not in FILLED_ELSEWHERE
    ]
    assert unused == []
