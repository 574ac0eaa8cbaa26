"""The workbench service end to end: a real service process over TLS, the real client."""

from __future__ import annotations

import datetime as dt
import stat

import polars as pl
import pyotp
import pytest
from polars.testing import assert_frame_equal

from alpr_workbench.client import Client, ServiceError, connect
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRequest
from alpr_workbench.service.accounts import ACCOUNTS_FILE
from alpr_workbench.service.sessions import SessionStore
from alpr_workbench.store import Store
from service_fixtures import (
    ADMIN,
    CASE,
    PASSPHRASE,
    PASSWORD,
    city_service,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with city_service(tmp_path_factory.mktemp("service")) as running:
        yield running


@pytest.fixture(scope="module")
def admin(service, tmp_path_factory):
    enrolled = Client.enroll(service.url, ADMIN, service.admin_code, PASSWORD, service.cert)
    session = tmp_path_factory.mktemp("admin") / "session.json"
    client = Client.login(service.url, ADMIN, PASSWORD, pyotp.TOTP(enrolled.totp_secret).now(),
                          service.cert, session_file=session)
    yield client
    client.close()


@pytest.fixture(scope="module")
def analyst(service, admin, tmp_path_factory):
    code = admin.issue_enrolment("t.analyst")
    enrolled = Client.enroll(service.url, "t.analyst", code, PASSWORD, service.cert)
    session = tmp_path_factory.mktemp("analyst") / "session.json"
    client = Client.login(service.url, "t.analyst", PASSWORD,
                          pyotp.TOTP(enrolled.totp_secret).now(), service.cert,
                          session_file=session)
    yield client
    client.close()


def _request():
    start = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(0), tzinfo=dt.UTC)
    return {
        "case_number": CASE,
        "reason_code": "motor_vehicle_theft",
        "vehicle_color": "white",
        "window_from": start - dt.timedelta(days=3),
        "window_to": start,
    }


def test_init_makes_an_empty_store_with_one_administrator(service):
    accounts = service.home / ACCOUNTS_FILE
    assert stat.S_IMODE(accounts.stat().st_mode) == 0o600
    assert stat.S_IMODE(service.home.stat().st_mode) == 0o700
    assert b"t.admin" not in accounts.read_bytes()  # sealed, not plain JSON


def test_oidc_routes_answer_404_when_oidc_is_not_configured(service):
    """Sign-in through an identity provider is off unless configured (tests/test_oidc.py)."""
    with service.raw() as http:
        answer = http.get("/v1/oidc/start")
        redeem = http.post("/v1/oidc/redeem", json={"flow_secret": "x", "code": "y"})
    assert answer.status_code == 404 and answer.json()["error"] == "oidc_off"
    assert redeem.status_code == 404


def test_the_session_file_is_private_and_pins_the_certificate(analyst):
    path = analyst.session_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "BEGIN CERTIFICATE" in path.read_text()


def test_whoami_comes_from_the_session(analyst):
    me = analyst.whoami()
    assert me["user_id"] == "t.analyst" and me["role"] == "analyst"


def test_search_through_the_service_equals_the_gate(service, analyst):
    request = _request()
    with connect(session_file=analyst.session_file) as client:
        found = client.search(**request)
    assert isinstance(found.rows, pl.DataFrame) and found.rows.height > 0
    assert found.event_id.startswith("evt-") and found.total_rows >= found.rows.height

    store = Store.open(service.home, passphrase=PASSPHRASE)
    direct = Gate(store).search("t.analyst", SearchRequest(**request))
    assert_frame_equal(found.rows, direct.rows)

    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events()
    mine = events.filter(pl.col("event_id") == found.event_id)
    assert mine["user_id"].to_list() == ["t.analyst"] and mine["outcome"][0] == "allowed"


def test_a_refused_search_is_403_with_the_reason_and_audit_event(analyst):
    with pytest.raises(ServiceError) as caught:
        analyst.search(**{**_request(), "reason_code": "curiosity"})
    assert caught.value.status == 403 and caught.value.code == "search_refused"
    assert "policy's list" in caught.value.detail and caught.value.event_id


