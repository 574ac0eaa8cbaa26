"""A Python client of the workbench service, for notebooks and the command line.

Example (a notebook, after ``alpr-workbench login``)::

    from alpr_workbench.client import connect

    client = connect()
    found = client.search(case_number="BPD-2026-000123", reason_code="motor_vehicle_theft",
                          plate="7ABC123")
    found.rows  # a polars DataFrame

The client holds a session token, never a key. TLS is always verified, against the service
certificate pinned in the session file (never ``verify=False``). Results arrive as Arrow IPC
streams and become Polars frames without row-by-row conversion.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import WorkbenchError

__all__ = [
    "ARROW_STREAM",
    "Client",
    "ClientPatternResult",
    "ClientSearchResult",
    "EnrolmentResult",
    "ServiceError",
    "connect",
    "default_session_file",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: The service's answer (429) to a sign-in while another from the same address is in flight.
SIGN_IN_BUSY = "sign_in_busy"
_SIGN_IN_TRIES = 5
_TIMEOUT_S = 60.0


class ServiceError(WorkbenchError):
    """The service refused a request, or could not be reached.

    Attributes
    ----------
    status
        HTTP status (0 when the service was not reached).
    code
        The service's error code (``search_refused``, ``invalid_session``...).
    detail
        Why, in words.
    event_id
        The audit record of the refusal, when it was audited.
    """

    def __init__(
        self, status: int, code: str, detail: str, event_id: str | None = None
    ) -> None:
        suffix = f" (audit event {event_id})" if event_id else ""
        super().__init__(f"{code}: {detail}{suffix}")
        self.status = status
        self.code = code
        self.detail = detail
        self.event_id = event_id


@dataclass(frozen=True)
class ClientSearchResult:
    """Rows a search returned (a Polars frame) and what the gate recorded."""

    rows: pl.DataFrame
    event_id: str
    total_rows: int
    truncated: bool


@dataclass(frozen=True)
class EnrolmentResult:
    """The TOTP secret to put in an authenticator app (shown once)."""

    user_id: str
    totp_secret: str
    otpauth_uri: str


def default_session_file() -> Path:
    """``$ALPR_WORKBENCH_SESSION`` or ``~/.config/alpr-workbench/session.json``."""
    env = os.environ.get("ALPR_WORKBENCH_SESSION")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "alpr-workbench" / "session.json"


def _tls_context(ca_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _http(url: str, ca_pem: str) -> httpx.Client:
    return httpx.Client(base_url=url, verify=_tls_context(ca_pem), timeout=_TIMEOUT_S)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("give a time zone (UTC) with the time window")
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    raise ServiceError(
        response.status_code,
        str(doc.get("error", "http_error")),
        str(doc.get("detail", response.reason_phrase)),
        doc.get("event_id"),
    )


class _ResponseReader(io.RawIOBase):
    """A streamed response body as a readable file, for :func:`pyarrow.ipc.open_stream`."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__()
        self._chunks = response.iter_bytes()
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        target = memoryview(buffer).cast("B")
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _read_arrow_stream(response: httpx.Response) -> pl.DataFrame:
    """Decode an Arrow IPC stream batch by batch as it arrives; no row-by-row conversion."""
    import pyarrow as pa
    import pyarrow.ipc as pa_ipc

    try:
        with pa_ipc.open_stream(io.BufferedReader(_ResponseReader(response), 1 << 20)) as reader:
            table = reader.read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ServiceError(response.status_code, "bad_response",
                           f"the service's Arrow stream could not be read: {exc}") from exc
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _search_flight(flight_client: Any, token: str, body: dict[str, Any]) -> ClientSearchResult:
    """One search over the service's Arrow Flight server (``service/flight.py``)."""
    import pyarrow.flight as flight

    options = flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {token}".encode())], timeout=_TIMEOUT_S
    )
    try:
        table = flight_client.do_get(flight.Ticket(json.dumps(body).encode()), options).read_all()
    except flight.FlightError as exc:
        try:
            doc = json.loads(exc.extra_info or b"{}")
        except ValueError:
            doc = {}
        status = doc.get("status") if isinstance(doc, dict) else None
        if not isinstance(status, int):
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        event_id = doc.get("event_id")
        raise ServiceError(status, str(doc.get("error", "refused")), str(doc.get("detail", exc)),
                           event_id if isinstance(event_id, str) else None) from exc
    meta = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
            for k, v in (table.schema.metadata or {}).items()}
    rows = pl.from_arrow(table.replace_schema_metadata(None))
    assert isinstance(rows, pl.DataFrame)
    sent = meta.get("alpr.rows", "")
    if not sent.isdigit() or int(sent) != rows.height:
        raise ServiceError(200, "bad_response",
                           f"the result was cut: {rows.height} of {sent} rows arrived")
    total, event_id = meta.get("alpr.total_rows", ""), meta.get("alpr.event_id", "")
    if not total.isdigit() or not event_id.startswith("evt-"):
        raise ServiceError(200, "bad_response", "the result came without its audit record")
    return ClientSearchResult(
        rows=rows,
        event_id=event_id,
        total_rows=int(total),
        truncated=meta.get("alpr.truncated") == "true",
    )


