"""Attacks on the search results' Arrow Flight server (decision 0010): each refused, audited.

The Flight server is a second door to the gate: every attack the HTTP search route is tested
against is tried here with a raw ``pyarrow.flight`` client, and every other Flight call must
give nothing. It takes only callers with a client certificate its own in-memory authority
issued to a session (mutual TLS): most attacks here are a signed-in analyst's, with one.
Calls come from 127.0.0.1 (a Flight client cannot choose its source address): the back-off
test runs last in this module.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.flight as flight
import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from alpr_workbench.client import Client
from alpr_workbench.governance.audit_log import AuditLog
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
    with city_service(tmp_path_factory.mktemp("attack-flight")) as running:
        yield running


@pytest.fixture(scope="module")
def people(service, tmp_path_factory):
    """The administrator's and t.analyst's clients, signed in."""
    folder = tmp_path_factory.mktemp("flight-sessions")
    enrolled = Client.enroll(service.url, ADMIN, service.admin_code, PASSWORD, service.cert)
    admin = Client.login(service.url, ADMIN, PASSWORD, pyotp.TOTP(enrolled.totp_secret).now(),
                         service.cert, session_file=folder / "admin.json")
    done = Client.enroll(service.url, "t.analyst", admin.issue_enrolment("t.analyst"), PASSWORD,
                         service.cert)
    analyst = Client.login(service.url, "t.analyst", PASSWORD,
                           pyotp.TOTP(done.totp_secret).now(), service.cert,
                           session_file=folder / "analyst.json")
    yield admin, analyst
    analyst.close()
    admin.close()


@pytest.fixture(scope="module")
def analyst(people):
    return people[1]


def _port(service) -> int:
    with service.raw() as http:
        return int(http.get("/v1/health").json()["flight_port"])


def _key_and_csr(key=None) -> tuple[bytes, str]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ADMIN)]))
           .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def _certificate(service, token: str) -> tuple[bytes, bytes]:
    """A Flight client certificate (and its key) for ``token``'s session, as a client gets it."""
    key, csr = _key_and_csr()
    with service.raw() as http:
        answer = http.post("/v1/flight/certificate", json={"csr": csr},
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["certificate"].encode(), key


def _raw(service, identity: tuple[bytes, bytes] | None = None,
         scheme: str = "grpc+tls") -> flight.FlightClient:
    kwargs = {"tls_root_certs": service.cert.read_bytes()} if scheme == "grpc+tls" else {}
    if identity is not None:
        kwargs.update(cert_chain=identity[0], private_key=identity[1])
    return flight.FlightClient(f"{scheme}://127.0.0.1:{_port(service)}", **kwargs)


@pytest.fixture(scope="module")
def analyst_identity(service, analyst):
    return _certificate(service, analyst._token)


def _body(**extra) -> bytes:
    today = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(0), tzinfo=dt.UTC)
    return json.dumps({"case_number": CASE, "reason_code": "motor_vehicle_theft",
                       "vehicle_color": "white",
                       "window_from": (today - dt.timedelta(days=3)).isoformat(),
                       "window_to": today.isoformat(), **extra}).encode()


def _call(token: str | None):
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return flight.FlightCallOptions(headers=headers, timeout=30)


def _refusal(excinfo) -> dict:
    doc = json.loads(excinfo.value.extra_info)
    assert isinstance(doc, dict) and doc["status"] and doc["error"]
    return doc


def _audited(service, event_id: str) -> dict:
    store = Store.open(service.home, passphrase=PASSPHRASE)
    with AuditLog.open(store.home, store.keystore) as log:
        events = log.events()
    found = events.filter(events["event_id"] == event_id)
    assert found.height == 1, f"{event_id} is not in the audit log"
    return found.row(0, named=True)


