"""Several frames of one vehicle vote (issue #17): the tracker, and ``ingest-frames`` with it.

The tracker's tests use synthetic per-frame reads. The end-to-end test renders a short
sequence of one synthetic car (the same scene shifted a few pixels per frame, one second
apart), runs ``ingest-frames`` against a real served city, and finds one read per vehicle
with its frame count in the real encrypted store. An older store, written before the reads
table declared ``frame_count``, still opens, reads and verifies.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.recognition.synth_plates import render_scene
from alpr_workbench.recognition.tracks import (
    TRACK_MAX_GAP,
    FrameTracker,
    vote_reads,
)
from alpr_workbench.schema import load_table, schema_dir, validate_frame
from alpr_workbench.store import Store
from conftest import PASSPHRASE as STORE_PASSPHRASE
from conftest import make_reads
from service_fixtures import PASSPHRASE, served_admin

T0 = dt.datetime(2026, 3, 1, 8, 15, tzinfo=dt.UTC)


def _read(i: int, plate: str, *, second: float, x: int = 100, confidence: float = 90.0,
          camera: str = "cam-01", frame: str | None = None) -> dict[str, object]:
    """One per-frame read: frame ``frame`` (default: one per second), box at ``x``."""
    return {
        "read_id": f"r{i}", "camera_id": camera, "plate": plate,
        "captured_at": T0 + dt.timedelta(seconds=second),
        "image_ref": frame or f"{camera}/f{second:g}.jpg", "confidence_pct": confidence,
        "alternate_plates": [], "box_x_px": x, "box_y_px": 300, "box_w_px": 120,
        "box_h_px": 60,
    }


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows)


def test_three_frames_two_misread_differently_vote_for_the_right_text():
    reads = _frame([
        _read(1, "7ABC123", second=0, x=100, confidence=80.0),
        _read(2, "7A8C123", second=1, x=106, confidence=95.0),  # misread, surer than each
        _read(3, "7ABC128", second=2, x=112, confidence=70.0),  # another misread
        _read(4, "7ABC123", second=3, x=118, confidence=90.0),
    ])
    voted = vote_reads(reads)
    assert voted.height == 1
    read = voted.row(0, named=True)
    assert read["plate"] == "7ABC123" and read["frame_count"] == 4
    # The winner's votes over all the frames: 80 + 90 of 4 frames.
    assert read["confidence_pct"] == pytest.approx((80 + 90) / 4)
    # The best frame of the winning text gives the time, box and image; the rest alternate.
    assert read["captured_at"] == T0 + dt.timedelta(seconds=3) and read["box_x_px"] == 118
    assert read["image_ref"] == "cam-01/f3.jpg"
    assert read["alternate_plates"] == ["7A8C123", "7ABC128"]
    assert read["read_id"].startswith("trk:")
    assert vote_reads(reads.reverse())["read_id"].to_list() == [read["read_id"]]  # stable


def test_a_tie_in_votes_goes_to_more_frames_then_the_surest_frame():
    reads = _frame([
        _read(1, "7ABC123", second=0, confidence=45.0),
        _read(2, "7ABC128", second=1, confidence=90.0),
        _read(3, "7ABC123", second=2, confidence=45.0),
    ])
    assert vote_reads(reads)["plate"].to_list() == ["7ABC123"]  # 90 = 45 + 45: two frames
    reads = _frame([_read(1, "7ABC128", second=0, confidence=60.0),
                    _read(2, "7ABC123", second=1, confidence=60.0)])
    assert vote_reads(reads)["plate"].to_list() == ["7ABC123"]  # all equal: alphabetical


def test_two_cars_in_the_same_frames_stay_apart():
    rows = []
    for k in range(3):
        frame = f"cam-01/f{k}.jpg"
        rows.append(_read(10 + k, "7ABC123", second=k, x=100 + 8 * k, frame=frame))
        # The other car, one plate width away, with a plate one edit from the first.
        rows.append(_read(20 + k, "7ABC124", second=k, x=240 + 8 * k, frame=frame))
    voted = vote_reads(_frame(rows)).sort("plate")
    assert voted["plate"].to_list() == ["7ABC123", "7ABC124"]
    assert voted["frame_count"].to_list() == [3, 3]
    # A misread of one car in the next frame joins the car whose box it sits on.
    rows.append(_read(30, "7ABC12A", second=3, x=245, frame="cam-01/f3.jpg"))
    voted = vote_reads(_frame(rows)).sort("plate")
    assert voted["frame_count"].to_list() == [3, 4]


def test_the_same_text_joins_wherever_the_car_moved_but_a_similar_one_far_away_does_not():
    near_text_far_box = _frame([_read(1, "7ABC123", second=0, x=100),
                                _read(2, "7ABC124", second=1, x=700)])
    assert vote_reads(near_text_far_box).height == 2
    same_text_far_box = _frame([_read(1, "7ABC123", second=0, x=100),
                                _read(2, "7ABC123", second=1, x=700)])
    assert vote_reads(same_text_far_box)["frame_count"].to_list() == [2]
    different_text_same_box = _frame([_read(1, "7ABC123", second=0),
                                       _read(2, "8XYZ999", second=1)])
    assert vote_reads(different_text_same_box).height == 2


def test_a_gap_longer_than_the_maximum_splits_a_track():
    gap = TRACK_MAX_GAP.total_seconds()
    joined = _frame([_read(1, "7ABC123", second=0), _read(2, "7ABC123", second=gap)])
    assert vote_reads(joined)["frame_count"].to_list() == [2]
    split = _frame([_read(1, "7ABC123", second=0), _read(2, "7ABC123", second=gap + 0.5),
                    _read(3, "7ABC123", second=gap + 1)])
    voted = vote_reads(split)
    assert voted["frame_count"].to_list() == [1, 2]
    assert voted["read_id"][0] == "r1"  # a one-frame track is the frame's own read


def test_different_cameras_never_merge():
    reads = _frame([_read(1, "7ABC123", second=0, camera="cam-01"),
                    _read(2, "7ABC123", second=0.5, camera="cam-02"),
                    _read(3, "7ABC123", second=1, camera="cam-01")])
    voted = vote_reads(reads).sort("camera_id")
    assert voted["camera_id"].to_list() == ["cam-01", "cam-02"]
    assert voted["frame_count"].to_list() == [2, 1]


def test_the_tracker_closes_a_track_when_a_later_frame_passes_the_gap():
    tracker = FrameTracker()
    assert tracker.feed([_read(1, "7ABC123", second=0)]) == []
    assert tracker.feed([_read(2, "7ABC123", second=1)]) == []
    closed = tracker.feed([_read(3, "8XYZ999", second=10)])
    assert [len(t.reads) for t in closed] == [2]
    assert [t.reads[0]["plate"] for t in tracker.open_tracks] == ["8XYZ999"]
    assert [len(t.reads) for t in tracker.close()] == [1] and tracker.open_tracks == []
    with pytest.raises(ValueError, match="max_gap"):
        FrameTracker(max_gap=-TRACK_MAX_GAP)


def test_voted_reads_conform_to_the_reads_schema():
    reads = validate_frame("reads", make_reads(50, days=1)).drop("frame_count")
    voted = vote_reads(reads)
    assert set(voted.columns) == set(load_table("reads").columns)
    assert validate_frame("reads", voted)["frame_count"].min() >= 1
    assert voted["frame_count"].sum() == reads.height


# -- end to end: ingest-frames against a real served city --------------------------------

runner = CliRunner()
PLATE = "7VOT421"  # seed 11 draws it where the shipped models read it in every frame


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running service, the administrator's saved session, and a camera of the city."""
    with served_admin(tmp_path_factory.mktemp("frame-voting")) as served:
        yield served


