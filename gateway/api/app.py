"""The gateway's web application: the nurses' UI, the FHIR API, the health probe and the Prometheus
metrics in one FastAPI app.

``create_app`` wires the routers to a settings object and a connection pool that the caller owns (opens,
and closes after the server stops). Errors become responses here, in one place: a missing session sends
a browser to /login, a FHIR error is an OperationOutcome with its status, and any other HTTP error is an
HTML page, or an OperationOutcome under /fhir and at the token endpoint
(``errors.answers_operation_outcome``); a database that is away is a 503 (with ``Retry-After``).
Every request runs in its user's language and time zone (``language.LanguageMiddleware``, Danish unless
chosen otherwise), and the templates translate through ``i18n`` (docs/web-ui.md).
Serving the app (uvicorn) is left to the caller.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api import (
    admin_alert_pages,
    admin_pages,
    administration_pages,
    alert_fhir,
    alert_pages,
    alert_stream,
    contact_request_pages,
    fhir_api,
    findr_pages,
    fleet_pages,
    health,
    invitation_pages,
    language,
    metrics,
    model_monitoring_pages,
    model_pages,
    patient_message_pages,
    patient_pages,
    plan_pages,
    quarantine_pages,
    request_fhir,
    review_fhir,
    review_pages,
    web,
)
from gateway.api.alert_presenters import ALERT_GLOBALS
from gateway.api.body_limit import BodyLimit
from gateway.api.contact_request_pages import REQUEST_GLOBALS
from gateway.api.errors import FhirError, LoginRequired, answers_operation_outcome
from gateway.api.fhir_model import operation_outcome
from gateway.api.i18n import N_, gettext, load_catalogues, localization, ngettext, pgettext
from gateway.api.language import LanguageMiddleware
from gateway.api.layout import HEADER_DEPENDENCIES, LAYOUT_GLOBALS
from gateway.api.presenters import TEMPLATE_GLOBALS
from gateway.api.review_presenters import REVIEW_GLOBALS
from gateway.api.security_headers import SecurityHeaders
from gateway.settings import GatewaySettings

TEMPLATES_DIR = Path(__file__).parent / "templates"

# Seconds a client is asked to wait when the database is away (a restart takes about this long).
_RETRY_AFTER_S = "5"
# OperationOutcome issue types (http://hl7.org/fhir/issue-type) for HTTP errors raised outside the FHIR code.
_ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-long",
    429: "throttled",
}


def _is_fhir(request: Request) -> bool:
    return answers_operation_outcome(request.url.path)


def _outcome(status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None) -> Response:
    return fhir_api.FhirResponse(operation_outcome(code, diagnostics), status_code=status, headers=headers)


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    # The header's language form carries this browser's token, as on every page (web.form_token).
    csrf, nonce = web.form_token(request)
    page = web.templates(request).TemplateResponse(
        request,
        "error.html",
        {"status": status, "message": message, "user": None, "demo": False, "csrf": csrf},
        status_code=status,
    )
    if nonce is not None:
        web.keep_login_nonce(page, request.app.state.settings, nonce)
    return page


# What a person reads for an HTTP error raised with no words of ours (Starlette's bare "Not Found").
_STATUS_MESSAGES = {
    404: N_("There is no page at this address. Check it, or go back to the front page."),
    405: N_("This page cannot be used that way."),
}


def _page_message(exc: StarletteHTTPException) -> str:
    """The error's own message, or ours in the user's language when it is only the status phrase."""
    if str(exc.detail) != HTTPStatus(exc.status_code).phrase:
        return str(exc.detail)
    return gettext(_STATUS_MESSAGES.get(exc.status_code, N_("The request could not be handled.")))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='')}", status_code=303)

    @app.exception_handler(FhirError)
    def fhir_error(request: Request, exc: FhirError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return _outcome(exc.status, exc.code, exc.diagnostics, headers or None)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_fhir(request):
            code = _ISSUE_TYPES.get(exc.status_code, "processing")
            return _outcome(exc.status_code, code, str(exc.detail), dict(exc.headers or {}) or None)
        return _error_page(request, exc.status_code, _page_message(exc))

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    def database_away(request: Request, exc: Exception) -> Response:
        # The database is down, restarting or out of connections: say so, and when to try again,
        # instead of a bare 500 (a hub's POST /fhir is then sent again; nothing was stored).
        message = "the database is unavailable; try again shortly"
        if _is_fhir(request):
            return _outcome(503, "transient", message, {"Retry-After": _RETRY_AFTER_S})
        return _error_page(request, 503, gettext("The service cannot reach its database; try again shortly."))

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        if _is_fhir(request):
            return _outcome(400, "invalid", problems)
        # A page names the fields only: the validator's explanations are English.
        fields = ", ".join(dict.fromkeys(str(e["loc"][-1]) for e in exc.errors()))
        return _error_page(
            request, 400, gettext("The request was not understood (%(problems)s).", problems=fields)
        )


def create_app(settings: GatewaySettings, pool: ConnectionPool[Any], *, demo: bool = False) -> FastAPI:
    """The web application over ``pool`` (owned by the caller); ``demo`` shows the synthetic-data banner."""
    app = FastAPI(
        title="homewatch gateway",
        summary="Worklists for municipal nurses and a FHIR R4 API over home-monitoring data.",
        docs_url=None,
        redoc_url=None,
        lifespan=alert_stream.lifespan,  # stops the live stream's listener at shutdown
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.demo = demo
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.globals.update(TEMPLATE_GLOBALS)
    templates.env.globals.update(LAYOUT_GLOBALS)
    templates.env.globals.update(REVIEW_GLOBALS)
    templates.env.globals.update(ALERT_GLOBALS)
    templates.env.globals.update(REQUEST_GLOBALS)
    # _() / gettext() / ngettext() / pgettext() and {% trans %} through the request's catalogue
    # (gateway.api.i18n; "newstyle" off: its callables fill placeholders themselves).
    templates.env.add_extension("jinja2.ext.i18n")
    templates.env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=False, pgettext=pgettext
    )
    # A broken catalogue or an unknown time zone stops the start, not a page.
    load_catalogues()
    localization(settings.default_language, settings.time_zone)
    app.state.templates = templates
    _install_error_handlers(app)
    # Before any /alerts/{alert_id} route, which would otherwise take "stream" for an id.
    app.include_router(alert_stream.router)
    app.include_router(web.router)
    # The clinical pages lend their connection to the header's count of open alerts (layout).
    app.include_router(review_pages.router, dependencies=HEADER_DEPENDENCIES)
    app.include_router(patient_pages.router, dependencies=HEADER_DEPENDENCIES)
    app.include_router(findr_pages.router, dependencies=HEADER_DEPENDENCIES)
    app.include_router(plan_pages.router, dependencies=HEADER_DEPENDENCIES)
    app.include_router(contact_request_pages.router, dependencies=HEADER_DEPENDENCIES)
    app.include_router(patient_message_pages.router, dependencies=HEADER_DEPENDENCIES)
    app.include_router(alert_pages.router, dependencies=HEADER_DEPENDENCIES)
    app.include_router(language.router)
    app.include_router(invitation_pages.router)
    app.include_router(admin_pages.router)
    app.include_router(admin_alert_pages.router)
    app.include_router(administration_pages.router)
    # Before any /admin/models/{version} route, which would otherwise take "monitoring" for a version.
    app.include_router(model_monitoring_pages.router)
    app.include_router(model_pages.router)
    app.include_router(quarantine_pages.router)
    app.include_router(fleet_pages.router)
    app.include_router(fhir_api.router)
    app.include_router(review_fhir.router)
    app.include_router(alert_fhir.router)
    app.include_router(request_fhir.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    # Innermost: routes, exception handlers and templates all see the request's language and zone.
    app.add_middleware(
        LanguageMiddleware, default_language=settings.default_language, time_zone=settings.time_zone
    )
    app.add_middleware(BodyLimit, max_payload_bytes=settings.max_payload_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: every answer gets the headers, 413s too
    return app
