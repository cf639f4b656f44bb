"""FastAPI dependencies as ``Annotated`` aliases: the database connection, settings, the current user and
what the user may do.

``DbDep`` lends a pooled connection in autocommit mode for one request: each read is its own statement,
and a write that must be atomic (an acknowledgement with its audit row) uses ``conn.transaction()``, so
it is committed before the route returns.

Who is asking:
- ``CurrentUser`` reads the session cookie (web UI; no session means a redirect to /login);
  ``ClinicalUser`` is a current user who sees clinical data (nurse, GP; anyone else is 403) and
  ``AdminUser`` an administrator (of a municipality or of the system; anyone else is 403).
- ``BearerDep`` reads ``Authorization: Bearer`` (none, or one that does not count, is 401): one of this
  gateway's tokens (``auth.read_token``), or, when it claims the configured OpenID Connect provider as
  its issuer, the provider's (``oidc.read_provider_token``), mapped to the user of ``users`` it names,
  whose role and municipality count (not the token's).
- ``fhir_access(resource_type, interaction)`` is the FHIR API's gate: a person of a clinical role whose
  token's SMART scopes (and role) grant that access (``gateway.api.scopes``), else 403. ``HubUser`` is a
  hub's token with ``system/Observation.write`` (``POST /fhir``); a hub's token reads nothing.
  ``FhirPoster`` is whoever may ``POST /fhir``: a hub, or a system account (``auth.SYSTEM_ACCOUNT_ROLES``:
  a home-care or hospital system, a user of one municipality) whose scopes ``gateway.api.findr_fhir``
  checks per entry. A system account has no web session (its token as a cookie is 403 on every page)
  and no provider login: only this gateway's tokens (``homewatch gateway token``) name one.

A token counts only when its signature is right, its role known, it has not expired and its session was
not ended by logout; a person's only when ``users`` has them as the token says, so the user a route (and
the audit log) gets is one the server knows. Which patients that user may see is
``gateway.store.access``'s, applied by every query.

Forms: ``FormDep`` reads the UI's urlencoded forms with the standard library; ``CheckedForm`` is a form
of a live session whose anti-forgery token is right (403 otherwise): every state-changing form of the UI
takes it. ``ClientAddress`` is where a request came from, for the audit log. ``PayloadDep`` reads a hub's
Bundle up to ``max_payload_bytes`` (plus one byte, so an oversized one is recognised as such). The pool
itself belongs to whoever called ``create_app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

import psycopg
from fastapi import Depends, HTTPException, Request
from psycopg_pool import ConnectionPool

from gateway.api import oidc, scopes
from gateway.api.auth import (
    HUB_ROLE,
    SESSION_COOKIE,
    SYSTEM_ACCOUNT_ROLES,
    Claims,
    User,
    cookie_name,
    csrf_ok,
    read_token,
    registered_user,
    unverified_issuer,
)
from gateway.api.errors import FhirError, LoginRequired
from gateway.api.i18n import N_, gettext
from gateway.api.scopes import Interaction
from gateway.settings import GatewaySettings
from gateway.store import access, users
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


def client_address(request: Request) -> str:
    """Where the request came from, as the audit log records it: the client's IP (behind a proxy,
    uvicorn's ``--proxy-headers`` puts the forwarded one here)."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


def session_token(request: Request) -> str | None:
    """The session token of the web UI's cookie, if any."""
    return request.cookies.get(cookie_name(get_settings(request), SESSION_COOKIE))


def live_claims(conn: psycopg.Connection[Any], settings: GatewaySettings, token: str | None) -> Claims | None:
    """What a token of this gateway says when ``read_token`` accepts it and its session was not ended
    by logout."""
    claims = read_token(settings, token) if token else None
    if claims is None or (claims.session_id is not None and session_revoked(conn, claims.session_id)):
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
    if user.role in SYSTEM_ACCOUNT_ROLES:
        raise HTTPException(403, gettext("A system account has no pages: it may only send data to /fhir."))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_clinical_user(user: CurrentUser) -> User:
    """The current user when her role sees clinical data (nurse, GP); anyone else is 403."""
    if user.role not in access.CLINICAL_ROLES:
        raise HTTPException(403, gettext("Your role sees no patient's clinical data."))
    return user


# The roles that administer (users, teams, the audit log) and see no clinical data.
ADMIN_ROLES = frozenset({access.MUNICIPALITY_ADMIN, access.SYSTEM_ADMIN})


def get_admin_user(user: CurrentUser) -> User:
    """The current user when she is an administrator (of her municipality, or of the system); anyone
    else is 403."""
    if user.role not in ADMIN_ROLES:
        raise HTTPException(403, gettext("Only an administrator may open this page."))
    return user


def administered_municipality(user: User, names: Mapping[str, str], requested: str) -> str:
    """The municipality an administrator's page shows: a municipality administrator's own (another's is
    403), a system administrator's pick (hers by default; one not in ``names`` is 404)."""
    if user.role == access.SYSTEM_ADMIN:
        chosen = requested or user.municipality_id
        if chosen not in names:
            raise HTTPException(404, gettext("There is no such municipality."))
        return chosen
    if requested and requested != user.municipality_id:
        raise HTTPException(403, gettext("You administer only your own municipality."))
    return user.municipality_id


