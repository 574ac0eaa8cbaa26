"""Search results over Arrow Flight: the same sessions, gate and audit as ``POST /v1/search``.

A search's rows leave the service as Arrow record batches over gRPC with TLS (the service's
own certificate), written and read by Arrow's C++ code: no per-chunk Python on either side,
where an HTTP body of tens of megabytes costs the Python HTTP stacks more than the search
(``docs/decisions/0010-flight-results.md``). One call only, ``DoGet``: its ticket is the JSON
body ``POST /v1/search`` takes, its ``authorization: Bearer <token>`` header the session's
token. The caller's identity comes from the session, the source from the connection's peer
address; every call reaches :meth:`_Service.search` under the service's shared lock, so the
gate audits it before a row leaves. Every other Flight call is unimplemented.

The result's schema carries what the HTTP headers carry (``alpr.event_id``,
``alpr.total_rows``, ``alpr.rows``, ``alpr.truncated``, ``alpr.window_from``,
``alpr.window_to``). A refusal is a Flight error whose ``extra_info`` is the JSON error body
the HTTP API answers (``status``, ``error``, ``detail``, ``event_id``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.flight as flight

from alpr_workbench.errors import WorkbenchError
from alpr_workbench.service.app import ServiceError, _Service

__all__ = ["FLIGHT_SEARCH", "FlightSearch", "result_table", "start_flight"]

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
    >>> _peer_host("ipv4:127.0.0.1:53012"), _peer_host(b"ipv6:[::1]:53012")
    ('127.0.0.1', '::1')
    """
    text = peer.decode("ascii", "replace") if isinstance(peer, bytes) else peer
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
    """

    def __init__(self, svc: _Service, location: str, cert_pem: bytes, key_pem: bytes) -> None:
        super().__init__(location, tls_certificates=[flight.CertKeyPair(cert_pem, key_pem)],
                         middleware={"headers": _HeadersFactory()})
        self._svc = svc

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.RecordBatchStream:
        """Authenticate the call's token, run the ticket's search, send the allowed rows."""
        svc = self._svc
        source = _peer_host(context.peer())
        token = _token(context.get_middleware("headers").headers)
        try:
            with svc.lock.shared():
                user, _ = svc.authenticate_token(token, source, FLIGHT_SEARCH)
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


def start_flight(svc: _Service, host: str, port: int, cert_pem: bytes,
                 key_pem: bytes) -> FlightSearch:
    """Start :class:`FlightSearch` on ``host:port`` (0: a free port) on a thread of its own.

    Sets ``svc.flight_port``, so ``GET /v1/health`` tells clients where it listens. Stop it
    with ``shutdown()``, which waits for the calls in flight.

    Raises
    ------
    WorkbenchError
        When it cannot listen there (the port is taken, say).
    """
    where = f"[{host}]" if ":" in host else host
    try:
        server = FlightSearch(svc, f"grpc+tls://{where}:{port}", cert_pem, key_pem)
    except (pa.ArrowException, OSError) as exc:
        raise WorkbenchError(
            f"cannot serve search results over Arrow Flight on {host}:{port}: {exc}"
        ) from exc
    threading.Thread(target=server.serve, name="flight-search", daemon=True).start()
    svc.flight_port = int(server.port)
    return server
