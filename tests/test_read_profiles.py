"""Read exports of ALPR systems: profiles (data) map them to the store's reads (issue #16, 2).

Each profile of ``read_profiles.yaml`` is exercised with a small synthetic export written here,
in the documented field names; the header is recognised when exactly one profile matches; a
file with bad lines is refused whole with every bad line named; and ``alpr-workbench ingest``
stores a mapped export through the real service (a subprocess), the camera's network and place
coming from the service's cameras table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from alpr_workbench.cli import app
from alpr_workbench.errors import WorkbenchError
from alpr_workbench.read_profiles import (
    detect_read_profile,
    is_reads_layout,
    load_read_profiles,
    map_reads_export,
)
from alpr_workbench.store import Store
from service_fixtures import (
    PASSPHRASE,
    served_admin,
)

runner = CliRunner()
YESTERDAY = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)


def _csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def test_every_shipped_profile_loads_and_names_where_its_fields_are_documented():
    profiles = load_read_profiles()
    assert set(profiles) == {"openalpr_webserver_group", "rekor_scout_alpr_group",
                             "genetec_autovu_sharpv", "platerecognizer_stream_csv"}
    for profile in profiles.values():
        assert profile.documented and profile.system
        assert {"plate", "captured_at", "confidence_pct"} <= set(profile.columns)


def test_openalpr_web_server_groups_map_to_reads(tmp_path):
    export = _csv(tmp_path / "groups.csv", """
pk,best_plate,best_confidence,best_uuid,epoch_time_start,epoch_time_end,camera,site,company
101,7abc-123,91.5,agent-1-1538924513527,2026-03-01T08:15:02Z,2026-03-01T08:15:04Z,cam-7,s1,3
102,6PK132,88,agent-1-1538924514000,2026-03-01T01:15:03-07:00,,cam-8,s1,3
""")
    profile, reads = map_reads_export(export)
    assert profile.name == "openalpr_webserver_group"
    assert reads["plate"].to_list() == ["7ABC123", "6PK132"]
    assert reads["camera_id"].to_list() == ["cam-7", "cam-8"]
    assert reads["confidence_pct"].to_list() == [91.5, 88.0]
    assert [t.isoformat() for t in reads["captured_at"]] == [
        "2026-03-01T08:15:02+00:00", "2026-03-01T08:15:03+00:00"]
    assert reads["image_ref"].to_list() == ["agent-1-1538924513527", "agent-1-1538924514000"]
    assert set(reads["source"]) == {"vendor_import"}
    assert reads["read_id"].n_unique() == 2
    again = map_reads_export(export)[1]  # the same export gives the same ids: re-ingest is a no-op
    assert again["read_id"].to_list() == reads["read_id"].to_list()


def test_rekor_scout_groups_take_epoch_milliseconds_and_the_state_from_the_region(tmp_path):
    export = _csv(tmp_path / "alpr_group.csv", """
data_type,camera_id,best_plate_number,best_confidence,best_region,best_uuid,epoch_start,epoch_end
alpr_group,2090267338,6PK132,90.25,us-mo,YYYY-2090267338-1538924513527,1538924513527,1538924513627
alpr_group,2090267338,AB12CDE,80,gb,YYYY-2090267338-1538924519999,1538924519999,1538924520100
""")
    profile, reads = map_reads_export(export)
    assert profile.name == "rekor_scout_alpr_group"
    assert reads["plate_state"].to_list() == ["MO", None]  # gb is no US state or province
    assert reads["captured_at"][0] == dt.datetime(2018, 10, 7, 15, 1, 53, 527000, tzinfo=dt.UTC)
    assert reads["camera_id"].to_list() == ["2090267338"] * 2


def test_genetec_sharpv_joins_its_utc_date_and_time_columns(tmp_path):
    export = _csv(tmp_path / "sharpv.csv", """
