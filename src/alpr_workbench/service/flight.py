"""Search results over Arrow Flight: the same sessions, gate and audit as ``POST /v1/search``.

A search's rows leave the service as Arrow record batches over gRPC with TLS (the service's
own certificate), written and read by Arrow's C++ code: no per-chunk Python on either side,
where an HTTP body of tens of megabytes costs the Python HTTP stacks more than the search
(``docs/decisions/0010-flight-results.md``). One call only, ``DoGet``: its ticket is the JSON
body ``POST /v1/search`` takes, its ``authorization: Bearer <token>`` header the session's
token. The caller's identity comes from the session, the source from the connection's peer
address; every call reaches :meth:`_Service.search` under the service's shared lock, so the
gate audits it before a row leaves. Every other Flight call is unimplemented.

**Only signed-in users reach it.** The Flight server requires a client certificate (mutual
TLS), so a caller without one is refused in the TLS handshake, before gRPC reads a byte of a
request (gRPC in pyarrow reads a request of any size before any check of ours could run: a
caller without a session could otherwise fill the service's memory). The certificates come
from a certificate authority that lives in this process's memory only, made at start: a signed-
in client asks ``POST /v1/flight/certificate`` with its session token and a certificate signing
request for a key it made itself; the certificate names the user and lapses with the session.
A restart (which signs everyone out) makes every certificate useless. ``DoGet`` then checks the
session token as the API does, and that the certificate names the session's user.

The result's schema carries what the HTTP headers carry (``alpr.event_id``,
``alpr.total_rows``, ``alpr.rows``, ``alpr.truncated``, ``alpr.window_from``,
``alpr.window_to``). A refusal is a Flight error whose ``extra_info`` is the JSON error body
the HTTP API answers (``status``, ``error``, ``detail``, ``event_id``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.parse
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.flight as flight
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.service.app import ServiceError, _json_body, _Service, _source

__all__ = [
    "FLIGHT_CERTIFICATE_PATH",
    "FLIGHT_SEARCH",
    "ClientAuthority",
    "FlightSearch",
    "flight_router",
    "result_table",
    "start_flight",
]

#: Where a signed-in client gets its Flight client certificate.
FLIGHT_CERTIFICATE_PATH = "/v1/flight/certificate"
#: The longest certificate signing request taken.
_MAX_CSR_BYTES = 4096

#: What the audit records name as the path of a search over Flight.
FLIGHT_SEARCH = "flight:search"
#: Rows per record batch sent.
_BATCH_ROWS = 64 * 1024


class _Headers(flight.ServerMiddleware):  # type: ignore[misc]
    def __init__(self, headers: dict[str, list[str]]) -> None:
        super().__init__()
        self.headers = headers


class _HeadersFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Keeps each call's headers for :meth:`FlightSearch.do_get` (the bearer token)."""

    def start_call(self, info: Any, headers: dict[str, list[str]]) -> _Headers:
        return _Headers(headers)


def _token(headers: dict[str, list[str]]) -> str | None:
    values = headers.get("authorization", [])
    if len(values) != 1:
        return None
    scheme, _, token = values[0].partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _peer_host(peer: str | bytes) -> str:
    """The address of a gRPC peer (``ipv4:127.0.0.1:5301``, ``ipv6:[::1]:5301``).

    Examples
    --------
    >>> _peer_host("ipv4:127.0.0.1:53012"), _peer_host(b"ipv6:%5B::1%5D:53012")
    ('127.0.0.1', '::1')
    """
    text = peer.decode("ascii", "replace") if isinstance(peer, bytes) else peer
    text = urllib.parse.unquote(text)  # gRPC writes ipv6:%5B::1%5D:5301
    _, _, address = text.partition(":")
    host = address.rpartition(":")[0] if ":" in address else address
    return host.strip("[]") or "unknown"


def result_table(rows: pl.DataFrame, metadata: dict[str, str]) -> pa.Table:
    """``rows`` as an Arrow table of plain (not view) strings, ``metadata`` on its schema.

    Rows found in the read cache are string views into whole day files (decision 0009); plain
    strings carry only the bytes of these rows.
    """
    table = rows.to_arrow(compat_level=pl.CompatLevel.oldest())
    encoded = {f"alpr.{k}".encode(): v.encode() for k, v in metadata.items()}
    return table.replace_schema_metadata(encoded)


def _flight_error(exc: ServiceError) -> flight.FlightError:
    info = {"status": exc.status, "error": exc.code, "detail": exc.detail}
    if exc.event_id is not None:
        info["event_id"] = exc.event_id
    kind = {401: flight.FlightUnauthenticatedError, 403: flight.FlightUnauthorizedError,
            429: flight.FlightUnavailableError}.get(exc.status, flight.FlightServerError)
    return kind(exc.detail, json.dumps(info).encode())


class ClientAuthority:
    """A certificate authority in this process's memory: Flight client certificates.

    Its key is made at start and never written anywhere; each certificate names one user and
    lapses with that user's session.
    """

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ALPR Workbench"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Flight clients of this service run"),
        ])
        now = dt.datetime.now(dt.UTC)
        public = self._key.public_key()
        self.certificate_pem = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )

    def issue(self, csr_pem: str, user_id: str, until: dt.datetime) -> str:
        """A client certificate for the key of ``csr_pem``, naming ``user_id``, until ``until``.

        Only the request's key is used (its signature proves the client holds it); the
        name is the session's user, whatever the request says.

        Raises
        ------
        ValueError
            For a request that is not a PEM certificate signing request signed by its own
            P-256 key.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
            signed = csr.is_signature_valid
            public = csr.public_key()
        except (ValueError, InvalidSignature, UnsupportedAlgorithm) as exc:
            raise ValueError(f"not a certificate signing request ({exc})") from exc
        if not signed:
            raise ValueError("the certificate signing request is not signed by its key")
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise ValueError("the certificate signing request's key must be an EC P-256 key")
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)]))
            .issuer_name(self._name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def _certificate_user(context: Any) -> str:
    """The user a call's client certificate names (the TLS handshake verified it)."""
    identity = context.peer_identity()
    return identity.decode("utf-8", "replace") if isinstance(identity, bytes) else str(identity)


