"""The service's HTTP API: sign-in, sessions, and the gate behind them.

Every route but those of :data:`PUBLIC_PATHS` (``/v1/health``, ``/v1/enroll``, ``/v1/login``,
the sign-in steps of ``/v1/oidc`` and ``/openapi.json``) needs a session token
(``Authorization: Bearer <token>``), checked before any request body is read: a missing,
unknown or expired token is answered 401 at once. Identity comes from the
session only: no route takes the acting user from the request. Each request re-checks the
session's user in the store's ``users`` table, so a disabled or separated user is cut off on
the next request. Searches run side by side (each one audited before its result leaves);
administrative work runs alone. Results are Arrow IPC streams
(``application/vnd.apache.arrow.stream``), sent batch by batch; errors are JSON objects
``{"error": <code>, "detail": <words>, "event_id": <audit record, when audited>}``. See
``docs/decisions/0003-service-boundary.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import polars as pl
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from alpr_workbench.governance.admin import actor_problem
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.governance.gate import Gate, SearchRefused, SearchRequest, SearchResult
from alpr_workbench.governance.registry import User, get_user, user_problem
from alpr_workbench.service.accounts import AccountError, AccountStore
from alpr_workbench.service.oidc import OidcFlow
from alpr_workbench.service.sessions import Session, SessionProblem, SessionStore
from alpr_workbench.service.throttle import LoginThrottle, make_throttle
from alpr_workbench.store import Store

__all__ = ["ARROW_STREAM", "MAX_BODY_BYTES", "PUBLIC_PATHS", "STREAM_ROWS", "create_app"]

#: The media type of result bodies.
ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: Larger request bodies are refused (413) before they are read.
MAX_BODY_BYTES = 64 * 1024
#: The only paths answered without a session token; every other one is refused with 401
#: before its body is read.
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/enroll", "/v1/login", "/openapi.json",
                          "/v1/oidc/start", "/v1/oidc/callback", "/v1/oidc/redeem"})
IpcCompression = Literal["uncompressed", "lz4", "zstd"]
#: A streamed result leaves in pieces of at most this many bytes.
_PIECE_BYTES = 1 << 20
#: Results of more rows are streamed batch by batch, their buffers LZ4-compressed (the Arrow
#: IPC format's own body compression, which every Arrow reader decodes): a quarter of the
#: bytes, and the bytes on the wire, not the compression, are the cost over loopback TLS.
STREAM_ROWS = 4_096
_USER_ID = re.compile(r"^[a-z0-9._-]{2,40}$")
_WRONG_LOGIN = "invalid user name, password or authentication code"
_WRONG_CODE = "invalid, used or expired enrolment code"

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class ServiceError(Exception):
    """An error answered as JSON: HTTP status, a stable code, words, the audit record."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        event_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.event_id = event_id
        self.headers = headers


class _BodyTooLarge(Exception):
    """A request body grew past the limit while it was read."""


