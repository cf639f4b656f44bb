"""Request body limits, enforced before a body is read: one pure ASGI middleware for every route.

The hubs' ``POST /fhir`` may carry ``GatewaySettings.max_payload_bytes`` (what MQTT ingest accepts);
every other route ``FORM_LIMIT_BYTES``, since the UI's forms are a few short fields and nothing else takes
a body. A request whose ``Content-Length`` is over its route's limit is answered 413 before any of its
body is read. A body without one (chunked) is counted as the app reads it: the read that passes the limit
ends the request with the same 413, so no more than the limit (plus one chunk) is ever held in memory.
The 413 is, for ``POST /fhir``, the OperationOutcome ingest answers a ``too-large`` message with;
elsewhere under ``/fhir`` and at the token endpoint an OperationOutcome too
(``errors.answers_operation_outcome``), and plain text elsewhere. It closes the connection,
so the rest of the body is never read.

What a body means, and any tighter limit a route keeps of its own (``deps.get_form``), is left to the
routes.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import answers_operation_outcome
from gateway.api.fhir_model import FHIR_JSON, operation_outcome
from gateway.ingest.processing import MessageOutcome, Rejection, error_report

# The UI's forms (login, acknowledgement) are a few short fields; deps.get_form assumes the same.
FORM_LIMIT_BYTES = 16_384
FHIR_BATCH_PATH = "/fhir"
# The rejection code ingest gives a message over its size limit (gateway.ingest.processing).
_TOO_LARGE = "too-large"
# Content-Length values longer than this are over any limit; int() is never asked to read them.
_MAX_LENGTH_DIGITS = 18


def limit_for(path: str, max_payload_bytes: int) -> int:
    """The largest body a request to ``path`` may carry."""
    return max_payload_bytes if path == FHIR_BATCH_PATH else FORM_LIMIT_BYTES


def _declared_length(scope: Scope) -> int | None:
    """The body size the request announces (None: none, or not a number, which the server refuses)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.strip()
            if not text.isdigit():
                return None
            return int(text) if len(text) <= _MAX_LENGTH_DIGITS else 10**_MAX_LENGTH_DIGITS
    return None


def too_large(path: str, limit: int) -> Response:
    """The 413 answering a body over ``limit`` bytes; it closes the connection (the body stays unread)."""
    reason = f"the request body is larger than this route's limit of {limit} bytes"
    headers = {"Connection": "close"}
    if path == FHIR_BATCH_PATH:  # a hub's Bundle: the answer ingest gives (code, reason, expression)
        rejection = Rejection(None, None, _TOO_LARGE, reason)
        report = error_report(MessageOutcome(path, None, (), (rejection,)))
        return JSONResponse(report, 413, headers, media_type=FHIR_JSON)
    if answers_operation_outcome(path):
        return JSONResponse(operation_outcome("too-long", reason), 413, headers, media_type=FHIR_JSON)
    return PlainTextResponse(reason, 413, headers)


class _BodyTooLarge(Exception):
    """Raised out of ``receive`` when the body passes its limit; ``BodyLimit`` answers it with a 413."""


class BodyLimit:
    """ASGI middleware: a request body over its route's limit (``limit_for``) is a 413, never read whole.

    ``max_payload_bytes`` is the limit of the hubs' ``POST /fhir``.
    """

    def __init__(self, app: ASGIApp, max_payload_bytes: int) -> None:
        self.app = app
        self.max_payload_bytes = max_payload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = limit_for(path, self.max_payload_bytes)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await too_large(path, limit)(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if response_started:  # an app that answers before reading its body: too late for a 413
                raise
            await too_large(path, limit)(scope, receive, send)
