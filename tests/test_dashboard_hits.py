"""The dashboard's hit queue (issue #16, item 3) on the real ``serve`` process.

A demo city with a few hits made new again is served (API and dashboard, one process, TLS).
An analyst signs in on the dashboard; the page the server builds for her fetches the queue
through the service as her (audited). Her session token, the one the dashboard's cookie
holds, then drives the page (its widgets' callbacks and :class:`HitQueueState`):
she confirms a hit, records a recovery, and the efficacy figures from the service move; every
step is in the audit log with her name. A role without ``work_hits`` gets no hit queue.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import panel as pn
import polars as pl
import pyotp
import pytest

from alpr_workbench.client import Client
from alpr_workbench.dashboard import DASHBOARD_PAGES, DASHBOARD_ROLES, dashboard_pages
from alpr_workbench.dashboard.hits import (
    HitQueuePage,
    HitQueueState,
    HitService,
    connect_hit_service,
    queue_table,
)
from alpr_workbench.demo import build_demo, prepare_demo_service
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store
from dashboard_fixtures import Workbench, opened, start_workbench
from hit_fixtures import _freshen

CASE = "BPD-2026-910001"
PASSWORD = "a long dashboard-hits passphrase"
ACTIONABLE = ("reason", "originating_agency", "originating_case_number")


@dataclass
class Served:
    bench: Workbench
    pending: list[str]
    users: dict[str, str]  # role -> user id
    secrets: dict[str, str]  # role -> TOTP secret

    def events(self) -> pl.DataFrame:
        store = Store.open(self.bench.home)
        with AuditLog.open(store.home, store.keystore) as log:
            return log.events()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("dashboard-hits") / "home"
    build_demo(home, days=3, scale=0.05)
    pending, _ = _freshen(home)
    prepared = prepare_demo_service(home)
    bench = start_workbench(home, prepared.certfile)
    try:
        accounts = {a.role: a for a in prepared.accounts}
        users, secrets = {}, {}
        for role in ("analyst", "command_staff"):
            account = accounts[role]
            enrolled = Client.enroll(bench.url, account.user_id, account.enrolment_code,
                                     PASSWORD, bench.cert)
            users[role], secrets[role] = account.user_id, enrolled.totp_secret
        yield Served(bench, pending, users, secrets)
    finally:
        bench.stop()


def _sign_in(served: Served, role: str) -> tuple[str, str]:
    """Sign in on the dashboard's login page: the cookie pair and the session token in it."""
    parts = urllib.parse.urlsplit(served.bench.dashboard_url)
    context = ssl.create_default_context(cafile=str(served.bench.cert))
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=60, context=context)
    body = urllib.parse.urlencode({"username": served.users[role], "password": PASSWORD,
                                   "totp": pyotp.TOTP(served.secrets[role]).now()})
    conn.request("POST", "/login", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert opened(response.getheader("Location") or "/login")
    cookie = next(v for k, v in response.getheaders()
                  if k.lower() == "set-cookie" and v.startswith("user="))
    pair = cookie.split(";")[0]
    value = pair.split("=", 1)[1].strip('"')
    token = base64.b64decode(value.split("|")[-2].split(":", 1)[1]).decode()
    return pair, token


def _page(served: Served, cookie: str) -> tuple[int, str]:
    """GET the dashboard as the browser would: the server builds the page for the session."""
    parts = urllib.parse.urlsplit(served.bench.dashboard_url)
    context = ssl.create_default_context(cafile=str(served.bench.cert))
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=120, context=context)
    conn.request("GET", "/", headers={"Cookie": cookie})
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, body


def _widget(page: Any, kind: type, label: str) -> Any:
    """The page's widget of ``kind`` with ``label``."""
    found = [w for w in page.select(kind) if w.label == label]
    assert len(found) == 1, (kind, label)
    return found[0]


def _queue_views(served: Served, user_id: str) -> pl.DataFrame:
    events = served.events()
    return events.filter((pl.col("event_type") == "aggregate") & (pl.col("user_id") == user_id)
                         & pl.col("query_json").str.contains('"action": "hit_queue"'))


def test_the_roles_that_work_hits_get_the_hit_queue_and_no_other_role_does() -> None:
    policy = load_policy()
    for role in policy.roles:
        pages = dashboard_pages(role, policy=policy)
        assert ("hits" in pages) == (role in DASHBOARD_ROLES and policy.may(role, "work_hits"))
        assert set(pages) <= set(DASHBOARD_PAGES)
    assert {r for r in policy.roles if policy.may(r, "work_hits")} <= set(DASHBOARD_ROLES)


def test_an_analyst_works_a_hit_from_alert_to_recovery_on_the_dashboard(served: Served) -> None:
    analyst = served.users["analyst"]
    cookie, token = _sign_in(served, "analyst")

    # The served page is built for her session and lists the queue through the service as her.
    before_views = _queue_views(served, analyst).height
    status, html = _page(served, cookie)
    assert status == 200 and "hit queue" in html
    assert _queue_views(served, analyst).height == before_views + 1

    # What the page's callbacks call, with the very token the dashboard's cookie holds.
    ca_pem = served.bench.cert.read_text()
    service = connect_hit_service(served.bench.url, token, ca_pem, user_id=analyst)
    try:
        _work_a_hit(served, service)
    finally:
        service.close()


