"""FastAPI dependencies as ``Annotated`` aliases: the database connection, settings and the current user.

``DbDep`` lends a pooled connection in autocommit mode for one request: each read is its own statement,
and a write that must be atomic (an acknowledgement with its audit row) uses ``conn.transaction()``, so
it is committed before the route returns. ``CurrentUser`` reads the session cookie (web UI; no session
means a redirect to /login), ``FhirUser`` the bearer token of a person (FHIR reads; none means 401) and
``HubUser`` the bearer token of a hub (``POST /fhir``): a hub's token reads nothing and a person's posts
nothing (403). A token counts only when its signature is right, its role known, it has not expired and
its session was not ended by logout; a person's only when ``users`` has them as the token says, so the
user a route (and the audit log) gets is one the server knows. ``FormDep`` reads the UI's urlencoded
forms with the standard library, ``PayloadDep`` a hub's Bundle up to ``max_payload_bytes`` (plus one
byte, so an oversized one is recognised as such). The pool itself belongs to whoever called
``create_app``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import parse_qsl

import psycopg
from fastapi import Depends, HTTPException, Request
from psycopg_pool import ConnectionPool

from gateway.api.auth import HUB_ROLE, SESSION_COOKIE, Claims, User, read_token, registered_user
from gateway.api.errors import FhirError, LoginRequired
from gateway.settings import GatewaySettings
from gateway.store.logins import session_revoked


def get_settings(request: Request) -> GatewaySettings:
    """The settings ``create_app`` was given."""
    settings: GatewaySettings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A connection from the caller's pool, in autocommit mode while this request holds it."""
    pool: ConnectionPool[Any] = request.app.state.pool
    with pool.connection() as conn:
        previous = conn.autocommit
        conn.autocommit = True
        try:
            yield conn
        finally:
            if not conn.closed:
                conn.autocommit = previous


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
DbDep = Annotated[psycopg.Connection[Any], Depends(get_db)]


def session_token(request: Request) -> str | None:
    """The session token of the web UI's cookie, if any."""
    return request.cookies.get(SESSION_COOKIE)


def live_claims(conn: psycopg.Connection[Any], settings: GatewaySettings, token: str | None) -> Claims | None:
    """What a token says when ``read_token`` accepts it and its session was not ended by logout."""
    claims = read_token(settings, token) if token else None
    if claims is None or session_revoked(conn, claims.session_id):
        return None
    return claims


def get_current_user(request: Request, settings: SettingsDep, conn: DbDep) -> User:
    """The user of a live session cookie; otherwise the request is sent to the login page."""
    claims = live_claims(conn, settings, session_token(request))
    user = None
    if claims is not None and claims.user.role != HUB_ROLE:
        user = registered_user(conn, claims.user)
    if user is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path if request.method == "GET" else "/")
    return user


def bearer_user(request: Request, settings: SettingsDep, conn: DbDep) -> User:
    """Whoever a live ``Authorization: Bearer`` token names; otherwise 401 with an OperationOutcome."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    claims = live_claims(conn, settings, token.strip()) if scheme.lower() == "bearer" else None
    if claims is None:
        raise FhirError(401, "login", "a valid bearer token is required (POST /login/access-token)")
    return claims.user


BearerDep = Annotated[User, Depends(bearer_user)]


def get_fhir_user(user: BearerDep, conn: DbDep) -> User:
    """The person a bearer token names; a hub's token is 403 (hubs post Observations, they read nothing),
    and a token of no registered user (unknown, or another municipality or role now) is 401."""
    if user.role == HUB_ROLE:
        raise FhirError(403, "forbidden", "a hub's token may only POST batch Bundles to /fhir")
    if registered_user(conn, user) is None:
        raise FhirError(401, "login", "the token's user is not a user of this server; log in again")
    return user


def get_hub(user: BearerDep) -> User:
    """The hub a bearer token names (its id is ``username``); anyone else's token is 403."""
    if user.role != HUB_ROLE:
        raise FhirError(403, "forbidden", f"only a hub's token may POST to /fhir, not a {user.role}'s")
    return user


# The UI's forms are a few short fields; anything longer is not one of them.
_MAX_FORM_BYTES = 16_384
_FORM_TYPE = "application/x-www-form-urlencoded"


async def get_form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form body (the UI's forms are parsed here, with the standard library)."""
    if request.headers.get("content-type", "").partition(";")[0].strip().lower() != _FORM_TYPE:
        return {}
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise HTTPException(413, "form too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


FormDep = Annotated[dict[str, str], Depends(get_form)]
CurrentUser = Annotated[User, Depends(get_current_user)]
FhirUser = Annotated[User, Depends(get_fhir_user)]
HubUser = Annotated[User, Depends(get_hub)]

_JSON_TYPES = frozenset({"application/fhir+json", "application/json"})


async def get_payload(request: Request, hub: HubUser, settings: SettingsDep) -> bytes:
    """A hub's request body, read only after its token is checked and never past the size limit + 1."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type and content_type not in _JSON_TYPES:
        raise FhirError(415, "not-supported", f"send application/fhir+json, not {content_type!r}")
    limit = settings.max_payload_bytes + 1  # one byte more tells "too large" from "exactly the limit"
    body = bytearray()
    async for chunk in request.stream():
        body += chunk[: limit - len(body)]
        if len(body) >= limit:
            break
    return bytes(body)


PayloadDep = Annotated[bytes, Depends(get_payload)]