def test_the_client_searches_over_flight_and_gets_the_http_result(service, analyst):
    over_flight = analyst.search(**json.loads(_body()))
    assert analyst._flight, "the client did not find the Flight server"
    with service.raw() as http:
        over_http = http.post("/v1/search", content=_body(),
                              headers={"Authorization": f"Bearer {analyst._token}"})
    assert over_http.status_code == 200
    import polars as pl

    from_http = pl.read_ipc_stream(over_http.content)
    assert over_flight.rows.height == from_http.height > 0
    assert over_flight.rows.columns == from_http.columns
    assert over_flight.rows.sort("read_id").equals(from_http.sort("read_id"))
    assert _audited(service, over_flight.event_id)["outcome"] == "allowed"


def _peak_memory_kib(service) -> int:
    status = Path(f"/proc/{service.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])


def test_without_a_client_certificate_nothing_is_read(service):
    """gRPC reads a request of any size before any check of ours: a caller without a session
    could fill the service's memory. Without a client certificate the TLS handshake fails, so
    not even a 64 MiB ticket is taken in (the review's probe took 1.9 GB for 256 MiB)."""
    before = _peak_memory_kib(service)
    for _ in range(3):
        with _raw(service) as raw, pytest.raises(flight.FlightError):
            raw.do_get(flight.Ticket(b"x" * (64 << 20)), _call("A" * 43)).read_all()
    assert _peak_memory_kib(service) - before < 32 * 1024
    # Plain gRPC (no TLS) to the TLS port gets no answer, let alone data.
    with _raw(service, scheme="grpc") as plain, pytest.raises(flight.FlightError):
        plain.do_get(flight.Ticket(_body()), _call("x" * 43)).read_all()


def test_a_certificate_of_another_authority_is_refused(service, analyst):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t.analyst")])
    now = dt.datetime.now(dt.UTC)
    forged = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=1))
              .not_valid_after(now + dt.timedelta(hours=1)).sign(key, hashes.SHA256()))
    identity = (forged.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with _raw(service, identity) as raw, pytest.raises(flight.FlightError):
        raw.do_get(flight.Ticket(_body()), _call(analyst._token)).read_all()


def test_certificates_only_for_a_session_and_a_real_request(service, analyst):
    auth = {"Authorization": f"Bearer {analyst._token}"}
    _, csr = _key_and_csr()
    rsa_csr = _key_and_csr(rsa.generate_private_key(public_exponent=65537, key_size=2048))[1]
    with service.raw("127.0.0.3") as http:
        none = http.post("/v1/flight/certificate", json={"csr": csr})
        garbage = http.post("/v1/flight/certificate", json={"csr": "not a request"}, headers=auth)
        rsa_key = http.post("/v1/flight/certificate", json={"csr": rsa_csr}, headers=auth)
        extra = http.post("/v1/flight/certificate", json={"csr": csr, "user": ADMIN},
                          headers=auth)
        good = http.post("/v1/flight/certificate", json={"csr": csr}, headers=auth)
    assert none.status_code == 401
    assert garbage.status_code == rsa_key.status_code == extra.status_code == 422
    issued = x509.load_pem_x509_certificate(good.json()["certificate"].encode())
    # The certificate names the session's user, whatever the request asked for (ADMIN).
    assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "t.analyst"
    assert _audited(service, good.json()["event_id"])["user_id"] == "t.analyst"


def test_no_token_is_refused(service, analyst_identity):
    with _raw(service, analyst_identity) as raw, \
            pytest.raises(flight.FlightUnauthenticatedError) as none:
        raw.do_get(flight.Ticket(_body()), _call(None)).read_all()
    assert _refusal(none)["error"] == "unauthenticated"


def test_one_users_certificate_with_another_users_token_is_refused(
        service, people, analyst_identity):
    admin, _ = people
    with _raw(service, analyst_identity) as raw, \
            pytest.raises(flight.FlightUnauthorizedError) as mixed:
        raw.do_get(flight.Ticket(_body()), _call(admin._token)).read_all()
    doc = _refusal(mixed)
    assert doc["error"] == "certificate_refused"
    assert _audited(service, doc["event_id"])["user_id"] == ADMIN


def test_a_forged_token_is_refused_and_audited(service, analyst_identity):
    with _raw(service, analyst_identity) as raw, \
            pytest.raises(flight.FlightUnauthenticatedError) as forged:
        raw.do_get(flight.Ticket(_body()), _call("A" * 43)).read_all()
    doc = _refusal(forged)
    assert doc["error"] == "invalid_session" and doc["status"] == 401
    record = _audited(service, doc["event_id"])
    assert record["outcome"] == "refused" and "flight:search" in record["query_json"]


def test_a_refused_search_is_audited_and_returns_nothing(service, analyst, analyst_identity):
    with _raw(service, analyst_identity) as raw, \
            pytest.raises(flight.FlightUnauthorizedError) as refused:
        raw.do_get(flight.Ticket(_body(case_number="BPD-2026-000000")),
                   _call(analyst._token)).read_all()
    doc = _refusal(refused)
    assert doc["error"] == "search_refused" and doc["status"] == 403
    record = _audited(service, doc["event_id"])
    assert record["outcome"] == "refused" and record["user_id"] == "t.analyst"


def test_malformed_asserted_identity_and_oversized_tickets(service, analyst, analyst_identity):
    with _raw(service, analyst_identity) as raw:
        with pytest.raises(flight.FlightServerError) as bad:
            raw.do_get(flight.Ticket(b"{not json"), _call(analyst._token)).read_all()
        with pytest.raises(flight.FlightServerError) as asserted:
            raw.do_get(flight.Ticket(_body(user_id=ADMIN)), _call(analyst._token)).read_all()
        with pytest.raises(flight.FlightServerError) as huge:
            raw.do_get(flight.Ticket(b"x" * 200_000), _call(analyst._token)).read_all()
    assert _refusal(bad)["status"] == 422 and _refusal(bad)["event_id"]
    assert _refusal(asserted)["status"] == 422 and "user_id" in _refusal(asserted)["detail"]
    assert _refusal(huge)["status"] == 413
    assert _audited(service, _refusal(huge)["event_id"])["user_id"] == "t.analyst"
    record = _audited(service, _refusal(asserted)["event_id"])
    assert record["user_id"] == "t.analyst" and record["outcome"] == "refused"


def test_every_other_flight_call_gives_nothing(service, analyst, analyst_identity):
    call = _call(analyst._token)
    with _raw(service, analyst_identity) as raw:
        for attempt in (
            lambda: list(raw.list_flights(options=call)),
            lambda: raw.get_flight_info(flight.FlightDescriptor.for_command(_body()), call),
            lambda: list(raw.do_action(flight.Action("search", _body()), call)),
            lambda: list(raw.list_actions(call)),
        ):
            with pytest.raises((flight.FlightError, NotImplementedError)):
                attempt()


def test_a_token_after_logout_is_dead(service, people, tmp_path):
    admin, _ = people
    done = Client.enroll(service.url, "t.other", admin.issue_enrolment("t.other"), PASSWORD,
                         service.cert)
    client = Client.login(service.url, "t.other", PASSWORD, pyotp.TOTP(done.totp_secret).now(),
                          service.cert, session_file=tmp_path / "other.json")
    token = client._token
    identity = _certificate(service, token)
    assert client.search(**json.loads(_body())).event_id  # alive: it searches over Flight
    client.logout()
    client.close()
    with _raw(service, identity) as raw, pytest.raises(flight.FlightUnauthenticatedError) as dead:
        raw.do_get(flight.Ticket(_body()), _call(token)).read_all()
    assert _refusal(dead)["error"] == "invalid_session"


def test_repeated_forged_tokens_back_the_source_off(service, analyst_identity):
    with _raw(service, analyst_identity) as raw:
        for _ in range(8):
            try:
                raw.do_get(flight.Ticket(_body()), _call("B" * 43)).read_all()
            except flight.FlightUnavailableError as exc:
                doc = json.loads(exc.extra_info)
                assert doc["status"] == 429 and doc["error"] == "too_many_failures"
                return
            except flight.FlightUnauthenticatedError:
                continue
    pytest.fail("eight forged tokens in a row were never backed off")
