"""The nurses' web UI: login, logout, the page frame and the stylesheet (the ranked worklist and the
weekly review: ``review_pages``; a patient's pages: ``patient_pages``; alerts: ``alert_pages``).

Server-rendered Jinja2 that works without JavaScript, one stylesheet (``static/homewatch.css``) and one
script that only enhances (``static/alerts-live.js``: live alerts); the Content-Security-Policy of
``security_headers`` allows no inline style or script. Thin routes: rows come from ``gateway.store``
(``users``, ``logins``, ``audit``),
wording from ``presenters`` (as template globals), tokens from ``auth``, login throttling from
``login_throttle``. Every page that shows patient data, every change, login (right or wrong)
and logout writes audit rows with the client's address. State-changing forms (the clinical ones through
``deps.CheckedForm``, logout) carry an anti-forgery token bound to the session on top of the SameSite=Lax
cookie; the login form one bound to a random pre-session nonce in a cookie of its own (login CSRF). The
header's language form carries whichever of the two the page has (``form_token``), so it works on the
login and error pages too and is still refused from another site.
Cookies are ``__Host-`` and ``Secure`` outside development (``auth.cookie_name``). Logout revokes the
session server-side, so a copied cookie dies with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from gateway.api.auth import (
    LOGIN_COOKIE,
    LOGIN_COOKIE_SECONDS,
    SESSION_COOKIE,
    User,
    cookie_name,
    csrf_ok,
    csrf_token,
    issue_token,
    login_csrf_ok,
    login_csrf_token,
    login_nonce,
    read_token,
)
from gateway.api.clock import ui_now
from gateway.api.deps import (
    FORM_EXPIRED,
    ClientAddress,
    DbDep,
    FormDep,
    SettingsDep,
    session_token,
)
from gateway.api.errors import ACCESS_TOKEN_PATH, FhirError
from gateway.api.i18n import gettext as _
from gateway.api.login_throttle import Throttled, client_address, log_in
from gateway.settings import GatewaySettings
from gateway.store import access, users
from gateway.store.audit import LOGIN, LOGIN_FAILED, LOGOUT, Attempt, record_audit
from gateway.store.logins import revoke_session

router = APIRouter(tags=["web"])

STYLESHEET = Path(__file__).parent / "static" / "homewatch.css"
# The stylesheet holds no patient data; an hour keeps a page view from fetching it every time.
_STYLESHEET_CACHE = "public, max-age=3600"
# The live alerts' script (``alert_stream``): like the stylesheet, no patient data, cached an hour.
LIVE_ALERTS_SCRIPT = Path(__file__).parent / "static" / "alerts-live.js"


class AccessToken(BaseModel):
    """A bearer token for the FHIR API."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


def templates(request: Request) -> Jinja2Templates:
    """The app's templates (set up by ``create_app``)."""
    found: Jinja2Templates = request.app.state.templates
    return found


def safe_next(path: str | None) -> str:
    """A local path to return to after login; anything else (another site) becomes '/'."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def form_token(request: Request, *, login: bool = False) -> tuple[str, str | None]:
    """The anti-forgery token a page's forms carry, and the pre-session nonce to (re)set in its cookie
    (None with a session).

    With a session (and not the login form), the session's token: the logout, the language and every
    clinical form carry it. Without one, the login token bound to the browser's pre-session nonce
    (login CSRF: signed double-submit); a browser without a nonce cookie gets a new nonce to keep.
    """
    settings = request.app.state.settings
    token = session_token(request)
    if token and not login:
        return csrf_token(settings, token), None
    nonce = request.cookies.get(cookie_name(settings, LOGIN_COOKIE)) or login_nonce()
    return login_csrf_token(settings, nonce), nonce


def keep_login_nonce(response: Response, settings: GatewaySettings, nonce: str) -> None:
    """Set (or renew) the browser's pre-session nonce cookie, which the login token is bound to."""
    response.set_cookie(
        cookie_name(settings, LOGIN_COOKIE),
        nonce,
        max_age=LOGIN_COOKIE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )


def form_token_ok(request: Request, settings: GatewaySettings, submitted: str) -> bool:
    """Whether a form's token is this browser's: its session's, or the login token of its nonce."""
    token = session_token(request)
    if token and csrf_ok(settings, token, submitted):
        return True
    return login_csrf_ok(settings, request.cookies.get(cookie_name(settings, LOGIN_COOKIE)), submitted)


def render_page(
    request: Request, user: User | None, name: str, status: int = 200, *, login: bool = False, **context: Any
) -> HTMLResponse:
    """Render a page with what every page needs: the user, the demo flag, the clock, the form token
    (``form_token``; ``login``: the login form's)."""
    csrf, nonce = form_token(request, login=login)
    page = templates(request).TemplateResponse(
        request,
        name,
        {
            "user": user,
            "demo": bool(request.app.state.demo),
            "now": ui_now(request),  # the app's clock: the demo's simulated one (gateway.api.clock)
            "csrf": csrf,
            **context,
        },
        status_code=status,
    )
    if nonce is not None:
        keep_login_nonce(page, request.app.state.settings, nonce)
    return page


def _login_page(
    request: Request, settings: SettingsDep, status: int = 200, *, next: str, error: str | None = None
) -> HTMLResponse:
    """The login form, bound to the browser's pre-session nonce (login CSRF: signed double-submit); a
    browser without one gets a new one in a cookie of its own, which each showing of the form renews."""
    return render_page(request, None, "login.html", status, login=True, next=next, error=error)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep, next: str = "/") -> HTMLResponse:
    """The login form."""
    return _login_page(request, settings, next=safe_next(next))


