"""Import of vendor (Flock) search-audit exports into audit events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.vendor_import import (
    VendorImport,
    classify_organization,
    read_vendor_audit,
)
from alpr_workbench.schema import validate_frame

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flock_audit_samples"
OKALOOSA = "11_1_2025-12_8_2025-Okaloosa_County_FL_SO-Audit_EXTRACTED.csv"
EUGENE = "EPDSearchAuditLogs.csv"

ORG_HEADER = (
    "ID,Name,Org Name,Total Networks Searched,Time Frame,License Plate,Reason,Case #,Filters,"
    "Search Time,Search Type,Text Prompt,Moderation"
)


def _write(tmp_path: Path, text: str, name: str = "audit.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def _accounted(result: VendorImport) -> None:
    assert result.events.height + result.rejected.height == result.rows_read
    assert validate_frame("audit_events", result.events).equals(result.events)
    assert result.events["event_id"].is_unique().all()
    assert set(result.events["event_type"]) <= {"vendor_search"}
    assert result.rejected.schema == pl.Schema(
        {"line": pl.Int64, "reason": pl.String, "raw": pl.String}
    )


# --- the real exports ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples() -> Path:
    if not (SAMPLES / OKALOOSA).is_file() or not (SAMPLES / EUGENE).is_file():
        pytest.skip(f"vendor audit samples not present in {SAMPLES}")
    return SAMPLES


def test_okaloosa_org_audit_imports_every_row(samples: Path) -> None:
    result = read_vendor_audit(samples / OKALOOSA)
    _accounted(result)
    assert result.format == "flock_org_audit"
    assert result.rows_read == 7273
    assert result.events.height == 7273
    events = result.events
    assert set(events["organization"]) == {"Okaloosa County FL SO"}
    assert set(events["organization_type"]) == {"out_of_state"}
    assert events["occurred_at"].min() == _utc(2025, 11, 1, 8, 51, 59)
    assert events["window_from"].null_count() == 0
    assert events["window_from"].min().date() == dt.date(2024, 6, 19)
    assert events["networks_searched"].max() == 6709
    assert events["reason_text"].null_count() == 9
    assert events["user_id"].null_count() == events.height  # redacted
    assert (events["outcome"] == "refused").sum() == 12  # moderation "block"
    first = json.loads(events["query_json"][0])
    assert first["Total_Devices_Searched"] == "17652"


def test_eugene_public_search_audit_imports_every_row(samples: Path) -> None:
    result = read_vendor_audit(samples / EUGENE, organization="Eugene OR PD")
    _accounted(result)
    assert result.format == "flock_public_search_audit"
    assert result.rows_read == 4294
    assert result.events.height == 4294
    events = result.events
    assert set(events["organization_type"]) == {"out_of_state"}
    assert events["user_id"].n_unique() == 147
    assert events["occurred_at"].min() == _utc(2025, 6, 18, 0, 2, 4, 789000)
    assert events["networks_searched"].null_count() == events.height
    assert "cameraCount" in json.loads(events["query_json"][0])
    assert events["reason_text"].null_count() == 5


# --- synthetic exports --------------------------------------------------------------------------


def test_full_org_audit_with_multiline_time_frame(tmp_path: Path) -> None:
    text = (
        ORG_HEADER + ",Offense Type\n"
        'a1,jdoe,Burbank PD,2,"11/13/2025, 10:00:17 PM UTC\n11/14/2025, 10:00:17 AM UTC",'
        '7ABC123,stolen vehicle,BPD-2026-000123,,"11/14/2025, 09:53:36 AM UTC",search,,,'
        "motor_vehicle_theft\n"
        'a2,asmith,HSI Los Angeles,6709,"bad frame",***,ICE,***,color: red,'
        '"11/15/2025, 01:02:03 PM UTC",lookup,,block,\n'
    )
    result = read_vendor_audit(_write(tmp_path, text))
    _accounted(result)
    assert result.format == "flock_org_audit"
    first, second = result.events.to_dicts()
    assert first["event_id"] == "flock_org_audit:a1"
    assert first["user_id"] == "jdoe"
    assert first["organization_type"] == "ca_local_agency"
    assert first["plate_queried"] == "7ABC123"
    assert first["case_number"] == "BPD-2026-000123"
    assert first["reason_code"] == "motor_vehicle_theft"
    assert first["window_from"] == _utc(2025, 11, 13, 22, 0, 17)
    assert first["window_to"] == _utc(2025, 11, 14, 10, 0, 17)
    assert first["occurred_at"] == _utc(2025, 11, 14, 9, 53, 36)
    assert first["networks_searched"] == 2
    assert first["outcome"] == "allowed"
    assert json.loads(first["query_json"])["Time Frame"].count("\n") == 1
    assert second["organization_type"] == "federal"
    assert second["window_from"] is None and second["window_to"] is None
    assert second["outcome"] == "refused"
    assert second["case_number"] == "***"  # as typed: the audit flags it


@pytest.mark.parametrize(
    ("header", "row"),
    [
        (
            "ID,Name,Org Name,Total Networks Searched,Reason,Search Time",
            "x1,u1,Glendale PD,3,robbery,2025-11-14T09:53:36Z",
        ),
        (
            "id,name,org_name,total_networks_searched,reason,search_time",
            "x1,u1,Glendale PD,3,robbery,2025-11-14 09:53:36",
        ),
        (
            "Search ID , User Name, ORGANIZATION ,Networks Searched,Search Reason,Search Date/Time",
            "x1,u1,Glendale PD,3,robbery,11/14/2025 9:53:36 AM",
        ),
        (
            "Reason,Search Time,Org Name,ID,Name,Total Networks Searched,Unrelated",
            'robbery,"11/14/2025, 09:53:36 AM UTC",Glendale PD,x1,u1,"3",extra',
        ),
    ],
)
def test_header_variants_are_recognised(tmp_path: Path, header: str, row: str) -> None:
    result = read_vendor_audit(_write(tmp_path, header + "\n" + row + "\n"))
    _accounted(result)
    event = result.events.row(0, named=True)
    assert (event["event_id"], event["user_id"], event["organization"]) == (
        "flock_org_audit:x1",
        "u1",
        "Glendale PD",
    )
    assert event["networks_searched"] == 3
    assert event["reason_text"] == "robbery"
    assert event["occurred_at"] == _utc(2025, 11, 14, 9, 53, 36)


def test_portal_variant_with_case_number_offense_and_extra_columns(tmp_path: Path) -> None:
    text = (
        "\ufeffid,userId,searchDate,networkCount,reason,caseNumber,offenseType,notes\n"
        "p1,u9,2025-06-18 00:02:04.789,4,armed robbery,25-1234,robbery,hello\n"
        "p2,u9,2025-06-18T01:00:00-07:00,,theft,,,\n"
    )
    result = read_vendor_audit(_write(tmp_path, text), organization="Burbank PD")
    _accounted(result)
    assert result.format == "flock_public_search_audit"
    first, second = result.events.to_dicts()
    assert (first["case_number"], first["reason_code"], first["networks_searched"]) == (
        "25-1234",
        "robbery",
        4,
    )
    assert first["organization"] == "Burbank PD"
    assert second["occurred_at"] == _utc(2025, 6, 18, 8, 0, 0)
    assert second["networks_searched"] is None and second["case_number"] is None


def test_file_organization_wins_over_the_argument(tmp_path: Path) -> None:
    text = (
        "ID,Org Name,Reason,Search Time\n"
        "1,Eugene OR PD,theft,2025-01-01 00:00:00\n"
        "2,,x,2025-01-01 00:00:00\n"
    )
    result = read_vendor_audit(_write(tmp_path, text), organization="Burbank PD")
    assert result.events["organization"].to_list() == ["Eugene OR PD", "Burbank PD"]


def test_malformed_rows_are_rejected_with_line_and_reason(tmp_path: Path) -> None:
    text = (
        "id,userId,searchDate,networkCount,reason\n"  # line 1
        "a1,u1,2025-06-18 00:02:04,3,ok\n"  # 2 accepted
        "a2,u1,not a date,3,bad time\n"  # 3
        "a3,u1,,3,no time\n"  # 4
        "\n"  # 5 blank: not a record
        'a4,u1,2025-06-18 00:02:04,3,"multi\nline reason"\n'  # 6-7 accepted
        "a5,u1,2025-06-18 00:02:04,many,bad count\n"  # 8
        "a6,u1,2025-06-18 00:02:04,-2,negative\n"  # 9
        "a7,u1,2025-06-18 00:02:04,3\n"  # 10 too few fields
        "a8,u1,2025-06-18 00:02:04,3,x,extra\n"  # 11 too many fields
        "a1,u2,2025-06-18 00:02:05,3,dup\n"  # 12 duplicate id
        ",u1,2025-06-18 00:02:04,3,no id\n"  # 13
        "id,userId,searchDate,networkCount,reason\n"  # 14 repeated header
        "a9,u1,2025-06-18 00:02:04,3,ok trailing comma,\n"  # 15 accepted
        'a10,u1,2025-06-18 00:02:04,3,"unterminated\n'  # 16
        "a11,u1,2025-06-18 00:02:04,3,swallowed"  # 17 (inside the open quote)
    )
    result = read_vendor_audit(_write(tmp_path, text))
    _accounted(result)
    assert result.rows_read == 13
    assert result.events["event_id"].to_list() == [
        "flock_public_search_audit:a1",
        "flock_public_search_audit:a4",
        "flock_public_search_audit:a9",
    ]
    assert result.events["reason_text"][1] == "multi\nline reason"
    rejected = dict(zip(result.rejected["line"], result.rejected["reason"], strict=True))
    assert rejected[3] == "unreadable search time 'not a date'"
    assert rejected[4] == "missing search time"
    assert rejected[8] == "networks searched is not a number: 'many'"
    assert "whole number" in rejected[9]
    assert rejected[10] == "expected 5 fields, found 4"
    assert rejected[11] == "expected 5 fields, found 6"
    assert rejected[12] == "duplicate search id 'a1' (first on line 2)"
    assert rejected[13] == "missing search id"
    assert rejected[14] == "repeated header row"
    assert rejected[16].startswith("unterminated quoted field")
    raw = dict(zip(result.rejected["line"], result.rejected["raw"], strict=True))
    assert raw[3] == "a2,u1,not a date,3,bad time"
    assert raw[16].endswith("swallowed")


def test_without_id_column_event_ids_are_deterministic(tmp_path: Path) -> None:
    text = "Name,Reason,Search Time\nu1,theft,2025-01-01 00:00:00\nu1,theft,2025-01-01 00:00:00\n"
    path = _write(tmp_path, text)
    first = read_vendor_audit(path).events["event_id"].to_list()
    assert first == read_vendor_audit(path).events["event_id"].to_list()
    assert len(set(first)) == 2
    assert first[0].startswith("flock_public_search_audit:line2:")


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    result = read_vendor_audit(_write(tmp_path, ORG_HEADER + "\n"))
    assert (result.rows_read, result.events.height, result.rejected.height) == (0, 0, 0)
    _accounted(result)


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(WorkbenchError, match="empty"):
        read_vendor_audit(_write(tmp_path, text))


def test_non_audit_csv_names_the_missing_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "plate,camera,captured_at\n7ABC123,c1,2025-01-01\n")
    with pytest.raises(WorkbenchError, match="not a recognisable") as info:
        read_vendor_audit(path)
    assert "Search Time" in str(info.value) and "Reason" in str(info.value)


def test_date_and_reason_alone_are_not_a_search_log(tmp_path: Path) -> None:
    path = _write(tmp_path, "date,reason\n2025-01-01,x\n")
    with pytest.raises(WorkbenchError, match="'ID' or 'Name'"):
        read_vendor_audit(path)


def test_missing_file_is_a_workbench_error(tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match="cannot read"):
        read_vendor_audit(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Okaloosa County FL SO", "out_of_state"),
        ("Eugene OR PD", "out_of_state"),
        ("Kenner LA PD", "out_of_state"),
        ("Washington County OR SO", "out_of_state"),
        ("Texas Department of Public Safety", "out_of_state"),
        ("Las Vegas Metropolitan PD, Nevada", "out_of_state"),
        ("HSI Los Angeles", "federal"),
        ("ICE ERO", "federal"),
        ("CBP", "federal"),
        ("FBI", "federal"),
        ("DEA Task Force", "federal"),
        ("ATF", "federal"),
        ("US Marshals Service", "federal"),
        ("U.S. Marshals", "federal"),
        ("Department of Homeland Security", "federal"),
        ("Some Task Force [Federal]", "federal"),
        ("Glendale PD", "ca_local_agency"),
        ("Burbank Police Department", "ca_local_agency"),
        ("LA County Sheriff", "ca_local_agency"),
        ("Los Angeles County Sheriff's Department", "ca_local_agency"),
        ("Nevada County Sheriff", "ca_local_agency"),
        ("Pasadena CA PD", "ca_local_agency"),
        ("CHP", "ca_state_agency"),
        ("California Highway Patrol", "ca_state_agency"),
        ("California Department of Justice", "ca_state_agency"),
        ("Acme Security LLC", "private"),
        ("Lakeview HOA", "private"),
        ("Home Depot", "private"),
        (None, None),
        ("", None),
        ("Unknown", None),
    ],
)
def test_classify_organization(name: str | None, expected: str | None) -> None:
    assert classify_organization(name) == expected
