"""`audit vendor`: stand-alone audit of vendor search-audit exports (issue #16, item 5)."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.vendor_profiles import load_vendor_profiles
from alpr_workbench.policy import load_policy
from alpr_workbench.reports.vendor_audit import (
    VendorFileAudit,
    audit_vendor_file,
    findings_frame,
    render_vendor_audit,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flock_audit_samples"
OKALOOSA = "11_1_2025-12_8_2025-Okaloosa_County_FL_SO-Audit_EXTRACTED.csv"
EUGENE = "EPDSearchAuditLogs.csv"
POLICY = load_policy()
runner = CliRunner()

ORG_HEADER = (
    "ID,Name,Org Name,Total Networks Searched,Time Frame,License Plate,Reason,Case #,Filters,"
    "Search Time,Search Type,Text Prompt,Moderation"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _check(audit: VendorFileAudit, check_id: str):  # noqa: ANN202 - a VendorCheck
    return next(c for c in audit.checks if c.check_id == check_id)


def _frame(start: str, end: str) -> str:
    return f'"{start} UTC\n{end} UTC"'


def _org_export(tmp_path: Path) -> Path:
    """Thirteen columns; known counts per check (see the comments)."""
    search = '"03/02/2026, 10:00:00 AM UTC"'
    normal = _frame("02/01/2026, 10:00:00 AM", "03/02/2026, 10:00:00 AM")  # 29 days
    long = _frame("01/01/2026, 10:00:00 AM", "03/02/2026, 10:00:00 AM")  # 60 days
    edge = _frame("01/31/2026, 01:00:00 AM", "03/02/2026, 10:00:00 AM")  # 30 days 9 h
    rows = [
        # fine
        f"s1,j.doe,Glendale PD,3,{normal},7ABC123,stolen vehicle,GPD-1,,{search},lookup,,",
        # blank reason, missing case number
        f"s2,j.doe,Glendale PD,3,{normal},7ABC124,,,,{search},lookup,,",
        # vague reason; 40 networks (oversized)
        f"s3,j.doe,Glendale PD,40,{normal},7ABC125,investigation,GPD-2,,{search},lookup,,",
        # lookback 60 days
        f"s4,a.roe,Glendale PD,3,{long},7ABC126,robbery suspect,GPD-3,,{search},lookup,,",
        # 30 days and 9 hours: not more than 30 whole days
        f"s5,a.roe,Glendale PD,3,{edge},7ABC127,robbery suspect,GPD-4,,{search},lookup,,",
        # prohibited purpose; a federal searcher
        f"s6,x.fed,HSI Los Angeles,3,{normal},,ICE detainer,GPD-5,,{search},search,,",
        # blocked by moderation: not flagged (blank reason, no case)
        f"s7,j.doe,Glendale PD,3,{normal},,,,,{search},freeform,bad prompt,block",
        # unreadable search time: rejected, counted
        f"s8,j.doe,Glendale PD,3,{normal},7ABC128,burglary,GPD-6,,yesterday,lookup,,",
    ]
    return _write(tmp_path, "org.csv", ORG_HEADER + "\n" + "\n".join(rows) + "\n")


def test_thirteen_column_export_counts(tmp_path: Path) -> None:
    audit = audit_vendor_file(
        _org_export(tmp_path), policy=POLICY, retention_days=30, agency="Glendale PD"
    )
    assert (audit.format, audit.rows_read, audit.searches, audit.refused) == (
        "flock_org_audit", 8, 7, 1,
    )  # fmt: skip
    rows = _check(audit, "rows")
    assert rows.passed is False and rows.offending["line"].to_list() == [16]
    assert _check(audit, "reason").counts == {"blank_reason": 1, "vague_reason": 1}
    assert _check(audit, "case_number").counts == {"missing_case_number": 1}
    lookback = _check(audit, "lookback")
    assert lookback.offending["event_id"].to_list() == ["flock_org_audit:s4"]
    assert _check(audit, "networks").counts == {"oversized_scope": 1}
    assert _check(audit, "purpose").counts == {"immigration_term": 1}
    assert _check(audit, "searcher").counts == {"federal_searcher": 1}
    assert audit.multi_network_searches == 7
    # Devices are not in this export: the check says which column it lacks.
    devices = _check(audit, "devices")
    assert devices.passed is None and "Total Devices Searched" in (devices.not_run or "")
    assert audit.failed


def test_retention_days_moves_the_lookback_threshold(tmp_path: Path) -> None:
    audit = audit_vendor_file(_org_export(tmp_path), policy=POLICY, retention_days=29)
    # 29 days 0 h is not more than 29 whole days; 30 d 9 h and 60 d are.
    assert sorted(_check(audit, "lookback").offending["event_id"]) == [
        "flock_org_audit:s4", "flock_org_audit:s5",
    ]  # fmt: skip


def test_portal_audit_with_case_number_and_offense_type(tmp_path: Path) -> None:
    text = (
        "id,userId,searchDate,networkCount,reason,caseNumber,offenseType\n"
        "p1,u1,2025-06-18 00:02:04.789,1,stolen vehicle,25-001,Vehicle Theft\n"
        "p2,u1,2025-06-18 00:09:13.397,1,Investigative+,,Other\n"
        "p3,u2,2025-06-18 01:10:00.000,12,,25-002,\n"
    )
    audit = audit_vendor_file(_write(tmp_path, "portal.csv", text), policy=POLICY,
                              retention_days=30)  # fmt: skip
    assert audit.format == "flock_public_search_audit"
    assert audit.agency == "portal"  # no organization column: the file name
    assert _check(audit, "case_number").counts == {"missing_case_number": 1}
    assert _check(audit, "reason").counts == {"blank_reason": 1, "vague_reason": 1}
    assert _check(audit, "networks").counts == {"oversized_scope": 1}
    lookback = _check(audit, "lookback")
    assert lookback.passed is None and "'Time Frame'" in (lookback.not_run or "")
    assert _check(audit, "searcher").not_run == "lacks a column for 'Org Name'"
    # The department's reason-code list is not applied to the vendor's offense types.
    assert not any("reason_not_on_list" in c.counts for c in audit.checks)


def test_repo_own_columns_are_recognised(tmp_path: Path) -> None:
    text = (
        "event_id,occurred_at,user_id,organization,reason_code,reason_text,case_number,"
        "networks_searched,window_from,window_to,plate_queried\n"
        "e1,2026-03-02T10:00:00+00:00,j.doe,Burbank Police Department,other,none,"
        "BPD-2026-000001,1,2026-01-01T00:00:00+00:00,2026-03-02T10:00:00+00:00,7ABC123\n"
        "e2,2026-03-02T11:00:00+00:00,j.doe,Burbank Police Department,burglary,"
        "burglary at 5th St,,1,2026-02-20T00:00:00+00:00,2026-03-02T10:00:00+00:00,7ABC124\n"
    )
    audit = audit_vendor_file(_write(tmp_path, "own.csv", text), policy=POLICY,
                              retention_days=30)  # fmt: skip
    assert {"search_id", "search_time", "user", "reason", "offense_type", "case_number",
            "networks", "time_frame_start", "plate"} <= set(audit.columns)  # fmt: skip
    assert audit.agency == "Burbank Police Department"
    assert _check(audit, "reason").counts == {"vague_reason": 1}
    assert _check(audit, "case_number").counts == {"missing_case_number": 1}
    assert _check(audit, "lookback").counts == {"lookback_past_retention": 1}


def test_header_spellings_normalise() -> None:
    profiles = load_vendor_profiles()
    for spelling in ("Search Time", "search_time", "SEARCH-TIME", " searchTime "):
        assert profiles.field_of(spelling) == "search_time"
    assert profiles.field_of("offense_type") == profiles.field_of("OffenseType") == "offense_type"


def test_an_unusable_file_is_refused_whole(tmp_path: Path) -> None:
    bad = _write(tmp_path, "plates.csv", "plate,seen\n7ABC123,yesterday\n")
    with pytest.raises(WorkbenchError, match=r"plates\.csv.*missing column\(s\) Search Time"):
        audit_vendor_file(bad, policy=POLICY, retention_days=30)
    good = _org_export(tmp_path)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["audit", "vendor", str(good), str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "plates.csv" in result.output and not out.exists()


def test_cli_exit_codes_and_findings_csv(tmp_path: Path) -> None:
    clean = _write(
        tmp_path, "clean.csv",
        "id,userId,searchDate,networkCount,reason\n"
        "c1,u1,2025-06-18 12:00:00,1,stolen vehicle 25-001\n",
    )  # fmt: skip
    out = tmp_path / "clean.html"
    result = runner.invoke(app, ["audit", "vendor", str(clean), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    findings = tmp_path / "findings.csv"
    result = runner.invoke(
        app,
        ["audit", "vendor", str(clean), str(_org_export(tmp_path)), "--out", str(out),
         "--agency", "Eugene OR PD", "--agency", "Glendale PD", "--csv-out", str(findings)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "check(s) failed" in result.output
    table = pl.read_csv(findings, infer_schema=False)
    org = table.filter(pl.col("file") == "org.csv")
    assert org.filter(pl.col("pattern") == "lookback_past_retention")["record"].to_list() == [
        "flock_org_audit:s4"
    ]
    assert org.filter(pl.col("pattern") == "rejected_row")["record"].to_list() == ["line 16"]
    assert set(table["agency"]) == {"Eugene OR PD", "Glendale PD"}
    page = out.read_text()
    assert "Eugene OR PD" in page and "Glendale PD" in page  # side by side


def test_untrusted_values_are_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    text = (
        "id,userId,searchDate,networkCount,reason\n"
        f'x1,"<img src=x onerror=alert(2)>",2025-06-18 12:00:00,1,"{evil}"\n'
        f'x2,u2,2025-06-18 12:00:00,1,""\n'
    )
    path = _write(tmp_path, "<b>evil<b>.csv", text)
    audit = audit_vendor_file(path, policy=POLICY, retention_days=30, agency="<i>Agency</i>")
    page = render_vendor_audit([audit], policy=POLICY, retention_days=30)
    assert "<script" not in page and "<img" not in page and "<i>Agency" not in page
    assert "<b>evil" not in page
    assert html.escape("<i>Agency</i>") in page or "&lt;i&gt;Agency" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # the user chart's label, escaped


def test_plates_are_masked_unless_asked(tmp_path: Path) -> None:
    audit = audit_vendor_file(_org_export(tmp_path), policy=POLICY, retention_days=30)
    masked = render_vendor_audit([audit], policy=POLICY, retention_days=30)
    assert "7ABC124" not in masked and "7AB•••4" in masked
    shown = render_vendor_audit([audit], policy=POLICY, retention_days=30, show_plates=True)
    assert "7ABC124" in shown


# --- the real exports: report counts equal direct counts of the CSV ------------------------------


@pytest.fixture(scope="module")
def real() -> dict[str, VendorFileAudit]:
    if not (SAMPLES / OKALOOSA).is_file() or not (SAMPLES / EUGENE).is_file():
        pytest.skip(f"vendor audit samples not present in {SAMPLES}")
    return {
        name: audit_vendor_file(SAMPLES / name, policy=POLICY, retention_days=30)
        for name in (OKALOOSA, EUGENE)
    }


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def test_okaloosa_counts_match_the_csv(real: dict[str, VendorFileAudit]) -> None:
    raw = pl.read_csv(SAMPLES / OKALOOSA, infer_schema=False)
    fmt = "%m/%d/%Y, %I:%M:%S %p UTC"
    raw = raw.with_columns(
        pl.col("Search_Time").str.strptime(pl.Datetime("us"), fmt).alias("t"),
        pl.col("Time_Frame_Start").str.strptime(pl.Datetime("us"), fmt).alias("start"),
        pl.col("Total_Networks_Searched").cast(pl.Int64).alias("networks"),
        pl.col("Total_Devices_Searched").cast(pl.Int64).alias("devices"),
    )
    allowed = raw.filter(pl.col("Moderation").fill_null("") != "block")
    audit = real[OKALOOSA]
    assert (audit.rows_read, audit.searches) == (raw.height, raw.height)
    assert audit.refused == raw.height - allowed.height
    assert _check(audit, "rows").n_offending == 0
    reason = _check(audit, "reason").counts
    assert reason["blank_reason"] == allowed.filter(_blank("Reason")).height
    whole_days = (pl.col("t") - pl.col("start")).dt.total_days()
    assert _check(audit, "lookback").n_offending == allowed.filter(whole_days > 30).height
    limit = POLICY.max_networks_per_search
    assert _check(audit, "networks").n_offending == allowed.filter(
        pl.col("networks") > limit
    ).height
    assert _check(audit, "devices").n_offending == allowed.filter(
        pl.col("devices") > POLICY.max_cameras_per_search
    ).height
    assert audit.multi_network_searches == raw.filter(pl.col("networks") > 1).height
    assert _check(audit, "case_number").passed is None
    assert _check(audit, "volume").passed is None  # no user column


def test_eugene_counts_match_the_csv(real: dict[str, VendorFileAudit]) -> None:
    raw = pl.read_csv(SAMPLES / EUGENE, infer_schema=False)
    audit = real[EUGENE]
    assert (audit.rows_read, audit.searches, audit.refused) == (raw.height, raw.height, 0)
    assert _check(audit, "reason").counts["blank_reason"] == raw.filter(_blank("reason")).height
    assert _check(audit, "devices").n_offending == raw.filter(
        pl.col("cameraCount").cast(pl.Int64) > POLICY.max_cameras_per_search
    ).height
    assert _check(audit, "lookback").passed is None and _check(audit, "networks").passed is None
    per_user = raw.group_by("userId").len()
    assert audit.events["user_id"].n_unique() == per_user.height


def test_real_exports_side_by_side(real: dict[str, VendorFileAudit]) -> None:
    audits = list(real.values())
    page = render_vendor_audit(audits, policy=POLICY, retention_days=30)
    for audit in audits:
        assert html.escape(audit.agency) in page
    table = findings_frame(audits)
    for audit in audits:
        mine = table.filter(pl.col("file") == audit.name)
        for check in audit.checks:
            rows = mine.filter(pl.col("check_id") == check.check_id)
            if check.not_run is not None:
                assert rows["pattern"].to_list() == ["not_run"]
            else:
                assert rows.height == check.offending.height
    assert dt.datetime(2025, 1, 1) < audits[0].first_at.replace(tzinfo=None)  # type: ignore[union-attr]
