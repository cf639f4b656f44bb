"""``GET /alerts/stream``: every new event of an alert of the viewer's patients, as server-sent events.

The contract (docs/alerts.md, "Live alerts in the browser"): for nurses and GPs, signed in by the session
cookie or an ``Authorization: Bearer`` token (as the FHIR API accepts; its scopes must grant
``user/Flag.read``, as the alerts' FHIR resources ask); ``text/event-stream``; each
``alert_events`` row of a patient the viewer may see becomes ``id: <event id>``, ``event: alert``,
``data: {"event_id", "alert_id", "patient_id", "action", "kind", "severity", "status", "at"}`` (the
alert's severity and status now); after the events of a batch comes ``event: count`` with
``{"open": n}``, the viewer's open alerts (the header's badge: ``alert_inbox.open_count``), and once
when the stream opens.
``Last-Event-ID`` (or ``?after=<id>``) resumes after that id; a comment ping every 15 s keeps proxies
from closing an idle stream.

One :class:`AlertHub` per app: a thread LISTENs on ``alert_events``' channel over its own connection
(reconnecting with back-off; after a gap it announces the ids it missed, read from the table) and hands
each announced id to every open stream's bounded queue on the event loop. Nothing waits for a stream: a
stream whose queue overflows (its client does not keep up) is ended, and the browser resumes from its
``Last-Event-ID``; a client that stops reading for ``SEND_TIMEOUT_S`` is dropped the same way. Each
stream reads the announced rows by id through the viewer's access rule (``gateway.store.alert_feed``), so
an id of another team's or municipality's patient reads as nothing; reads run in the thread pool on the
app's connection pool, never on the event loop. Audit: opening a stream writes one ``view-alert-stream``
row (no patient), and each batch sent writes one row per patient in it, as a list page does.

Left to others: the alerts and their events (``gateway.alerts.lifecycle``, ``gateway.store.alert_actions``),
the browser's side (``static/alerts-live.js``), serving the app (``gateway.http_server``, which should
call :func:`end_streams` before it stops uvicorn: an open stream would otherwise hold up its graceful
shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, Request
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from gateway.api import scopes
from gateway.api.auth import HUB_ROLE, User, registered_user
from gateway.api.deps import bearer_claims, client_address, live_claims, session_token
from gateway.api.i18n import gettext as _
from gateway.settings import GatewaySettings
from gateway.store import access
from gateway.store.alert_feed import (
    FeedEvent,
    event_ids_after,
    events_after,
    events_by_id,
    latest_event_id,
    listen_for_alert_events,
    read_announcement,
)
from gateway.store.alert_inbox import open_count
from gateway.store.audit import record_audit

log = logging.getLogger(__name__)

router = APIRouter(tags=["alerts"])

STREAM_ACTION = "view-alert-stream"
# The contract's heartbeat: proxies close a connection idle for a minute or so.
PING_S = 15
# A browser reconnects this soon after its stream ended (an overflow, a restart of the server).
RETRY_MS = 3_000
# Ids waiting for one stream. A scorer's batch raises tens of alerts at once, a demo's start a few
# hundred; a stream further behind than this is ended and reads what it missed by id when it resumes.
QUEUE_SIZE = 1_000
# The largest id a resuming browser may name (alert_events.id is a bigint).
_MAX_ID = 2**63 - 1
# A client whose connection takes no data for this long is dropped (it resumes by Last-Event-ID).
SEND_TIMEOUT_S = 30.0
# Events read at once; a stream resuming further back than MAX_CATCH_UP is ended after that many, so
# one stream never reads the history of a year in one go (the browser resumes from there).
PAGE = 200
MAX_CATCH_UP = 1_000
# How long a new stream waits for the listener before it reads (so that nothing committed in between
# is missed); a database that is away is not waited for longer.
LISTENER_WAIT_S = 5.0
# The listener's back-off: a database restart takes seconds; a stream is never without news for long.
LISTEN_RETRY_FIRST_S = 0.5
LISTEN_RETRY_MAX_S = 10.0
# Ids the listener announced lately: after a gap it announces the ids it did not, from the oldest of
# these on (an event committed late, behind a newer id, is not skipped).
RECENT_IDS = 10_000
# The listener's connection, as pg_stat_activity names it (an operator can see, or end, it).
APPLICATION_NAME = "homewatch-alert-stream"
# TCP keepalive on the listener's connection: a connection that silently went away is noticed within a
# minute, not when the kernel gives up hours later.
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
_CONNECT_TIMEOUT_S = 5


class Subscription:
    """One open stream's queue of announced event ids (on the event loop). ``offer`` never waits: a
    full queue ends the stream instead."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[int] = asyncio.Queue(maxsize=size)
        self.ended: str | None = None  # why the stream must end: 'overflow' or 'closed'

    def offer(self, event_id: int) -> None:
        if self.ended is not None:
            return
        try:
            self._queue.put_nowait(event_id)
        except asyncio.QueueFull:
            self.ended = "overflow"

    def close(self) -> None:
        """End the stream (the hub is closing); it wakes up if it waits."""
        if self.ended is None:
            self.ended = "closed"
        with suppress(asyncio.QueueFull):  # a full queue wakes it anyway
            self._queue.put_nowait(0)  # no event has id 0: it only wakes the stream up

    async def next_ids(self) -> list[int] | None:
        """The ids announced since the last call (waiting for one); None when the stream must end."""
        ids = [await self._queue.get()]
        while not self._queue.empty():
            ids.append(self._queue.get_nowait())
        if self.ended is not None:
            return None
        return [event_id for event_id in ids if event_id > 0]


