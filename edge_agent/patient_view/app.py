"""The patient view's web application (Starlette): server-rendered pages, big buttons, no script.

Pages: the PIN (``/login``), "who are you" when the hub has more than one resident (``/who``), today
(``/``), the last 30 days (``/trends``), the nurse's messages (``/messages``), the daily symptom check one
question a screen (``/questionnaire``), "contact my nurse" (``/contact``) and readings of a shared device
nobody has claimed (``/who-measured``). Every page but the PIN's needs a session that gave the PIN and
names a resident who still lives on the hub; every read is about that resident alone.

Every POST is a plain HTML form: URL-encoded, at most :data:`MAX_FORM_BYTES`, carrying the session's
anti-forgery token, and refused when the browser says it came from another site. Answers and requests
go to the hub's outbox through :class:`HubPort` (the same delivery as readings); what the app needs of
the hub is in that one object, so tests give it a real outbox without a hub.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from edge_agent.config import HubConfig
from edge_agent.patient_view import texts
from edge_agent.patient_view.charts import line_plot
from edge_agent.patient_view.history import LocalHistory
from edge_agent.patient_view.security import COOKIE, PinGate, Session, SessionCodec, same_token
from edge_agent.patient_view.today import READ_BEFORE, TREND_DAYS, arrived_today, today_plan, trends
from edge_agent.unattributed import UnattributedError
from fhir_contract.contact import REASONS, build_contact_request
from fhir_contract.questionnaire import Questionnaire, build_response, current

log = logging.getLogger(__name__)

#: A form of this view is a PIN, a token and a code or two: anything longer is not one of ours.
MAX_FORM_BYTES = 2048
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PendingReading(Protocol):
    """A reading of a shared device waiting for a resident (``edge_agent.unattributed``)."""

    id: int
    device_id: str
    kind: str
    summary: str
    measured_at: datetime


class Unattributed(Protocol):
    """What the view needs of the hub's store of unclaimed readings (``edge_agent.unattributed``)."""

    def pending(self) -> list[Any]: ...

    def claim(self, pending_id: int, patient_id: str) -> list[dict[str, Any]]: ...


