"""The nurses' web UI: login, logout, the ranked worklist, a patient's page, acknowledging an alert.

Server-rendered Jinja2, no JavaScript, one stylesheet (``static/homewatch.css``: the Content-Security-Policy
of ``security_headers`` allows no inline style or script). Thin routes: rows come from ``gateway.store``
(``worklist``, ``patient_views``, ``acknowledgements``, ``audit``),
wording from ``presenters`` (as template globals), tokens from ``auth``, login throttling from
``login_throttle``. Every page that shows patient data and every acknowledgement writes audit rows;
state-changing forms (acknowledge, logout) carry an anti-forgery token bound to the session on top of
the SameSite=Lax cookie. Logout revokes the session server-side, so a copied cookie dies with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from gateway.api.auth import SESSION_COOKIE, User, csrf_ok, csrf_token, issue_token, read_token
from gateway.api.deps import CurrentUser, DbDep, FormDep, SettingsDep, session_token
from gateway.api.errors import ACCESS_TOKEN_PATH, FhirError
from gateway.api.fhir_search import ID_PATTERN
from gateway.api.login_throttle import Throttled, client_address, log_in
from gateway.api.presenters import patient_url
from gateway.store import patient_views
from gateway.store.acknowledgements import acknowledge_alert
from gateway.store.audit import record_audit
from gateway.store.logins import revoke_session
from gateway.store.worklist import municipality_name, worklist_rows

router = APIRouter(tags=["web"])

STYLESHEET = Path(__file__).parent / "static" / "homewatch.css"
# The stylesheet holds no patient data; an hour keeps a page view from fetching it every time.
_STYLESHEET_CACHE = "public, max-age=3600"


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


def _page(request: Request, user: User | None, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with what every page needs: the user, the demo flag, the clock, the form token."""
    settings = request.app.state.settings
    token = session_token(request)
    return templates(request).TemplateResponse(
        request,
        name,
        {
            "user": user,
            "demo": bool(request.app.state.demo),
            "now": datetime.now(UTC),
            "csrf": csrf_token(settings, token) if token else "",
            **context,
        },
        status_code=status,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """The login form."""
    return _page(request, None, "login.html", next=safe_next(next), error=None)


def _retry_after(throttled: Throttled) -> dict[str, str]:
    return {"Retry-After": str(throttled.retry_after)}


@router.post("/login", response_class=HTMLResponse, response_model=None)
def login(request: Request, form: FormDep, conn: DbDep, settings: SettingsDep) -> Response:
    """Check the password and start a session (cookie), or show the form again (429 while throttled)."""
    user = log_in(conn, form.get("username", ""), form.get("password", ""), client_address(request))
    target = safe_next(form.get("next"))
    if isinstance(user, Throttled):
        wait = f"Too many failed logins: try again in {user.retry_after} seconds."
        page = _page(request, None, "login.html", 429, next=target, error=wait)
        page.headers.update(_retry_after(user))
        return page
    if user is None:
        return _page(request, None, "login.html", 401, next=target, error="Wrong username or password.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        issue_token(settings, user),
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
    )
    return response


@router.post(
    ACCESS_TOKEN_PATH,
    response_model=AccessToken,
    responses={
        401: {"description": "Wrong username or password (an OperationOutcome)."},
        429: {"description": "Too many failed logins: wait Retry-After seconds (an OperationOutcome)."},
    },
)
def access_token(request: Request, form: FormDep, conn: DbDep, settings: SettingsDep) -> AccessToken:
    """A bearer token for the FHIR API, for a username and password; errors are OperationOutcomes."""
    user = log_in(conn, form.get("username", ""), form.get("password", ""), client_address(request))
    if isinstance(user, Throttled):
        wait = f"too many failed logins: try again in {user.retry_after} seconds"
        raise FhirError(429, "throttled", wait, retry_after=user.retry_after)
    if user is None:
        raise FhirError(401, "login", "wrong username or password")
    return AccessToken(access_token=issue_token(settings, user), expires_in=settings.session_hours * 3600)


@router.post("/logout")
def logout(request: Request, form: FormDep, conn: DbDep, settings: SettingsDep) -> RedirectResponse:
    """End the session: revoke it server-side (the form must carry its token) and drop the cookie."""
    token = session_token(request) or ""
    claims = read_token(settings, token)
    if claims is not None:
        if not csrf_ok(settings, token, form.get("csrf", "")):
            raise HTTPException(403, "The form has expired; reload the page and try again.")
        revoke_session(conn, claims.session_id, claims.expires)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
    return response


@router.get("/static/homewatch.css", include_in_schema=False)
def stylesheet() -> Response:
    """The UI's one stylesheet (no inline styles: the Content-Security-Policy forbids them)."""
    css = STYLESHEET.read_bytes()
    return Response(css, media_type="text/css", headers={"Cache-Control": _STYLESHEET_CACHE})


@router.get("/", response_class=HTMLResponse)
def worklist(request: Request, user: CurrentUser, conn: DbDep) -> HTMLResponse:
    """The nurse's ranked worklist for their municipality."""
    rows = worklist_rows(conn, user.municipality_id)
    seen = [row.patient_id for row in rows]
    record_audit(conn, user, "view-worklist", seen, f"{len(rows)} patients")
    return _page(
        request,
        user,
        "worklist.html",
        rows=rows,
        synthetic=any(row.synthetic for row in rows),
        municipality=municipality_name(conn, user.municipality_id),
    )


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(patient_id: str, request: Request, user: CurrentUser, conn: DbDep) -> HTMLResponse:
    """One patient's readings, scores and alerts."""
    # A patient id is a FHIR id (the FHIR API serves the same patient); anything else, a NUL byte that
    # PostgreSQL refuses among them, names no patient and is not sent to the database.
    patient = None
    if ID_PATTERN.fullmatch(patient_id):
        patient = patient_views.patient(conn, user.municipality_id, patient_id)
    if patient is None:
        raise HTTPException(404, "There is no such patient in your municipality.")
    record_audit(conn, user, "view-patient", [patient.id])
    return _page(
        request,
        user,
        "patient.html",
        patient=patient,
        synthetic=patient.synthetic,
        readings=patient_views.recent_readings(conn, user.municipality_id, patient.id),
        news2=patient_views.latest_news2(conn, user.municipality_id, patient.id),
        scores=patient_views.score_history(conn, user.municipality_id, patient.id),
        alerts=patient_views.patient_alerts(conn, user.municipality_id, patient.id),
    )


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: int, request: Request, form: FormDep, user: CurrentUser, conn: DbDep, settings: SettingsDep
) -> RedirectResponse:
    """Acknowledge an alert (records who and when) and return to the patient's page."""
    if not csrf_ok(settings, session_token(request) or "", form.get("csrf", "")):
        raise HTTPException(403, "The form has expired; reload the page and try again.")
    patient_id = acknowledge_alert(conn, user, alert_id)
    if patient_id is None:
        raise HTTPException(404, "There is no such alert in your municipality.")
    return RedirectResponse(f"{patient_url(patient_id)}#alerts", status_code=303)