def _sequence(folder: Path, frames: int) -> None:
    """One car, shifted 6 pixels per frame, one frame a second (times in the names)."""
    folder.mkdir()
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    scene = render_scene(np.random.default_rng(11), size=(360, 640), plate_width=(120, 160),
                         plates=[(PLATE, "CA")])
    for i in range(frames):
        image = np.roll(scene.image, 6 * i, axis=1)
        Image.fromarray(image).save(folder / f"cam_{day:%Y%m%d}T0930{i:02d}Z.png")


def _stored(home: Path, folder: Path) -> pl.DataFrame:
    store = Store.open(home, passphrase=PASSPHRASE)
    frames = [store.reads.partition(day).read() for day in store.reads.days()]
    return pl.concat(frames).filter(pl.col("image_ref").str.starts_with(str(folder)))


def _ingest(folder: Path, camera: str, session: Path, *args: str):
    return runner.invoke(app, ["ingest-frames", str(folder), "--camera", camera,
                               "--session-file", str(session), *args])


def test_ingest_frames_stores_one_read_per_vehicle_with_its_frame_count(served, tmp_path):
    home, session, camera = served
    folder = tmp_path / "one-car"
    _sequence(folder, 3)
    done = _ingest(folder, camera["camera_id"], session)
    assert done.exit_code == 0, done.output
    reads = _stored(home, folder)
    assert reads.select("plate", "frame_count").rows() == [(PLATE, 3)]
    said = "".join(done.output.splitlines())
    assert "from 3 frame reading(s)" in said and "1 stored" in said
    again = _ingest(folder, camera["camera_id"], session)  # the same tracks: nothing new
    assert again.exit_code == 0 and "0 stored, 1 already stored" in "".join(
        again.output.splitlines())
    # --no-vote keeps one read per frame, each of one frame.
    other = tmp_path / "one-car-no-vote"
    _sequence(other, 3)
    done = _ingest(other, camera["camera_id"], session, "--no-vote")
    assert done.exit_code == 0, done.output
    assert _stored(home, other).select("plate", "frame_count").rows() == [(PLATE, 1)] * 3