class HubUnavailable(RuntimeError):
    """The hub cannot take the patient's entry right now (restarting its agent); try again."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class HubPort:
    """What the view uses of the hub: its current configuration, a way into its outbox (``send``
    raises :class:`HubUnavailable` while the agent restarts), the local history, the unclaimed
    readings (None: the hub keeps none) and the clock."""

    config: Callable[[], HubConfig]
    send: Callable[[list[dict[str, Any]]], Awaitable[int]]
    history: LocalHistory
    unattributed: Callable[[], Unattributed | None] = lambda: None
    now: Callable[[], datetime] = field(default=_utc_now)


class _Forbidden(Exception):
    """A POST that is no form of ours (too big, wrong type, another site, a stale token)."""


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def resident_questionnaire(config: HubConfig, patient_id: str) -> Questionnaire | None:
    """The daily symptom check a resident answers (``ResidentConfig.questionnaire``), or None."""
    for resident in config.residents:
        if resident.patient_id == patient_id and resident.questionnaire:
            return current(resident.questionnaire)
    return None


def resident_name(config: HubConfig, patient_id: str) -> str:
    return next((r.name for r in config.residents if r.patient_id == patient_id), "")


def create_app(
    port: HubPort, pin: str, *, codec: SessionCodec | None = None, gate: PinGate | None = None
) -> Starlette:
    """The patient view of one hub, guarded by the household's ``pin``."""
    codec = codec or SessionCodec()
    gate = gate or PinGate(pin)
    env = _environment()

    def language_of(request: Request) -> str:
        return port.config().patient_view.language

    def session_of(request: Request) -> Session:
        return codec.decode(request.cookies.get(COOKIE)) or codec.new(language_of(request))

    def finish(response: Response, session: Session) -> Response:
        response.set_cookie(
            COOKIE, codec.encode(codec.renewed(session)), httponly=True, samesite="strict", path="/"
        )
        response.headers.update(_HEADERS)
        return response

    def redirect(to: str, session: Session) -> Response:
        return finish(RedirectResponse(to, status_code=303), session)

    def render(
        request: Request, session: Session, template: str, status: int = 200, **context: Any
    ) -> Response:
        config = port.config()
        zone = ZoneInfo(config.timezone)
        lang = session.language

        def t(key: str, **values: object) -> str:
            return texts.text(key, lang, **values)

        page = env.get_template(template).render(
            t=t,
            lang=lang,
            csrf=session.csrf,
            path=request.url.path,
            signed_in=session.authenticated and session.resident is not None,
            several=len(config.resident_ids) > 1,
            name=resident_name(config, session.resident or ""),
            clock=lambda at: texts.clock(at.astimezone(zone), lang),
            day=lambda at: texts.day(at.astimezone(zone), lang),
            **context,
        )
        return finish(HTMLResponse(page, status_code=status), session)

    async def form_of(request: Request, session: Session) -> dict[str, str]:
        """The POSTed form, checked: ours (type, size, same site) and carrying the session's token."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise _Forbidden("cross-site")
        if (
            request.headers.get("content-type", "").split(";")[0].strip()
            != "application/x-www-form-urlencoded"
        ):
            raise _Forbidden("not a form")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise _Forbidden("too big")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Forbidden("unreadable") from exc
        form = dict(pairs)
        if not same_token(form.get("csrf"), session.csrf):
            raise _Forbidden("token")
        return form

    def resident_of(session: Session) -> str | None:
        """The resident the session may show, or None (log in, or say who you are, first)."""
        if not session.authenticated or session.resident is None:
            return None
        return session.resident if session.resident in port.config().resident_ids else None

    def gatekeeper(session: Session) -> Response | None:
        if not session.authenticated:
            return redirect("/login", session)
        if resident_of(session) is None:
            return redirect("/who", session)
        return None

    # -- PIN, who, language ------------------------------------------------------------------------

    async def login(request: Request) -> Response:
        session = session_of(request)
        if request.method == "GET":
            if session.authenticated:
                return redirect("/", session)
            return render(request, session, "login.html", error=None)
        form = await form_of(request, session)
        verdict = gate.check(form.get("pin", "")[:64])
        if verdict == "ok":
            # A new session (new token) on login: nothing set before it carries over.
            fresh = codec.new(session.language).with_(authenticated=True)
            residents = port.config().resident_ids
            if len(residents) == 1:
                fresh = fresh.with_(resident=residents[0])
            log.info("patient view: the household PIN was given")
            return redirect("/" if fresh.resident else "/who", fresh)
        if verdict == "locked":
            log.warning("patient view: PIN locked after repeated wrong tries")
            minutes = max(1, round(gate.locked_for() / 60))
            error = texts.text("pin.locked", session.language, minutes=minutes)
            return render(request, session, "login.html", status=429, error=error)
        return render(
            request, session, "login.html", status=401, error=texts.text("pin.wrong", session.language)
        )

    async def logout(request: Request) -> Response:
        session = session_of(request)
        await form_of(request, session)
        return redirect("/login", codec.new(session.language))

    async def who(request: Request) -> Response:
        session = session_of(request)
        if not session.authenticated:
            return redirect("/login", session)
        config = port.config()
        if request.method == "POST":
            form = await form_of(request, session)
            chosen = form.get("resident")
            if chosen in config.resident_ids:
                return redirect("/", session.with_(resident=chosen, questionnaire=None, answers={}))
        people = [(pid, resident_name(config, pid) or pid) for pid in config.resident_ids]
        return render(request, session.with_(resident=None), "who.html", people=people)

    async def language(request: Request) -> Response:
        session = session_of(request)
        form = await form_of(request, session)
        chosen = form.get("lang")
        back = form.get("next", "/")
        if not back.startswith("/") or back.startswith("//") or "\\" in back:
            back = "/"
        if chosen in texts.LANGUAGES:
            session = session.with_(language=chosen)
        return redirect(back, session)

    # -- today, trends, messages ---------------------------------------------------------------------

    async def today(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        resident = resident_of(session)
        assert resident is not None
        config, now = port.config(), port.now()
        zone = ZoneInfo(config.timezone)
        readings = await asyncio.to_thread(port.history.readings, resident, now - READ_BEFORE)
        items = config.plan_of(resident)  # the resident's own: the enrolled patient's or a resident's
        plan = today_plan(items, zone, readings, now)
        questionnaire = resident_questionnaire(config, resident)
        answered = None
        if questionnaire is not None:
            last = await asyncio.to_thread(port.history.last_answer, resident, questionnaire.key)
            if last is not None and last.astimezone(zone).date() == now.astimezone(zone).date():
                answered = last
        pending = await _pending(port)
        return render(
            request,
            session,
            "today.html",
            now=now,
            plan=plan,
            has_plan=bool(items),
            arrived=arrived_today(readings, zone, now),
            questionnaire=questionnaire,
            answered=answered,
            messages=len([m for m in config.messages if m.patient_id == resident]),
            pending=len(pending),
        )

    async def trends_page(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        resident = resident_of(session)
        assert resident is not None
        config, now = port.config(), port.now()
        zone = ZoneInfo(config.timezone)
        start = now - timedelta(days=TREND_DAYS)
        readings = await asyncio.to_thread(port.history.readings, resident, start)
        lang = session.language
        plots = []
        for trend in trends(readings):
            title = texts.text(f"m.{trend.group}", lang)
            svg = line_plot(
                trend.series,
                start,
                now,
                title=title,
                label=lambda at: texts.short_day(at.astimezone(zone), lang),
                number=lambda value: texts.number(value, lang),
            )
            plots.append((trend, title, svg))
        return render(request, session, "trends.html", plots=plots)

    async def messages(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        mine = [m for m in port.config().messages if m.patient_id == resident_of(session)]
        return render(
            request, session, "messages.html", messages=sorted(mine, key=lambda m: m.sent_at, reverse=True)
        )

    # -- questionnaire ---------------------------------------------------------------------------------

    async def questionnaire(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        resident = resident_of(session)
        assert resident is not None
        q = resident_questionnaire(port.config(), resident)
        if request.method == "POST":
            await form_of(request, session)
            if q is None:
                return redirect("/questionnaire", session)
            return redirect("/questionnaire/1", session.with_(questionnaire=q.key, answers={}))
        return render(request, session, "questionnaire_start.html", questionnaire=q)

    async def question(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        resident = resident_of(session)
        assert resident is not None
        q = resident_questionnaire(port.config(), resident)
        number = request.path_params["number"]
        if q is None or session.questionnaire != q.key or not 1 <= number <= len(q.questions):
            return redirect("/questionnaire", session)
        item = q.questions[number - 1]
        if request.method == "GET":
            return render(
                request,
                session,
                "question.html",
                questionnaire=q,
                item=item,
                number=number,
                count=len(q.questions),
                chosen=session.answers.get(item.link_id),
            )
        form = await form_of(request, session)
        option = item.option(form.get("answer", ""))
        if option is None:
            return redirect(f"/questionnaire/{number}", session)
        answers = {**session.answers, item.link_id: option.code}
        if number < len(q.questions):
            return redirect(f"/questionnaire/{number + 1}", session.with_(answers=answers))
        config, now = port.config(), port.now()
        response = build_response(q, answers, patient_id=resident, hub_id=config.hub_id, authored=now)
        try:
            await port.send([response])
        except HubUnavailable:
            return render(request, session, "message.html", status=503, key="error.busy")
        await asyncio.to_thread(port.history.answered, resident, q.key, now)
        log.info("patient view: %s answered %s", resident, q.key)
        return redirect("/questionnaire/sent", session.with_(questionnaire=None, answers={}))

    async def questionnaire_sent(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        return render(request, session, "message.html", key="questionnaire.sent")

    # -- contact my nurse --------------------------------------------------------------------------------

    async def contact(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        resident = resident_of(session)
        assert resident is not None
        if request.method == "GET":
            reasons = [(code, t.in_language(session.language)) for code, t in REASONS.items()]
            return render(request, session, "contact.html", reasons=reasons)
        form = await form_of(request, session)
        reason = form.get("reason") or None
        if reason is not None and reason not in REASONS:
            return redirect("/contact", session)
        config = port.config()
        task = build_contact_request(
            patient_id=resident, hub_id=config.hub_id, authored=port.now(), reason=reason
        )
        try:
            await port.send([task])
        except HubUnavailable:
            return render(request, session, "message.html", status=503, key="error.busy")
        log.info("patient view: %s asked to be contacted (%s)", resident, reason or "no reason given")
        return redirect("/contact/sent", session)

    async def contact_sent(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        return render(request, session, "contact_sent.html")

    # -- who measured ----------------------------------------------------------------------------------

    async def who_measured(request: Request) -> Response:
        session = session_of(request)
        if (stop := gatekeeper(session)) is not None:
            return stop
        resident = resident_of(session)
        assert resident is not None
        store = port.unattributed()
        if request.method == "POST" and store is not None:
            form = await form_of(request, session)
            try:
                pending_id = int(form.get("id", ""))
            except ValueError:
                return redirect("/who-measured", session)
            try:
                observations = await asyncio.to_thread(store.claim, pending_id, resident)
            except UnattributedError:  # claimed a moment ago (by another resident), or never there
                return redirect("/who-measured", session)
            try:
                await port.send(observations)
            except HubUnavailable:
                log.error("patient view: claimed reading %d could not enter the outbox", pending_id)
                return render(request, session, "message.html", status=503, key="error.busy")
            await asyncio.to_thread(port.history.add, observations)
            log.info("patient view: %s claimed unattributed reading %d", resident, pending_id)
            return redirect("/who-measured?claimed=1", session)
        return render(
            request,
            session,
            "who_measured.html",
            pending=await _pending(port),
            claimed=request.query_params.get("claimed") == "1",
        )

    async def refused(request: Request, exc: Exception) -> Response:
        log.warning("patient view: refused a POST to %s (%s)", request.url.path, exc)
        response = HTMLResponse("Forbidden", status_code=403)
        response.headers.update(_HEADERS)
        return response

    routes = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/who", who, methods=["GET", "POST"]),
        Route("/language", language, methods=["POST"]),
        Route("/", today, methods=["GET"]),
        Route("/trends", trends_page, methods=["GET"]),
        Route("/messages", messages, methods=["GET"]),
        Route("/questionnaire", questionnaire, methods=["GET", "POST"]),
        Route("/questionnaire/sent", questionnaire_sent, methods=["GET"]),
        Route("/questionnaire/{number:int}", question, methods=["GET", "POST"]),
        Route("/contact", contact, methods=["GET", "POST"]),
        Route("/contact/sent", contact_sent, methods=["GET"]),
        Route("/who-measured", who_measured, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={_Forbidden: refused})


async def _pending(port: HubPort) -> list[Any]:
    store = port.unattributed()
    if store is None:
        return []
    return await asyncio.to_thread(store.pending)
