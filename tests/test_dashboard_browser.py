"""Browser tests: the real Panel server, a real Chromium, log in, change the period.

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
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from alpr_workbench.demo import build_demo

    home = tmp_path_factory.mktemp("browser") / "home"
    build_demo(home, days=7, scale=0.05)
    return home


def _log_in(page, url: str, user: str, password: str, new_password: str = "") -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    if page.locator("input[name=new_password]").count():
        page.fill("input[name=new_password]", new_password)
    page.click("button[type=submit]")


def test_log_in_change_the_period_and_see_the_page_render(home: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    from alpr_workbench.dashboard import issue_passwords, start_dashboard

    analyst_password = issue_passwords(home, ["egarcia"])["egarcia"]
    server = start_dashboard(home, default_days=None, timeout=30)
    try:
        user = "sjohnson"
        password = server.issued[user]
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                page.set_default_timeout(20_000)

                # Wrong password, then a disallowed role with its right password: no entry.
                # And a one-time password without a new password of the user's choosing.
                for name, secret in (
                    ("sjohnson", "not the password"),
                    ("egarcia", analyst_password),
                    ("sjohnson", password),
                ):
                    _log_in(page, server.url, name, secret, new_password="")
                    page.wait_for_url(re.compile(r"/login\?error="))
                    assert page.locator(".errormessage").inner_text() != ""

                started = time.perf_counter()
                _log_in(page, server.url, user, password, new_password="sjohnson's own passphrase")
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
    finally:
        server.stop()


def test_a_user_whose_name_is_markup_sees_it_as_text(home: Path) -> None:
    """Stored XSS through ``full_name``: the onerror handler must not run."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    import polars as pl

    from alpr_workbench.dashboard import issue_passwords, start_dashboard
    from alpr_workbench.store import Store

    payload = "<img src=x onerror=\"document.title='pwned';window.pwned=1\">"
    store = Store.open(home)
    users = store.tables.read("users")
    user = users.filter(
        (pl.col("role") == "command_staff") & (pl.col("user_id") != "sjohnson")
    ).sort("user_id")["user_id"][0]
    store.tables.write(
        "users",
        users.with_columns(
            pl.when(pl.col("user_id") == user)
            .then(pl.lit(payload))
            .otherwise(pl.col("full_name"))
            .alias("full_name")
        ),
    )
    password = issue_passwords(home, [user])[user]
    server = start_dashboard(home, issue_missing_passwords=False, timeout=30)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(20_000)
                _log_in(page, server.url, user, password, new_password="a long new passphrase")
                page.wait_for_selector("canvas", state="visible")
                sync_api.expect(page.get_by_text(payload, exact=False).first).to_be_visible()
                assert page.title() != "pwned"
                assert page.evaluate("typeof window.pwned") == "undefined"
            finally:
                browser.close()
    finally:
        server.stop()