def test_only_administrators_issue_enrolment_codes(analyst):
    with pytest.raises(ServiceError) as caught:
        analyst.issue_enrolment("t.other")
    assert caught.value.status == 403 and caught.value.event_id


def test_sign_ins_and_enrolments_are_audited(service, analyst):
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events()
    logins = events.filter((pl.col("event_type") == "login") & (pl.col("outcome") == "allowed"))
    assert {ADMIN, "t.analyst"} <= set(logins["user_id"])
    changes = events.filter(pl.col("event_type") == "user_change")["query_json"].to_list()
    assert any('"issue_enrolment"' in q and "t.analyst" in q for q in changes)


def test_sessions_expire_when_idle_and_absolutely():
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    sessions = SessionStore(clock=lambda: now[0])
    token, _ = sessions.open("t.analyst")
    for _ in range(17):  # active every 29 minutes, yet ended after 8 hours
        now[0] += dt.timedelta(minutes=29)
        result = sessions.check(token)
    assert result.reason == "session expired; sign in again"


def test_whoami_is_audited(service, analyst):
    me = analyst.whoami()
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events().filter(pl.col("event_id") == me["event_id"])
    assert events["event_type"].to_list() == ["login"]
    assert events["user_id"][0] == "t.analyst" and events["outcome"][0] == "allowed"
    assert '"whoami"' in events["query_json"][0]


def test_concurrent_searches_are_each_audited_before_their_rows_return(service, analyst):
    """Searches run side by side in the service: every one answered has its audit record."""
    import threading

    url, token, ca_pem = analyst.url, analyst._token, service.cert.read_text()
    found: list[list[str]] = [[] for _ in range(6)]

    def worker(i: int) -> None:
        with Client(url, token, ca_pem) as mine:
            for _ in range(4):
                found[i].append(mine.search(**_request()).event_id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(found))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered = [event for events in found for event in events]
    assert len(answered) == 24 and len(set(answered)) == 24
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events().filter(pl.col("event_id").is_in(answered))
        assert log.verify().ok
    assert events.height == 24 and (events["outcome"] == "allowed").all()
    assert set(events["event_type"]) == {"search"} and set(events["user_id"]) == {"t.analyst"}


def test_a_result_of_many_pieces_streams_back_to_the_same_frame():
    import httpx

    from alpr_workbench.client import _read_arrow_stream
    from alpr_workbench.service.app import _PIECE_BYTES, _arrow_stream

    rows = 200_007
    frame = pl.DataFrame({
        "read_id": [f"r{i}" for i in range(rows)],
        "captured_at": pl.datetime_range(dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                                         dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
                                         + dt.timedelta(seconds=rows - 1), "1s", eager=True),
        "alternate_plates": [["7ABC123", "7A8C123"]] * rows,
        "confidence_pct": pl.Series([91.5] * rows, dtype=pl.Float32),
    })
    for sent, compression in ((frame, "lz4"), (frame, "uncompressed"), (frame.head(0), "lz4")):
        pieces = list(_arrow_stream(sent, compression=compression))
        assert all(len(p) <= _PIECE_BYTES for p in pieces)
        assert (len(pieces) > 1) == (sent.height > 0)  # megabytes, in several pieces
        response = httpx.Response(200, stream=httpx.ByteStream(b"".join(pieces)))
        assert_frame_equal(_read_arrow_stream(response), sent)


def test_a_result_of_cached_rows_sends_only_their_bytes():
    from alpr_workbench.service.app import _arrow_stream

    day = pl.DataFrame({"plate": [f"{i:07d}" for i in range(100_000)],
                        "image_ref": [f"frames/camera-07/{i:09d}.jpg" for i in range(100_000)]})
    few = pl.concat([day.slice(10, 3), day.slice(90_000, 2)]).sort("plate")  # as the cache gives
    sent = b"".join(_arrow_stream(few, compression="uncompressed"))
    assert len(sent) < 4_096  # not the day's ~3 MB of strings the views point into


