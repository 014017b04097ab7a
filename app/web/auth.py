"""Who may use the web port: with STREAMLEARN_WEB_TOKEN set, only requests that carry it.

Reads: each request's ``Authorization`` header (and ``Accept``, to choose the refusal's body).
Gives: :func:`require_token`, an aiohttp middleware that :func:`install` adds to the whole of
Faust's web server, so that every path it serves (``/predict/``, the JSON views, ``/metrics``,
the dashboard, ``/`` and Faust's own ``/router/`` and ``/table/``, and a 404 too) answers
``401`` with ``{"error": reason}`` and ``WWW-Authenticate: Bearer`` unless the request carries
``Authorization: Bearer <token>``; the token is compared in constant time
(:func:`hmac.compare_digest`). A browser opening a page without it (``Accept: text/html``) gets
the same 401 with :data:`GATE`, a form that asks for the token once, keeps it in the tab's
``sessionStorage`` and loads the page with the header; the dashboard sends it with every request
it makes. Keeps the token only in the middleware's closure: never in a log, an error, a page or
a refusal (a refusal never repeats what the request sent). No token: nothing is added, the port
answers as it did.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import faust
import orjson
from aiohttp import web

from app import compat

#: the scheme of the ``Authorization`` header, and of the ``WWW-Authenticate`` challenge
SCHEME = "Bearer"
#: the ``sessionStorage`` key under which the gate page and the dashboard keep the token
STORAGE_KEY = "streamlearn-web-token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: the body of a 401 to a browser: asks for the token, then loads the page asked for with it
#: (an HTML page replaces this one, anything else is shown as text); no data, no token
GATE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamlearn: token needed</title>
<style>body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; } #why { color: #b00; }</style>
</head><body>
<h1>streamlearn</h1>
<p>This worker's web port needs its token (<code>STREAMLEARN_WEB_TOKEN</code>). It is kept in
this tab only, and sent as <code>Authorization: Bearer</code> with each request.</p>
<form id="gate"><input id="token" type="password" autocomplete="off" autofocus
  aria-label="token"> <button>open</button> <span id="why"></span></form>
<script>
"use strict";
(() => {
  const KEY = "STORAGE_KEY";
  async function load(token) {
    const response = await fetch(location.href, {
      headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      document.getElementById("why").textContent = "wrong token";
      return;
    }
    sessionStorage.setItem(KEY, token);
    const type = response.headers.get("Content-Type") || "";
    const text = await response.text();
    if (response.url !== location.href) history.replaceState(null, "", response.url);
    if (type.startsWith("text/html")) {
      document.open();
      document.write(text);
      document.close();
    } else {
      const pre = document.createElement("pre");
      pre.textContent = text;
      document.body.replaceChildren(pre);
    }
  }
  document.getElementById("gate").addEventListener("submit", event => {
    event.preventDefault();
    load(document.getElementById("token").value);
  });
  const kept = sessionStorage.getItem(KEY);
  if (kept) load(kept);
})();
</script>
</body></html>
""".replace(b"STORAGE_KEY", STORAGE_KEY.encode())


def refusal(request: web.Request, reason: str, wrong: bool) -> web.Response:
    """The 401 for ``request``: ``{"error": reason}`` (the :data:`GATE` page for a browser
    asking for a page), with the ``WWW-Authenticate`` challenge of RFC 6750."""
    challenge = f'{SCHEME} realm="streamlearn"'
    if wrong:
        challenge += ', error="invalid_token"'
    headers = {"WWW-Authenticate": challenge}
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        return web.Response(body=GATE, status=401, content_type="text/html", headers=headers)
    body = orjson.dumps({"error": reason})
    return web.Response(body=body, status=401, content_type="application/json", headers=headers)


def presented(header: str | None) -> bytes | None:
    """The credentials of an ``Authorization: Bearer <credentials>`` header (the scheme in any
    case), as bytes; None without one.

    >>> presented("Bearer abc"), presented("bearer  abc "), presented("Basic abc"), presented(None)
    (b'abc', b'abc', None, None)
    """
    scheme, _, credentials = (header or "").strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not credentials.strip():
        return None
    return credentials.strip().encode("utf-8", "surrogateescape")


def require_token(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that lets a request through only with ``Authorization: Bearer
    <token>``, else answers :func:`refusal`."""
    expected = token.encode("utf-8", "surrogateescape")

    @web.middleware
    async def bearer_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = presented(request.headers.get("Authorization"))
        if given is None:
            return refusal(request, f"this worker needs Authorization: {SCHEME} <token>", False)
        if not hmac.compare_digest(given, expected):
            return refusal(request, "wrong token", True)
        return await handler(request)

    return bearer_token


def install(app: faust.App, token: str) -> None:
    """Require ``token`` on every request to ``app``'s web server (nothing when it is "")."""
    if token:
        compat.add_web_middleware(app.web, require_token(token))


def headers(token: str) -> dict[str, str]:
    """The header a request to another worker carries (none without a token).

    >>> headers("t"), headers("")
    ({'Authorization': 'Bearer t'}, {})
    """
    return {"Authorization": f"{SCHEME} {token}"} if token else {}
