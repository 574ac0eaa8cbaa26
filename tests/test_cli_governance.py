import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.store import Store

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flock_audit_samples"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli") / "home"
    result = runner.invoke(
        app, ["demo", "--data-dir", str(home), "--days", "3", "--scale", "0.05", "--no-serve"]
    )
    assert result.exit_code == 0, result.output
    return home


def _case_and_user(home: Path) -> tuple[str, str, str]:
    store = Store.open(home)
    users = (
        store.tables.read("users")
        .filter(
            (pl.col("role") == "investigator")
            & (pl.col("job_title") == "Detective")
            & pl.col("separated_at").is_null()
            & pl.col("trained_at").is_not_null()
            & (pl.col("organization_type") == "ca_local_agency")
        )["user_id"]
        .to_list()
    )
    cases = (
        store.tables.read("cases").filter(pl.col("status") == "open").explode("assigned_user_ids")
    )
    case, user = next(
        (c, u)
        for c, u in cases.select("case_number", "assigned_user_ids").iter_rows()
        if u in users
    )
    plate = store.reads.query(columns=["plate"])["plate"][0]  # test-side ground truth
    return case, user, plate


def _run(home: Path, *args: str):
    return runner.invoke(app, [*args, "--data-dir", str(home)])


def _member(home: Path, role: str) -> str:
    """A user of ``role`` in good standing (admin actions check the actor's permission)."""
    from alpr_workbench.governance.registry import get_user, user_problem
    from alpr_workbench.policy import load_policy

    store, now = Store.open(home), dt.datetime.now(dt.UTC)
    users = store.tables.read("users").filter(pl.col("role") == role)["user_id"]
    return next(
        u for u in users if user_problem(get_user(store, u), policy=load_policy(), now=now) is None
    )


@pytest.fixture(scope="module")
def served(home):
    from demo_service_fixtures import start_demo_service
    from service_fixtures import stop_service

    running = start_demo_service(home)
    yield running
    stop_service(running.service)


def test_search_allowed_and_refused(home, served, tmp_path):
    session = tmp_path / "session.json"
    account = served.sign_in("investigator", session)
    case = account.search[account.search.index("--case") + 1]
    plate = Store.open(home).reads.query(columns=["plate"])["plate"][0]  # test-side truth

    def search(*args: str):
        return runner.invoke(app, ["search", "--session-file", str(session), "--case", case,
                                   "--plate", plate, *args])  # fmt: skip

    ok = search("--reason", "motor_vehicle_theft", "--reason-text",
                "stolen vehicle seen on Olive", "--json")  # fmt: skip
    assert ok.exit_code == 0, ok.output
    rows = [json.loads(line) for line in ok.stdout.splitlines() if line.startswith("{")]
    assert rows and {r["plate"] for r in rows} == {plate}
    refused = search("--reason", "other", "--reason-text", "deportation case for HSI")
    assert refused.exit_code == 3 and "prohibited purpose" in refused.output
    assert "audit record evt-" in refused.output
    table = search("--reason", "motor_vehicle_theft", "--reason-text", "seen on Olive")
    assert table.exit_code == 0 and f"case {case}" in table.output
    no_session = runner.invoke(app, ["search", "--session-file", str(tmp_path / "none.json"),
                                     "--case", case, "--reason", "robbery", "--plate", plate])
    assert no_session.exit_code == 2 and "alpr-workbench login" in no_session.output


def _log_intact(home: Path) -> bool:
    """The audit log verifies (checked in the test's process: the service holds ``home``)."""
    from alpr_workbench.governance.audit_log import AuditLog

    with AuditLog.open(home, Store.open(home).keystore) as log:
        return log.verify().ok


def test_audit_verify_digest_and_tamper_detection(home, tmp_path):
    import shutil

    # The operator tools are refused while a service holds the data directory (the module's
    # service may be running), so they run on a copy of it.
    home = shutil.copytree(home, tmp_path / "copy")
    assert _run(home, "audit", "verify").exit_code == 0
    year = str(dt.datetime.now(dt.UTC).year)
    out = tmp_path / "digest.json"
    assert _run(home, "audit", "digest", "--year", year, "--out", str(out)).exit_code == 0
    pem = tmp_path / "public_key.pem"
    pem.write_text(json.loads(out.read_text())["public_key_pem"])
    check = runner.invoke(app, ["audit", "verify-digest", str(out), "--public-key", str(pem)])
    assert check.exit_code == 0 and "verifies" in check.output
    assert runner.invoke(app, ["audit", "verify-digest", str(out)]).exit_code != 0  # no key
    forged = json.loads(out.read_text())
    forged["records"] += 1
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    forged_check = runner.invoke(
        app, ["audit", "verify-digest", str(tmp_path / "forged.json"), "--public-key", str(pem)]
    )
    assert forged_check.exit_code == 1


@pytest.fixture(scope="module")
def signed_in(home, served, tmp_path_factory):
    """Session files of an administrator, an auditor and an investigator (added for these
    tests, so the demo's own accounts stay for the tests that sign them in).
    """
    from admin_fixtures import add_users, sign_in

    roles = {"t.cli-admin": "administrator", "t.cli-auditor": "auditor",
             "t.cli-investigator": "investigator", "t.cli-chief": "command_staff"}
    add_users(home, roles)
    sessions = sign_in(served.service, roles, tmp_path_factory.mktemp("cli-sessions"))
    return {role: sessions[user] for user, role in roles.items()}


def _as(session: Path, *args: str):
    return runner.invoke(app, [*args, "--session-file", str(session)])