def _error_response(
    status: int,
    code: str,
    detail: str,
    *,
    event_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if event_id is not None:
        body["event_id"] = event_id
    return JSONResponse(body, status_code=status, headers=headers)


class _BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` (by header, and while reading)."""

    def __init__(self, app: _ASGIApp, max_bytes: int, upload_bytes: int = 0,
                 upload_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes  # CSV uploads (routes_admin.UPLOAD_PATHS) may be larger
        self.upload_paths = upload_paths

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope.get("path") in self.upload_paths else self.max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    response = _error_response(
                        413,
                        "body_too_large",
                        f"request bodies are limited to {limit} bytes",
                    )
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited() -> _Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        await self.app(scope, limited, send)


class _ServiceLock:
    """Administrative work runs alone (``with lock:``); searches share (``lock.shared()``).

    Sign-in, enrolment and sign-out share it too: the account store and the session table
    serialise their own writes, and a password hash must not hold back every search
    (``tests/attacks/test_attack_login_lock.py``). The store's readers take no lock and the
    audit log serialises its own appends, so searches may run side by side; a change (a
    purge, a key rotation, a user disabled) still waits for the searches in flight and none
    starts while it runs. Writers go first: a
    waiting change holds back new searches, so a stream of searches cannot starve it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    def __enter__(self) -> None:
        with self._cond:
            self._writers_waiting += 1
            try:
                self._cond.wait_for(lambda: not self._writing and self._readers == 0)
            finally:
                self._writers_waiting -= 1
            self._writing = True

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._writing = False
            self._cond.notify_all()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock beside other shared holders (searches, whoami)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and self._writers_waiting == 0)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()


def _bearer_token(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = str(headers.get("authorization", "")).partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


_NO_TOKEN = "sign in first: this request carries no session token"


class _TokenFirst:
    """ASGI middleware: a request without a live session is answered 401 before its body.

    Every path but :data:`PUBLIC_PATHS` needs a bearer token naming a live session. A missing
    token is refused at once; an unknown, revoked or expired one is refused with back-off
    and an audit record, as the routes do, without reading a byte of the body (so a forged
    token cannot make the service take in a 32 MiB upload). The route then checks the
    session again, with the user's standing (:meth:`_Service.authenticate`).
    """

    def __init__(self, app: _ASGIApp, svc: _Service) -> None:
        self.app = app
        self.svc = svc

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = _bearer_token(request.headers)
        try:
            if token is None:
                raise ServiceError(401, "unauthenticated", _NO_TOKEN,
                                   headers={"WWW-Authenticate": "Bearer"})
            source = _source(request)
            self.svc.backoff_check(source)
            found = self.svc.sessions.check(token)
            if isinstance(found, SessionProblem):
                await run_in_threadpool(self.svc.refuse_session, found, source,
                                        request.url.path)
        except ServiceError as exc:
            response = _error_response(exc.status, exc.code, exc.detail,
                                       event_id=exc.event_id, headers=exc.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _EnrollBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    user_id: str = Field(max_length=64)
    code: str = Field(max_length=128)
    new_password: str = Field(max_length=1024)


class _LoginBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    user_id: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    totp: str = Field(max_length=16)


@dataclass
class _Service:
    """What the routes share: the store, its gate and audit log, credentials, sessions."""

    store: Store
    gate: Gate
    audit: AuditLog
    accounts: AccountStore
    sessions: SessionStore
    throttle: LoginThrottle
    lock: _ServiceLock
    #: The OpenID Connect flow when configured (``routes_oidc`` sets it); the dashboard in
    #: the same process shares it (``service/oidc_dashboard.py``).
    oidc: OidcFlow | None = None
    #: The port of the search results' Arrow Flight server, when one runs (``service/run.py``
    #: sets it; ``GET /v1/health`` tells clients).
    flight_port: int | None = None
    #: The in-memory authority of Flight client certificates (``service/flight.py``).
    flight_clients: Any = None
    #: Set once the read cache's start-up fill is done (``service/run.py``); None: no fill.
    cache_filled: threading.Event | None = None

    # -- helpers -------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def record(
        self,
        event_type: str,
        *,
        action: str,
        source: str,
        user_id: str | None,
        problem: str | None,
        details: dict[str, Any] | None = None,
        case_number: str | None = None,
    ) -> str:
        user = get_user(self.store, user_id) if user_id and _USER_ID.match(user_id) else None
        event = {
            "event_type": event_type,
            "occurred_at": self.now(),
            "user_id": user_id[:128] if user_id else None,
            "organization": user.organization if user else None,
            "organization_type": user.organization_type if user else None,
            "case_number": case_number[:128] if case_number else None,
            "outcome": "allowed" if problem is None else "refused",
            "refusal_reason": problem,
            # The service's own keys last: no detail (a caller's parameter) overwrites them.
            "query_json": json.dumps(
                {**(details or {}), "service": action, "source": source}, default=str
            ),
        }
        return self.audit.append(event).event_id

    def backoff_check(self, source: str) -> None:
        wait = self.throttle.wait_s(source)
        if wait > 0:
            raise ServiceError(
                429,
                "too_many_failures",
                f"too many failed attempts from your address: try again in {wait:.0f} s",
                headers={"Retry-After": str(max(1, round(wait)))},
            )

    def attempt_refusal(self, source: str, wait: float) -> ServiceError:
        """The 429 for an attempt that :meth:`LoginThrottle.begin` did not let start."""
        code = "too_many_failures"
        if self.throttle.wait_s(source) > 0:
            words = f"too many failed attempts from your address: try again in {wait:.0f} s"
        else:  # not a failure: the client tries again by itself (client.SIGN_IN_BUSY)
            code = "sign_in_busy"
            words = ("another sign-in attempt from your address is in progress: try again "
                     f"in {max(1, round(wait))} s")
        return ServiceError(429, code, words, headers={"Retry-After": str(max(1, round(wait)))})

    @contextlib.contextmanager
    def sign_in_attempt(self, source: str) -> Iterator[None]:
        """Check the back-off and hold ``source``'s one attempt slot for the block.

        Sign-in, enrolment and OIDC code redemption check the back-off, evaluate the attempt
        and record its outcome as one step per source: from one address, an attempt that
        arrives while another is in flight is refused (429) instead of passing the check
        before the first one's failure is counted (``tests/attacks/test_attack_login_race.py``).
        Nothing waits: other addresses, searches and administration are not held back.

        Raises
        ------
        ServiceError
            429 while ``source`` backs off or has another attempt in flight.
        """
        wait = self.throttle.begin(source)
        if wait > 0:
            raise self.attempt_refusal(source, wait)
        try:
            yield
        finally:
            self.throttle.end(source)

    def refuse_session(self, found: SessionProblem, source: str, path: str) -> NoReturn:
        """Back the source off, audit the dead token, and answer 401 (always raises)."""
        delay = self.throttle.failed(source)
        reason = found.reason if delay == 0 else f"{found.reason}; back off {delay:.0f} s"
        event_id = self.record(
            "login",
            action="session",
            source=source,
            user_id=found.user_id,
            problem=reason,
            details={"path": path},
        )
        raise ServiceError(
            401,
            "invalid_session",
            found.reason,
            event_id=event_id,
            headers={"WWW-Authenticate": "Bearer"},
        )

    def authenticate(self, request: Request, source: str) -> tuple[User, Session]:
        """The signed-in user of an HTTP request's bearer token (see :meth:`authenticate_token`)."""
        return self.authenticate_token(_bearer_token(request.headers), source, request.url.path)

    def authenticate_token(
        self, token: str | None, source: str, path: str
    ) -> tuple[User, Session]:
        """The user and live session of ``token``, a user still in good standing.

        A missing token is refused; a dead one backs ``source`` off and is audited; a user no
        longer in good standing loses every session, audited. ``path`` names what was asked
        in those records (an API path, or ``flight:search``).

        Raises
        ------
        ServiceError
            401 (no or dead token), 429 (backing off) or 403 (account refused).
        """
        if token is None:
            raise ServiceError(
                401, "unauthenticated", _NO_TOKEN, headers={"WWW-Authenticate": "Bearer"}
            )
        self.backoff_check(source)
        found = self.sessions.check(token)
        if isinstance(found, SessionProblem):
            self.refuse_session(found, source, path)
        user = get_user(self.store, found.user_id)
        problem = user_problem(user, policy=self.gate.policy, now=self.now())
        if problem is not None or user is None:
            self.sessions.revoke_user(found.user_id)
            reason = f"your session was ended: {problem}"
            event_id = self.record(
                "login",
                action="session",
                source=source,
                user_id=found.user_id,
                problem=reason,
                details={"path": path, "session_id": found.session_id},
            )
            raise ServiceError(403, "account_refused", reason, event_id=event_id)
        return user, found

    def search(self, user: User, raw: bytes, source: str) -> SearchResult:
        """Run the search in the JSON body ``raw`` through the gate, as ``user``.

        Both transports (``POST /v1/search`` and Arrow Flight, ``service/flight.py``) come
        here; the result exists only once the gate has audited the search.

        Raises
        ------
        ServiceError
            413 (body too large), 422 (malformed, audited) or 403 (refused by the gate, with
            its audit record).
        """
        if len(raw) > MAX_BODY_BYTES:
            words = f"request bodies are limited to {MAX_BODY_BYTES} bytes"
            event_id = self.record("search", action="search", source=source,
                                   user_id=user.user_id, problem=f"{words} ({len(raw)} sent)")
            raise ServiceError(413, "body_too_large", words, event_id=event_id)
        try:
            search_request = SearchRequest(**_json_body(raw))
        except (ValueError, TypeError) as exc:
            words = _validation_words(exc) if isinstance(exc, ValidationError) else str(exc)
            event_id = self.record(
                "search", action="search", source=source, user_id=user.user_id,
                problem=f"malformed request: {words}",
                details={"body": raw[:4096].decode("utf-8", "replace")},
            )
            raise ServiceError(422, "malformed_request", words, event_id=event_id) from exc
        try:
            return self.gate.search(user.user_id, search_request)
        except SearchRefused as exc:
            raise ServiceError(403, "search_refused", exc.reason, event_id=exc.event_id) from exc


def _arrow_stream(frame: pl.DataFrame, *, compression: IpcCompression = "lz4") -> Iterator[bytes]:
    """``frame`` as one Arrow IPC stream, handed out in pieces of at most ``_PIECE_BYTES``.

    Polars' writer sends only the bytes of the rows in ``frame``. Rows found in the read cache
    (decision 0009) are string views into whole day files; pyarrow's IPC writer would send every
    buffer a view points into (7.3 MB against 4.1 MB for a 63 k-row result, and slower to
    write and to read). ``compression`` (``"lz4"``, ``"zstd"`` or ``"uncompressed"``) is the
    IPC format's own body compression, which every Arrow reader decodes.
    """
    sink = io.BytesIO()
    frame.write_ipc_stream(sink, compression=compression)
    body = sink.getbuffer()
    for start in range(0, len(body), _PIECE_BYTES):
        yield bytes(body[start : start + _PIECE_BYTES])


def _source(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the body is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError("the body must be a JSON object")
    return doc


def _validation_words(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def create_app(
    store: Store,
    *,
    audit: AuditLog | None = None,
    accounts: AccountStore | None = None,
    sessions: SessionStore | None = None,
    throttle: LoginThrottle | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    stream_rows: int = STREAM_ROWS,
) -> FastAPI:
    """The service's FastAPI application over an opened store.

    Parameters
    ----------
    store
        The store, opened by the service with the key-encryption secret.
    audit
        The store's audit log (default: opened here).
    accounts, sessions, throttle
        Credentials, live sessions and the per-source back-off (defaults: the store's
        credentials, a fresh in-memory session table, :func:`make_throttle`).
    max_body_bytes
        Larger request bodies are refused with 413.
    stream_rows
        Search results of more rows are streamed in LZ4-compressed record batches; smaller
        ones are sent as one body.

    Returns
    -------
    fastapi.FastAPI
        The application (its OpenAPI description is at ``/openapi.json``).
    """
    audit = audit or AuditLog.open(store.home, store.keystore)
    svc = _Service(
        store=store,
        gate=Gate(store, audit),
        audit=audit,
        accounts=accounts or AccountStore(store.home, store.keystore),
        sessions=sessions or SessionStore(),
        throttle=throttle or make_throttle(),
        lock=_ServiceLock(),
    )
    app = FastAPI(
        title="ALPR Workbench service",
        version="1",
        description="Authenticated data API: the only holder of the keys (issue #15).",
        docs_url=None,
        redoc_url=None,
    )
    from alpr_workbench.service.routes_admin import MAX_UPLOAD_BYTES, UPLOAD_PATHS, admin_router
    from alpr_workbench.service.routes_onboarding import ONBOARDING_UPLOAD_PATHS
    from alpr_workbench.service.routes_reports import REPORT_UPLOAD_PATHS, reports_router

    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes, upload_bytes=MAX_UPLOAD_BYTES,
                       upload_paths=UPLOAD_PATHS | REPORT_UPLOAD_PATHS | ONBOARDING_UPLOAD_PATHS)
    app.add_middleware(_TokenFirst, svc=svc)  # added last, so it runs first

    async def _service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return _error_response(
            exc.status, exc.code, exc.detail, event_id=exc.event_id, headers=exc.headers
        )

    async def _too_large(request: Request, exc: Exception) -> Response:
        return _error_response(
            413, "body_too_large", f"request bodies are limited to {max_body_bytes} bytes"
        )

    async def _http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _error_response(exc.status_code, "http_error", str(exc.detail))

    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(_BodyTooLarge, _too_large)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    async def _run(fn: Callable[[], Response], *, shared: bool = False) -> Response:
        def locked() -> Response:
            with svc.lock.shared() if shared else svc.lock:
                return fn()

        return await run_in_threadpool(locked)

    @app.get("/v1/health")
    async def health() -> dict[str, str | int]:
        """Readiness: the service is up, and where its Flight server listens.

        ``read_cache`` says whether the read cache is still filling at start (searches are
        answered meanwhile, slower).
        """
        filling = svc.cache_filled is not None and not svc.cache_filled.is_set()
        doc: dict[str, str | int] = {"status": "ok", "service": "alpr-workbench",
                                     "read_cache": "filling" if filling else "ready"}
        if svc.flight_port is not None:
            doc["flight_port"] = svc.flight_port
        return doc

    @app.post("/v1/enroll")
    async def enroll(request: Request) -> Response:
        """Consume an enrolment code: set a password, receive the TOTP secret."""
        raw = await request.body()
        source = _source(request)

        def work() -> Response:
            with svc.sign_in_attempt(source):  # check to outcome: one step per source
                return attempt()

        def attempt() -> Response:
            try:
                body = _EnrollBody(**_json_body(raw))
            except (ValueError, TypeError) as exc:
                words = _validation_words(exc) if isinstance(exc, ValidationError) else str(exc)
                raise ServiceError(422, "malformed_request", words) from exc
            user = get_user(svc.store, body.user_id) if _USER_ID.match(body.user_id) else None
            problem = user_problem(user, policy=svc.gate.policy, now=svc.now())
            result = None
            if problem is None:
                try:
                    result = svc.accounts.enroll(body.user_id, body.code, body.new_password)
                except AccountError as exc:
                    problem = str(exc)
            if result is None:
                delay = svc.throttle.failed(source)
                event_id = svc.record(
                    "user_change",
                    action="enroll",
                    source=source,
                    user_id=body.user_id,
                    problem=problem if delay == 0 else f"{problem}; back off {delay:.0f} s",
                )
                shown = problem if problem and problem.startswith("choose a password") else None
                raise ServiceError(
                    400, "enrolment_refused", shown or _WRONG_CODE, event_id=event_id
                )
            svc.throttle.succeeded(source)
            svc.record("user_change", action="enroll", source=source, user_id=body.user_id,
                       problem=None)
            return JSONResponse(
                {
                    "user_id": result.user_id,
                    "totp_secret": result.totp_secret,
                    "otpauth_uri": result.otpauth_uri,
                }
            )

        return await _run(work, shared=True)

    @app.post("/v1/login")
    async def login(request: Request) -> Response:
        """Sign in with a password and a TOTP code; receive a session token."""
        raw = await request.body()
        source = _source(request)

        def work() -> Response:
            with svc.sign_in_attempt(source):  # check to outcome: one step per source
                return attempt()

        def attempt() -> Response:
            try:
                body = _LoginBody(**_json_body(raw))
            except (ValueError, TypeError) as exc:
                words = _validation_words(exc) if isinstance(exc, ValidationError) else str(exc)
                raise ServiceError(422, "malformed_request", words) from exc
            ok = svc.accounts.check_credentials(body.user_id, body.password, body.totp)
            problem: str | None = _WRONG_LOGIN
            user = None
            if ok:
                user = get_user(svc.store, body.user_id)
                problem = user_problem(user, policy=svc.gate.policy, now=svc.now())
            if problem is not None or user is None:
                delay = svc.throttle.failed(source)
                audited = problem if delay == 0 else f"{problem}; back off {delay:.0f} s"
                event_id = svc.record(
                    "login", action="login", source=source, user_id=body.user_id,
                    problem=audited,
                )
                shown = _WRONG_LOGIN if not ok else f"sign-in refused: {problem}"
                if delay:
                    shown += f"; too many failed attempts: try again in {delay:.0f} s"
                raise ServiceError(401, "login_refused", shown, event_id=event_id)
            svc.throttle.succeeded(source)
            token, session = svc.sessions.open(user.user_id)
            svc.record(
                "login", action="login", source=source, user_id=user.user_id, problem=None,
                details={"session_id": session.session_id},
            )
            return JSONResponse(
                {
                    "token": token,
                    "user_id": user.user_id,
                    "role": user.role,
                    "expires_at": session.expires_at.isoformat(),
                }
            )

        return await _run(work, shared=True)

    @app.post("/v1/logout")
    async def logout(request: Request) -> Response:
        """End this session (its token stops working at once)."""
        source = _source(request)

        def work() -> Response:
            user, session = svc.authenticate(request, source)
            token = request.headers["authorization"].partition(" ")[2].strip()
            svc.sessions.revoke(token)
            svc.record(
                "login", action="logout", source=source, user_id=user.user_id, problem=None,
                details={"session_id": session.session_id},
            )
            return JSONResponse({"status": "signed out", "user_id": user.user_id})

        return await _run(work, shared=True)

    @app.get("/v1/whoami")
    async def whoami(request: Request) -> Response:
        """Who this session belongs to (from the session, never from the request)."""
        source = _source(request)

        def work() -> Response:
            user, session = svc.authenticate(request, source)
            event_id = svc.record(
                "login", action="whoami", source=source, user_id=user.user_id, problem=None,
                details={"session_id": session.session_id},
            )
            return JSONResponse(
                {
                    "user_id": user.user_id,
                    "full_name": user.full_name,
                    "role": user.role,
                    "organization": user.organization,
                    "session_id": session.session_id,
                    "session_expires_at": session.expires_at.isoformat(),
                    "event_id": event_id,
                }
            )

        return await _run(work, shared=True)

    @app.post("/v1/search")
    async def search(request: Request) -> Response:
        """A case-gated search through the gate: an Arrow IPC stream of the allowed rows."""
        raw = await request.body()
        source = _source(request)

        def work() -> Response:
            user, _ = svc.authenticate(request, source)
            result = svc.search(user, raw, source)
            # The search is in the audit log; only now does its result leave.
            headers = {
                "X-Audit-Event-Id": result.event_id,
                "X-Total-Rows": str(result.total_rows),
                "X-Rows": str(result.rows.height),  # what the body holds: a cut body is caught
                "X-Truncated": "true" if result.truncated else "false",
                "X-Window-From": result.window_from.isoformat(),
                "X-Window-To": result.window_to.isoformat(),
            }
            if result.rows.height <= stream_rows:  # one small body: Polars writes it
                sink = io.BytesIO()
                result.rows.write_ipc_stream(sink)
                return Response(sink.getvalue(), media_type=ARROW_STREAM, headers=headers)
            return StreamingResponse(_arrow_stream(result.rows, compression="lz4"),
                                     media_type=ARROW_STREAM, headers=headers)

        return await _run(work, shared=True)

    @app.post("/v1/users/{user_id}/enrolment")
    async def issue_enrolment(user_id: str, request: Request) -> Response:
        """Administrators: issue a one-time enrolment code for a user in good standing."""
        source = _source(request)

        def work() -> Response:
            actor, _ = svc.authenticate(request, source)
            now = svc.now()
            problem = actor_problem(
                svc.store, actor=actor.user_id, permission="administer",
                action="enrol users", policy=svc.gate.policy, now=now,
            )
            status, code = 403, "forbidden"
            if problem is None:
                target = get_user(svc.store, user_id) if _USER_ID.match(user_id) else None
                standing = user_problem(target, policy=svc.gate.policy, now=now)
                if standing is not None:
                    problem = f"{user_id!r} may not be enrolled: {standing}"
                    status, code = 409, "not_enrollable"
            details = {"target_user_id": user_id[:64]}
            if problem is not None:
                event_id = svc.record(
                    "user_change", action="issue_enrolment", source=source,
                    user_id=actor.user_id, problem=problem, details=details,
                )
                raise ServiceError(status, code, problem, event_id=event_id)
            enrolment_code = svc.accounts.issue_enrolment(user_id, issued_by=actor.user_id)
            event_id = svc.record(
                "user_change", action="issue_enrolment", source=source, user_id=actor.user_id,
                problem=None, details=details,
            )
            return JSONResponse({"user_id": user_id, "code": enrolment_code,
                                 "event_id": event_id})

        return await _run(work)

    app.include_router(admin_router(svc))
    app.include_router(reports_router(svc))
    from alpr_workbench.service.routes_onboarding import onboarding_router

    app.include_router(onboarding_router(svc))
    from alpr_workbench.service.routes_data import data_router

    app.include_router(data_router(svc))
    from alpr_workbench.service.routes_patterns import patterns_router

    app.include_router(patterns_router(svc))
    from alpr_workbench.service.routes_hits import hits_router

    app.include_router(hits_router(svc))
    from alpr_workbench.service.routes_approvals import approvals_router

    app.include_router(approvals_router(svc))
    from alpr_workbench.service.flight import flight_router

    app.include_router(flight_router(svc))
    from alpr_workbench.service.routes_oidc import oidc_router  # off unless configured

    app.include_router(oidc_router(svc))
    app.state.service = svc  # run.py hands the dashboard what it shares with the API (OIDC)
    return app
