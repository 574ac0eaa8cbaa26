"""Attacks on the notebooks' data routes (``/v1/data/...``): plates and other users' records.

Plates leave the service only through the gate's case-gated search. A signed-in user of any
role, calling every data route with any query parameters, must not get a plate, another
user's cases or audit trail, or where vehicles were recovered without a role that sees places.
"""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from alpr_workbench.demo import build_demo
from alpr_workbench.service.routes_data import DATA_PATHS
from alpr_workbench.store import Store

ROLES = ("analyst", "command_staff", "auditor", "administrator")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from demo_service_fixtures import start_demo_service
    from service_fixtures import stop_service

    home = tmp_path_factory.mktemp("data-attack") / "home"
    build_demo(home, days=2, scale=0.05)
    running = start_demo_service(home)
    yield running
    stop_service(running.service)


@pytest.fixture(scope="module")
def tokens(served, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tokens")
    out = {}
    for role in ROLES:
        served.sign_in(role, folder / f"{role}.json")
        out[role] = json.loads((folder / f"{role}.json").read_text())["token"]
    return out


@pytest.fixture(scope="module")
def plates(served) -> set[str]:
    store = Store.open(served.service.home)
    hits, entries = store.tables.read("hits"), store.tables.read("hotlist_entries")
    found = set(hits["read_plate"]) | set(hits["listed_plate"]) | set(entries["plate"])
    found |= set(store.reads.scan(*store.reads.days()[::len(store.reads.days()) - 1],
                                  columns=["plate"]).collect()["plate"].head(2000))
    return {p for p in found if p and len(p) >= 5}


def _get(served, token: str, path: str, **params: str):
    with served.service.raw() as http:
        return http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def _leaked(body: bytes, plates: set[str]) -> set[str]:
    words = set(re.findall(rb"[A-Z0-9]{5,8}", body))
    return {p for p in plates if p.encode() in words}


_SMUGGLED = {"user_id": "someone.else", "actor": "someone.else", "show_plates": "true",
             "columns": "plate,read_plate,listed_plate,vin", "keep": "lat,lon"}


@pytest.mark.parametrize("role", ROLES)
def test_no_data_route_hands_out_a_plate(served, tokens, plates, role) -> None:
    assert plates
    for path in sorted(DATA_PATHS):
        params = dict(_SMUGGLED)
        if path.startswith("/v1/data/audit/"):
            params.update(year="", check_id="P2")
        if path == "/v1/data/audit/mine":
            continue  # the user's own trail: checked below
        answer = _get(served, tokens[role], path, **params)
        assert answer.status_code in (200, 400, 403), (path, answer.text[:200])
        assert not _leaked(answer.content, plates), (role, path)


def test_every_check_of_the_audit_masks_its_plates(served, tokens, plates) -> None:
    year = _get(served, tokens["auditor"], "/v1/data/audit/checks").headers["X-Year"]
    checks = pl.read_ipc_stream(
        _get(served, tokens["auditor"], "/v1/data/audit/checks", year=year).content)
    for check_id in checks["check_id"]:
        answer = _get(served, tokens["auditor"], "/v1/data/audit/offending",
                      check_id=check_id, year=year, show_plates="true")
        assert answer.status_code == 200
        assert not _leaked(answer.content, plates), check_id


def test_another_users_trail_and_cases_cannot_be_asked_for(served, tokens) -> None:
    me, other = served.accounts["analyst"].user_id, served.accounts["investigator"].user_id
    for path in ("/v1/data/audit/mine", "/v1/data/cases"):
        answer = _get(served, tokens["analyst"], path, user_id=other, limit="500")
        frame = pl.read_ipc_stream(answer.content)
        if "user_id" in frame.columns:
            assert set(frame["user_id"]) <= {me}
        assert answer.status_code == 200
    trail = pl.read_ipc_stream(_get(served, tokens["analyst"], "/v1/data/audit/mine").content)
    assert "query_json" not in trail.columns  # query text can hold the plates searched for


def test_recovery_places_stay_with_roles_that_see_places(served, tokens) -> None:
    answer = _get(served, tokens["auditor"], "/v1/data/outcomes", columns="lat,lon",
                  keep="lat,lon")
    assert answer.headers["X-Locations"] == "false"
    assert not {"lat", "lon"} & set(pl.read_ipc_stream(answer.content).columns)


def test_a_forged_or_missing_token_gets_nothing(served) -> None:
    with served.service.raw(source="127.0.0.9") as http:  # its back-off is its own
        for headers in ({}, {"Authorization": "Bearer " + "x" * 43}):
            answer = http.get("/v1/data/hits", headers=headers)
            assert answer.status_code == 401
            assert answer.headers["content-type"].startswith("application/json")
