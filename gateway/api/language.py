"""Which language a request is answered in, and the form in the page header that changes it.

The choice, first that applies: the ``homewatch_language`` cookie (set by ``POST /language``, the
header's language button, and kept a year), then the first language of ``Accept-Language`` that homewatch
speaks (a browser set up in English gets English from the first page), then the server's default
(Danish). ``LanguageMiddleware`` wraps every request in ``i18n.use_language`` with that choice and the
settings' time zone, so routes, exception handlers and templates all translate the same way, and says
the language of an HTML page in ``Content-Language``.

Changing the language needs no session (the login page has the button too), but like every form it
carries this browser's anti-forgery token (``web.form_token``): the session's, or without one the login
token bound to the pre-session nonce cookie. Another site cannot switch a nurse's pages to a language she
may not read.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.deps import FORM_EXPIRED, FormDep, SettingsDep
from gateway.api.i18n import DEFAULT_LANGUAGE, DEFAULT_TIME_ZONE, LANGUAGES, gettext, use_language
from gateway.api.web import form_token_ok, safe_next

LANGUAGE_COOKIE = "homewatch_language"
# A language is a lasting preference of a person at a workstation: a year, renewed by each change.
_COOKIE_MAX_AGE_S = 365 * 24 * 3600
# An Accept-Language header longer than this is not a browser's; it is not parsed.
_MAX_ACCEPT_LANGUAGE = 512


def accepted_languages(header: str | None) -> list[str]:
    """The primary language subtags of an ``Accept-Language`` header, most wanted first (RFC 9110 12.5.4).

    "da-DK,da;q=0.9,en;q=0.8" -> ["da", "da", "en"]; q=0 (not acceptable) and malformed entries are left out.
    """
    if not header or len(header) > _MAX_ACCEPT_LANGUAGE:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header.split(",")):
        tag, _, params = entry.strip().partition(";")
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].lower()
        if primary and quality > 0:
            ranked.append((-quality, position, primary))
    return [primary for _, _, primary in sorted(ranked)]


def choose_language(
    cookie: str | None,
    accept_language: str | None,
    default: str = DEFAULT_LANGUAGE,
    available: Sequence[str] = LANGUAGES,
) -> str:
    """The language to answer in: the cookie's, else the browser's first that is ``available``, else
    ``default``."""
    if cookie is not None and cookie in available:
        return cookie
    for language in accepted_languages(accept_language):
        if language in available:
            return language
    return default


class LanguageMiddleware:
    """Runs each HTTP request inside ``use_language`` with the language ``choose_language`` picks."""

    def __init__(
        self, app: ASGIApp, default_language: str = DEFAULT_LANGUAGE, time_zone: str = DEFAULT_TIME_ZONE
    ) -> None:
        self.app = app
        self.default_language = default_language
        self.time_zone = time_zone

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        language = choose_language(
            connection.cookies.get(LANGUAGE_COOKIE),
            connection.headers.get("accept-language"),
            self.default_language,
        )

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):  # not FHIR JSON, not CSS
                    headers.setdefault("Content-Language", language)
            await send(message)

        with use_language(language, self.time_zone):
            await self.app(scope, receive, send_with_language)


router = APIRouter(tags=["web"])


@router.post("/language", include_in_schema=False)
def change_language(request: Request, form: FormDep, settings: SettingsDep) -> RedirectResponse:
    """Remember the chosen language in a cookie and return to the page the form was on (403 when the
    form's token is not this browser's)."""
    if not form_token_ok(request, settings, form.get("csrf", "")):
        raise HTTPException(403, gettext(FORM_EXPIRED))
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    language = form.get("language", "")
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
        )
    return response