def _work_a_hit(served: Served, service: HitService) -> None:
    analyst = served.users["analyst"]
    state = HitQueueState(service=service, home=served.bench.home, show_efficacy=True)
    page = HitQueuePage(state=state).__panel__()  # the page's widgets drive the state below
    assert state.message == ""
    assert set(served.pending) <= set(state.queue["hit_id"].to_list())
    assert state.queue.columns[:2] == ["hit_id", "time"]
    assert state.timezone == "America/Los_Angeles"
    assert state.queue["time"].str.contains(r"P[SD]T$").all()
    assert state.queue["confidence"].str.contains(r"^\d+ %$").all()
    figures_before = dict(state.figures)

    hit_id = served.pending[0]
    _widget(page, pn.widgets.Select, "Hit").value = hit_id
    assert state.hit["hit_id"] == hit_id and state.hit["is_actionable"] is False
    assert not set(ACTIONABLE) & set(state.hit)  # nothing actionable before a person decides
    assert state.crop is None and state.crop_note.startswith("no readable image")

    _widget(page, pn.widgets.TextInput, "Note (kept in the audit log)").value = (
        "plate and car match the image")
    _widget(page, pn.widgets.Button, "Correct").clicks += 1
    assert state.message == "" and "actionable now" in state.notice
    assert state.hit["is_actionable"] is True and "reason" in state.hit
    assert hit_id not in state.queue["hit_id"].to_list()

    _widget(page, pn.widgets.Select, "Outcome").value = "recovery"
    _widget(page, pn.widgets.FloatInput, "Vehicle value (USD, recovery only)").value = 18_500.0
    _widget(page, pn.widgets.TextInput, "Department case number").value = CASE
    _widget(page, pn.widgets.Button, "Record outcome").clicks += 1
    assert state.message == "", state.message
    assert [o["outcome_type"] for o in state.hit["outcomes"]] == ["recovery"]
    after = state.figures
    assert after["recoveries"] == figures_before["recoveries"] + 1
    assert after["confirmed_hits"] == figures_before["confirmed_hits"] + 1
    assert after["recovered_value_usd"] == pytest.approx(
        figures_before["recovered_value_usd"] + 18_500)

    # A refusal is shown in words and changes nothing.
    state.record_outcome("recovery", value_usd=1_000.0, case_number=CASE)
    assert state.message.startswith("The service refused:")
    assert state.figures == after

    # Every step is in the audit log with the analyst who signed in on the dashboard.
    events = served.events()
    steps = events.filter(pl.col("query_json").str.contains(hit_id, literal=True)
                          & pl.col("event_type").is_in(["hotlist_change", "aggregate"]))
    assert set(steps["user_id"]) == {analyst}
    changes = steps.filter(pl.col("event_type") == "hotlist_change")
    assert changes["outcome"].to_list() == ["allowed", "allowed", "refused"]
    decision = json.loads(changes["query_json"][0])
    assert (decision["decision"], decision["note"]) == ("correct", "plate and car match the image")
    shown = steps.filter(pl.col("query_json").str.contains('"action": "show_hit"'))
    assert shown.height >= 3


def test_a_role_without_work_hits_does_not_see_the_hit_queue(served: Served) -> None:
    staff = served.users["command_staff"]
    cookie, _ = _sign_in(served, "command_staff")
    status, html = _page(served, cookie)
    assert status == 200 and "hit queue" not in html.lower()
    assert "efficacy and impact" in html  # the program page, which command staff may see
    assert _queue_views(served, staff).is_empty()  # the page never asked for the queue


def test_the_queue_shows_times_in_the_zone_and_rounded_confidence() -> None:
    hits = [{"hit_id": "h1", "captured_at": "2026-01-15T18:05:00+00:00", "camera_id": "c1",
             "camera_name": None, "read_plate": "8WMY415", "listed_plate": "BWMY415",
             "confidence_pct": 91.64, "category": "stolen_vehicle",
             "confusable_warnings": ["position 1: read '8', listed 'B' (confusable)", "x"]}]
    row = queue_table(hits, timezone="America/Los_Angeles").row(0, named=True)
    assert row == {"hit_id": "h1", "time": "2026-01-15 10:05 PST", "camera": "c1",
                   "plate": "8WMY415", "listed_plate": "BWMY415", "confidence": "92 %",
                   "category": "stolen_vehicle",
                   "warnings": "position 1: read '8', listed 'B' (confusable); x"}


def test_a_crop_image_is_shown_when_image_ref_names_one(tmp_path: Path) -> None:
    from alpr_workbench.dashboard.hits import read_crop

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "crop.png").write_bytes(png)
    assert read_crop("frames/crop.png", home=tmp_path) == (png, "image frames/crop.png")
    assert read_crop(str(tmp_path / "frames" / "crop.png"), home=tmp_path)[0] == png
    assert read_crop(str(tmp_path / "frames" / "crop.png"))[0] is None  # no data directory
    assert read_crop("frames/missing.png", home=tmp_path)[0] is None
    assert read_crop("", home=tmp_path) == (None, "no image for this read")
