"""``alpr-workbench ingest-frames``: recognition here, the store through the service (issue #15).

The command reads the plates in a camera's frames in its own process (the shipped models, no
key), then sends the reads to the real service (TLS, a subprocess) as the signed-in user; the
service adds the camera's network and place from its cameras table and audits the ingest
under the session's user. Each frame's capture time comes from EXIF or its name (or, when the
operator says so, its modified time), never silently from the file system.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.recognition.pipeline import capture_time_of, check_time_from
from alpr_workbench.recognition.synth_plates import render_scene
from alpr_workbench.store import Store
from service_fixtures import (
    ADMIN,
    PASSPHRASE,
    served_admin,
)

runner = CliRunner()


def _frame(path: Path, seed: int, **save: object) -> Path:
    """A synthetic 720p street frame with one plate the shipped models read."""
    scene = render_scene(np.random.default_rng(seed), size=(720, 1280), plate_width=(120, 180),
                         plates=[(f"7ABC12{seed}", "CA")])
    Image.fromarray(scene.image).save(path, **save)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running service, the administrator's saved session, and a camera of the city."""
    with served_admin(tmp_path_factory.mktemp("ingest-frames")) as served:
        yield served


def _ingest_frames(folder: Path, camera: str, session: Path, *args: str):
    env = {"ALPR_WORKBENCH_USER": "t.analyst"}  # must not matter: identity is the session's
    return runner.invoke(app, ["ingest-frames", str(folder), "--camera", camera,
                               "--session-file", str(session), *args], env=env)


def _said(result) -> str:
    """The command's output as one line (rich wraps long lines, even inside a word)."""
    return "".join(result.output.splitlines())


