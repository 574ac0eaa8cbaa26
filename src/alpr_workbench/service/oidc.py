"""OpenID Connect sign-in (issue #15): the operator's configuration and the code flow.

Off unless the operator writes ``<data dir>/service/oidc.toml`` (:data:`CONFIG_FILE`). The
service then signs users in through the department's identity provider with the
authorization-code flow, PKCE (S256), ``state`` and ``nonce``
(``docs/decisions/0006-oidc-sign-in.md``). The ID token's signature (keys from the issuer's
JWKS, found through its discovery document), ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``
and ``nonce`` are all verified here. OIDC never creates users and never changes a role: the
claim names an existing workbench user, and the role the provider's groups map to must be that
user's role in the ``users`` table (:func:`role_problem`); the routes check the user's
standing (``service/routes_oidc.py``).

The command line cannot receive a redirect, so the callback page shows a one-time code that
the user pastes into ``alpr-workbench login --oidc``; the code is exchanged once, together with
the secret of the flow that the same client started, for a session (:meth:`OidcFlow.redeem`).
The dashboard, served by the same process, shares this flow object for its "Sign in with
<name>" (``service/oidc_dashboard.py``), with the browser's address as each flow's source.

``authlib`` (PKCE, the authorization URL) and ``joserfc`` (JWS verification) are the ``oidc``
extra, imported only when OIDC is configured.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
import ssl
import stat
import threading
import time
import tomllib
import urllib.parse
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpr_workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from alpr_workbench.store import Store

__all__ = [
    "BINDINGS_TABLE",
    "CALLBACK_PATH",
    "CONFIG_FILE",
    "DEFAULT_NAME",
    "SECRET_ENV",
    "OidcConfig",
    "OidcFlow",
    "OidcRefused",
    "Started",
    "Verified",
    "find_binding",
    "load_oidc_config",
    "remove_binding",
    "role_problem",
]

#: The store's table binding each account to the provider's (issuer, sub) at its first sign-in.
BINDINGS_TABLE = "oidc_bindings"

#: The operator's configuration, relative to the data directory.
CONFIG_FILE = "service/oidc.toml"
#: The client secret may come from this variable of the service's environment instead of a file.
SECRET_ENV = "ALPR_WORKBENCH_OIDC_CLIENT_SECRET"
#: The redirect URI's path: the service's callback route.
CALLBACK_PATH = "/v1/oidc/callback"
#: Signature algorithms accepted on ID tokens (never ``none``, never a shared-secret HMAC).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
#: A started flow (state, nonce, PKCE verifier) must come back within this long.
FLOW_TTL = dt.timedelta(minutes=10)
#: A one-time code shown on the callback page must be redeemed within this long.
REDEEM_TTL = dt.timedelta(minutes=2)
#: Allowed clock skew on ``exp`` and ``iat``.
LEEWAY = dt.timedelta(seconds=60)
#: An ID token issued longer ago than this is refused, whatever its ``exp``.
MAX_TOKEN_AGE = dt.timedelta(minutes=10)
#: Started flows kept at most (the oldest are forgotten first).
MAX_PENDING = 1_000
#: Sign-ins in progress from one source address at most (a flood cannot evict others').
MAX_PENDING_PER_SOURCE = 20
#: Discovery document and JWKS are fetched again after this long.
METADATA_TTL_S = 3_600.0
_KNOWN_KEYS = frozenset({
    "issuer", "client_id", "client_secret_file", "redirect_uri", "user_claim", "role_claim",
    "roles", "scopes", "ca_file", "name",
})
#: What the dashboard's "Sign in with ..." button calls the provider without a ``name`` key.
DEFAULT_NAME = "your identity provider"
_MAX_NAME_CHARS = 60


class OidcRefused(Exception):
    """A sign-in through the identity provider is refused: why, and whose, when known."""

    def __init__(self, reason: str, user_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_id = user_id


@dataclass(frozen=True)
class OidcConfig:
    """The operator's OIDC settings (see :func:`load_oidc_config`)."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    user_claim: str
    role_claim: str
    roles: Mapping[str, str]
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    ca_file: Path | None = None
    name: str = DEFAULT_NAME


@dataclass(frozen=True)
class Started:
    """A started flow: the URL to open and the secret that redeems its one-time code."""

    authorization_url: str
    flow_secret: str = field(repr=False)
    expires_at: dt.datetime


@dataclass(frozen=True)
class Verified:
    """A verified ID token: the workbench user it names and the roles its claims map to."""

    user_id: str
    roles: frozenset[str]
    subject: str
    flow_id: str
    secret_digest: str = field(repr=False, default="")


