"""Attacks from the third review: proxy headers, hit image paths, network ownership.

1. A caller on loopback claims another address with ``X-Forwarded-For`` to dodge the
   per-source login back-off and to write a false ``source`` into the audit trail (a real
   service subprocess).
2. A hit's ``image_ref`` (from vendors' exports and recognizers, never trusted) names a file
   outside the data directory, or reaches one through a linked folder.
3. An administrator hands a private network to the city by an edit, so it is searched as
   department-owned without its operator's grant (a real store and audit log).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import polars as pl
import pytest

from alpr_workbench.dashboard.hits import read_crop
from alpr_workbench.governance import onboarding
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.policy import load_policy
from alpr_workbench.service.initialize import init_workbench
from alpr_workbench.store import Store
from service_fixtures import ADMIN, PASSPHRASE, build_home, start_service, stop_service

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
NOW = dt.datetime.now(dt.UTC)
POLICY = load_policy()


# -- 1. X-Forwarded-For from loopback ------------------------------------------------------
def test_a_forwarded_for_header_neither_dodges_the_back_off_nor_lies_to_the_audit(tmp_path):
    home = tmp_path / "home"
    code, cert = build_home(home)
    service = start_service(home, code, cert)
    try:
        # uvicorn trusts these headers from 127.0.0.1 by default: the caller must be there.
        with service.raw("127.0.0.1") as http:
            codes = [
                http.post("/v1/login",
                          json={"user_id": ADMIN, "password": "guess-guess-guess",
                                "totp": "000000"},
                          headers={"X-Forwarded-For": f"203.0.113.{n}",
                                   "Forwarded": f"for=198.51.100.{n}"}).status_code
                for n in range(1, 8)
            ]
    finally:
        stop_service(service)
    assert codes[:5] == [401] * 5 and 429 in codes[5:], codes
    store = Store.open(home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events()
    logins = events.filter((pl.col("event_type") == "login") & (pl.col("outcome") == "refused"))
    sources = {json.loads(q).get("source") for q in logins["query_json"].to_list()}
    assert logins.height == codes.count(401) and sources == {"127.0.0.1"}, sources


# -- 2. image_ref outside the data directory -----------------------------------------------
def _frames(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    (home / "frames").mkdir(parents=True)
    (home / "frames" / "crop.png").write_bytes(PNG)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.png").write_bytes(PNG)
    return home, outside


def test_an_absolute_image_ref_outside_the_data_directory_is_not_read(tmp_path):
    home, outside = _frames(tmp_path)
    assert read_crop(str(home / "frames" / "crop.png"), home=home)[0] == PNG  # inside: shown
    for ref in (str(outside / "secret.png"), str(home / ".." / "elsewhere" / "secret.png")):
        data, note = read_crop(ref, home=home)
        assert data is None and note.startswith("no readable image"), ref
    assert read_crop(str(home / "frames" / "crop.png"))[0] is None  # no data directory


def test_a_linked_folder_anywhere_in_the_path_is_not_followed(tmp_path):
    home, outside = _frames(tmp_path)
    (home / "vendor").symlink_to(outside, target_is_directory=True)  # leads out
    (home / "alias").symlink_to(home / "frames", target_is_directory=True)  # stays inside
    for ref in (str(home / "vendor" / "secret.png"), "vendor/secret.png",
                str(home / "alias" / "crop.png"), "alias/crop.png"):
        data, note = read_crop(ref, home=home)
        assert data is None and note.startswith("no readable image"), ref
    assert read_crop("frames/crop.png", home=home)[0] == PNG


def test_a_fifo_named_as_an_image_does_not_hang_the_page(tmp_path):
    home, _ = _frames(tmp_path)
    os.mkfifo(home / "frames" / "pipe.png")
    assert read_crop("frames/pipe.png", home=home)[0] is None


# -- 3. a private network handed to the city -----------------------------------------------
@pytest.fixture
def networks(tmp_path):
    home = tmp_path / "home"
    init_workbench(home, ADMIN, "Alice Admin", passphrase=PASSPHRASE)
    store = Store.open(home, passphrase=PASSPHRASE)
    log = AuditLog.open(home, store.keystore)
    onboarding.import_csv(
        store, log.append, "networks",
        b"Network,Name,Type,Owner\nbpd-city,City,City,City of Burbank\n"
        b"oak-hoa,Oak Knoll HOA,HOA,Oak Knoll Homeowners Association\n",
        actor=ADMIN, policy=POLICY, now=NOW,
    )
    yield store, log
    log.close()


def _refused_edit(store, log, call) -> str:
    before = store.tables.read("networks")
    seen = log.events().height
    with pytest.raises(onboarding.ImportFileError) as caught:
        call()
    assert store.tables.read("networks").equals(before)
    new = log.events().slice(seen)
    assert new["outcome"].to_list() == ["refused"] and new["user_id"].to_list() == [ADMIN]
    return str(caught.value)


@pytest.mark.parametrize("changes", [
    {"owner_type": "city", "is_department_owned": "yes"},
    {"owner_type": "city"},
])
def test_an_edit_does_not_hand_a_private_network_to_the_city(networks, changes):
    store, log = networks
    said = _refused_edit(store, log, lambda: onboarding.edit_record(
        store, log.append, "networks", "oak-hoa", changes, actor=ADMIN, policy=POLICY,
        now=NOW, reason="attack"))
    assert "privately operated" in said and "grant" in said


def test_an_import_does_not_hand_a_private_network_to_the_city(networks):
    store, log = networks
    said = _refused_edit(store, log, lambda: onboarding.import_csv(
        store, log.append, "networks",
        b"Network,Type,Department Owned\noak-hoa,Municipal,yes\n",
        actor=ADMIN, policy=POLICY, now=NOW, name="attack.csv"))
    assert "privately operated" in said
    # The city's own network is still edited as before.
    onboarding.edit_record(store, log.append, "networks", "bpd-city", {"name": "City cameras"},
                           actor=ADMIN, policy=POLICY, now=NOW)
    assert "City cameras" in store.tables.read("networks")["name"].to_list()
