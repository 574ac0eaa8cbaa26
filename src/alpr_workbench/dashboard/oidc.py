"""The dashboard's "Sign in with <provider>": the service's own OpenID Connect flow, in-process.

Shown only when the operator configured OIDC (``<data dir>/service/oidc.toml``,
``docs/decisions/0006-oidc-sign-in.md``). The dashboard runs in the service's process and
shares its flow (:class:`OidcSignIn`, implemented by ``service/oidc_dashboard.py``), so:

1. ``POST /oidc/start`` (the button on the login page) starts a flow with the *browser's*
   address as its source (the per-source cap of flows in progress and the back-off are the
   browser's, never the service's own address), keeps the flow secret in a signed cookie
   of this browser (``HttpOnly``, ``Secure``, ``SameSite=Strict``, path ``/oidc``, ten
   minutes), and answers a page with a link that opens the provider in a new tab and a field
   for the one-time code.
2. The provider sends the browser to the API's one registered callback, which verifies the
   ID token, checks the account's standing, role and binding, and shows a one-time code.
3. ``POST /oidc/redeem`` (the field) redeems the code with the secret from this browser's
   cookie: a code used from another browser, or without the secret, is refused (the code is
   used up), audited, and backs that browser's address off. A redeemed code opens an
   ordinary service session, and the browser gets the same session cookie as a password
   sign-in.
"""

from __future__ import annotations

import html
import logging
from typing import Any, Protocol

from alpr_workbench.dashboard.auth import DashboardRefused

__all__ = ["FLOW_COOKIE", "OidcSignIn", "oidc_patterns"]

log = logging.getLogger(__name__)

#: The browser's cookie holding the secret of the flow it started (signed, ``/oidc`` only).
FLOW_COOKIE = "oidc_flow"
#: The flow cookie outlives no flow (``service.oidc.FLOW_TTL``).
_FLOW_COOKIE_S = 600
_MAX_CODE_CHARS = 128


class OidcSignIn(Protocol):
    """The service's OIDC flow as the dashboard uses it (``service/oidc_dashboard.py``).

    Every refusal raises :class:`~alpr_workbench.dashboard.auth.DashboardRefused` with words
    for the page; the service has already backed ``source`` off and audited it.
    """

    @property
    def display_name(self) -> str:
        """The provider's name on the login page (``name`` in ``oidc.toml``)."""
        ...

    def start(self, source: str) -> tuple[str, str]:
        """Start a flow from the browser at ``source``: (authorization URL, flow secret)."""
        ...

    def redeem(self, flow_secret: str, code: str, source: str) -> tuple[str, str]:
        """Redeem a one-time code with its flow's secret: (user id, session token)."""
        ...


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta content="width=device-width, initial-scale=1.0" name="viewport">
<title>ALPR Workbench | Sign in with {name}</title>
<style>body {{font-family: 'Segoe UI', sans-serif; background: #f4f6f8;}}
.box {{background: #fff; border: 1px solid #ddd; margin: 10vh auto; padding: 2em;
  width: 420px;}} h3 {{color: #1f4e79;}} a {{color: #1f4e79;}}
input {{background: #fafafa; border: 1px solid #ddd; padding: 12px; width: 100%;
  box-sizing: border-box; margin: 1em 0;}}
button {{background: #1f4e79; border: 0; color: #fff; padding: 10px; width: 100%;}}</style>
</head><body><div class="box"><h3>Sign in with {name}</h3>
<p>1. <a id="authorization-url" href="{url}" target="_blank" rel="noopener noreferrer">Open
{name}'s sign-in page</a> (a new tab) and sign in there.</p>
<p>2. That page then shows a one-time code: paste it here within two minutes.</p>
<form action="./redeem" method="post">
<input name="code" type="text" autocomplete="off" autocapitalize="off" autocorrect="off"
  maxlength="{max_code}" placeholder="one-time code" required>
<button type="submit">Sign in</button></form>
<p><a href="/login">Back to the sign-in page</a></p></div></body></html>
"""


def oidc_patterns(sign_in: OidcSignIn, *, session_cookie: str) -> list[tuple[str, Any, Any]]:
    """The dashboard's ``/oidc/start`` and ``/oidc/redeem`` routes (Tornado patterns).

    Parameters
    ----------
    sign_in
        The service's flow, shared in-process.
    session_cookie
        The name of the dashboard's signed session cookie (it holds the session token).

    Returns
    -------
    list of tuple
        ``extra_patterns`` for :func:`panel.serve`.
    """
    from panel.auth import _validate_next_url
    from panel.io.state import state
    from tornado.escape import url_escape
    from tornado.ioloop import IOLoop
    from tornado.web import RequestHandler

    class _Handler(RequestHandler):
        def _source(self) -> str:
            return self.request.remote_ip or "unknown"

        def _refused(self, reason: str) -> None:
            self.clear_cookie(FLOW_COOKIE, path="/oidc")
            self.redirect(f"/login?error={url_escape(reason)}")

    class StartHandler(_Handler):
        """Start a flow for this browser; show the provider's link and the code field."""

        async def post(self) -> None:
            source = self._source()
            try:
                url, secret = await IOLoop.current().run_in_executor(
                    None, sign_in.start, source)
            except DashboardRefused as exc:
                log.warning("dashboard OIDC start from %s refused: %s", source, exc.reason)
                self._refused(exc.reason)
                return
            self.set_secure_cookie(
                FLOW_COOKIE, secret, expires_days=None, max_age=_FLOW_COOKIE_S, httponly=True,
                secure=True, samesite="Strict", path="/oidc",
            )
            self.set_header("Cache-Control", "no-store")
            self.set_header("Referrer-Policy", "no-referrer")
            self.write(_PAGE.format(name=html.escape(sign_in.display_name),
                                    url=html.escape(url, quote=True),
                                    max_code=_MAX_CODE_CHARS))

    class RedeemHandler(_Handler):
        """Redeem the pasted code with this browser's flow secret; open a session."""

        async def post(self) -> None:
            source = self._source()
            raw = self.get_secure_cookie(FLOW_COOKIE, max_age_days=1)
            secret = raw.decode("ascii", "replace") if raw else ""
            code = self.get_body_argument("code", "").strip()[:_MAX_CODE_CHARS]
            try:
                user_id, token = await IOLoop.current().run_in_executor(
                    None, sign_in.redeem, secret, code, source)
            except DashboardRefused as exc:
                log.warning("dashboard OIDC redeem from %s refused: %s", source, exc.reason)
                self._refused(exc.reason)
                return
            log.info("dashboard login through the identity provider: %s from %s",
                     user_id, source)
            self.clear_cookie(FLOW_COOKIE, path="/oidc")
            self.clear_cookie("is_guest")
            self.set_secure_cookie(
                session_cookie, token, expires_days=None, httponly=True, secure=True,
                samesite="Strict", path="/",
            )
            self.redirect(_validate_next_url(self.get_cookie("next_url", state.base_url)))

    return [(r"/oidc/start", StartHandler, {}), (r"/oidc/redeem", RedeemHandler, {})]