def _retry_after(throttled: Throttled) -> dict[str, str]:
    return {"Retry-After": str(throttled.retry_after)}


# How much of a typed username the audit log keeps (the throttle's key is cut the same).
_TYPED_NAME_CHARS = 200


def _audit_login(conn: DbDep, typed: str, outcome: User | Throttled | None, client: str, via: str) -> None:
    """A ``login`` row for a user let in, a ``login-failed`` row (with that user's municipality and role
    when the name is a user's) for anyone else."""
    if isinstance(outcome, User):
        record_audit(conn, outcome, LOGIN, [], via, client=client)
        return
    name = typed.replace("\x00", "\ufffd")[:_TYPED_NAME_CHARS]
    known = users.user_by_name(conn, name) if name == typed else None
    attempt = Attempt(name, known.municipality_id, known.role) if known else Attempt(name)
    reason = "throttled" if isinstance(outcome, Throttled) else "wrong username or password"
    record_audit(conn, attempt, LOGIN_FAILED, [], f"{via}: {reason}", client=client)


def _landing(user: User, target: str) -> str:
    """Where a login goes: where the user was headed, except that the worklist ("/") of an
    administrator, who sees no patient, is her audit log."""
    if target == "/" and user.role not in access.CLINICAL_ROLES:
        return "/admin/audit"
    return target


@router.post("/login", response_class=HTMLResponse, response_model=None)
def login(
    request: Request, form: FormDep, conn: DbDep, settings: SettingsDep, client: ClientAddress
) -> Response:
    """Check the password and start a session (cookie), or show the form again (429 while throttled,
    403 when the form was not this browser's)."""
    target = safe_next(form.get("next"))
    login_cookie = cookie_name(settings, LOGIN_COOKIE)
    if not login_csrf_ok(settings, request.cookies.get(login_cookie), form.get("csrf", "")):
        return _login_page(request, settings, 403, next=target, error=_(FORM_EXPIRED))
    typed = form.get("username", "")
    user = log_in(conn, typed, form.get("password", ""), client_address(request))
    _audit_login(conn, typed, user, client, "web")
    if isinstance(user, Throttled):
        wait = _("Too many failed logins: try again in %(seconds)s seconds.", seconds=user.retry_after)
        page = _login_page(request, settings, 429, next=target, error=wait)
        page.headers.update(_retry_after(user))
        return page
    if user is None:
        return _login_page(request, settings, 401, next=target, error=_("Wrong username or password."))
    response = RedirectResponse(_landing(user, target), status_code=303)
    response.set_cookie(
        cookie_name(settings, SESSION_COOKIE),
        issue_token(settings, user),
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    response.delete_cookie(login_cookie, httponly=True, samesite="strict", secure=settings.secure_cookies)
    return response


@router.post(
    ACCESS_TOKEN_PATH,
    response_model=AccessToken,
    responses={
        401: {"description": "Wrong username or password (an OperationOutcome)."},
        429: {"description": "Too many failed logins: wait Retry-After seconds (an OperationOutcome)."},
    },
)
def access_token(
    request: Request, form: FormDep, conn: DbDep, settings: SettingsDep, client: ClientAddress
) -> AccessToken:
    """A bearer token for the FHIR API, for a username and password; errors are OperationOutcomes."""
    typed = form.get("username", "")
    user = log_in(conn, typed, form.get("password", ""), client_address(request))
    _audit_login(conn, typed, user, client, "access-token")
    if isinstance(user, Throttled):
        wait = f"too many failed logins: try again in {user.retry_after} seconds"
        raise FhirError(429, "throttled", wait, retry_after=user.retry_after)
    if user is None:
        raise FhirError(401, "login", "wrong username or password")
    return AccessToken(access_token=issue_token(settings, user), expires_in=settings.session_hours * 3600)


@router.post("/logout")
def logout(
    request: Request, form: FormDep, conn: DbDep, settings: SettingsDep, client: ClientAddress
) -> RedirectResponse:
    """End the session: revoke it server-side (the form must carry its token) and drop the cookie."""
    token = session_token(request) or ""
    claims = read_token(settings, token)
    if claims is not None and claims.session_id is not None:
        if not csrf_ok(settings, token, form.get("csrf", "")):
            raise HTTPException(403, _(FORM_EXPIRED))
        revoke_session(conn, claims.session_id, claims.expires)
        record_audit(conn, claims.user, LOGOUT, [], None, client=client)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        cookie_name(settings, SESSION_COOKIE), httponly=True, samesite="lax", secure=settings.secure_cookies
    )
    return response


@router.get("/static/homewatch.css", include_in_schema=False)
def stylesheet() -> Response:
    """The UI's one stylesheet (no inline styles: the Content-Security-Policy forbids them)."""
    css = STYLESHEET.read_bytes()
    return Response(css, media_type="text/css", headers={"Cache-Control": _STYLESHEET_CACHE})


@router.get("/static/alerts-live.js", include_in_schema=False)
def live_alerts_script() -> Response:
    """The UI's one script: live alerts for nurses and GPs (the pages work without it)."""
    script = LIVE_ALERTS_SCRIPT.read_bytes()
    return Response(script, media_type="text/javascript", headers={"Cache-Control": _STYLESHEET_CACHE})