@dataclass(frozen=True)
class _Pending:
    nonce: str
    verifier: str
    secret_digest: str
    flow_id: str
    expires_at: dt.datetime
    source: str = ""


@dataclass(frozen=True)
class _Grant:
    user_id: str
    secret_digest: str
    flow_id: str
    expires_at: dt.datetime
    subject: str = ""


def _digest(value: str) -> str:
    return hashlib.sha256(b"alpr-oidc\x00" + value.encode("utf-8", "replace")).hexdigest()


def _https_url(name: str, value: object, where: Path) -> str:
    if not isinstance(value, str) or not value:
        raise WorkbenchError(f"{where}: {name} must be an https URL")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.fragment or parts.query:
        raise WorkbenchError(
            f"{where}: {name} must be an https URL without query or fragment, not {value!r}"
        )
    return value


def _private_file(path: Path, what: str) -> None:
    """Refuse a file that others can write (or, for secrets, read): it decides who signs in."""
    info = path.stat()
    if info.st_uid != os.geteuid():
        raise WorkbenchError(f"{path}: the {what} must belong to the service's account")
    if info.st_mode & (0o077 if what == "client secret" else 0o022):
        wanted = "0600" if what == "client secret" else "not writable by group or others"
        raise WorkbenchError(
            f"{path}: the {what} has mode {stat.S_IMODE(info.st_mode):04o}; make it {wanted}"
        )


def load_oidc_config(
    home: Path, *, roles: Collection[str], environ: Mapping[str, str] | None = None
) -> OidcConfig | None:
    """Read ``<home>/service/oidc.toml``; None when it is absent (OIDC sign-in is off).

    Parameters
    ----------
    home
        The data directory.
    roles
        The policy's roles: every role the mapping names must be one of them.
    environ
        The service's environment (default ``os.environ``), for :data:`SECRET_ENV`.

    Returns
    -------
    OidcConfig or None
        The validated settings.

    Raises
    ------
    WorkbenchError
        Naming the problem: an unknown or missing key, a URL that is not https, a redirect
        URI whose path is not :data:`CALLBACK_PATH`, a role the policy does not know, no
        client secret, a display ``name`` that is empty, too long or holds control
        characters, or a configuration or secret file that others could change or read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> load_oidc_config(pathlib.Path(tempfile.mkdtemp()), roles={"analyst"}) is None
    True
    """
    environ = os.environ if environ is None else environ
    path = Path(home) / CONFIG_FILE
    if not path.is_file():
        return None
    _private_file(path, "OIDC configuration")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(doc) - _KNOWN_KEYS)
    if unknown:
        raise WorkbenchError(f"{path}: unknown setting(s) {unknown}; known: {sorted(_KNOWN_KEYS)}")
    issuer = _https_url("issuer", doc.get("issuer"), path).rstrip("/")
    redirect_uri = _https_url("redirect_uri", doc.get("redirect_uri"), path)
    if urllib.parse.urlsplit(redirect_uri).path != CALLBACK_PATH:
        raise WorkbenchError(f"{path}: redirect_uri must end in {CALLBACK_PATH}")
    texts = {}
    for key in ("client_id", "user_claim", "role_claim"):
        value = doc.get(key)
        if not isinstance(value, str) or not value.strip():
            raise WorkbenchError(f"{path}: {key} must be a non-empty string")
        texts[key] = value.strip()
    mapping = doc.get("roles")
    if not isinstance(mapping, dict) or not mapping:
        raise WorkbenchError(f"{path}: [roles] must map claim values to workbench roles")
    for claim_value, role in mapping.items():
        if role not in roles:
            raise WorkbenchError(
                f"{path}: [roles] maps {claim_value!r} to {role!r}, which is not a policy role "
                f"({', '.join(sorted(roles))})"
            )
    scopes = doc.get("scopes", ["openid", "profile", "email"])
    if (not isinstance(scopes, list) or "openid" not in scopes
            or not all(isinstance(s, str) and s and " " not in s for s in scopes)):
        raise WorkbenchError(f"{path}: scopes must be a list of words including 'openid'")
    name = doc.get("name", DEFAULT_NAME)
    if (not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME_CHARS
            or not name.isprintable()):
        raise WorkbenchError(
            f"{path}: name (the provider's name on the dashboard's sign-in page) must be "
            f"printable text of 1 to {_MAX_NAME_CHARS} characters"
        )
    ca_file = doc.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not Path(ca_file).is_file()):
        raise WorkbenchError(f"{path}: ca_file {ca_file!r} is not a file")
    secret_file = doc.get("client_secret_file")
    if secret_file is not None:
        secret_path = Path(str(secret_file))
        if not secret_path.is_file():
            raise WorkbenchError(f"{path}: client_secret_file {secret_file!r} is not a file")
        _private_file(secret_path, "client secret")
        secret = secret_path.read_text(encoding="utf-8").strip()
    else:
        secret = environ.get(SECRET_ENV, "").strip()
    if not secret:
        raise WorkbenchError(
            f"{path}: no client secret: name a 0600 client_secret_file or set {SECRET_ENV}"
        )
    return OidcConfig(
        issuer=issuer, client_id=texts["client_id"], client_secret=secret,
        redirect_uri=redirect_uri, user_claim=texts["user_claim"],
        role_claim=texts["role_claim"], roles=dict(mapping), scopes=tuple(scopes),
        ca_file=Path(ca_file) if ca_file is not None else None, name=name.strip(),
    )