class AlertHub:
    """The app's one listener on the alert events' channel and the streams it feeds (module docstring).

    ``subscribe`` starts the listener the first time (on the running event loop); ``close`` stops it
    and ends every stream, from any thread."""

    def __init__(self, database_url: str) -> None:
        self._conninfo = make_conninfo(
            database_url, application_name=APPLICATION_NAME, connect_timeout=_CONNECT_TIMEOUT_S, **_KEEPALIVE
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: set[Subscription] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._recent: deque[int] = deque(maxlen=RECENT_IDS)
        self._newest = 0  # the newest id announced, or in the table when the listener first connected

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    def subscribe(self) -> Subscription:
        """A new stream's queue (call on the event loop); the listener starts with the first one."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._listen, name="alert-stream-listen", daemon=True)
            self._thread.start()
        subscription = Subscription(QUEUE_SIZE)
        if self._stop.is_set():
            subscription.close()
        self._streams.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._streams.discard(subscription)

    def wait_listening(self, timeout: float) -> bool:
        """True once LISTEN is in place (blocks: call it in a thread)."""
        return self._listening.wait(timeout)

    def end_streams(self) -> None:
        """End every open stream (from any thread); their browsers reconnect and resume."""
        self._on_loop(self._end_all)

    def close(self, timeout: float = 5.0) -> None:
        """Stop listening and end every stream (from any thread; blocks up to ``timeout``)."""
        self._stop.set()
        self.end_streams()
        if self._thread is not None:
            self._thread.join(timeout)

    def _end_all(self) -> None:
        for subscription in list(self._streams):
            subscription.close()

    def _fan_out(self, event_ids: Sequence[int]) -> None:
        for subscription in list(self._streams):
            for event_id in event_ids:
                subscription.offer(event_id)

    def _on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the server has stopped, and its streams with it
            self._stop.set()

    def _announce(self, event_ids: Sequence[int]) -> None:
        if not event_ids:
            return
        self._recent.extend(event_ids)
        self._newest = max(self._newest, *event_ids)
        self._on_loop(self._fan_out, list(event_ids))

    def _missed(self, conn: psycopg.Connection[Any]) -> list[int]:
        """The ids committed while the listener was away: after the oldest id it remembers, less those
        it announced."""
        announced = set(self._recent)
        after = min(announced, default=self._newest + 1) - 1
        missed: list[int] = []
        while True:
            ids = event_ids_after(conn, after, RECENT_IDS)
            missed.extend(i for i in ids if i not in announced)
            if len(ids) < RECENT_IDS:
                return missed
            after = ids[-1]

    def _listen(self) -> None:
        delay = LISTEN_RETRY_FIRST_S
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    listen_for_alert_events(conn)
                    if first:
                        self._newest = latest_event_id(conn)
                        first = False
                    else:
                        # Announcements sent while nobody listened are gone: read what was committed.
                        self._announce(self._missed(conn))
                    self._listening.set()
                    delay = LISTEN_RETRY_FIRST_S
                    while not self._stop.is_set():
                        # Returns after a second without announcements, to look at the stop flag.
                        for note in conn.notifies(timeout=1.0):
                            event_id = read_announcement(note.payload)
                            if event_id is None:
                                log.warning("alert stream: malformed announcement %r", note.payload)
                            else:
                                self._announce([event_id])
            except psycopg.Error as exc:
                self._listening.clear()
                log.warning("alert stream: listening failed (%s); retrying in %.1f s", exc, delay)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, LISTEN_RETRY_MAX_S)
        self._listening.clear()


def hub_of(app: FastAPI) -> AlertHub:
    """The app's hub (made on first use; ``lifespan`` closes it)."""
    hub: AlertHub | None = getattr(app.state, "alert_hub", None)
    if hub is None:
        settings: GatewaySettings = app.state.settings
        hub = app.state.alert_hub = AlertHub(settings.database_url)
    return hub


def end_streams(app: FastAPI) -> None:
    """End the app's open streams (from any thread): call before stopping the server, whose graceful
    shutdown waits for every open response."""
    hub: AlertHub | None = getattr(app.state, "alert_hub", None)
    if hub is not None:
        hub.end_streams()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan: at shutdown the listener stops and its connection is closed."""
    yield
    hub: AlertHub | None = getattr(app.state, "alert_hub", None)
    if hub is not None:
        app.state.alert_hub = None
        await run_in_threadpool(hub.close)


# --- who asks -------------------------------------------------------------------------------------


def _viewer(request: Request, settings: GatewaySettings, conn: psycopg.Connection[Any]) -> User:
    """The nurse or GP of the session cookie, or else of the bearer token (whose scopes must grant
    ``user/Flag.read``); 401 or 403 otherwise."""
    user = None
    claims = live_claims(conn, settings, session_token(request))
    if claims is not None and claims.user.role != HUB_ROLE:
        user = registered_user(conn, claims.user)
    token_scopes = None
    if user is None and request.headers.get("authorization"):
        claims = bearer_claims(request, settings, conn)  # 401 (or 503) as an OperationOutcome
        user, token_scopes = claims.user, claims.scopes
    if user is None:
        raise HTTPException(401, _("Log in to follow your patients' alerts."))
    if user.role not in access.CLINICAL_ROLES:
        raise HTTPException(403, _("Your role sees no patient's clinical data."))
    # A token may be narrowed to less than its role's: the events are the alerts' (FHIR Flag).
    if token_scopes is not None and not scopes.granted(token_scopes, user.role, "user", "Flag", "read"):
        raise HTTPException(403, _("Your token does not grant reading alerts (user/Flag.read)."))
    return user


def _open(request: Request, resume_after: int | None) -> User:
    """Check who asks and audit the opening of the stream (in a thread of the pool)."""
    pool: ConnectionPool[Any] = request.app.state.pool
    with pool.connection() as conn:
        viewer = _viewer(request, request.app.state.settings, conn)
        detail = "new" if resume_after is None else f"after {resume_after}"
        record_audit(conn, viewer, STREAM_ACTION, [], detail, client=client_address(request))
    return viewer


# --- what it reads ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Batch:
    events: list[FeedEvent]
    open_count: int | None  # None: nothing was sent, the badge stands


def _start(pool: ConnectionPool[Any], viewer: User, resume_after: int | None) -> tuple[int, int]:
    """Where a stream starts (after ``resume_after``, or after the newest event) and the open count."""
    with pool.connection() as conn:
        after = latest_event_id(conn) if resume_after is None else resume_after
        return after, open_count(conn, viewer)


def _read(
    pool: ConnectionPool[Any],
    viewer: User,
    client: str,
    read: Callable[[psycopg.Connection[Any]], list[FeedEvent]],
) -> _Batch:
    """Events the viewer may see, audited in the same transaction (one row per patient, as a list)."""
    with pool.connection() as conn, conn.transaction():
        events = read(conn)
        if not events:
            return _Batch([], None)
        ids = [e.event_id for e in events]
        detail = f"events: {len(ids)}; ids {min(ids)}-{max(ids)}"
        record_audit(conn, viewer, STREAM_ACTION, [e.patient_id for e in events], detail, client=client)
        return _Batch(events, open_count(conn, viewer))


def _alert_message(event: FeedEvent) -> ServerSentEvent:
    data = {
        "event_id": event.event_id,
        "alert_id": event.alert_id,
        "patient_id": event.patient_id,
        "action": event.action,
        "kind": event.kind,
        "severity": event.severity,
        "status": event.status,
        "at": event.at.isoformat(),
    }
    return ServerSentEvent(orjson.dumps(data).decode(), event="alert", id=str(event.event_id))


def _count_message(open_count: int) -> ServerSentEvent:
    return ServerSentEvent(orjson.dumps({"open": open_count}).decode(), event="count")


async def _messages(
    hub: AlertHub, pool: ConnectionPool[Any], viewer: User, client: str, resume_after: int | None
) -> AsyncIterator[ServerSentEvent]:
    """The stream: what the viewer missed after ``resume_after`` (if given), then each event as it is
    announced. Ends when the hub ends it or the database is away (the browser resumes)."""
    subscription = hub.subscribe()
    try:
        # Listening before reading: an event committed after the read is then announced to us.
        await run_in_threadpool(hub.wait_listening, LISTENER_WAIT_S)
        after, open_count = await run_in_threadpool(_start, pool, viewer, resume_after)
        yield ServerSentEvent(retry=RETRY_MS)
        sent: set[int] = set()  # sent while catching up: their announcements may still come
        while True:
            page = partial(events_after, viewer=viewer, after_id=after, limit=PAGE)
            batch = await run_in_threadpool(_read, pool, viewer, client, page)
            for event in batch.events:
                yield _alert_message(event)
                sent.add(event.event_id)
                after = event.event_id
            open_count = open_count if batch.open_count is None else batch.open_count
            if len(batch.events) < PAGE:
                break
            if len(sent) >= MAX_CATCH_UP:
                return  # the browser resumes from the last id it got
        yield _count_message(open_count)
        while (announced := await subscription.next_ids()) is not None:
            fresh = [event_id for event_id in announced if event_id not in sent]
            sent.difference_update(announced)
            if not fresh:
                continue
            announced_page = partial(events_by_id, viewer=viewer, event_ids=fresh)
            batch = await run_in_threadpool(_read, pool, viewer, client, announced_page)
            for event in batch.events:
                yield _alert_message(event)
            if batch.open_count is not None:
                yield _count_message(batch.open_count)
        if subscription.ended == "overflow":
            log.warning("alert stream of %s fell behind; ended (it resumes by id)", viewer.username)
    except (psycopg.Error, PoolTimeout) as exc:
        log.warning("alert stream of %s ended: the database is away (%s)", viewer.username, exc)
    finally:
        hub.unsubscribe(subscription)


def _resume_after(last_event_id: str | None, after: int | None) -> int | None:
    """The id to resume after: the browser's Last-Event-ID (newer than the page's ?after=), else after."""
    if last_event_id is not None and last_event_id.strip().isdigit():
        resume = int(last_event_id.strip())
        if resume <= _MAX_ID:
            return resume
    return after


@router.get("/alerts/stream", response_class=EventSourceResponse)
async def alert_stream(
    request: Request,
    after: Annotated[int | None, Query(ge=0, le=_MAX_ID)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    """Server-sent events of the alerts of the viewer's patients (module docstring)."""
    resume_after = _resume_after(last_event_id, after)
    viewer = await run_in_threadpool(_open, request, resume_after)
    messages = _messages(
        hub_of(request.app), request.app.state.pool, viewer, client_address(request), resume_after
    )
    return EventSourceResponse(messages, ping=PING_S, send_timeout=SEND_TIMEOUT_S)
