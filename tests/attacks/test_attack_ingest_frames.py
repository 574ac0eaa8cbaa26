"""Attacks on ``ingest-frames`` through the service (issue #15).

Before, the command opened the store with the key secret and audited the ingest under
``ALPR_WORKBENCH_USER`` or the operating-system user, so anyone could store reads in another
user's name and give them any network or place. Now the reads go to the service as the
session's user, and the service takes the camera's network and place from its cameras table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pyotp
import pytest
from PIL import Image
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.client import Client, ServiceError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.ingest import write_reads_csv
from alpr_workbench.recognition.synth_plates import render_scene
from alpr_workbench.store import Store
from service_fixtures import ADMIN, PASSPHRASE, PASSWORD, build_home, start_service, stop_service

runner = CliRunner()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running service; saved sessions of the administrator and of an analyst."""
    root = tmp_path_factory.mktemp("attack-frames")
    home = root / "home"
    code, cert = build_home(home)
    cameras = Store.open(home, passphrase=PASSPHRASE).tables.read("cameras")
    service = start_service(home, code, cert)
    try:
        secret = Client.enroll(service.url, ADMIN, code, PASSWORD, cert).totp_secret
        admin = Client.login(service.url, ADMIN, PASSWORD, pyotp.TOTP(secret).now(), cert,
                             session_file=root / "admin.json")
        enrolled = Client.enroll(service.url, "t.analyst", admin.issue_enrolment("t.analyst"),
                                 PASSWORD, cert)
        Client.login(service.url, "t.analyst", PASSWORD, pyotp.TOTP(enrolled.totp_secret).now(),
                     cert, session_file=root / "analyst.json").close()
        yield home, root, cameras, admin
        admin.close()
    finally:
        stop_service(service)


def _events(home: Path) -> pl.DataFrame:
    store = Store.open(home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events().filter(pl.col("event_type") == "ingest")


def _frames(folder: Path) -> Path:
    folder.mkdir()
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    scene = render_scene(np.random.default_rng(0), size=(720, 1280), plate_width=(120, 180),
                         plates=[("7ABC120", "CA")])
    Image.fromarray(scene.image).save(folder / f"cam_{day:%Y%m%d}T081500Z.jpg")
    return folder


def test_an_analyst_naming_the_administrator_in_the_environment_is_refused(served, tmp_path):
    home, root, cameras, _ = served
    folder = _frames(tmp_path / "frames")
    done = runner.invoke(
        app,
        ["ingest-frames", str(folder), "--camera", cameras["camera_id"][0], "--min-confidence",
         "0", "--session-file", str(root / "analyst.json")],
        env={"ALPR_WORKBENCH_USER": ADMIN, "USER": ADMIN},
    )
    assert done.exit_code == 2 and "refused" in done.output
    last = _events(home).row(-1, named=True)
    assert last["user_id"] == "t.analyst" and last["outcome"] == "refused"


def test_ingest_frames_reports_each_unreadable_file_and_fails(served, tmp_path):
    home, root, cameras, _ = served
    folder = _frames(tmp_path / "mixed")
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    (folder / "empty.png").write_bytes(b"")
    done = runner.invoke(
        app,
        ["ingest-frames", str(folder), "--camera", cameras["camera_id"][0], "--min-confidence",
         "0", "--session-file", str(root / "admin.json")],
    )
    assert done.exit_code == 1
    assert "broken.jpg" in done.output and "empty.png" in done.output
    last = _events(home).row(-1, named=True)
    assert last["user_id"] == ADMIN and last["outcome"] == "allowed" and last["row_count"] >= 1


def _reads(camera: str, **extra: object) -> bytes:
    frame = pl.DataFrame({
        "read_id": ["smuggle-1"], "camera_id": [camera],
        "captured_at": [dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)], "plate": ["7XYZ123"],
        "confidence_pct": [90.0], "source": ["recognition"],
        **{k: [v] for k, v in extra.items()},
    })
    return write_reads_csv(frame)


def test_reads_sent_for_a_camera_cannot_bring_their_own_network_place_or_camera(served):
    home, _, cameras, admin = served
    mine, other = cameras.row(0, named=True), cameras.row(1, named=True)
    attempts = [
        _reads(mine["camera_id"], network_id="private-network"),
        _reads(mine["camera_id"], lat=0.0, lon=0.0),
        _reads(other["camera_id"]),
    ]
    for body in attempts:
        with pytest.raises(ServiceError) as caught:
            admin.ingest(body, source="smuggled.csv", camera=mine["camera_id"])
        assert caught.value.status == 400 and caught.value.event_id
        refused = _events(home).filter(pl.col("event_id") == caught.value.event_id)
        assert refused["outcome"].to_list() == ["refused"]
    assert "must not carry network_id" in str(_refusal(admin, attempts[0], mine))
    assert "is not the camera" in str(_refusal(admin, attempts[2], mine))


def _refusal(admin: Client, body: bytes, camera: dict[str, object]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        admin.ingest(body, source="smuggled.csv", camera=str(camera["camera_id"]))
    return caught.value