class FlightSearch(flight.FlightServerBase):  # type: ignore[misc]
    """The service's Flight server: ``DoGet`` runs one case-gated search.

    Parameters
    ----------
    svc
        What the API's routes share (``app.state.service`` of ``create_app``).
    location
        Where to listen, ``grpc+tls://HOST:PORT`` (port 0: a free one; see :attr:`port`).
    cert_pem, key_pem
        The service's TLS certificate and key.
    clients
        The authority whose certificates callers must present (mutual TLS).
    """

    def __init__(self, svc: _Service, location: str, cert_pem: bytes, key_pem: bytes,
                 clients: ClientAuthority) -> None:
        super().__init__(location, tls_certificates=[flight.CertKeyPair(cert_pem, key_pem)],
                         verify_client=True, root_certificates=clients.certificate_pem,
                         middleware={"headers": _HeadersFactory()})
        self._svc = svc

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.RecordBatchStream:
        """Authenticate the call's token, run the ticket's search, send the allowed rows."""
        svc = self._svc
        source = _peer_host(context.peer())
        token = _token(context.get_middleware("headers").headers)
        try:
            with svc.lock.shared():
                user, session = svc.authenticate_token(token, source, FLIGHT_SEARCH)
                named = _certificate_user(context)
                if named != user.user_id:
                    reason = (f"the client certificate names {named[:64]!r}, not the session's "
                              "user")
                    event_id = svc.record(
                        "login", action="session", source=source, user_id=user.user_id,
                        problem=reason,
                        details={"path": FLIGHT_SEARCH, "session_id": session.session_id},
                    )
                    raise ServiceError(403, "certificate_refused", reason, event_id=event_id)
                result = svc.search(user, ticket.ticket, source)
        except ServiceError as exc:
            raise _flight_error(exc) from None
        # The search is in the audit log; only now does its result leave.
        table = result_table(result.rows, {
            "event_id": result.event_id,
            "total_rows": str(result.total_rows),
            "rows": str(result.rows.height),
            "truncated": "true" if result.truncated else "false",
            "window_from": result.window_from.isoformat(),
            "window_to": result.window_to.isoformat(),
        })
        batches = table.to_batches(max_chunksize=_BATCH_ROWS)
        return flight.RecordBatchStream(pa.Table.from_batches(batches, schema=table.schema))


def flight_router(svc: _Service) -> APIRouter:
    """``POST /v1/flight/certificate``: a signed-in client's Flight client certificate.

    The body is ``{"csr": "<PEM certificate signing request>"}``; the answer
    ``{"certificate": PEM, "ca": PEM of the authority, "flight_port": N, "expires_at": ...}``.
    Audited as a ``login`` event (action ``flight_certificate``).
    """
    router = APIRouter()

    @router.post(FLIGHT_CERTIFICATE_PATH)
    async def certificate(request: Request) -> Response:
        """A client certificate for the Flight server, for this session's user."""
        raw = await request.body()
        source = _source(request)

        def work() -> Response:
            with svc.lock.shared():
                user, session = svc.authenticate(request, source)
                clients = svc.flight_clients
                if svc.flight_port is None or not isinstance(clients, ClientAuthority):
                    raise ServiceError(404, "no_flight",
                                       "this service does not serve results over Arrow Flight")
                try:
                    doc = _json_body(raw)
                    csr = doc.get("csr")
                    if not isinstance(csr, str) or len(csr) > _MAX_CSR_BYTES or set(doc) != {"csr"}:
                        raise ValueError('the body must be {"csr": "<PEM, at most 4 KB>"}')
                    pem = clients.issue(csr, user.user_id, session.expires_at)
                except ValueError as exc:
                    raise ServiceError(422, "malformed_request", str(exc)) from exc
                event_id = svc.record(
                    "login", action="flight_certificate", source=source, user_id=user.user_id,
                    problem=None, details={"session_id": session.session_id},
                )
            return JSONResponse({
                "certificate": pem, "ca": clients.certificate_pem.decode(),
                "flight_port": svc.flight_port, "expires_at": session.expires_at.isoformat(),
                "event_id": event_id,
            })

        return await run_in_threadpool(work)

    return router


def start_flight(svc: _Service, host: str, port: int, cert_pem: bytes,
                 key_pem: bytes) -> FlightSearch:
    """Start :class:`FlightSearch` on ``host:port`` (0: a free port) on a thread of its own.

    Makes this run's :class:`ClientAuthority` and sets ``svc.flight_clients`` and
    ``svc.flight_port``, so ``GET /v1/health`` tells clients where it listens and
    ``POST /v1/flight/certificate`` issues their certificates. Stop it with ``shutdown()``,
    which waits for the calls in flight.

    Raises
    ------
    WorkbenchError
        When it cannot listen there (the port is taken, say).
    """
    where = f"[{host}]" if ":" in host else host
    clients = ClientAuthority()
    try:
        server = FlightSearch(svc, f"grpc+tls://{where}:{port}", cert_pem, key_pem, clients)
    except (pa.ArrowException, OSError) as exc:
        raise WorkbenchError(
            f"cannot serve search results over Arrow Flight on {host}:{port}: {exc}"
        ) from exc
    threading.Thread(target=server.serve, name="flight-search", daemon=True).start()
    svc.flight_clients = clients
    svc.flight_port = int(server.port)
    return server