Plate,State,UTCDate,UTCTime,CameraName,SourceName,LongitudeX,LatitudeY,Guid,ConfidenceScore
ABC1234,CA,2026:03:01,08:15:02.250,lane-1,Sharp-7,-118.3,34.18,1b4e28ba-2fa1-11d2-883f-0016d3cca427,97
""")
    profile, reads = map_reads_export(export)
    assert profile.name == "genetec_autovu_sharpv"
    row = reads.row(0, named=True)
    assert row["captured_at"] == dt.datetime(2026, 3, 1, 8, 15, 2, 250000, tzinfo=dt.UTC)
    assert (row["plate"], row["plate_state"], row["camera_id"], row["confidence_pct"]) == (
        "ABC1234", "CA", "lane-1", 97.0)
    # The store places a read at its camera (cameras table): the export's own place is unused.
    assert "lat" not in reads.columns and "network_id" not in reads.columns


def test_plate_recognizer_stream_csv_needs_the_camera_and_scales_its_score(tmp_path):
    export = _csv(tmp_path / "camera-1.csv", """
timestamp,plate,score,dscore,file,box,region,candidates
2021-10-27 06:20:43.970337+00:00,sjubi1,0.781,0.441,/camera-1_screenshots/a.jpg,"{'x': 8}","{}","[]"
""")
    with pytest.raises(WorkbenchError, match="names no camera; give --camera"):
        map_reads_export(export)
    profile, reads = map_reads_export(export, camera_id="cam-1")
    assert profile.name == "platerecognizer_stream_csv"
    assert reads["camera_id"].to_list() == ["cam-1"]
    assert reads["confidence_pct"][0] == pytest.approx(78.1)
    assert reads["plate"].to_list() == ["SJUBI1"]
    assert reads["image_ref"].to_list() == ["/camera-1_screenshots/a.jpg"]


def test_header_spelling_does_not_matter_but_an_unknown_header_is_refused_naming_profiles():
    assert detect_read_profile(
        ["PK", "Best Plate", "Best-Confidence", "epochTimeStart", "Camera"]
    ).name == "openalpr_webserver_group"
    with pytest.raises(WorkbenchError) as refused:
        detect_read_profile(["plate_no", "when", "conf"], source="x.csv")
    message = str(refused.value)
    assert "x.csv: no read-export profile matches" in message
    for name in load_read_profiles():
        assert name in message
    assert "--profile" in message


def test_a_header_that_fits_two_profiles_is_ambiguous_until_the_profile_is_named(tmp_path):
    header = ["pk", "best_plate", "best_confidence", "epoch_time_start", "camera",
              "timestamp", "plate", "score"]
    with pytest.raises(WorkbenchError, match="matches several read-export profiles: "
                       "openalpr_webserver_group, platerecognizer_stream_csv"):
        detect_read_profile(header)
    export = _csv(tmp_path / "both.csv", ",".join(header) + "\n"
                  "1,ABC123,90,2026-03-01T08:15:02Z,cam-7,2026-03-01T08:15:02Z,ABC123,0.9\n")
    profile, reads = map_reads_export(export, profile="openalpr_webserver_group")
    assert profile.name == "openalpr_webserver_group" and reads.height == 1
    with pytest.raises(WorkbenchError, match="unknown read-export profile 'flock'"):
        map_reads_export(export, profile="flock")


def test_the_store_layout_needs_no_profile():
    assert is_reads_layout(["read_id", "camera_id", "captured_at", "plate", "confidence_pct"])
    assert not is_reads_layout(["read_id", "best_plate"])


def test_a_file_with_bad_lines_is_refused_whole_naming_every_bad_line(tmp_path):
    export = _csv(tmp_path / "bad.csv", """
