import os
import shutil
import stat
import subprocess
import sys

import polars as pl
import pytest
from typer.testing import CliRunner

from admin_fixtures import as_user, member, serve, sign_in
from alpr_workbench.cli import app
from alpr_workbench.governance.registry import get_user, user_problem
from alpr_workbench.policy import load_policy
from alpr_workbench.store import Store
from service_fixtures import stop_service

runner = CliRunner()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("alpr-workbench", path=os.path.dirname(sys.executable))
    assert exe, "the console script is installed with the package"
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300
    )


def test_demo_builds_an_encrypted_city_then_purge_and_verify(tmp_path):
    home = tmp_path / "home"
    # A few rendered frames show the recognition models take part (the default is 24).
    demo = ("demo", "--data-dir", str(home), "--days", "3", "--scale", "0.1", "--no-serve",
            "--frames", "6")
    out = _cli(*demo)
    assert out.returncode == 0, out.stderr
    assert "Synthetic city built" in out.stdout and "not for real data" in out.stdout
    assert "Try a case-gated search" in out.stdout
    lines = out.stdout.splitlines()  # how each demo role signs in to the service, then searches
    for role in ("analyst", "investigator", "supervisor", "command staff", "auditor", "admin"):
        assert any(line.startswith(f"# {role}") for line in lines), role
    enrol = [line for line in lines if line.startswith("alpr-workbench enroll --url https://")]
    assert len(enrol) == 6 and all("--code " in line for line in enrol)
    searches = [line for line in lines if line.startswith("alpr-workbench search --case ")]
    assert searches and not any("--user" in line for line in searches)
    assert "Reads from rendered frames" in out.stdout  # the recognition models took part
    rendered = next(line for line in lines if "Reads from rendered frames" in line)
    assert " 6 (" in rendered, rendered  # all six frames, read exactly or not
    passphrase_file = home / "keys" / "DEMO-PASSPHRASE.txt"
    assert stat.S_IMODE(passphrase_file.stat().st_mode) == 0o600
    store = Store.open(home)
    assert len(store.reads.days()) == 3 and store.reads.row_count() > 0
    assert store.tables.read("cameras").height > 0
    # rerunning adds nothing
    again = _cli(*demo)
    assert again.returncode == 0 and "(0)" in again.stdout
    assert _cli("verify", "--data-dir", str(home)).returncode == 0
    last = store.reads.days()[-1]
    now = __import__("datetime").datetime.now(__import__("datetime").UTC)
    policy = load_policy()
    admin = next(
        u for u in store.tables.read("users").filter(pl.col("role") == "administrator")["user_id"]
        if user_problem(get_user(store, u), policy=policy, now=now) is None
    )
    service = serve(home)  # settings and purge act as the signed-in administrator
    try:
        session = {"ALPR_WORKBENCH_SESSION": str(sign_in(service, [admin], tmp_path)[admin])}
        shown = _cli("settings", "show", env=session)
        assert shown.returncode == 0 and "30 days" in shown.stdout  # the demo signed it
        changed = _cli("settings", "set", "--retention-days", "1", env=session)
        assert changed.returncode == 0, changed.stderr
        purge = _cli("purge", "--as-of", str(last), env=session)
        assert purge.returncode == 0, purge.stderr
    finally:
        stop_service(service)
    assert Store.open(home).reads.days() == [last - __import__("datetime").timedelta(days=1), last]


def test_data_dir_comes_from_the_environment(tmp_path):
    home = tmp_path / "envhome"
    result = runner.invoke(
        app,
        ["demo", "--days", "1", "--scale", "0.05", "--no-serve", "--frames", "0"],
        env={"ALPR_WORKBENCH_HOME": str(home)},
    )
    assert result.exit_code == 0, result.output
    assert (home / "keys" / "keystore.json").is_file()


def test_purge_errors_are_clear(tmp_path):
    result = runner.invoke(app, ["purge", "--as-of", "yesterday"])
    assert result.exit_code == 2 and "is not a date" in result.output
    nowhere = {"ALPR_WORKBENCH_SESSION": str(tmp_path / "none.json")}
    result = runner.invoke(app, ["purge"], env=nowhere)
    assert result.exit_code == 2 and "alpr-workbench login" in " ".join(result.output.split())