def _events(home: Path) -> pl.DataFrame:
    store = Store.open(home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        return log.events()


def _ingests(home: Path) -> int:
    return _events(home).filter(pl.col("event_type") == "ingest").height


def _reads_of(home: Path, prefix: str) -> pl.DataFrame:
    store = Store.open(home, passphrase=PASSPHRASE)
    frames = [store.reads.partition(day).read() for day in store.reads.days()]
    return pl.concat(frames).filter(pl.col("image_ref").str.contains(prefix, literal=True))


def test_frames_become_reads_of_the_cameras_place_stored_as_the_session_user(served, tmp_path):
    home, session, camera = served
    folder = tmp_path / "frames"
    folder.mkdir()
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    for seed in (0, 1):
        _frame(folder / f"cam_{day:%Y%m%d}T08150{seed}Z.jpg", seed)
    done = _ingest_frames(folder, camera["camera_id"], session, "--min-confidence", "0")
    assert done.exit_code == 0, done.output
    reads = _reads_of(home, str(folder))
    assert reads.height >= 2 and f"{reads.height} stored" in _said(done)
    # The camera's network and place come from the service's cameras table.
    assert set(reads["camera_id"]) == {camera["camera_id"]}
    assert set(reads["network_id"]) == {camera["network_id"]}
    assert set(reads["lat"]) == {camera["lat"]} and set(reads["lon"]) == {camera["lon"]}
    assert set(reads["source"]) == {"recognition"}
    assert sorted({t.isoformat() for t in reads["captured_at"]}) == [
        f"{day.isoformat()}T08:15:00+00:00", f"{day.isoformat()}T08:15:01+00:00"
    ]
    ingest = _events(home).filter(pl.col("event_type") == "ingest").row(-1, named=True)
    assert ingest["user_id"] == ADMIN and ingest["outcome"] == "allowed"
    assert str(folder) in ingest["query_json"]
    again = _ingest_frames(folder, camera["camera_id"], session, "--min-confidence", "0")
    assert again.exit_code == 0 and "0 stored" in _said(again)
    assert _reads_of(home, str(folder)).height == reads.height


def test_only_plates_at_or_above_the_minimum_confidence_are_stored(served, tmp_path):
    home, session, camera = served
    folder = tmp_path / "sure"
    folder.mkdir()
    _frame(folder / "cam_20260301T081502Z.jpg", 2)
    before = _ingests(home)
    done = _ingest_frames(folder, camera["camera_id"], session, "--min-confidence", "1")
    assert done.exit_code == 0, done.output
    assert "0 plate(s) read at or above 100% confidence" in _said(done)
    assert _ingests(home) == before  # nothing was sent
    assert "--min-confidence" in runner.invoke(app, ["ingest-frames", "--help"]).output


def test_a_frame_without_a_capture_time_stops_the_run_and_names_it(served, tmp_path):
    home, session, camera = served
    folder = tmp_path / "untimed"
    folder.mkdir()
    _frame(folder / "cam_20260301T081502Z.jpg", 0)
    untimed = _frame(folder / "snapshot.png", 1)
    before = _ingests(home)
    done = _ingest_frames(folder, camera["camera_id"], session)
    assert done.exit_code == 2
    assert "snapshot.png" in _said(done) and "no capture time" in _said(done)
    assert _ingests(home) == before  # refused before anything was sent
    # The operator may say, knowingly, that the modified time is right.
    stamp = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(microsecond=0)
    os.utime(untimed, (stamp.timestamp(), stamp.timestamp()))
    (folder / "cam_20260301T081502Z.jpg").unlink()
    done = _ingest_frames(folder, camera["camera_id"], session, "--time-from", "mtime",
                          "--min-confidence", "0")
    assert done.exit_code == 0, done.output
    assert set(_reads_of(home, "snapshot.png")["captured_at"]) == {stamp}


def test_a_name_pattern_and_exif_give_the_capture_time(tmp_path):
    named = tmp_path / "IMG_01032026-081502.png"
    named.write_bytes(b"")
    assert capture_time_of(named, "name:IMG_%d%m%Y-%H%M%S") == dt.datetime(
        2026, 3, 1, 8, 15, 2, tzinfo=dt.UTC
    )
    with pytest.raises(WorkbenchError, match="IMG_01032026-081502.png.*does not fit"):
        capture_time_of(named, "name:cam_%Y%m%dT%H%M%S")
    with pytest.raises(WorkbenchError, match="must give the date and the time"):
        check_time_from("name:IMG_%d%m%Y")
    with pytest.raises(WorkbenchError, match="unknown time source"):
        check_time_from("ctime")
    exif = Image.Exif()
    exif[0x8769] = {0x9003: "2026:03:04 10:11:12", 0x9011: "-07:00", 0x9291: "25"}
    shot = _frame(tmp_path / "DSC0001.jpg", 0, exif=exif)
    assert capture_time_of(shot, "exif") == dt.datetime(2026, 3, 4, 17, 11, 12, 250000,
                                                        tzinfo=dt.UTC)
    assert capture_time_of(shot) == capture_time_of(shot, "exif")  # auto: EXIF first
    with pytest.raises(WorkbenchError, match="DSC0001.jpg.*no EXIF"):
        capture_time_of(_frame(tmp_path / "DSC0001.jpg", 0), "exif")


def test_an_unknown_camera_is_refused_by_the_service_and_audited(served, tmp_path):
    home, session, _ = served
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    _frame(folder / "cam_20260301T081502Z.jpg", 1)
    done = _ingest_frames(folder, "cam-nowhere", session, "--min-confidence", "0")
    assert done.exit_code == 2 and "unknown camera 'cam-nowhere'" in _said(done)
    refused = _events(home).filter(pl.col("event_type") == "ingest").row(-1, named=True)
    assert refused["outcome"] == "refused" and refused["user_id"] == ADMIN
    assert "cam-nowhere" in refused["refusal_reason"]


def test_without_a_session_nothing_is_read_or_sent(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    done = runner.invoke(app, ["ingest-frames", str(folder), "--camera", "cam-01",
                               "--session-file", str(tmp_path / "none.json")])
    assert done.exit_code == 2 and "no saved session" in _said(done)
    assert "alpr-workbench login" in _said(done)
    assert "--data-dir" not in runner.invoke(app, ["ingest-frames", "--help"]).output
