"""``alpr-workbench ingest-frames --watch``: a folder a camera uploads into (issue #16, item 2).

The command runs as a subprocess against the real service (a subprocess too). Frames dropped
into the folder over a few seconds are stored once each; a file still being written (``.part``)
is left alone until it is renamed; a frame without a capture time is reported and skipped; a
restart of the service (which signs everybody out) is ridden out: the watcher retries with
back-off and goes on once the operator signs in again; SIGTERM stops it with a summary.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyotp
from PIL import Image

from alpr_workbench.client import Client
from alpr_workbench.recognition.synth_plates import render_scene
from alpr_workbench.store import Store
from service_fixtures import (
    _EXE,
    ADMIN,
    PASSPHRASE,
    PASSWORD,
    build_home,
    start_service,
    stop_service,
)

DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def _frame(path: Path, seed: int) -> Path:
    """A synthetic 720p street frame with one plate the shipped models read."""
    scene = render_scene(np.random.default_rng(seed), size=(720, 1280), plate_width=(120, 180),
                         plates=[(f"7WAT12{seed}", "CA")])
    Image.fromarray(scene.image).save(path, format="JPEG")
    return path


def _name(seed: int) -> str:
    return f"cam_{DAY:%Y%m%d}T0815{seed:02d}Z.jpg"


def _stored(home: Path, folder: Path) -> pl.DataFrame:
    store = Store.open(home, passphrase=PASSPHRASE)
    frames = [store.reads.partition(day).read() for day in store.reads.days()]
    return pl.concat(frames).filter(pl.col("image_ref").str.starts_with(str(folder)))


def _wait_for(check: Callable[[], bool], what: str, watcher: subprocess.Popen[bytes],
              log: Path) -> None:
    """Wait (bounded) until ``check()``; a watcher that died or a long wait fails the test."""
    deadline = time.monotonic() + 180
    while not check():
        assert watcher.poll() is None, f"the watcher exited: {log.read_text()}"
        assert time.monotonic() < deadline, f"never: {what}\n{log.read_text()}"
        time.sleep(0.2)


def _said(log: Path) -> str:
    """The watcher's output as one line (rich wraps long lines, even inside a word)."""
    return "".join(log.read_text().splitlines())


def _frames_stored(home: Path, folder: Path) -> set[str]:
    return {Path(ref).name for ref in _stored(home, folder)["image_ref"]}


def test_a_watched_folder_stores_new_frames_once_and_survives_a_service_restart(tmp_path):
    home = tmp_path / "home"
    code, cert = build_home(home)
    camera = Store.open(home, passphrase=PASSPHRASE).tables.read("cameras").row(0, named=True)
    folder = tmp_path / "uploads"
    folder.mkdir()
    session = tmp_path / "admin-session.json"
    log = tmp_path / "watcher.log"
    service = start_service(home, code, cert)
    watcher = None
    try:
        secret = Client.enroll(service.url, ADMIN, code, PASSWORD, cert).totp_secret
        step = int(time.time()) // 30
        Client.login(service.url, ADMIN, PASSWORD, pyotp.TOTP(secret).at(step * 30), cert,
                     session_file=session).close()
        _frame(folder / _name(0), 0)  # already there when the watch starts
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALPR_WORKBENCH_")}
        with log.open("wb") as out:
            watcher = subprocess.Popen(
                [_EXE, "ingest-frames", str(folder), "--camera", camera["camera_id"], "--watch",
                 "--interval", "0.3", "--min-confidence", "0", "--session-file", str(session)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        _wait_for(lambda: _frames_stored(home, folder) == {_name(0)}, "the first frame stored",
                  watcher, log)

        # New frames appear while it runs; one is still being written under a .part name.
        _frame(folder / _name(1), 1)
        partial = _frame(folder / (_name(2) + ".part"), 2)
        _frame(folder / "snapshot.jpg", 3)  # no capture time: reported, skipped
        _wait_for(lambda: _name(1) in _frames_stored(home, folder), "a new frame stored",
                  watcher, log)
        _wait_for(lambda: "snapshot.jpg" in _said(log), "the untimed frame reported",
                  watcher, log)
        assert _frames_stored(home, folder) == {_name(0), _name(1)}  # not the .part file
        partial.rename(folder / _name(2))
        _wait_for(lambda: _name(2) in _frames_stored(home, folder), "the renamed frame stored",
                  watcher, log)

        # The service restarts (signing everybody out); a frame arrives meanwhile.
        stop_service(service)
        _frame(folder / _name(4), 4)
        _wait_for(lambda: "cannot reach the service" in _said(log), "a retry message",
                  watcher, log)
        service = start_service(home, "", cert)
        Client.login(service.url, ADMIN, PASSWORD, pyotp.TOTP(secret).at((step + 1) * 30), cert,
                     session_file=session).close()  # the operator signs in again
        _wait_for(lambda: _name(4) in _frames_stored(home, folder),
                  "the frame stored after the restart", watcher, log)

        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout=60) == 1  # 1: a frame could not be read
    finally:
        if watcher is not None and watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        stop_service(service)
    said = _said(log)
    reads = _stored(home, folder)
    names = {_name(k) for k in (0, 1, 2, 4)}
    assert {Path(ref).name for ref in reads["image_ref"]} == names
    assert reads["read_id"].n_unique() == reads.height
    assert "stopped watching. 4 frame(s) stored" in said
    assert f"{reads.height} stored, 0 already stored" in said  # nothing was sent twice
    assert "1 file(s) could not be read" in said and "no capture time" in said