ClinicalUser = Annotated[User, Depends(get_clinical_user)]
AdminUser = Annotated[User, Depends(get_admin_user)]


def _provider_claims(conn: psycopg.Connection[Any], settings: GatewaySettings, token: str) -> Claims:
    """The registered user a provider's token names, with the token's scopes; 401 or 403 otherwise."""
    try:
        provided = oidc.read_provider_token(settings, token)
    except oidc.ProviderUnavailable as exc:
        raise FhirError(503, "transient", "the identity provider's keys cannot be fetched now") from exc
    if provided is None:
        raise FhirError(401, "login", "the identity provider's token is not valid here")
    stored = users.user_by_name(conn, provided.username)
    if stored is None:
        raise FhirError(401, "login", f"{provided.username!r} is not a user of this server")
    if stored.role in SYSTEM_ACCOUNT_ROLES:
        raise FhirError(403, "forbidden", "a system account uses this gateway's tokens, not the provider's")
    if provided.roles is not None and stored.role not in provided.roles:
        raise FhirError(403, "forbidden", f"the identity provider does not grant the role {stored.role}")
    user = User(stored.username, stored.municipality_id, stored.role)
    return Claims(user, None, provided.expires, provided.scopes)


def bearer_claims(request: Request, settings: SettingsDep, conn: DbDep) -> Claims:
    """What a live ``Authorization: Bearer`` token says, its person a registered user; otherwise 401
    with an OperationOutcome."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise FhirError(401, "login", "a valid bearer token is required (POST /login/access-token)")
    if oidc.is_provider_token(settings, unverified_issuer(token)):
        return _provider_claims(conn, settings, token)
    claims = live_claims(conn, settings, token)
    if claims is None:
        raise FhirError(401, "login", "a valid bearer token is required (POST /login/access-token)")
    if claims.user.role != HUB_ROLE and registered_user(conn, claims.user) is None:
        raise FhirError(401, "login", "the token's user is not a user of this server; log in again")
    return claims


BearerDep = Annotated[Claims, Depends(bearer_claims)]


def fhir_access(resource_type: str, interaction: Interaction) -> Callable[[Claims], User]:
    """A dependency: the person of the bearer token when she may ``interaction`` ``resource_type`` (a
    clinical role, and scopes that grant it); a hub's token, an administrator's or a missing scope is
    403. Which of those resources she sees is still ``gateway.store.access``'s."""

    def person(claims: BearerDep) -> User:
        user = claims.user
        if user.role == HUB_ROLE:
            raise FhirError(403, "forbidden", "a hub's token may only POST batch Bundles to /fhir")
        if user.role not in access.CLINICAL_ROLES:
            raise FhirError(403, "forbidden", f"a {user.role} sees no patient's clinical data")
        if not scopes.granted(claims.scopes, user.role, "user", resource_type, interaction):
            needed = scopes.required("user", resource_type, interaction)
            raise FhirError(403, "forbidden", f"the token's scopes do not grant {needed}")
        return user

    return person


def get_hub(claims: BearerDep) -> User:
    """The hub a bearer token names (its id is ``username``) when its scopes grant posting Observations;
    anyone else's token is 403."""
    if claims.user.role != HUB_ROLE:
        raise FhirError(403, "forbidden", f"only a hub's token may POST to /fhir, not a {claims.user.role}'s")
    if not scopes.granted(claims.scopes, HUB_ROLE, "system", "Observation", "create"):
        raise FhirError(403, "forbidden", "the token's scopes do not grant system/Observation.write")
    return claims.user


def get_fhir_poster(claims: BearerDep) -> Claims:
    """What the token of whoever may ``POST /fhir`` says: a hub's with ``system/Observation.write``
    (as ``get_hub``), or a system account's (its scopes are checked per entry); anyone else is 403."""
    if claims.user.role in SYSTEM_ACCOUNT_ROLES:
        return claims
    get_hub(claims)
    return claims


FhirPoster = Annotated[Claims, Depends(get_fhir_poster)]


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

FORM_EXPIRED = N_("The form has expired; reload the page and try again.")


def get_checked_form(request: Request, form: FormDep, settings: SettingsDep) -> dict[str, str]:
    """A form of the session whose ``csrf`` field is the session's anti-forgery token; else 403.

    Declare it after the user (``CurrentUser``, ``ClinicalUser``) so that a visitor without a session
    is sent to the login page first."""
    if not csrf_ok(settings, session_token(request) or "", form.get("csrf", "")):
        raise HTTPException(403, gettext(FORM_EXPIRED))
    return form


CheckedForm = Annotated[dict[str, str], Depends(get_checked_form)]
HubUser = Annotated[User, Depends(get_hub)]

_JSON_TYPES = frozenset({"application/fhir+json", "application/json"})


async def get_payload(request: Request, poster: FhirPoster, settings: SettingsDep) -> bytes:
    """A hub's (or system account's) request body, read only after its token is checked and never past
    the size limit + 1."""
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