pk,best_plate,best_confidence,epoch_time_start,camera
1,ABC123,90,2026-03-01T08:15:02Z,cam-7
2,NOT A PLATE!,90,2026-03-01T08:15:02Z,cam-7
3,ABC124,high,2026-03-01T08:15:02Z,cam-7
4,ABC125,90,yesterday,cam-7
5,ABC126,140,2026-03-01T08:15:02Z,
1,ABC123,90,2026-03-01T08:15:02Z,cam-7
6,ABC127,90,2026-03-01T08:15:02,cam-7
""")
    with pytest.raises(WorkbenchError) as refused:
        map_reads_export(export)
    message = str(refused.value)
    assert "6 bad line(s)" in message and "nothing was stored" in message
    lines = message.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "line 3", "line 4", "line 5", "line 6", "line 7", "line 8"]
    assert "is not a plate" in lines[0] and "not a number" in lines[1]
    assert "not a iso8601 time" in lines[2]
    assert "outside 0-100%" in lines[3] and "no camera" in lines[3]
    assert "the same read as line 2" in lines[4]
    assert "has no time zone; give --time-zone" in lines[5]  # never guessed


def test_a_time_without_offset_takes_the_zone_the_operator_names(tmp_path):
    export = _csv(tmp_path / "naive.csv", """
pk,best_plate,best_confidence,epoch_time_start,camera
6,ABC127,90,2026-03-01T08:15:02,cam-7
""")
    reads = map_reads_export(export, time_zone="America/Los_Angeles")[1]
    assert reads["captured_at"][0] == dt.datetime(2026, 3, 1, 16, 15, 2, tzinfo=dt.UTC)
    with pytest.raises(WorkbenchError, match="--time-zone 'Mars/Base' is not a time zone"):
        map_reads_export(export, time_zone="Mars/Base")


# -- through the service ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running service, the administrator's saved session, and a camera of the city."""
    with served_admin(tmp_path_factory.mktemp("read-profiles")) as served:
        yield served


def _vendor_reads(home: Path) -> pl.DataFrame:
    store = Store.open(home, passphrase=PASSPHRASE)
    frames = [store.reads.partition(day).read() for day in store.reads.days()]
    return pl.concat(frames).filter(pl.col("source") == "vendor_import")


def _said(result) -> str:
    return "".join(result.output.splitlines())


def test_ingest_maps_a_vendor_export_and_stores_it_at_the_cameras_place(served, tmp_path):
    home, session, camera = served
    start_ms = int(YESTERDAY.timestamp() * 1000)
    export = _csv(tmp_path / "scout.csv", f"""
camera_id,best_plate_number,best_confidence,best_region,best_uuid,epoch_start
{camera['camera_id']},7XYZ001,93.5,us-ca,u-1,{start_ms}
{camera['camera_id']},7XYZ002,71,us-nv,u-2,{start_ms + 1500}
""")
    args = ["ingest", str(export), "--session-file", str(session)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "profile rekor_scout_alpr_group" in _said(done) and "2 stored" in _said(done)
    reads = _vendor_reads(home).sort("plate")
    assert reads["plate"].to_list() == ["7XYZ001", "7XYZ002"]
    assert reads["plate_state"].to_list() == ["CA", "NV"]
    assert set(reads["network_id"]) == {camera["network_id"]}
    assert set(reads["lat"]) == {camera["lat"]} and set(reads["lon"]) == {camera["lon"]}
    again = runner.invoke(app, args)  # idempotent: the same export stores nothing new
    assert again.exit_code == 0 and "0 stored, 2 already stored" in _said(again)


def test_an_export_naming_an_unknown_camera_is_refused_before_anything_is_stored(served,
                                                                              tmp_path):
    home, session, camera = served
    before = _vendor_reads(home).height
    stamp = YESTERDAY.isoformat()
    export = _csv(tmp_path / "groups.csv", f"""
pk,best_plate,best_confidence,epoch_time_start,camera
901,8AAA001,90,{stamp},{camera['camera_id']}
902,8AAA002,90,{stamp},no-such-camera
""")
    done = runner.invoke(app, ["ingest", str(export), "--session-file", str(session)])
    assert done.exit_code == 2
    assert "no-such-camera" in _said(done) and "nothing was stored" in _said(done)
    assert _vendor_reads(home).height == before
    bad = _csv(tmp_path / "bad.csv", "pk,best_plate,best_confidence,epoch_time_start,camera\n"
               f"903,??,90,{stamp},{camera['camera_id']}\n")
    done = runner.invoke(app, ["ingest", str(bad), "--session-file", str(session)])
    assert done.exit_code == 2 and "line 2" in _said(done) and "is not a plate" in _said(done)
    assert _vendor_reads(home).height == before
