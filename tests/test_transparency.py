"""The public transparency page: contents, suppression, escaping, offline, no plates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from pathlib import Path

import polars as pl
import pytest

import alpr_workbench
from alpr_workbench.demo import build_demo
from alpr_workbench.governance import AuditLog, SearchRefused, SignedDigest, verify_digest
from alpr_workbench.policy import load_policy
from alpr_workbench.reports.transparency import (
    PORTAL_FIGURE_COLUMNS,
    SUPPRESSION_THRESHOLD,
    OrganizationAccess,
    TransparencyData,
    collect_transparency,
    compare_with_portals,
    default_portal_dir,
    format_count,
    read_portal_metrics,
    render_transparency,
    write_transparency,
)
from alpr_workbench.store import Store

#: The real data set beside a checkout (never committed; the tests using it skip without it).
SHARED_PORTALS = Path(__file__).resolve().parents[2] / "shared/datasets/flock_portal_metrics"
PORTAL_HEADER = (
    "id,agency,updated,accessed,url,data_retention_in_days,number_of_owned_cameras,"
    "external_organizations_with_access,hotlists_alerted_on,"
    "vehicles_detected_in_the_last_30_days,hotlist_hits_in_the_last_30_days,"
    "searches_in_the_last_30_days,public_search_audit"
)
PORTAL_ROWS = [
    # California by name token, by "(CA)", by "SO-CA", by URL slug only; others are not.
    '1,Palm Springs CA PD,x,x,https://p/palm-springs-ca-pd,30 days,10,"A CA PD, B CA PD",NCIC,'
    "1000,10,100,0",
    '2,Chino PD (CA),x,x,https://p/chino-ca-pd,365 days,"1,200",NA,NCIC,"2,000",Data Unavailable,'
    "300,1",
    "3,Mendocino County SO-CA,x,x,https://p/mendo,-Infinity days,30,C CA PD,NCIC,NA,30,NA,0",
    "4,Yuba County Sheriffs Office,x,x,https://p/yuba-county-ca-so,NA,50,NA,NA,4000,40,500,0",
    "5,Avon IN PD,x,x,https://p/avon-in-pd,30 days,6,NA,NCIC,269427,33267,332,0",
    "6,DNU,x,x,https://p/saratoga-ca-pd,30 days,99,NA,NCIC,1,1,1,0",
    "7,Cathedral City Police,x,x,https://p/cathedral-city-pd,30 days,5,NA,NCIC,1,1,1,0",
]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("transparency") / "home"
    build_demo(home, days=3, scale=0.05)
    store = Store.open(home)
    audit = AuditLog.open(home, store.keystore)
    users = store.tables.read("users")
    chief = users.filter(pl.col("role") == "command_staff")["user_id"][0]
    as_of = dt.datetime.now(dt.UTC)
    data = collect_transparency(
        store, audit, user_id=chief, as_of=as_of, portal_dir=tmp_path_factory.mktemp("none")
    )
    return {"home": home, "store": store, "audit": audit, "user": chief, "data": data}


def _cell(page: str, metric: str) -> str:
    found = re.search(rf'data-metric="{re.escape(html.escape(metric))}">([^<]*)<', page)
    assert found, metric
    return html.unescape(found.group(1))


def test_format_count_suppresses_small_counts() -> None:
    assert SUPPRESSION_THRESHOLD == 5
    assert [format_count(n) for n in (0, 1, 4, 5, 1234)] == [
        "0",
        "fewer than 5",
        "fewer than 5",
        "5",
        "1,234",
    ]


def test_page_contents(city: dict) -> None:
    data: TransparencyData = city["data"]
    page = render_transparency(data)
    policy = load_policy()
    assert data.agency_name in page
    assert f"{data.retention_days} days" in page
    for code in policy.reason_codes:
        assert code.replace("_", " ") in page
    for title in policy.job_titles:
        assert html.escape(title) in page
    for category in policy.prohibited_terms:
        assert category.replace("_", " ") in page
    for category in policy.never_alert_categories:
        assert category.replace("_", " ") in page
    assert "Civil Code" in page and "1798.90.55" in page
    for section in ("The last 30 days", "Searches by reason", "Organizations with access",
                    "Hotlists that alert", "signed audit digest"):
        assert section in page
    assert "alpr-workbench audit verify-digest" in page
    assert "BEGIN PUBLIC KEY" in page and data.digest.chain_hash in page
    assert data.cameras > 0 and data.reads > 0
    assert _cell(page, "cameras") == format_count(data.cameras)
    assert _cell(page, "reads") == format_count(data.reads)
    assert _cell(page, "searches") == format_count(data.searches)
    # hotlists that alert, with their sources
    assert data.hotlists and all(html.escape(h.name) in page for h in data.hotlists)
    assert "Comparison unavailable" in page


def test_improper_grants_are_flagged_not_hidden(city: dict) -> None:
    data: TransparencyData = city["data"]
    grants = city["store"].tables.read("sharing_grants")
    in_force = grants.filter(pl.col("revoked_at").is_null())
    improper = in_force.filter(
        ~pl.col("recipient_type").is_in(["ca_local_agency", "ca_state_agency"])
    )["recipient_org"].to_list()
    assert improper, "the synthetic city plants improper grants"
    page = render_transparency(data)
    flagged = {o.organization for o in data.flagged_organizations}
    for org in improper:
        assert org in flagged
        assert html.escape(org) in page
    assert "FLAGGED" in page and "must revoke" in page
    assert "No federal agency" not in page
    # every outside recipient of a grant in force is listed: from the table, not a list
    outside = set(in_force.filter(pl.col("recipient_org") != data.agency_name)["recipient_org"])
    assert {o.organization for o in data.organizations} == outside
    # With only proper grants, the page says so.
    proper = tuple(o for o in data.organizations if not o.is_flagged)
    clean = render_transparency(dataclasses.replace(data, organizations=proper))
    assert "No federal agency, agency of another state or private organization" in clean


def test_suppression_in_cells(city: dict) -> None:
    data: TransparencyData = city["data"]
    small = dataclasses.replace(
        data,
        searches_refused=3,
        hits=3,
        cameras=0,
        searches_by_reason=(("burglary", 3, 0), ("robbery", 12, 4)),
    )
    page = render_transparency(small)
    assert _cell(page, "searches_refused") == "fewer than 5"
    assert _cell(page, "hits") == "fewer than 5"
    assert _cell(page, "cameras") == "0"
    assert _cell(page, "reason:burglary:run") == "fewer than 5"
    assert _cell(page, "reason:robbery:run") == "12"
    assert _cell(page, "reason:robbery:refused") == "fewer than 5"
    assert _cell(page, "reason:burglary:refused") == "0"
    for cell in re.findall(r'data-metric="[^"]*">([^<]*)<', page):
        assert cell.strip() not in {"1", "2", "3", "4"}


def test_html_escapes_data(city: dict) -> None:
    data: TransparencyData = city["data"]
    evil = '<script>alert("x")</script>'
    org = OrganizationAccess('Evil & "Co" <b>', "private", (evil,), ("search",), ("bad <i>",))
    page = render_transparency(
        dataclasses.replace(data, agency_name=evil, organizations=(org,))
    )
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert html.escape(evil) in page
    assert "Evil &amp; &quot;Co&quot; &lt;b&gt;" in page


def test_no_external_urls_or_resources(city: dict) -> None:
    page = render_transparency(city["data"])
    # the audit log's public key is base64, which may hold "//" (a fresh key every run)
    text = re.sub(r"-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\s\\]*-----END PUBLIC KEY-----",
                  "", page)
    assert "-----BEGIN" not in text  # every key block is gone, nothing else is
    assert not re.search(r"(?i)https?:|ftp:|//[a-z0-9]", text)
    assert not re.search(r"(?i)<(script|link|img|iframe)\b|\bsrc=|\bhref=|url\(", page)
    assert "<svg" in page  # the chart is inline


def test_no_plate_appears(city: dict) -> None:
    store = city["store"]
    page = render_transparency(city["data"])
    plates = set(store.reads.query(columns=["plate"])["plate"].to_list())
    plates |= set(store.tables.read("hotlist_entries")["plate"].to_list())
    hits = store.tables.read("hits")
    plates |= set(hits["read_plate"].to_list()) | set(hits["listed_plate"].to_list())
    assert len(plates) > 100
    tokens = set(re.findall(r"[A-Za-z0-9]+", page))
    assert not (plates & tokens)


def test_digest_in_the_page_verifies(city: dict) -> None:
    data: TransparencyData = city["data"]
    page = render_transparency(data)
    text = html.unescape(re.search(r'<pre id="digest-json">(.*?)</pre>', page, re.S).group(1))
    digest = SignedDigest.from_json(text)
    assert digest == data.digest
    assert verify_digest(digest, digest.public_key_pem, log_path=city["home"])


def test_read_summary_is_gated_and_audited(city: dict) -> None:
    events = city["audit"].events()
    aggregates = events.filter(
        (pl.col("event_type") == "aggregate") & (pl.col("user_id") == city["user"])
    )
    assert aggregates.height >= 1
    with pytest.raises(SearchRefused):
        collect_transparency(
            city["store"], city["audit"], user_id="nobody", as_of=dt.datetime.now(dt.UTC)
        )


def test_write_transparency(city: dict, tmp_path: Path) -> None:
    out = tmp_path / "public" / "index.html"
    data = write_transparency(
        city["store"], city["audit"], user_id=city["user"], out=out, portal_dir=tmp_path
    )
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and data.agency_name in text
    assert not list(out.parent.glob(".*tmp*"))
    with pytest.raises(ValueError, match="time zone"):
        collect_transparency(
            city["store"], city["audit"], user_id=city["user"], as_of=dt.datetime(2026, 1, 1)
        )


# -- the portal comparison -------------------------------------------------------------------


def _write_portal(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest_usage04262023.csv").write_text("\n".join([PORTAL_HEADER, *PORTAL_ROWS]))
    return folder


def test_portal_metrics_from_a_small_csv(tmp_path: Path) -> None:
    portals = read_portal_metrics(_write_portal(tmp_path / "p"))
    rows = {r["agency"]: r for r in portals.iter_rows(named=True)}
    assert set(rows) == {
        "Palm Springs CA PD",
        "Chino PD (CA)",
        "Mendocino County SO-CA",
        "Yuba County Sheriffs Office",
    }
    assert rows["Chino PD (CA)"]["cameras"] == 1200
    assert rows["Chino PD (CA)"]["reads"] == 2000
    assert rows["Chino PD (CA)"]["hits"] is None  # "Data Unavailable"
    assert rows["Chino PD (CA)"]["outside_agencies"] is None  # NA
    assert rows["Mendocino County SO-CA"]["retention_days"] is None  # "-Infinity days"
    assert rows["Palm Springs CA PD"]["outside_agencies"] == 2
    comparison = compare_with_portals(
        tmp_path / "p",
        department={"cameras": 48, "reads": 3000, "hits": 35, "searches": 200,
                    "retention_days": 30, "outside_agencies": 9},
    )
    assert comparison.available and comparison.agencies == 4
    by = {r.metric: r for r in comparison.rows}
    assert by["cameras"].median == 40.0 and by["cameras"].rank == 3
    assert by["cameras"].low == 10 and by["cameras"].high == 1200
    assert by["hits"].reporting == 3 and by["hits"].median == 30.0
    assert by["retention_days"].reporting == 2 and by["retention_days"].rank == 2
    assert by["outside_agencies"].rank == 1


def test_portal_section_rendered_and_unavailable(city: dict, tmp_path: Path) -> None:
    data: TransparencyData = city["data"]
    department = {"cameras": 3, "reads": 3000}
    comparison = compare_with_portals(_write_portal(tmp_path / "p"), department=department)
    page = render_transparency(dataclasses.replace(data, portal=comparison))
    assert "Compared with other California agencies" in page
    assert "California median" in page
    assert _cell(page, "portal:cameras") == "fewer than 5"
    assert _cell(page, "portal:reads") == "3,000"
    missing = compare_with_portals(tmp_path / "absent", department=department)
    assert not missing.available
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "latest_usage.csv").write_text("name,x\nA,1\n")
    assert not compare_with_portals(bad, department=department).available


def test_packaged_portal_figures_are_the_default_and_credit_the_source() -> None:
    """The page's default comparison works from the package alone (no ../shared)."""
    folder = default_portal_dir()
    assert folder.is_relative_to(Path(alpr_workbench.__file__).parent)
    portals = read_portal_metrics(folder)
    assert tuple(portals.columns) == PORTAL_FIGURE_COLUMNS
    assert portals.schema["agency"] == pl.String
    assert all(portals.schema[c] == pl.Int64 for c in PORTAL_FIGURE_COLUMNS[1:])
    agencies = set(portals["agency"])
    # 84 portals carry "CA" in their name (README); Yuba County is Californian by its address.
    assert 84 <= portals.height <= 86
    assert {"Palm Springs CA PD", "El Cajon CA PD", "Yuba County Sheriffs Office"} <= agencies
    assert "Avon IN PD" not in agencies and "DNU" not in agencies
    assert portals["retention_days"].drop_nulls().is_in([30, 60, 365]).all()
    assert portals["cameras"].null_count() == 0
    assert read_portal_metrics(folder / "portal_figures_ca.csv").equals(portals)
    comparison = compare_with_portals(folder, department={"cameras": 48})
    assert comparison.available and comparison.agencies == portals.height
    assert "an analysis by The News & Observer" in comparison.note
    by = {r.metric: r for r in comparison.rows}
    assert by["retention_days"].median == 30
    assert 10 <= by["cameras"].median <= 100
    assert by["outside_agencies"].reporting >= 70
    csv_text = (folder / "portal_figures_ca.csv").read_text()
    for needed in ("2024-04-26", "00f29cadee8db87cb3b387caab15ab15aae893ad", "MIT",
                   "an analysis by The News & Observer"):
        assert needed in csv_text
    assert "MIT License" in (folder / "LICENSE.private_eyes.txt").read_text()
    assert "an analysis by The News & Observer" in (folder / "README.md").read_text()


def test_portal_figures_file_read_as_it_is_and_checked(tmp_path: Path) -> None:
    raw = read_portal_metrics(_write_portal(tmp_path / "p"))
    figures = tmp_path / "portal_figures_test.csv"
    figures.write_text("# a comment line\n" + raw.write_csv(null_value=""))
    assert read_portal_metrics(figures).equals(raw)
    folder = tmp_path / "figures"
    folder.mkdir()
    (folder / "portal_figures_x.csv").write_text(raw.write_csv())
    assert read_portal_metrics(folder).equals(raw)
    assert compare_with_portals(figures, department={"cameras": 3}).agencies == 4
    (folder / "portal_figures_x.csv").write_text("agency,cameras\nA,1\n")
    broken = compare_with_portals(folder, department={"cameras": 3})
    assert not broken.available and "lacks the column" in broken.note


@pytest.mark.skipif(
    not (SHARED_PORTALS / "latest_usage04262023.csv").is_file(),
    reason="shared/datasets/flock_portal_metrics is not available",
)
def test_packaged_figures_match_the_real_files() -> None:
    portals = read_portal_metrics(SHARED_PORTALS)
    assert portals.equals(read_portal_metrics(default_portal_dir()))