def test_grants_cli(signed_in):
    admin = signed_in["administrator"]
    listed = _as(admin, "grants", "list")
    assert listed.exit_code == 0 and "Sharing grants" in listed.output
    refused = _as(
        admin,
        "grants",
        "add",
        "--network",
        "bpd-city",
        "--recipient",
        "U.S. Customs and Border Protection",
        "--approved-by",
        "x",
        "--basis",
        "y",
        "--review-by",
        "2027-01-01",
    )
    assert refused.exit_code == 2 and "may not receive" in " ".join(refused.output.split())


def test_import_vendor_csv_into_the_audit_log(home, signed_in, tmp_path):
    csv = tmp_path / "export.csv"
    csv.write_text(
        "ID,Name,Org Name,Total Networks Searched,Time Frame,License Plate,Reason,Case #,"
        "Filters,Search Time,Search Type,Text Prompt,Moderation\n"
        "a1,jdoe,Glendale PD,3,7 days,7ABC123,stolen vehicle,BPD-2026-000001,,"
        "2026-10-01 10:00:00,plate,,\n"
        "a2,jdoe,Glendale PD,3,7 days,,investigation,,,not a time,plate,,\n"
    )
    auditor = signed_in["auditor"]
    result = _as(auditor, "audit", "import-vendor", str(csv))
    assert result.exit_code == 0, result.output
    assert "2 rows read" in result.output and "1 imported" in result.output
    assert "1 rejected" in result.output and "line 3" in result.output
    again = _as(auditor, "audit", "import-vendor", str(csv))
    assert "(0 new)" in again.output
    assert _log_intact(home)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared datasets not present")
def test_import_real_vendor_exports(home, signed_in):
    for path in sorted(SAMPLES.glob("*.csv")):
        result = _as(
            signed_in["auditor"],
            "audit",
            "import-vendor",
            str(path),
            "--organization",
            "Eugene Police Department",
        )
        assert result.exit_code == 0, result.output
        assert "0 rejected" in result.output
    assert _log_intact(home)


def test_efficacy_json_has_the_headline_figures(home, signed_in, tmp_path):
    store = Store.open(home)
    result = _as(signed_in["command_staff"], "efficacy", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    for key in (
        "recoveries",
        "arrests",
        "cases_cleared",
        "hits",
        "hit_rate_pct",
        "confirmed_hit_rate_pct",
        "misread_rate_pct",
        "cost_per_recovery_usd",
        "reads_never_matched_pct",
        "misread_stops",
        "searches_refused",
        "private_network_reads_pct",
    ):
        assert key in figures
    assert figures["hits"] == store.tables.read("hits").height
    no_session = _as(tmp_path / "none.json", "efficacy", "--json")
    assert no_session.exit_code == 2 and "alpr-workbench login" in no_session.output


def test_hotlist_import_drops_never_alert_categories(home, signed_in, tmp_path):
    csv = tmp_path / "ncic.csv"
    csv.write_text(
        "Plate,State,VIN,Make,Model,Color,Theft Date,ORI,OCA,Category,Expiration\n"
        "7ABC123,CA,,Honda,Civic,silver,2026-09-30,LAPD,L1,stolen_vehicle,2027-12-31\n"
        "8XYZ999,CA,,Ford,F150,white,,ICE ERO,E9,Immigration Violator,2027-12-31\n"
    )
    manager = signed_in["investigator"]
    result = _as(manager, "hotlist", "import", str(csv), "--source", "ncic")
    assert result.exit_code == 0, result.output
    assert "1 entries loaded" in result.output and "1 never-alert" in result.output
    store = Store.open(home)
    assert "8XYZ999" not in store.tables.read("hotlist_entries")["plate"].to_list()
    bad = tmp_path / "bad.csv"
    bad.write_text("Plate,State,Category\n7AB$123,CA,stolen_vehicle\n")
    failed = _as(manager, "hotlist", "import", str(bad), "--source", "ncic")
    assert failed.exit_code == 2 and "line 2" in " ".join(failed.output.split())


def test_audit_report_command_writes_html(home, signed_in, tmp_path):
    year = str(dt.datetime.now(dt.UTC).year)
    out = tmp_path / "audit.html"
    result = _as(signed_in["auditor"], "audit", "report", "--year", year, "--out", str(out))
    # The demo city plants improper activity: checks fail, so exit 1, and the report is written.
    assert result.exit_code == 1, result.output
    assert "exit status 1, because a check failed" in " ".join(result.output.split())
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    refused = _as(signed_in["investigator"], "audit", "report", "--year", year, "--out",
                  str(tmp_path / "refused.html"))
    assert refused.exit_code == 3 and "refused" in refused.output
    assert not (tmp_path / "refused.html").exists()
    html = out.read_text()
    for check in ("A1", "A5", "R1", "S1", "U3", "X1"):
        assert check in html and check in result.output


def test_audit_report_prints_to_pdf_with_chromium(home, signed_in, tmp_path):
    from alpr_workbench.reports.pdf import find_chromium

    if find_chromium() is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    year = str(dt.datetime.now(dt.UTC).year)
    out = tmp_path / "audit.html"
    result = _as(signed_in["auditor"], "audit", "report", "--year", year, "--out", str(out),
                 "--pdf")
    assert result.exit_code == 1, result.output  # the demo city fails checks
    assert out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_transparency_command_writes_the_public_page(home, signed_in, tmp_path):
    store = Store.open(home)
    out = tmp_path / "public.html"
    result = _as(signed_in["auditor"], "transparency", "--out", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Organizations with access" in html and "verify-digest" in html
    plates = store.tables.read("hits")["read_plate"].head(20).to_list()
    assert not any(p in html for p in plates)
