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
import json
import os
import ssl
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
    "ClientSearchResult",
    "EnrolmentResult",
    "ServiceError",
    "connect",
    "default_session_file",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
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
    """

    def __init__(self, url: str, token: str, ca_pem: str, *, user_id: str | None = None,
                 session_file: Path | None = None) -> None:
        self.url = url
        self.user_id = user_id
        self.session_file = session_file
        self._token = token
        self._http = _http(url, ca_pem)

    def __repr__(self) -> str:  # never show the token
        return f"Client(url={self.url!r}, user_id={self.user_id!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the session stays valid until logout or expiry)."""
        self._http.close()

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
            response = _post(http, "/v1/login",
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
            response = _post(http, "/v1/enroll",
                             {"user_id": user_id, "code": code, "new_password": new_password})
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

    def search(self, **request: Any) -> ClientSearchResult:
        """A case-gated search (the fields of the gate's ``SearchRequest``).

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
        response = _post(self._http, "/v1/search", body, token=self._token)
        _raise_for(response)
        if response.headers.get("content-type", "").split(";")[0] != ARROW_STREAM:
            raise ServiceError(response.status_code, "bad_response",
                               "the service did not answer with an Arrow stream")
        return ClientSearchResult(
            rows=pl.read_ipc_stream(response.content),
            event_id=response.headers["X-Audit-Event-Id"],
            total_rows=int(response.headers["X-Total-Rows"]),
            truncated=response.headers["X-Truncated"] == "true",
        )


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