def test_verify_reports_a_damaged_file(tmp_path):
    home = tmp_path / "home"
    assert (
        runner.invoke(
            app, ["demo", "--data-dir", str(home), "--days", "2", "--scale", "0.05", "--no-serve",
                  "--frames", "0"]
        ).exit_code
        == 0
    )
    store = Store.open(home)
    path = store.reads.partition(store.reads.days()[0]).files()[0]
    path.write_bytes(path.read_bytes()[:-100])
    result = runner.invoke(app, ["verify", "--data-dir", str(home)])
    assert result.exit_code == 1 and "truncated" in result.output
    assert isinstance(store.tables.read("users"), pl.DataFrame)


def test_ingest_csv_stores_and_matches(tmp_path):
    import datetime as dt

    home = tmp_path / "home"
    assert (
        runner.invoke(
            app, ["demo", "--data-dir", str(home), "--days", "1", "--scale", "0.05", "--no-serve",
                  "--frames", "0"]
        ).exit_code
        == 0
    )
    store = Store.open(home)
    from alpr_workbench.hotlist import active_entries
    from alpr_workbench.policy import load_policy

    listed = active_entries(
        store.tables.read("hotlist_entries"),
        store.tables.read("hotlists"),
        at=dt.datetime.now(dt.UTC),
        policy=load_policy(),
    )
    plate = listed.filter(pl.col("plate").str.len_chars() == 7)["plate"][0]

    when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    csv = tmp_path / "reads.csv"
    csv.write_text(
        "read_id,camera_id,network_id,captured_at,plate,confidence_pct,lat,lon,source\n"
        f"x-1,cam-001,bpd-city,{when},{plate[:3]}-{plate[3:]},97.5,34.18,-118.31,camera\n"
        f"x-2,cam-001,bpd-city,{when},9ZZZ999,88,34.18,-118.31,camera\n"
    )
    hits_before = store.tables.read("hits").height
    admin = member(home, "administrator")
    service = serve(home)  # ingest acts as the signed-in administrator, through the service
    try:
        session = sign_in(service, [admin], tmp_path)[admin]
        result = as_user(session, "ingest", str(csv))
        assert result.exit_code == 0, result.output
        assert "2 stored" in result.output and "1 new hit" in result.output
        assert store.tables.read("hits").height == hits_before + 1
        again = as_user(session, "ingest", str(csv))
        assert "0 stored" in again.output and "0 new hit" in again.output
        bad = tmp_path / "bad.csv"
        bad.write_text("read_id,captured_at\nx-3,yesterday\n")
        failed = as_user(session, "ingest", str(bad))
        words = " ".join(failed.output.split())
        assert failed.exit_code == 2 and "line 2" in words and "captured_at" in words
        analyst = member(home, "analyst")
        refused = as_user(sign_in(service, [analyst], tmp_path)[analyst], "ingest", str(csv))
        assert refused.exit_code == 2 and "may not ingest" in " ".join(refused.output.split())
    finally:
        stop_service(service)


def test_serve_starts_the_api_and_the_dashboard_in_one_process_over_tls(tmp_path):
    """``serve``: one process (the keys') answers the API and the dashboard, both over TLS."""
    import http.client
    import ssl
    import urllib.request

    from dashboard_fixtures import start_workbench
    from service_fixtures import PASSPHRASE, build_home

    home = tmp_path / "home"
    _, cert = build_home(home)
    bench = start_workbench(home, cert, passphrase=PASSPHRASE)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"{bench.dashboard_url}/login", context=context) as page:
            html = page.read().decode()
        assert 'name="totp"' in html and 'name="password"' in html
        with urllib.request.urlopen(f"{bench.url}/v1/health", context=context) as health:
            assert health.status == 200
        # Plain HTTP is not served on the dashboard's port.
        plain = f"http://{bench.dashboard_url.removeprefix('https://')}/login"
        with pytest.raises((OSError, http.client.HTTPException)):
            urllib.request.urlopen(plain, timeout=5)
    finally:
        bench.stop()
    assert not (home / "dashboard" / "passwords.json").exists()


def test_recognize_prints_one_json_object_per_image_and_survives_bad_files(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from alpr_workbench.recognition.synth_plates import render_plate_crop

    sample = render_plate_crop(np.random.default_rng(3), size=(64, 192))
    good = tmp_path / "plate.png"
    Image.fromarray(np.asarray(sample.image)).save(good)
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    out = _cli("recognize", "--crops", "--json", str(good), str(bad))
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2, out.stdout + out.stderr
    first = next(x for x in lines if x["image"].endswith("plate.png"))
    assert first["plates"] and {"text", "confidence", "box", "candidates"} <= set(
        first["plates"][0]
    )
    assert "ms" in first
    broken = next(x for x in lines if x["image"].endswith("notes.txt"))
    assert broken["plates"] == [] and broken["error"]