def test_searches_share_the_service_lock_and_a_change_runs_alone():
    import threading

    from alpr_workbench.service.app import _ServiceLock

    lock, order = _ServiceLock(), []
    first_in, second_in, release = threading.Event(), threading.Event(), threading.Event()
    writer_waiting = threading.Event()

    def search(entered: threading.Event, name: str) -> None:
        with lock.shared():
            order.append(name)
            entered.set()
            assert release.wait(30)
            order.append(f"{name} done")

    def change() -> None:
        writer_waiting.set()
        with lock:
            order.append("change")

    readers = [threading.Thread(target=search, args=(first_in, "search 1")),
               threading.Thread(target=search, args=(second_in, "search 2"))]
    for thread in readers:
        thread.start()
    assert first_in.wait(30) and second_in.wait(30)  # both searches hold it at once
    writer = threading.Thread(target=change)
    writer.start()
    assert writer_waiting.wait(30)
    release.set()
    for thread in (*readers, writer):
        thread.join(30)
    # the change waited for both searches in flight
    assert sorted(order[:2]) == ["search 1", "search 2"]
    assert sorted(order[2:4]) == ["search 1 done", "search 2 done"] and order[4] == "change"


def test_a_streamed_result_over_tls_equals_the_gate(service, analyst):
    """The streamed, compressed path end to end: real uvicorn over TLS, the real client."""
    from alpr_workbench.service.app import create_app
    from alpr_workbench.service.tls import tls_files
    from service_fixtures import serve_in_thread

    store = Store.open(service.home, passphrase=PASSPHRASE)
    sessions = SessionStore()
    with AuditLog.open(store.home, store.keystore) as log:
        app = create_app(store, audit=log, sessions=sessions, stream_rows=10)
        files = tls_files(service.home)
        running = serve_in_thread(
            lambda port: app, ssl_certfile=str(files.certfile), ssl_keyfile=str(files.keyfile),
            log_level="warning", access_log=False)
        try:
            token, _ = sessions.open("t.analyst")
            with Client(f"https://127.0.0.1:{running.port}", token,
                        files.certfile.read_text()) as client:
                found = client.search(**_request())
        finally:
            running.stop()
        direct = Gate(store, log).search("t.analyst", SearchRequest(**_request()))
    assert found.rows.height > 10  # more than stream_rows: it came in batches
    assert_frame_equal(found.rows, direct.rows)


def test_a_result_cut_short_is_an_error_not_fewer_rows(tmp_path):
    """A body that ends at a batch boundary is a valid, shorter Arrow stream: the client checks
    the row count the service sent (``X-Rows``), so a cut result never reads as a complete one."""
    import io

    import httpx

    from alpr_workbench.client import Client, ServiceError
    from alpr_workbench.service.app import ARROW_STREAM

    sent = pl.DataFrame({"read_id": [f"r{i}" for i in range(12)]})

    def answer(rows: int, said: str | None):
        def handler(request: httpx.Request) -> httpx.Response:
            sink = io.BytesIO()
            sent.head(rows).write_ipc_stream(sink)
            headers = {"content-type": ARROW_STREAM, "X-Audit-Event-Id": "evt-1",
                       "X-Total-Rows": "12", "X-Truncated": "false"}
            if said is not None:
                headers["X-Rows"] = said
            return httpx.Response(200, content=sink.getvalue(), headers=headers)
        return handler

    client = Client("https://127.0.0.1:1", "token", "", user_id="t.analyst")
    for rows, said, ok in ((12, "12", True), (10, "12", False), (12, None, False)):
        client._http = httpx.Client(base_url="https://127.0.0.1:1",
                                    transport=httpx.MockTransport(answer(rows, said)))
        if ok:
            assert client.search(case_number="C-1").rows.height == 12
        else:
            with pytest.raises(ServiceError, match="cut|rows arrived"):
                client.search(case_number="C-1")