def role_problem(roles: frozenset[str], user_role: str) -> str | None:
    """Why the roles the claims map to do not sign in a user of ``user_role``, or None.

    OIDC never changes a role: the claims must map to exactly the user's role in the
    ``users`` table. No role, several roles or another role is refused.

    Examples
    --------
    >>> role_problem(frozenset({"analyst"}), "analyst") is None
    True
    >>> role_problem(frozenset({"supervisor"}), "analyst")
    "the identity provider's groups map to role 'supervisor', but the user's role is 'analyst'"
    """
    if not roles:
        return "the identity provider's groups map to no workbench role"
    if len(roles) > 1:
        return f"the identity provider's groups map to several roles ({', '.join(sorted(roles))})"
    (role,) = roles
    if role != user_role:
        return (f"the identity provider's groups map to role {role!r}, "
                f"but the user's role is {user_role!r}")
    return None


def _utc(seconds: object, name: str) -> dt.datetime:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise OidcRefused(f"ID token: {name} is missing or not a number")
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC)


class OidcFlow:
    """The authorization-code flow against one issuer, its state kept in memory.

    Parameters
    ----------
    config
        The operator's settings.
    clock
        Current UTC time (tests pin it).
    transport
        An ``httpx`` transport for the calls to the provider (default: TLS verified against
        ``config.ca_file`` or the system's trust store).
    """

    def __init__(
        self,
        config: OidcConfig,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        transport: Any = None,
    ) -> None:
        self.config = config
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._transport = transport
        self._pending: dict[str, _Pending] = {}
        self._grants: dict[str, _Grant] = {}
        self._mutex = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: dict[str, Any] | None = None

    # -- the provider ---------------------------------------------------------------------
    def _http(self) -> Any:
        import httpx

        if self._transport is not None:
            return httpx.Client(transport=self._transport, timeout=15)
        context = ssl.create_default_context(
            cafile=str(self.config.ca_file) if self.config.ca_file else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return httpx.Client(verify=context, timeout=15, follow_redirects=False)

    def _get_json(self, url: str) -> dict[str, Any]:
        import httpx

        try:
            with self._http() as http:
                response = http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            doc = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcRefused(f"the identity provider could not be read at {url}: {exc}") from exc
        if not isinstance(doc, dict):
            raise OidcRefused(f"the identity provider answered {url} with no JSON object")
        return doc

    def metadata(self, *, refresh: bool = False) -> dict[str, Any]:
        """The issuer's discovery document, checked (its issuer, https endpoints)."""
        if (self._metadata is not None and not refresh
                and time.monotonic() - self._metadata_at < METADATA_TTL_S):
            return self._metadata
        issuer = self.config.issuer
        doc = self._get_json(f"{issuer}/.well-known/openid-configuration")
        if doc.get("issuer") != issuer:
            raise OidcRefused(
                f"the discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}"
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(key)
            if not isinstance(value, str) or urllib.parse.urlsplit(value).scheme != "https":
                raise OidcRefused(f"the discovery document's {key} is not an https URL")
        self._metadata, self._metadata_at = doc, time.monotonic()
        self._jwks = None
        return doc

    def _keys(self, *, refresh: bool = False) -> Any:
        from joserfc.jwk import KeySet

        if self._jwks is None or refresh:
            self._jwks = self._get_json(str(self.metadata()["jwks_uri"]))
        try:
            return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - any malformed key set is the provider's fault
            raise OidcRefused(f"the identity provider's JWKS is unusable: {exc}") from exc

    # -- the flow -------------------------------------------------------------------------
    def start(self, source: str = "") -> Started:
        """Start a flow: a fresh state, nonce and PKCE verifier, kept here for the callback.

        Parameters
        ----------
        source
            The caller's address: at most :data:`MAX_PENDING_PER_SOURCE` flows in progress
            each, so one address cannot fill the table and evict other people's sign-ins.

        Returns
        -------
        Started
            The authorization URL for the user's browser, and the flow secret that the
            client that started it must give with the one-time code.

        Raises
        ------
        OidcRefused
            When ``source`` already has :data:`MAX_PENDING_PER_SOURCE` flows in progress.
        """
        from authlib.oauth2.rfc7636 import (
            create_s256_code_challenge,
        )

        endpoint = str(self.metadata()["authorization_endpoint"])
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        flow_secret = secrets.token_urlsafe(32)
        now = self._clock()
        pending = _Pending(nonce=nonce, verifier=verifier, secret_digest=_digest(flow_secret),
                           flow_id=f"oidc-{secrets.token_hex(6)}", expires_at=now + FLOW_TTL,
                           source=source)
        with self._mutex:
            self._forget(now)
            mine = sum(1 for p in self._pending.values() if p.source == source)
            if mine >= MAX_PENDING_PER_SOURCE:
                raise OidcRefused(
                    f"{mine} sign-ins are already in progress from your address: finish one "
                    "or wait for them to expire"
                )
            while len(self._pending) >= MAX_PENDING:
                del self._pending[next(iter(self._pending))]
            self._pending[_digest(state)] = pending
        query = urllib.parse.urlencode({
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        })
        separator = "&" if urllib.parse.urlsplit(endpoint).query else "?"
        return Started(f"{endpoint}{separator}{query}", flow_secret, pending.expires_at)

    def complete(self, state: str, code: str) -> Verified:
        """The callback: consume ``state``, exchange ``code``, verify the ID token.

        Raises
        ------
        OidcRefused
            For an unknown, used or expired state, a refused exchange, or an ID token that
            fails any check (signature, ``iss``, ``aud``/``azp``, ``exp``, ``iat``,
            ``nonce``, the user claim).
        """
        now = self._clock()
        with self._mutex:
            pending = self._pending.pop(_digest(state), None) if state else None
        if pending is None:
            raise OidcRefused("unknown, used or expired sign-in state; start again")
        if now >= pending.expires_at:
            raise OidcRefused("the sign-in took too long; start again")
        if not code or len(code) > 2048:
            raise OidcRefused("the identity provider sent no usable authorization code")
        tokens = self._exchange(code, pending.verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("the token response holds no ID token")
        claims = self.verify_id_token(id_token, nonce=pending.nonce, now=now)
        user = claims.get(self.config.user_claim)
        if not isinstance(user, str) or not user:
            raise OidcRefused(f"the ID token has no {self.config.user_claim!r} claim")
        raw = claims.get(self.config.role_claim, [])
        values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        roles = frozenset(
            self.config.roles[v] for v in values if isinstance(v, str) and v in self.config.roles
        )
        return Verified(user_id=user, roles=roles, subject=str(claims["sub"]),
                        flow_id=pending.flow_id, secret_digest=pending.secret_digest)

    def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        import httpx

        endpoint = str(self.metadata()["token_endpoint"])
        quote = urllib.parse.quote
        basic = base64.b64encode(
            f"{quote(self.config.client_id, safe='')}:{quote(self.config.client_secret, safe='')}"
            .encode()
        ).decode()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.config.redirect_uri, "code_verifier": verifier}
        try:
            with self._http() as http:
                response = http.post(endpoint, data=form, headers={
                    "Authorization": f"Basic {basic}", "Accept": "application/json"})
            doc = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcRefused(f"the token exchange failed: {exc}") from exc
        if not response.is_success or not isinstance(doc, dict):
            error = doc.get("error") if isinstance(doc, dict) else None
            raise OidcRefused(
                f"the identity provider refused the code ({response.status_code} {error})"
            )
        return doc

    def verify_id_token(self, id_token: str, *, nonce: str, now: dt.datetime) -> dict[str, Any]:
        """The claims of ``id_token`` once its signature and claims are verified.

        Raises
        ------
        OidcRefused
            Naming the check that failed.
        """
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            token = jwt.decode(id_token, self._keys(), algorithms=ALGORITHMS)
        except JoseError as exc:
            # The provider may have rotated its keys: fetch them once more before refusing.
            try:
                token = jwt.decode(id_token, self._keys(refresh=True), algorithms=ALGORITHMS)
            except JoseError:
                raise OidcRefused(f"ID token signature not verified ({exc.error})") from exc
        except ValueError as exc:
            raise OidcRefused(f"ID token is malformed ({exc})") from exc
        claims = dict(token.claims)
        if claims.get("iss") != self.config.issuer:
            raise OidcRefused(f"ID token issuer {claims.get('iss')!r} is not the configured one")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.config.client_id not in audiences:
            raise OidcRefused("ID token audience does not include this service's client id")
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcRefused("ID token has several audiences and its azp is not this service")
        if now >= _utc(claims.get("exp"), "exp") + LEEWAY:
            raise OidcRefused("ID token has expired")
        issued = _utc(claims.get("iat"), "iat")
        if issued > now + LEEWAY or now - issued > MAX_TOKEN_AGE:
            raise OidcRefused("ID token issue time (iat) is in the future or too old")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
            raise OidcRefused("ID token nonce does not match this sign-in")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise OidcRefused("ID token has no subject (sub)")
        return claims

    # -- the one-time code ------------------------------------------------------------------
    def grant(self, verified: Verified) -> str:
        """A one-time code for ``verified``'s user, redeemable once with the flow's secret."""
        code = secrets.token_urlsafe(18)
        now = self._clock()
        with self._mutex:
            self._grants[_digest(code)] = _Grant(user_id=verified.user_id,
                                                 secret_digest=verified.secret_digest,
                                                 flow_id=verified.flow_id,
                                                 expires_at=now + REDEEM_TTL,
                                                 subject=verified.subject)
        return code

    def redeem(self, flow_secret: str, code: str) -> tuple[str, str, str]:
        """Consume a one-time code; return ``(user_id, flow_id, subject)``.

        ``subject`` is the provider's ``sub`` that the callback verified: the caller checks
        that the account is still bound to it (an administrator may have unbound it since,
        ``service/oidc_redeem.py``).

        Raises
        ------
        OidcRefused
            For an unknown, used or expired code, or a flow secret that is not the one of
            the flow that produced it (the code is consumed either way).
        """
        now = self._clock()
        with self._mutex:
            found = self._grants.pop(_digest(code), None) if code else None
        if found is None:
            raise OidcRefused("unknown, used or expired one-time code")
        if now >= found.expires_at:
            raise OidcRefused("the one-time code has expired; sign in again", found.user_id)
        if not found.secret_digest or not hmac.compare_digest(
            found.secret_digest, _digest(flow_secret)
        ):
            raise OidcRefused("the one-time code belongs to a sign-in started elsewhere",
                              found.user_id)
        return found.user_id, found.flow_id, found.subject

    def _forget(self, now: dt.datetime) -> None:
        for key in [k for k, p in self._pending.items() if now >= p.expires_at]:
            del self._pending[key]
        for key in [k for k, g in self._grants.items() if now >= g.expires_at]:
            del self._grants[key]


# -- the binding store -----------------------------------------------------------------------
def find_binding(store: Store, user_id: str) -> dict[str, Any] | None:
    """The account's binding to the provider's (issuer, sub), or None when it is not bound.

    Parameters
    ----------
    store
        The store holding :data:`BINDINGS_TABLE`.
    user_id
        The workbench account.

    Returns
    -------
    dict or None
        The binding's row (``user_id``, ``issuer``, ``subject``, ``bound_at``).
    """
    import polars as pl

    found = store.tables.read(BINDINGS_TABLE).filter(pl.col("user_id") == user_id)
    return found.row(0, named=True) if found.height else None


def remove_binding(store: Store, user_id: str) -> dict[str, Any]:
    """Unbind the account: its next OIDC sign-in binds it again, to whoever signs in then.

    The table is replaced atomically without the account's row; the caller holds the
    service's lock (the sign-in's check-and-bind takes it too) and audits the change.

    Parameters
    ----------
    store
        The store holding :data:`BINDINGS_TABLE`.
    user_id
        The workbench account.

    Returns
    -------
    dict
        The binding removed (``user_id``, ``issuer``, ``subject``, ``bound_at``).

    Raises
    ------
    alpr_workbench.errors.WorkbenchError
        When the account is not bound (nothing is changed).
    """
    import polars as pl

    table = store.tables.read(BINDINGS_TABLE)
    mine = pl.col("user_id") == user_id
    found = table.filter(mine)
    if not found.height:
        raise WorkbenchError(
            f"{user_id[:64]!r} is not bound to an identity at the provider: nothing to unbind"
        )
    store.tables.write(BINDINGS_TABLE, table.filter(~mine))
    return found.row(0, named=True)
