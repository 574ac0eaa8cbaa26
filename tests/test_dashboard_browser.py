"""Browser tests: ``alpr-workbench serve`` (the service process, API and dashboard over TLS), a
real Chromium, sign in with the service's accounts (password and TOTP code), change the period.

The second test is an attack (issue #14, finding 2, see tests/attacks/test_attack_reports.py):
a user whose name is markup logs in, and the markup stays text.

Needs Debian's ``/usr/bin/chromium`` and the ``playwright`` Python package (no browser
download: Playwright drives the system Chromium). Set ``ALPR_DASHBOARD_SCREENSHOT`` to a
path to keep a screenshot of the logged-in page.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from dashboard_fixtures import Workbench, start_workbench

CHROMIUM = os.environ.get("ALPR_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)),
        reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set ALPR_CHROMIUM)",
    ),
]


def _kpi(page, index: int) -> str:
    """Text of the index-th KPI card (Panel renders it inside a shadow root)."""
    return (
        page.locator(".kpi")
        .nth(index)
        .evaluate("e => (e.shadowRoot || e).textContent.replace(/\\s+/g, ' ').trim()")
    )


XSS = "<img src=x onerror=\"document.title='pwned';window.pwned=1\">"
PASSWORD = "a long browser-test passphrase"


@dataclass
class Site:
    """The running ``serve`` process and the TOTP secrets of the enrolled users."""

    bench: Workbench
    totp: dict[str, str]
    markup_user: str


def _enrol(home: Path, users: list[str]) -> dict[str, str]:
    """Enrol ``users`` in the service's accounts (enrolment code, password): their TOTP secrets."""
    from alpr_workbench.service.accounts import AccountStore
    from alpr_workbench.store import Store

    store = Store.open(home)
    accounts = AccountStore(home, store.keystore)
    secrets = {}
    for user in users:
        code = accounts.issue_enrolment(user, issued_by="browser-test")
        secrets[user] = accounts.enroll(user, code, PASSWORD).totp_secret
    return secrets


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A demo city, a command-staff user whose name is markup, accounts, and ``serve``."""
    import polars as pl

    from alpr_workbench.demo import build_demo
    from alpr_workbench.service.tls import make_loopback_certificate, tls_files
    from alpr_workbench.store import Store

    home = tmp_path_factory.mktemp("browser") / "home"
    build_demo(home, days=7, scale=0.05)
    store = Store.open(home)
    users = store.tables.read("users")
    markup_user = users.filter(
        (pl.col("role") == "command_staff") & (pl.col("user_id") != "sjohnson")
    ).sort("user_id")["user_id"][0]
    store.tables.write(
        "users",
        users.with_columns(
            pl.when(pl.col("user_id") == markup_user)
            .then(pl.lit(XSS))
            .otherwise(pl.col("full_name"))
            .alias("full_name")
        ),
    )
    files = tls_files(home)
    cert = files.certfile if files.certfile.is_file() else make_loopback_certificate(home).certfile
    totp = _enrol(home, ["sjohnson", "egarcia", markup_user])
    bench = start_workbench(home, cert)
    try:
        yield Site(bench, totp, markup_user)
    finally:
        bench.stop()


def _browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)


def _page(browser, cert: Path, height: int):
    # The service's self-signed certificate: the browser is told to accept it (the test's
    # Python clients pin it); a real deployment uses the operator's certificate.
    context = browser.new_context(viewport={"width": 1400, "height": height},
                                  ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def _log_in(page, url: str, user: str, password: str, code: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.fill("input[name=totp]", code)
    page.click("button[type=submit]")


def test_log_in_change_the_period_and_see_the_page_render(site: Site, tmp_path: Path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    url = site.bench.dashboard_url
    user = "sjohnson"
    code = pyotp.TOTP(site.totp[user]).now()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with sync_api.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser, site.bench.cert, 1200)
            # Wrong password; the right password with a wrong code: no entry. (Every role may
            # sign in now; which pages each sees is tested in test_dashboard_hits.py.)
            for name, secret, totp in (
                (user, "not the password", code),
                (user, PASSWORD, wrong),
            ):
                _log_in(page, url, name, secret, totp)
                page.wait_for_url(re.compile(r"/login\?error="))
                assert page.locator(".errormessage").inner_text() != ""

            started = time.perf_counter()
            _log_in(page, url, user, PASSWORD, code)
            page.wait_for_selector("canvas", state="visible")
            first_canvas_s = time.perf_counter() - started
            expect = sync_api.expect
            expect(page.locator(".kpi").first).to_contain_text("Vehicles recovered")
            expect(page.get_by_text("Sam Johnson (command staff)")).to_be_visible()
            hits_before = _kpi(page, 4)
            assert "Hotlist hits" in hits_before
            reads_note = page.get_by_text(re.compile(r"\(7 days\)")).first
            expect(reads_note).to_be_visible()

            page.get_by_role("button", name="Last day").click()
            expect(page.get_by_text(re.compile(r"\(1 day\)")).first).to_be_visible()
            hits_after = _kpi(page, 4)
            assert hits_after != hits_before
            assert page.locator("canvas").count() >= 4  # trends and both maps
            shot = os.environ.get("ALPR_DASHBOARD_SCREENSHOT")
            page.screenshot(path=shot or str(tmp_path / "dashboard.png"), full_page=True)
            assert first_canvas_s < 30
        finally:
            browser.close()


def test_a_user_whose_name_is_markup_sees_it_as_text(site: Site) -> None:
    """Stored XSS through ``full_name``: the onerror handler must not run."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    user = site.markup_user
    with sync_api.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser, site.bench.cert, 1000)
            _log_in(page, site.bench.dashboard_url, user, PASSWORD,
                    pyotp.TOTP(site.totp[user]).now())
            page.wait_for_selector("canvas", state="visible")
            sync_api.expect(page.get_by_text(XSS, exact=False).first).to_be_visible()
            assert page.title() != "pwned"
            assert page.evaluate("typeof window.pwned") == "undefined"
        finally:
            browser.close()
