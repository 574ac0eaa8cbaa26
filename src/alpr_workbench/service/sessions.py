"""Sessions: short-lived, revocable bearer tokens, each bound to one user.

A token is 256 random bits (URL-safe base64); the service keeps only its SHA-256, in memory,
so a restart of the service signs everybody out and no token is ever written to disk on the
service's side. A session ends after :data:`IDLE_TIMEOUT` without a request, after
:data:`ABSOLUTE_TIMEOUT` in all, at logout, or when its user's standing fails (the service
re-checks the ``users`` table on every request and revokes the user's sessions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

__all__ = ["ABSOLUTE_TIMEOUT", "IDLE_TIMEOUT", "Session", "SessionProblem", "SessionStore"]

#: A session ends after this long without a request.
IDLE_TIMEOUT = dt.timedelta(minutes=30)
#: A session ends this long after sign-in, however active.
ABSOLUTE_TIMEOUT = dt.timedelta(hours=8)
_MAX_TOKEN_CHARS = 128


@dataclass(frozen=True)
class Session:
    """One signed-in session (the token itself is never kept)."""

    session_id: str
    user_id: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class SessionProblem:
    """Why a token opens no session, and whose session it was when that is known."""

    reason: str
    user_id: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(b"alpr-session\x00" + token.encode("utf-8", "replace")).hexdigest()


class SessionStore:
    """The service's live sessions, by token hash.

    Parameters
    ----------
    idle_timeout, absolute_timeout
        See :data:`IDLE_TIMEOUT` and :data:`ABSOLUTE_TIMEOUT`.
    clock
        Current UTC time (tests pin it).

    Examples
    --------
    >>> import datetime as dt
    >>> now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    >>> sessions = SessionStore(clock=lambda: now[0])
    >>> token, session = sessions.open("jdoe")
    >>> sessions.check(token).user_id
    'jdoe'
    >>> now[0] += dt.timedelta(minutes=31)
    >>> sessions.check(token).reason
    'session expired (idle); sign in again'
    """

    def __init__(
        self,
        *,
        idle_timeout: dt.timedelta = IDLE_TIMEOUT,
        absolute_timeout: dt.timedelta = ABSOLUTE_TIMEOUT,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self._idle = idle_timeout
        self._absolute = absolute_timeout
        self._clock = clock
        self._live: dict[str, Session] = {}
        self._mutex = threading.Lock()

    def open(self, user_id: str) -> tuple[str, Session]:
        """Start a session for ``user_id``; return the token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(
            session_id=f"ses-{secrets.token_hex(8)}",
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self._absolute,
        )
        with self._mutex:
            self._forget_expired(now)
            self._live[_digest(token)] = session
        return token, session

    def check(self, token: str) -> Session | SessionProblem:
        """The live session of ``token`` (its idle timer restarted), or why there is none."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            return SessionProblem("malformed session token")
        key = _digest(token)
        now = self._clock()
        with self._mutex:
            # A dict lookup by the hash of a 256-bit random token leaks nothing useful.
            found = self._live.get(key)
            if found is None:
                return SessionProblem("unknown, revoked or forged session token; sign in again")
            if now >= found.expires_at:
                del self._live[key]
                return SessionProblem("session expired; sign in again", found.user_id)
            if now - found.last_seen_at >= self._idle:
                del self._live[key]
                return SessionProblem("session expired (idle); sign in again", found.user_id)
            renewed = replace(found, last_seen_at=now)
            self._live[key] = renewed
            return renewed

    def revoke(self, token: str) -> Session | None:
        """End the session of ``token``; return it (None when there was none)."""
        with self._mutex:
            return self._live.pop(_digest(token), None)

    def revoke_user(self, user_id: str) -> int:
        """End every session of ``user_id``; return how many."""
        with self._mutex:
            keys = [k for k, s in self._live.items() if s.user_id == user_id]
            for key in keys:
                del self._live[key]
            return len(keys)

    def _forget_expired(self, now: dt.datetime) -> None:
        stale = [
            k
            for k, s in self._live.items()
            if now >= s.expires_at or now - s.last_seen_at >= self._idle
        ]
        for key in stale:
            del self._live[key]