# -- an older store (before frame_count) still opens and verifies ------------------------

_WRITE_OLD_STORE = """
import sys
from pathlib import Path
from alpr_workbench.store import Store
from conftest import make_reads
store = Store.create(Path(sys.argv[1]), passphrase=sys.argv[2])
store.reads.ingest(make_reads(200, days=2))
"""


def test_a_store_written_before_frame_count_still_opens_reads_and_verifies(tmp_path):
    old_schema = tmp_path / "schema-before"
    shutil.copytree(schema_dir(), old_schema)
    text = (old_schema / "reads.yaml").read_text()
    start = text.index("  - name: frame_count")
    end = text.index("  - name:", start + 1)
    (old_schema / "reads.yaml").write_text(text[:start] + text[end:])
    home = tmp_path / "home"
    env = {**os.environ, "ALPR_WORKBENCH_SCHEMA_DIR": str(old_schema),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    subprocess.run([sys.executable, "-c", textwrap.dedent(_WRITE_OLD_STORE), str(home),
                    STORE_PASSPHRASE], env=env, cwd=tmp_path, check=True, timeout=120)
    store = Store.open(home, passphrase=STORE_PASSPHRASE)
    assert store.verify() == []
    old = pl.concat([store.reads.partition(day).read() for day in store.reads.days()])
    assert old.height == 200 and old["frame_count"].null_count() == 200  # empty: one frame
    # New reads, with a frame count, go into the same days beside the old ones.
    new = make_reads(10, days=2, prefix="n").with_columns(pl.lit(3).alias("frame_count"))
    store.reads.ingest(new)
    assert store.verify() == []
    both = pl.concat([store.reads.partition(day).read() for day in store.reads.days()])
    assert both.height == 210
    assert both.filter(pl.col("frame_count") == 3).height == 10
