# SPDX-License-Identifier: BSD-3-Clause
"""Who may see the dashboard, as with Jupyter: whoever holds its token. A person opens the URL
with `?token=…` once and gets a session cookie (the token then leaves the address bar);
Prometheus sends it as `Authorization: Bearer …`. Actions (cancelling a job) also need the
session's CSRF token in a header, which only the dashboard's own page can read."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlencode

from aiohttp import web

COOKIE = "rhc_dashboard"
CSRF_HEADER = "X-CSRF-Token"
_SESSIONS_KEPT = 1_000


class Access:
    """Checks requests against the token; holds the sessions it opened."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._sessions: dict[str, str] = {}  # session id -> its CSRF token

    def __repr__(self) -> str:
        return f"Access(sessions={len(self._sessions)})"

    def login(self, request: web.Request) -> web.Response | None:
        """If the request carries the right `?token=`, a redirect to the same address without
        it, setting a session cookie; else None."""
        token = request.query.get("token")
        if token is None or not self._matches(token):
            return None
        session = secrets.token_urlsafe(32)
        if len(self._sessions) >= _SESSIONS_KEPT:
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[session] = secrets.token_urlsafe(32)
        query = {name: value for name, value in request.query.items() if name != "token"}
        response = web.Response(status=302, headers={"Location": _relative(request, query)})
        response.set_cookie(COOKIE, session, httponly=True, samesite="Strict")
        return response

    def check(self, request: web.Request) -> None:
        """Let a request with the token (bearer header) or a session through.

        Raises:
          web.HTTPUnauthorized: it carries neither.
          web.HTTPForbidden: it carries a wrong one.
        """
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not self._matches(token.strip()):
                raise web.HTTPForbidden(text="wrong token\n")
            return
        session = request.cookies.get(COOKIE)
        if session is None and "token" not in request.query:
            raise web.HTTPUnauthorized(
                text="this dashboard needs its token: open the URL `rhc dashboard` printed "
                "(…?token=…), or send `Authorization: Bearer <token>`\n",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if session not in self._sessions:
            raise web.HTTPForbidden(text="wrong token or expired session\n")

    def check_action(self, request: web.Request) -> None:
        """As check(), and a session's request must also carry its CSRF token.

        Raises:
          web.HTTPForbidden: it does not (a page of another site cannot read it).
        """
        self.check(request)
        if request.headers.get("Authorization"):
            return  # a bearer token is never sent by a browser on its own
        expected = self._sessions.get(request.cookies.get(COOKIE, ""), "")
        if not expected or not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), expected):
            raise web.HTTPForbidden(text="missing or wrong CSRF token\n")

    def csrf(self, request: web.Request) -> str:
        """The CSRF token of the request's session (for the page to send back)."""
        return self._sessions.get(request.cookies.get(COOKIE, ""), "")

    def _matches(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self._token.encode())


def _relative(request: web.Request, query: dict[str, str]) -> str:
    """The request's own address, relative (it may be served under a proxy's prefix)."""
    name = request.path.rsplit("/", 1)[-1] or "."
    return f"{name}?{urlencode(query)}" if query else name
