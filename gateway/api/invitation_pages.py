"""The invitation link's page: a person sets her password once (``/invite/{token}``), then logs in.

- ``GET /invite/{token}``: the form (her username, a new password twice) while the link is open; a link
  that is used or expired is 410 with a page saying so and what to do (ask the administrator for a new
  one), an unknown one 404. Nothing is changed by looking.
- ``POST /invite/{token}``: sets the password (``gateway.administration.users.accept_invitation``: the
  rules and scrypt hashing of every password, once, under a row lock, audited) and shows that it is done,
  with the way to the login page. A password that breaks the rules is the form again (400) with the
  reason; a dead link is the page above, and nothing is changed.

The form is a visitor's, without a session, so it carries the login form's anti-forgery token, bound to
the browser's pre-session nonce cookie (``web.render_page(login=True)``; a signed double-submit): a post
without the pair is 403 before anything is looked up. Guessing links is throttled as logins are, on the
same per-address counters (``login_throttle.ADDRESS``, ``gateway.store.logins``): every request is
charged as a failure first and blocked ones are 429 with ``Retry-After``; a request that names a real
link (open, used or expired) takes its charge back, so only guesses add up. A link's 256 random bits are
not guessed anyway; the throttle keeps the attempt from costing the server. Pages are ``no-store`` and
send no referrer (``security_headers``), so the link stays out of caches and other sites' logs.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.administration.errors import AdministrationError
from gateway.administration.users import (
    INVITATION_LIFETIME,
    INVITE_PATH,
    MIN_PASSWORD_CHARS,
    InvitationGone,
    accept_invitation,
    invitation_state,
)
from gateway.api.auth import LOGIN_COOKIE, cookie_name, login_csrf_ok
from gateway.api.deps import FORM_EXPIRED, ClientAddress, DbDep, FormDep, SettingsDep
from gateway.api.i18n import gettext as _
from gateway.api.login_throttle import ADDRESS, Throttled, client_address
from gateway.api.web import render_page
from gateway.store import logins
from gateway.store.logins import Counter

router = APIRouter(tags=["web"])

TEMPLATE = "invitation.html"


# --- throttling (the login's per-address counters) ---------------------------------------------------


def _charge(conn: psycopg.Connection[Any], address: str) -> Throttled | None:
    """Count this request as a failure of ``address`` (as ``login_throttle`` counts a login), or say how
    long to wait while the address is blocked."""
    with conn.transaction():
        counter, now = logins.locked_counter(conn, "address", address)
        charged = ADDRESS.charge(counter, now)
        if charged is None:
            assert counter.blocked_until is not None  # charge refuses only while blocked
            return Throttled(max(1, math.ceil((counter.blocked_until - now).total_seconds())))
        logins.save_counter(conn, "address", address, charged)
    return None


def _forgive(conn: psycopg.Connection[Any], address: str) -> None:
    """Take the charge of a request that named a real link back (one failure fewer, no block)."""
    with conn.transaction():
        counter, _now = logins.locked_counter(conn, "address", address)
        lowered = Counter(max(counter.failures - 1, 0), None, counter.last_failure)
        logins.save_counter(conn, "address", address, lowered if lowered.failures else Counter())


# --- pages -------------------------------------------------------------------------------------------


def _page(request: Request, status: int, **context: Any) -> HTMLResponse:
    days = INVITATION_LIFETIME.days
    return render_page(request, None, TEMPLATE, status, login=True, lifetime_days=days, **context)


def _gone(request: Request, gone: InvitationGone) -> HTMLResponse:
    """A link that sets no password: 404 unknown, 410 used or expired."""
    return _page(request, 404 if gone.reason == "unknown" else 410, gone=gone.reason)


def _throttled(request: Request, throttled: Throttled) -> HTMLResponse:
    wait = _("Too many attempts: try again in %(seconds)s seconds.", seconds=throttled.retry_after)
    page = _page(request, 429, message=wait)
    page.headers["Retry-After"] = str(throttled.retry_after)
    return page


def _form(
    request: Request, token: str, username: str, status: int = 200, error: str | None = None
) -> HTMLResponse:
    return _page(
        request,
        status,
        username=username,
        action=INVITE_PATH + token,
        min_chars=MIN_PASSWORD_CHARS,
        error=error,
    )


@router.get("/invite/{token}", response_class=HTMLResponse)
def invitation_form(request: Request, conn: DbDep, token: str) -> HTMLResponse:
    """The form that sets the invited person's password, while her link is open."""
    address = client_address(request)
    throttled = _charge(conn, address)
    if throttled is not None:
        return _throttled(request, throttled)
    try:
        found = invitation_state(conn, token)
    except InvitationGone as gone:
        if gone.reason != "unknown":
            _forgive(conn, address)
        return _gone(request, gone)
    _forgive(conn, address)
    return _form(request, token, found.username)


@router.post("/invite/{token}", response_class=HTMLResponse)
def set_password(
    request: Request, form: FormDep, conn: DbDep, settings: SettingsDep, client: ClientAddress, token: str
) -> HTMLResponse:
    """Set the password once (audited); the form again (400) when it breaks the rules."""
    nonce = request.cookies.get(cookie_name(settings, LOGIN_COOKIE))
    if not login_csrf_ok(settings, nonce, form.get("csrf", "")):
        return _page(request, 403, message=_(FORM_EXPIRED), retry=INVITE_PATH + token)
    address = client_address(request)
    throttled = _charge(conn, address)
    if throttled is not None:
        return _throttled(request, throttled)
    try:
        username = accept_invitation(
            conn, token, form.get("password", ""), form.get("password2", ""), client=client
        )
    except InvitationGone as gone:
        if gone.reason != "unknown":
            _forgive(conn, address)
        return _gone(request, gone)
    except AdministrationError as refused:
        _forgive(conn, address)
        try:  # open: accept_invitation tells a dead link before a weak password (unless used meanwhile)
            found = invitation_state(conn, token)
        except InvitationGone as gone:
            return _gone(request, gone)
        return _form(request, token, found.username, 400, str(refused))
    _forgive(conn, address)
    return _page(request, 200, done=username)