def _sign_in_post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST a sign-in; while another one from this address is in flight, try again.

    The service takes one sign-in attempt per address at a time and answers the others
    ``429 sign_in_busy`` (not counted as a failure): people behind one address (a station's
    NAT) signing in together wait a moment instead of seeing an error.
    """
    for _ in range(_SIGN_IN_TRIES - 1):
        response = _post(http, path, body)
        if response.status_code != 429 or _error_code(response) != SIGN_IN_BUSY:
            return response
        retry = response.headers.get("Retry-After", "1")
        time.sleep(min(5.0, float(retry)) if retry.isdigit() else 1.0)
    return _post(http, path, body)


def _error_code(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return ""
    return str(doc.get("error", "")) if isinstance(doc, dict) else ""


def _post(http: httpx.Client, path: str, body: dict[str, Any] | None = None,
          token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return http.post(path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc


class Client:
    """A signed-in session with the service.

    Make one with :meth:`login` or :func:`connect`; close it with :meth:`close` (or use it as
    a context manager). :meth:`logout` ends the session on the service.

    :meth:`search` uses the service's Arrow Flight server when it offers one
    (``docs/decisions/0010-flight-results.md``); ``use_flight=False`` keeps every request on
    the HTTP API.
    """

    def __init__(self, url: str, token: str, ca_pem: str, *, user_id: str | None = None,
                 session_file: Path | None = None, use_flight: bool = True) -> None:
        self.url = url
        self.user_id = user_id
        self.session_file = session_file
        self._token = token
        self._ca_pem = ca_pem
        self._http = _http(url, ca_pem)
        # Search results come over the service's Arrow Flight server when it runs one
        # (asked once, from GET /v1/health); False: it does not (or ``use_flight=False``),
        # use POST /v1/search.
        self._flight: Any = None if use_flight else False

    def __repr__(self) -> str:  # never show the token
        return f"Client(url={self.url!r}, user_id={self.user_id!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the session stays valid until logout or expiry)."""
        self._http.close()
        if self._flight:
            self._flight.close()
            self._flight = None

    # -- sign-in -------------------------------------------------------------------------
    @classmethod
    def login(
        cls,
        url: str,
        user_id: str,
        password: str,
        totp: str,
        ca_file: Path,
        *,
        session_file: Path | None = None,
        save: bool = True,
    ) -> Client:
        """Sign in with a password and a TOTP code; save the session (mode 0600).

        Parameters
        ----------
        url
            The service (``https://127.0.0.1:8443``).
        user_id, password, totp
            The credentials.
        ca_file
            The service's certificate, pinned for this and every later request.
        session_file
            Where to save the session (default :func:`default_session_file`).
        save
            Write the session file (a notebook may keep the session in memory only).

        Raises
        ------
        ServiceError
            When sign-in is refused.
        """
        ca_pem = Path(ca_file).read_text()
        with _http(url, ca_pem) as http:
            response = _sign_in_post(http, "/v1/login",
                                     {"user_id": user_id, "password": password, "totp": totp})
        _raise_for(response)
        doc = response.json()
        path = Path(session_file) if session_file is not None else default_session_file()
        if save:
            payload = {"url": url, "token": doc["token"], "user_id": doc["user_id"],
                       "ca_pem": ca_pem, "expires_at": doc["expires_at"]}
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_bytes(path, json.dumps(payload, indent=1).encode(), mode=0o600)
        return cls(url, doc["token"], ca_pem, user_id=doc["user_id"],
                   session_file=path if save else None)

    @staticmethod
    def enroll(url: str, user_id: str, code: str, new_password: str,
               ca_file: Path) -> EnrolmentResult:
        """Use a one-time enrolment code: set a password, receive the TOTP secret.

        Raises
        ------
        ServiceError
            When the code is wrong, used or expired, or the password is refused.
        """
        with _http(url, Path(ca_file).read_text()) as http:
            response = _sign_in_post(
                http, "/v1/enroll", {"user_id": user_id, "code": code, "new_password": new_password}
            )
        _raise_for(response)
        doc = response.json()
        return EnrolmentResult(doc["user_id"], doc["totp_secret"], doc["otpauth_uri"])

    def logout(self) -> None:
        """End the session on the service and remove the saved session file."""
        try:
            _raise_for(_post(self._http, "/v1/logout", token=self._token))
        finally:
            if self.session_file is not None:
                self.session_file.unlink(missing_ok=True)
            self.close()

    # -- requests ------------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        """The session's user, as the service sees it."""
        try:
            response = self._http.get(
                "/v1/whoami", headers={"Authorization": f"Bearer {self._token}"}
            )
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        _raise_for(response)
        doc: dict[str, Any] = response.json()
        return doc

    def issue_enrolment(self, user_id: str) -> str:
        """Administrators: a one-time enrolment code for ``user_id`` (audited)."""
        response = _post(self._http, f"/v1/users/{user_id}/enrolment", token=self._token)
        _raise_for(response)
        return str(response.json()["code"])

    # -- approvals of larger results (``/v1/approvals``; the approver is the session's user)
    def grant_approval(self, searcher_user_id: str, case_number: str, *,
                       max_rows: int | None = None,
                       hours: float | None = None) -> dict[str, Any]:
        """Supervisors: let ``searcher_user_id`` run one larger search of ``case_number``.

        Parameters
        ----------
        searcher_user_id
            The one user who may use it (not the supervisor themself).
        case_number
            The one case the search must name.
        max_rows
            Rows the search may return (default: the policy's ``max_rows_approved``).
        hours
            How long it stays usable (default and most: 8 hours).

        Returns
        -------
        dict
            The approval: ``approval_id`` (give it to the searcher), ``expires_at``...

        Raises
        ------
        ServiceError
            ``refused`` (audited) when the policy does not allow it.
        """
        body: dict[str, Any] = {"searcher_user_id": searcher_user_id,
                                "case_number": case_number}
        if max_rows is not None:
            body["max_rows"] = max_rows
        if hours is not None:
            body["hours"] = hours
        response = _post(self._http, "/v1/approvals", body, token=self._token)
        _raise_for(response)
        doc: dict[str, Any] = response.json()
        return doc

    def approvals(self) -> pl.DataFrame:
        """The approvals this user granted or received (every one for auditors)."""
        try:
            response = self._http.get("/v1/approvals",
                                      headers={"Authorization": f"Bearer {self._token}"})
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        _raise_for(response)
        return pl.DataFrame(response.json()["approvals"])

    def search(self, **request: Any) -> ClientSearchResult:
        """A case-gated search (the fields of the gate's ``SearchRequest``).

        A larger result than the policy's cap needs ``approval_id``: an approval a supervisor
        granted this user for this case (:meth:`grant_approval`); it works once.

        Returns
        -------
        ClientSearchResult
            The rows as a Polars frame, the audit event, rows matched and whether the
            result was cut at the policy's cap.

        Raises
        ------
        ServiceError
            ``search_refused`` (with the audit event id) when the gate refuses.
        """
        body = {k: _jsonable(v) for k, v in request.items()}
        flight = self._flight_client()
        if flight is not None:
            return _search_flight(flight, self._token, body)
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            with self._http.stream("POST", "/v1/search", json=body,
                                   headers=headers) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                if response.headers.get("content-type", "").split(";")[0] != ARROW_STREAM:
                    raise ServiceError(response.status_code, "bad_response",
                                       "the service did not answer with an Arrow stream")
                if "content-length" in response.headers:  # one small body
                    rows = pl.read_ipc_stream(response.read())
                else:  # streamed batch by batch
                    rows = _read_arrow_stream(response)
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        sent = response.headers.get("X-Rows", "")
        if not sent.isdigit() or int(sent) != rows.height:
            raise ServiceError(response.status_code, "bad_response",
                               f"the result was cut: {rows.height} of {sent} rows arrived")
        return ClientSearchResult(
            rows=rows,
            event_id=response.headers["X-Audit-Event-Id"],
            total_rows=int(response.headers["X-Total-Rows"]),
            truncated=response.headers["X-Truncated"] == "true",
        )

    def _flight_client(self) -> Any:
        """The service's Flight server as a client pinned to its certificate, or None."""
        if self._flight is None:
            self._flight = False
            try:
                response = self._http.get("/v1/health")
                doc = response.json() if response.is_success else {}
            except (httpx.HTTPError, ValueError):
                doc = {}
            port = doc.get("flight_port") if isinstance(doc, dict) else None
            if isinstance(port, int) and 0 < port < 65536:
                self._flight = self._open_flight(port) or False
        return self._flight or None

    def _open_flight(self, port: int) -> Any:
        """A Flight client with a certificate for this session (mutual TLS), or None.

        The key is made here and never leaves this process; the service signs a certificate
        for it that names this session's user and lapses with the session.
        """
        import pyarrow.flight as flight
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flight client")]))
            .sign(key, hashes.SHA256())
        )
        body = {"csr": csr.public_bytes(serialization.Encoding.PEM).decode()}
        response = _post(self._http, "/v1/flight/certificate", body, token=self._token)
        if not response.is_success:
            return None  # an older service, or a dead session (the API then says so)
        doc = response.json()
        host = httpx.URL(self.url).host
        where = f"[{host}]" if ":" in host else host
        return flight.FlightClient(
            f"grpc+tls://{where}:{port}", tls_root_certs=self._ca_pem.encode(),
            cert_chain=str(doc["certificate"]).encode(),
            private_key=key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()),
        )

    # -- administration (``/v1/admin/...``; the actor is always the session's user) ------
    def _admin(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        csv: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One administrative request; its JSON answer, or :class:`ServiceError`."""
        headers = {"Authorization": f"Bearer {self._token}"}
        if csv is not None:
            headers["Content-Type"] = "text/csv"
        try:
            response = self._http.request(
                method, f"/v1/admin{path}", headers=headers, params=params,
                json=None if csv is not None else ({} if body is None and method != "GET"
                                                   else body),
                content=csv,
            )
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        _raise_for(response)
        doc: dict[str, Any] = response.json()
        return doc

    def list_users(self) -> pl.DataFrame:
        """Administrators: every user."""
        return pl.DataFrame(self._admin("GET", "/users")["users"])

    def disable_user(self, user_id: str, reason: str = "") -> dict[str, Any]:
        """Administrators: disable ``user_id``; their live sessions end at once (audited)."""
        return self._admin("POST", f"/users/{user_id}/disable", {"reason": reason})

    def enable_user(self, user_id: str, reason: str = "") -> dict[str, Any]:
        """Administrators: enable ``user_id`` again (audited)."""
        return self._admin("POST", f"/users/{user_id}/enable", {"reason": reason})

    def set_person(self, user_id: str, person_id: str | None, reason: str = "") -> dict[str, Any]:
        """Administrators: record the person behind ``user_id`` (None clears it; audited).

        One person's accounts share a person id; a two-person rule (a supervisor's approval)
        is never met by two of them.
        """
        return self._admin("POST", f"/users/{user_id}/person",
                           {"person_id": person_id, "reason": reason})

    def unbind_oidc(self, user_id: str, reason: str = "") -> dict[str, Any]:
        """Administrators: undo ``user_id``'s OIDC binding; its sessions end (audited).

        Its next sign-in through the identity provider binds it again.
        """
        return self._admin("POST", f"/users/{user_id}/unbind-oidc", {"reason": reason})

    def list_grants(self) -> pl.DataFrame:
        """Every sharing grant, in force or revoked."""
        return pl.DataFrame(self._admin("GET", "/grants")["grants"])

    def add_grant(self, **grant: Any) -> str:
        """Record a grant; return its id.

        Fields: ``network_id``, ``recipient_org``, ``approved_by``, ``basis``,
        ``review_by_date``, optional ``scope`` and ``recipient_type``.
        """
        body = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in grant.items()}
        return str(self._admin("POST", "/grants", body)["grant_id"])

    def revoke_grant(self, grant_id: str) -> dict[str, Any]:
        """Revoke a grant (audited)."""
        return self._admin("POST", f"/grants/{grant_id}/revoke")

    def snapshot_sharing(self) -> str | None:
        """Record today's sharing settings (audited); the drift found, or None."""
        drift = self._admin("POST", "/grants/snapshot")["drift"]
        return None if drift is None else str(drift)

    def add_agency(self, name: str, organization_type: str, state: str) -> dict[str, Any]:
        """Add an agency to the registry of known agencies (audited)."""
        return self._admin("POST", "/agencies", {"name": name,
                                                 "organization_type": organization_type,
                                                 "state": state})

    def settings(self) -> dict[str, Any]:
        """The department's signed settings."""
        return self._admin("GET", "/settings")

    def set_retention_days(self, retention_days: int) -> dict[str, Any]:
        """Change the retention period (``configure``; audited)."""
        return self._admin("POST", "/settings/retention", {"retention_days": retention_days})

    def rotate_keys(self) -> dict[str, Any]:
        """Rotate every master key (``rotate_keys``; audited)."""
        return self._admin("POST", "/keys/rotate")

    def purge(self, *, as_of: dt.date | None = None, retention_days: int | None = None,
              dry_run: bool = False) -> dict[str, Any]:
        """Crypto-shred expired days, or with ``dry_run`` list what would be shredded."""
        body: dict[str, Any] = {"dry_run": dry_run}
        if as_of is not None:
            body["as_of"] = as_of.isoformat()
        if retention_days is not None:
            body["retention_days"] = retention_days
        return self._admin("POST", "/purge", body)

    def place_legal_hold(self, **hold: Any) -> dict[str, Any]:
        """Place a legal hold (audited).

        Fields: ``hold_id``, ``case_number``, ``approver_user_id``, ``reason``,
        ``review_by_date``, ``read_ids``.
        """
        body = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in hold.items()}
        return self._admin("POST", "/holds", body)

    def release_legal_hold(self, hold_id: str) -> dict[str, Any]:
        """Release a hold: its reads are crypto-shredded (audited)."""
        return self._admin("POST", f"/holds/{hold_id}/release")

    def import_hotlist(self, csv: bytes, *, source: str,
                       name: str | None = None) -> dict[str, Any]:
        """Load a hotlist from CSV bytes (state stolen list or NCIC extract)."""
        params = {"source": source, **({"name": name} if name else {})}
        return self._admin("POST", "/hotlists/import", csv=csv, params=params)

    def create_hotlist(self, *, name: str, case_number: str, reason: str,
                       expires_at: dt.datetime) -> str:
        """Create a custom list tied to a case; its id."""
        return str(self._admin("POST", "/hotlists", {
            "name": name, "case_number": case_number, "reason": reason,
            "expires_at": _jsonable(expires_at)})["hotlist_id"])

    def add_hotlist_entry(self, hotlist_id: str, plate: str, *, plate_state: str | None = None,
                          reason: str | None = None) -> str:
        """Add a plate to a custom list; the entry id."""
        return str(self._admin("POST", f"/hotlists/{hotlist_id}/entries", {
            "plate": plate, "plate_state": plate_state, "reason": reason})["entry_id"])

    def change_hotlist_entry(self, entry_id: str, changes: dict[str, str]) -> dict[str, Any]:
        """Change fields of an entry (audited before and after)."""
        return self._admin("POST", f"/hotlist-entries/{entry_id}/change", {"changes": changes})

    def delete_hotlist_entry(self, entry_id: str, reason: str) -> dict[str, Any]:
        """Delete an entry (audited with the entry as it was)."""
        return self._admin("POST", f"/hotlist-entries/{entry_id}/delete", {"reason": reason})

    def verify_audit_log(self) -> dict[str, Any]:
        """The service checks the whole hash chain (``ok``, ``records``, ``problem``)."""
        return self._admin("POST", "/audit/verify")

    def audit_checkpoint(self) -> dict[str, Any]:
        """The service signs a checkpoint (``seq``, ``checkpoint`` JSON to publish)."""
        return self._admin("POST", "/audit/checkpoint")

    def import_vendor_audit(self, csv: bytes, *,
                            organization: str | None = None) -> dict[str, Any]:
        """Import a vendor's search-log CSV into the audit log."""
        params = {"organization": organization} if organization else None
        return self._admin("POST", "/audit/vendor-import", csv=csv, params=params)

    def ingest(self, csv: bytes, *, source: str | None = None,
               camera: str | None = None) -> dict[str, Any]:
        """Store reads from a CSV export and match them against the hotlists.

        ``source`` names the file in the audit record. ``camera``: the reads were recognized
        in that camera's frames; the service fills their network and place from its cameras
        table (the CSV leaves ``network_id``, ``lat`` and ``lon`` out).
        """
        params = {"source": source} if source else {}
        if camera is not None:
            params["camera"] = camera
        return self._admin("POST", "/ingest", csv=csv, params=params or None)

    # -- reports (``/v1/reports/...``; run in the service as the session's user) ---------
    def _report(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                csv: bytes | None = None,
                params: dict[str, str] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}"}
        if csv is not None:
            headers["Content-Type"] = "text/csv"
        try:
            response = self._http.request(method, f"/v1/reports{path}", headers=headers,
                                          params=params, json=body, content=csv)
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        _raise_for(response)
        return response

    def efficacy(self, *, start: dt.date | None = None,
                 end: dt.date | None = None) -> dict[str, Any]:
        """Efficacy and impact (``start``, ``end``, ``figures``, ``staff_hours_assumption``).

        Raises
        ------
        ServiceError
            ``refused`` (403, with the audit event) when the user may not view aggregates.
        """
        params = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v}
        doc: dict[str, Any] = self._report("GET", "/efficacy", params=params).json()
        return doc

    def transparency(self, *, as_of: dt.datetime | None = None,
                     portal_figures: bytes | None = None) -> tuple[bytes, str]:
        """The public transparency page: its HTML and the time it was taken at.

        ``portal_figures`` is a portal figures CSV (``reports.transparency``
        ``PORTAL_FIGURE_COLUMNS``) to compare with instead of the packaged figures.
        """
        params = {"as_of": _jsonable(as_of)} if as_of is not None else None
        response = self._report("POST", "/transparency", params=params,
                                csv=portal_figures if portal_figures else None)
        return response.content, response.headers.get("X-As-Of", "")

    def audit_report(self, year: int, *,
                     show_plates: bool = False) -> tuple[bytes, list[list[Any]]]:
        """The annual audit report: its HTML and ``[check_id, title, passed, flagged]`` rows.

        Raises
        ------
        ServiceError
            ``refused`` (403, with the audit event) for a user who may not audit, or who
            asks for whole plates without the ``audit`` permission.
        """
        response = self._report("POST", "/audit",
                                body={"year": year, "show_plates": show_plates})
        checks: list[list[Any]] = json.loads(response.headers.get("X-Audit-Checks", "[]"))
        return response.content, checks

    # -- data for the notebooks (``/v1/data/...``; read as the session's user, audited) --
    def _data(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """One ``GET /v1/data{path}``: the answer, or :class:`ServiceError`."""
        query = {k: (v.isoformat() if isinstance(v, dt.date) else str(v))
                 for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.get(f"/v1/data{path}", params=query,
                                      headers={"Authorization": f"Bearer {self._token}"})
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        _raise_for(response)
        return response

    def _data_frame(self, path: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        response = self._data(path, params)
        if response.headers.get("content-type", "").split(";")[0] != ARROW_STREAM:
            raise ServiceError(response.status_code, "bad_response",
                               "the service did not answer with an Arrow stream")
        return pl.read_ipc_stream(response.content)

    def cases(self) -> pl.DataFrame:
        """The open cases the user may search in now, or every case (audit, administer).

        The first: ``case_number``, ``title``, ``reason_code``, ``user_id``, ``role``.
        """
        return self._data_frame("/cases")

    def cameras(self) -> pl.DataFrame:
        """Every camera: its network, name and place (no read)."""
        return self._data_frame("/cameras")

    def networks(self) -> pl.DataFrame:
        """Every camera network and its owner."""
        return self._data_frame("/networks")

    def read_counts(self, *, start: dt.date | None = None,
                    end: dt.date | None = None) -> pl.DataFrame:
        """Reads per camera per UTC day (``view_aggregates``; counts, never a plate).

        Default period: every stored day.
        """
        return self._data_frame("/read-counts", {"start": start, "end": end})

    def trend(self, *, start: dt.date | None = None, end: dt.date | None = None,
              every: str = "1mo") -> pl.DataFrame:
        """Reads, hits, confirmed hits, recoveries, arrests per ``1d``, ``1w`` or ``1mo``."""
        return self._data_frame("/trend", {"start": start, "end": end, "every": every})

    def efficacy_tables(self, *, start: dt.date | None = None,
                        end: dt.date | None = None) -> dict[str, Any]:
        """The efficacy report: ``figures``, ``funnel`` and ``hits_by_source`` as frames.

        Also ``start``, ``end``, ``period_days`` and ``staff_hours_assumption``.
        """
        doc: dict[str, Any] = self._data("/efficacy", {"start": start, "end": end}).json()
        doc["funnel"] = pl.DataFrame(doc["funnel"], schema=["stage", "hits"], orient="row")
        doc["hits_by_source"] = pl.DataFrame(doc["hits_by_source"])
        return doc

    def hits(self) -> pl.DataFrame:
        """Hits at their cameras, without plates (``view_aggregates``).

        Those of the networks that alert your organization; auditors and administrators see
        the whole program.
        """
        return self._data_frame("/hits")

    def outcomes(self) -> pl.DataFrame:
        """Stops, recoveries and arrests of the hits you see (:meth:`hits`).

        ``lat``/``lon`` only for roles that see places.
        """
        return self._data_frame("/outcomes")

    def hotlist_entries(self) -> pl.DataFrame:
        """Hotlist entries without plates, VINs or what a hit shows only once confirmed.

        The withheld fields are ``hit_workflow.ACTIONABLE_FIELDS``.
        """
        return self._data_frame("/hotlist-entries")

    def audit_checks(self, year: int | None = None) -> tuple[int, pl.DataFrame]:
        """The year audited and every annual check of it, plates masked.

        Columns ``check_id``, ``title``, ``passed``, ``offending`` (rows), ``explanation``.
        Default ``year``: the year of the latest audit record. Needs ``audit`` or
        ``administer``.
        """
        response = self._data("/audit/checks", {"year": year})
        return int(response.headers["X-Year"]), pl.read_ipc_stream(response.content)

    def audit_offending(self, check_id: str, year: int | None = None) -> pl.DataFrame:
        """The offending records of one annual check, every plate masked."""
        return self._data_frame("/audit/offending", {"check_id": check_id, "year": year})

    def audit_digest(self, year: int) -> tuple[Any, str]:
        """The year's signed audit digest and the log's public key (PEM).

        Check one with the other: ``governance.verify_digest(digest, public_key_pem)``.
        """
        from alpr_workbench.governance.audit_log import SignedDigest

        doc = self._data("/audit/digest", {"year": year}).json()
        return SignedDigest.from_json(json.dumps(doc["digest"])), str(doc["public_key_pem"])

    def my_audit_trail(self, limit: int = 50) -> pl.DataFrame:
        """The signed-in user's own audit records (latest ``limit``, no query text)."""
        return self._data_frame("/audit/mine", {"limit": limit})

    def transparency_findings(self, *, as_of: dt.datetime | None = None) -> dict[str, Any]:
        """What the transparency page flags, and the portal comparison (``portal.rows``)."""
        doc: dict[str, Any] = self._data("/transparency", {"as_of": as_of}).json()
        return doc

    # -- pattern searches (``/v1/patterns/...``; case-gated and audited like a search) ---
    def seen_at_both(self, *, case_number: str, reason_code: str, place_a: dict[str, Any],
                     place_b: dict[str, Any], within: dt.timedelta,
                     **request: Any) -> ClientPatternResult:
        """Plates read at place A and at place B within ``within``: one gated search.

        A place is ``{"camera_ids": [...]}``, ``{"near": (lat, lon, radius_m)}`` or
        ``{"polygon": [(lon, lat), ...]}``; each is checked as one search would be. Other
        fields: ``reason_text``, ``window_from``, ``window_to`` (aware datetimes),
        ``plate_pattern``, ``vehicle_make``, ``vehicle_color``, ``vehicle_type``,
        ``approval_id`` (see :meth:`grant_approval`).

        Returns
        -------
        ClientPatternResult
            One row per plate (``plate``, ``a_camera_id``, ``a_at``, ``b_camera_id``,
            ``b_at``, ``gap``), the audit event, and whether the policy's cap cut the reads.

        Raises
        ------
        ServiceError
            ``search_refused`` (with the audit event id) when the gate refuses.
        """
        return self._pattern("/seen-at-both", {
            "case_number": case_number, "reason_code": reason_code, "place_a": place_a,
            "place_b": place_b, "within_minutes": within.total_seconds() / 60, **request})

    def repeat_sightings(self, *, case_number: str, reason_code: str, place: dict[str, Any],
                         min_sightings: int = 2, min_days: int = 1,
                         **request: Any) -> ClientPatternResult:
        """Plates read at one place at least ``min_sightings`` times on ``min_days`` days.

        ``place`` and the other fields as in :meth:`seen_at_both`; days are the
        department's local days. A minimum of one sighting is refused (a plate dump).

        Returns
        -------
        ClientPatternResult
            One row per plate (``plate``, ``sightings``, ``cameras``, ``days``,
            ``first_seen_at``, ``last_seen_at``, vehicle description), the audit event, and
            whether the policy's cap cut the reads.

        Raises
        ------
        ServiceError
            ``search_refused`` (with the audit event id) when the gate refuses.
        """
        return self._pattern("/repeats", {
            "case_number": case_number, "reason_code": reason_code, "place": place,
            "min_sightings": min_sightings, "min_days": min_days, **request})

    def _pattern(self, path: str, body: dict[str, Any]) -> ClientPatternResult:
        try:
            content = json.dumps(_json_tree(body), allow_nan=False).encode()
        except ValueError as exc:
            raise ValueError("a place holds a number that is not finite (NaN or infinity); "
                             "give coordinates and radii as real numbers") from exc
        try:
            response = self._http.post(f"/v1/patterns{path}", content=content,
                                       headers={"Authorization": f"Bearer {self._token}",
                                                "Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        _raise_for(response)
        if response.headers.get("content-type", "").split(";")[0] != ARROW_STREAM:
            raise ServiceError(response.status_code, "bad_response",
                               "the service did not answer with an Arrow stream")
        return ClientPatternResult(
            rows=pl.read_ipc_stream(response.content),
            event_id=response.headers["X-Audit-Event-Id"],
            reads_matched=int(response.headers["X-Reads-Matched"]),
            reads_considered=int(response.headers["X-Reads-Considered"]),
            truncated=response.headers["X-Truncated"] == "true",
        )

    # -- the hit workflow (``/v1/hits/...``; the actor is always the session's user) -----
    def _hits(self, method: str, hit_id: str, action: str = "",
              body: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None) -> dict[str, Any]:
        from urllib.parse import quote  # a hit id goes into the path: escape it

        path = f"/{quote(hit_id, safe='')}{action}"
        try:
            response = self._http.request(
                method, f"/v1/hits{path}", json=None if body is None else _json_tree(body),
                params=params, headers={"Authorization": f"Bearer {self._token}"})
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"cannot reach the service: {exc}") from exc
        _raise_for(response)
        doc: dict[str, Any] = response.json()
        return doc

    def hit_queue(self, *, limit: int = 500) -> dict[str, Any]:
        """New hits to work (``work_hits``): ``hits`` (a list of dicts) and ``timezone``.

        No hit shows the hotlist entry's actionable fields (reason, originating agency and
        case) before a person confirms it correct.
        """
        return self._hits("GET", "queue", params={"limit": limit})

    def show_hit(self, hit_id: str) -> dict[str, Any]:
        """One hit (``hit``, with ``outcomes`` and ``is_actionable``) and ``timezone``."""
        return self._hits("GET", hit_id)

    def confirm_hit(self, hit_id: str, decision: str, *, note: str = "") -> dict[str, Any]:
        """Record a decision: ``correct``, ``wrong_state``, ``misread`` or ``not_actionable``."""
        return self._hits("POST", hit_id, "/confirm",
                          {"decision": decision, "note": note})

    def record_hit_outcome(self, hit_id: str, outcome_type: str, *,
                           occurred_at: dt.datetime | None = None,
                           value_usd: float | None = None, case_number: str | None = None,
                           lat: float | None = None, lon: float | None = None) -> str:
        """Record a stop, recovery, arrest or cleared case on a confirmed hit; its id."""
        body = {"outcome_type": outcome_type, "occurred_at": occurred_at,
                "value_usd": value_usd, "case_number": case_number, "lat": lat, "lon": lon}
        doc = self._hits("POST", hit_id, "/outcome",
                         {k: v for k, v in body.items() if v is not None})
        return str(doc["outcome_id"])

    # -- onboarding (``/v1/admin/onboarding/...``, ``/v1/admin/holds``; administrators) ----
    def import_records(self, table: str, csv: bytes, *,
                       name: str | None = None) -> dict[str, Any]:
        """Import ``users``, ``cases``, ``cameras`` or ``networks`` from CSV bytes.

        The whole file or nothing: a bad file is a :class:`ServiceError` naming every bad
        line. The answer lists the records ``created``, ``changed`` and ``unchanged``.
        """
        from urllib.parse import quote as q

        params = {"name": name} if name else None
        return self._admin("POST", f"/onboarding/{q(table, safe='')}/import", csv=csv,
                           params=params)

    def list_records(self, table: str) -> pl.DataFrame:
        """Every record of ``users``, ``cases``, ``cameras`` or ``networks`` (times as text)."""
        from urllib.parse import quote as q

        rows = self._admin("GET", f"/onboarding/{q(table, safe='')}")["records"]
        return pl.DataFrame(rows, infer_schema_length=None)

    def edit_record(self, table: str, key: str, changes: dict[str, str], *,
                    reason: str = "") -> dict[str, Any]:
        """Change fields of one record (values as CSV text; ``""`` empties one)."""
        from urllib.parse import quote as q

        return self._admin("POST", f"/onboarding/{q(table, safe='')}/{q(key, safe='')}/edit",
                           {"changes": changes, "reason": reason})

    def separate_user(self, user_id: str, *, separated_at: dt.datetime | None = None,
                      reason: str = "") -> dict[str, Any]:
        """Record that ``user_id`` left: separated, disabled, live sessions ended."""
        from urllib.parse import quote as q

        return self._admin("POST", f"/onboarding/users/{q(user_id, safe='')}/separate",
                           {"separated_at": _jsonable(separated_at), "reason": reason})

    def close_case(self, case_number: str, *, reason: str = "") -> dict[str, Any]:
        """Close an open case now."""
        from urllib.parse import quote as q

        return self._admin("POST", f"/onboarding/cases/{q(case_number, safe='')}/close",
                           {"reason": reason})

    def list_legal_holds(self) -> pl.DataFrame:
        """Every legal hold, in force or released."""
        return pl.DataFrame(self._admin("GET", "/holds")["holds"], infer_schema_length=None)

    def review_legal_hold(self, hold_id: str, review_by_date: dt.date,
                          reason: str) -> dict[str, Any]:
        """Keep a legal hold until a new review date, saying why."""
        from urllib.parse import quote as q

        return self._admin("POST", f"/holds/{q(hold_id, safe='')}/review",
                           {"review_by_date": review_by_date.isoformat(), "reason": reason})


def connect(url: str | None = None, *, session_file: Path | None = None) -> Client:
    """The session saved by ``alpr-workbench login`` (or :meth:`Client.login`).

    Parameters
    ----------
    url
        Check that the saved session is for this service.
    session_file
        Default :func:`default_session_file`.

    Raises
    ------
    ServiceError
        When there is no saved session (sign in first), or it is for another service.
    """
    path = Path(session_file) if session_file is not None else default_session_file()
    try:
        doc = json.loads(path.read_text())
        saved_url, token, ca_pem = str(doc["url"]), str(doc["token"]), str(doc["ca_pem"])
    except FileNotFoundError as exc:
        raise ServiceError(0, "no_session",
                           f"no saved session at {path}: run `alpr-workbench login`") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ServiceError(0, "no_session", f"the session file {path} is unreadable") from exc
    if url is not None and url.rstrip("/") != saved_url.rstrip("/"):
        raise ServiceError(0, "no_session",
                           f"the saved session is for {saved_url}, not {url}: sign in there")
    return Client(saved_url, token, ca_pem, user_id=doc.get("user_id"), session_file=path)


@dataclass(frozen=True)
class ClientPatternResult:
    """What a pattern search found (a Polars frame, one row per plate) and the gate recorded.

    ``truncated``: the reads at the places (``reads_matched``) were more than the policy lets
    one search return, so the pattern was computed from the first ``reads_considered`` of
    them and may miss plates.
    """

    rows: pl.DataFrame
    event_id: str
    reads_matched: int
    reads_considered: int
    truncated: bool


def _json_tree(value: Any) -> Any:
    """``value`` with datetimes as ISO text, in nested dicts, tuples and lists too."""
    if isinstance(value, dict):
        return {str(k): _json_tree(v) for k, v in value.items()}
    if isinstance(value, tuple | list | set | frozenset):
        return [_json_tree(v) for v in value]
    return _jsonable(value)
