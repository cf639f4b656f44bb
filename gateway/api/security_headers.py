"""Security headers on every response: one pure ASGI middleware, so error pages and 401s get them too.

- ``Content-Security-Policy``: nothing but the page itself, its own stylesheet, script and images,
  connections and forms back to this server. Only the UI's own script file may run (the live alerts,
  ``static/alerts-live.js``), never inline script, and no inline style: an injected ``<script>`` or
  ``style=`` is inert. ``frame-ancestors 'none'`` (and ``X-Frame-Options: DENY``
  for older browsers) stops another site from framing a page to trick a click (acknowledge, log out).
- ``X-Content-Type-Options: nosniff``: a FHIR JSON answer is never run as a script or rendered as HTML.
- ``Referrer-Policy: no-referrer``: page URLs carry patient ids; no link may send them elsewhere.
- ``Cache-Control: no-store``: pages and FHIR answers hold patient data, so no browser or proxy cache may
  keep them. A route that sets its own ``Cache-Control`` (the stylesheet) keeps it.

The headers do not depend on the route; which routes exist is left to the routers.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",  # fonts, frames, objects, ...: none
        "script-src 'self'",  # only the UI's own script file (static/alerts-live.js), never inline
        "connect-src 'self'",  # its live stream and inbox refresh, to this server only
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
NO_STORE = "no-store"


class SecurityHeaders:
    """Adds ``HEADERS`` to every HTTP response, and ``Cache-Control: no-store`` unless it has one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS:
                    headers[name] = value
                headers.setdefault("Cache-Control", NO_STORE)
            await send(message)

        await self.app(scope, receive, send_with_headers)
