"""``GET /alerts/stream`` against a real uvicorn server and a real PostgreSQL: an alert raised (committed
by ``gateway.alerts.lifecycle.record_trigger``) reaches the nurses of the patient's team and the patient's
GP, and nobody else; a browser that comes back gets exactly what it missed; a client that does not read
holds up nobody; the listener survives its connection being killed and catches up by id.

The world: municipality 0101 with care teams Nord and Syd, municipality 0147 with its default team; a
nurse of each team and of 0147, a GP of 0101 whose patients live in Nord and in 0147, one administrator of
each kind. Streams are read with httpx; an SSE message is parsed from its lines as a browser does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import seed
from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from gateway.alerts.lifecycle import Trigger, record_trigger
from gateway.api import alert_stream
from gateway.api.app import create_app
from gateway.api.auth import SESSION_COOKIE, User, cookie_name, create_user, issue_token, mint_token
from gateway.broker import free_port
from gateway.http_server import start_http, stop_http
from gateway.settings import GatewaySettings

OWN, OTHER = "0101", "0147"
NORD, SYD = "0101-nord", "0101-syd"
NURSE_NORD = User("nurse-nord", OWN, "nurse")
NURSE_SYD = User("nurse-syd", OWN, "nurse")
NURSE_FRB = User("nurse-frb", OTHER, "nurse")
GP = User("gp-hansen", OWN, "gp")
MUNICIPALITY_ADMIN = User("admin-kbh", OWN, "municipality_admin")
SYSTEM_ADMIN = User("ops", OWN, "system_admin")
# patient -> (municipality, team, GP)
PATIENTS = {
    "pt-nord": (OWN, NORD, GP.username),
    "pt-syd": (OWN, SYD, None),
    "pt-frb": (OTHER, OTHER, GP.username),
    "pt-valby": (OTHER, OTHER, None),
}
VISIBLE = {
    NURSE_NORD.username: {"pt-nord"},
    NURSE_SYD.username: {"pt-syd"},
    NURSE_FRB.username: {"pt-frb", "pt-valby"},
    GP.username: {"pt-nord", "pt-frb"},
}
CONTRACT_FIELDS = {"event_id", "alert_id", "patient_id", "action", "kind", "severity", "status", "at"}
# Seconds a stream may take to tell what happened (the listener and a read; a loaded 2-core machine).
READ_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    app: FastAPI
    settings: GatewaySettings
    hub: alert_stream.AlertHub
    database_url: str


def _seed(conn: psycopg.Connection[Any]) -> None:
    seed.municipality(conn, OWN, "København")
    seed.municipality(conn, OTHER, "Frederiksberg")
    conn.execute(
        "INSERT INTO care_teams (municipality_id, id, name) VALUES (%s, %s, %s), (%s, %s, %s)",
        (OWN, NORD, "Team Nord", OWN, SYD, "Team Syd"),
    )
    create_user(conn, NURSE_NORD.username, OWN, "nurse", seed.PASSWORD, (NORD,))
    create_user(conn, NURSE_SYD.username, OWN, "nurse", seed.PASSWORD, (SYD,))
    create_user(conn, NURSE_FRB.username, OTHER, "nurse", seed.PASSWORD)
    for user in (GP, MUNICIPALITY_ADMIN, SYSTEM_ADMIN):
        create_user(conn, user.username, user.municipality_id, user.role, seed.PASSWORD)
    for pid, (municipality, team, gp) in PATIENTS.items():
        seed.patient(conn, municipality, pid, f"Patient {pid}")
        conn.execute("UPDATE patients SET care_team_id = %s, gp_username = %s WHERE id = %s", (team, gp, pid))


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        _seed(conn)
    settings = GatewaySettings(
        database_url=database_url, secret_key="test-secret-of-the-alert-stream", default_language="en"
    )
    with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as pool:
        app = create_app(settings, pool)
        port = free_port()
        http, thread = start_http(app, "127.0.0.1", port, 30.0)
        try:
            yield Server(f"http://127.0.0.1:{port}", app, settings, alert_stream.hub_of(app), database_url)
        finally:
            alert_stream.end_streams(app)
            stop_http(http, thread)


# --- raising alerts -------------------------------------------------------------------------------------

_keys = iter(range(1, 1_000_000))


def raise_alert(database_url: str, patient_id: str) -> list[int]:
    """Raise a new alert for the patient as a scorer does (committed); the ids of the events it wrote."""
    municipality = PATIENTS[patient_id][0]
    now = datetime.now(UTC)
    trigger = Trigger(
        municipality,
        patient_id,
        "threshold",
        f"spo2-{next(_keys)}",
        "high",
        "SpO2 85 %",
        now - timedelta(minutes=1),
    )
    with psycopg.connect(database_url) as conn:
        outcome = record_trigger(conn, trigger, now=now)
        assert outcome.action == "raise" and outcome.alert_id is not None
        rows = conn.execute(
            "SELECT id FROM alert_events WHERE alert_id = %s ORDER BY id", (outcome.alert_id,)
        )
        return [row[0] for row in rows.fetchall()]


def visible_events_after(database_url: str, username: str, after: int) -> list[int]:
    """The ids of every alert event after ``after`` of the user's patients, as the test world says."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id FROM alert_events WHERE id > %s AND patient_id = ANY(%s) ORDER BY id",
            (after, sorted(VISIBLE[username])),
        ).fetchall()
    return [row[0] for row in rows]


# --- reading a stream -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    event: str | None
    id: str | None
    data: str | None
    comment: str | None
    retry: str | None

    def json(self) -> Any:
        assert self.data is not None
        return orjson.loads(self.data)


class EventStream:
    """The messages of one open stream, parsed as the EventSource of a browser does."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next_message(self) -> Message:
        fields: dict[str, str] = {}
        for line in self._lines:
            if line == "":
                if fields:
                    return Message(
                        fields.get("event"),
                        fields.get("id"),
                        fields.get("data"),
                        fields.get(""),
                        fields.get("retry"),
                    )
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        raise EOFError("the server ended the stream")

    def next_of(self, event: str) -> Message:
        """The next message of kind ``event`` (pings and other kinds skipped)."""
        while True:
            message = self.next_message()
            if message.event == event:
                return message

    def alerts_until_count(self) -> tuple[list[Message], Message]:
        """The alert messages up to the next count message, and that count message."""
        alerts = []
        while True:
            message = self.next_message()
            if message.event == "count":
                return alerts, message
            if message.event == "alert":
                alerts.append(message)


def _auth(server: Server, user: User, *, bearer: bool) -> dict[str, Any]:
    token = issue_token(server.settings, user)
    if bearer:
        return {"headers": {"Authorization": f"Bearer {token}"}}
    return {"cookies": {cookie_name(server.settings, SESSION_COOKIE): token}}


@contextmanager
def open_stream(
    server: Server,
    user: User,
    *,
    bearer: bool = False,
    last_event_id: int | None = None,
    after: int | None = None,
) -> Iterator[EventStream]:
    """A stream of ``user``'s, open once its first count message has come (it listens from then on)."""
    auth = _auth(server, user, bearer=bearer)
    headers = dict(auth.get("headers", {}))
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    params = {} if after is None else {"after": after}
    timeout = httpx.Timeout(READ_TIMEOUT_S)
    with (
        httpx.Client(base_url=server.url, cookies=auth.get("cookies"), timeout=timeout) as client,
        client.stream("GET", "/alerts/stream", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventStream(response)


def _wait_for(predicate: Callable[[], bool], timeout: float = READ_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# --- who gets what ----------------------------------------------------------------------------------------


def test_an_alert_reaches_the_patients_team_nurse_and_gp_and_no_one_else(server: Server) -> None:
    with ExitStack() as stack:
        nord = stack.enter_context(open_stream(server, NURSE_NORD))
        syd = stack.enter_context(open_stream(server, NURSE_SYD))
        frb = stack.enter_context(open_stream(server, NURSE_FRB))
        gp = stack.enter_context(open_stream(server, GP, bearer=True))  # as a FHIR client (the benchmark)
        for stream in (nord, syd, frb, gp):
            assert stream.next_of("count").json() == {"open": 0}

        nord_events = raise_alert(server.database_url, "pt-nord")
        # Then one alert each for the other nurses: what they get first proves what they never got.
        syd_events = raise_alert(server.database_url, "pt-syd")
        valby_events = raise_alert(server.database_url, "pt-valby")

        for stream in (nord, gp):
            message = stream.next_of("alert")
            data = message.json()
            assert set(data) == CONTRACT_FIELDS
            assert message.id == str(data["event_id"]) == str(nord_events[0])
            assert (data["patient_id"], data["action"], data["kind"], data["severity"], data["status"]) == (
                "pt-nord",
                "raised",
                "threshold",
                "high",
                "open",
            )
            assert datetime.fromisoformat(data["at"]).tzinfo is not None
        assert syd.next_of("alert").json()["event_id"] == syd_events[0]
        assert frb.next_of("alert").json()["event_id"] == valby_events[0]
        # Everything nurse Nord is sent up to the next count is her patient's, and the badge counts it.
        alerts, count = nord.alerts_until_count()
        assert {m.json()["patient_id"] for m in alerts} <= {"pt-nord"}
        assert count.json() == {"open": 1}


@pytest.mark.parametrize(
    ("user", "bearer", "status"),
    [
        (MUNICIPALITY_ADMIN, False, 403),
        (SYSTEM_ADMIN, True, 403),
        (None, False, 401),
    ],
    ids=["municipality-admin-cookie", "system-admin-bearer", "nobody"],
)
def test_administrators_and_strangers_get_no_stream(
    server: Server, user: User | None, bearer: bool, status: int
) -> None:
    kwargs = {} if user is None else _auth(server, user, bearer=bearer)
    response = httpx.get(f"{server.url}/alerts/stream", timeout=READ_TIMEOUT_S, **kwargs)
    assert response.status_code == status
    assert "text/event-stream" not in response.headers.get("content-type", "")


def test_a_hubs_token_gets_no_stream_as_bearer_nor_as_cookie(server: Server) -> None:
    token = mint_token(server.settings, role="hub", municipality_id=OWN, subject="hub-pt-nord")
    as_bearer = httpx.get(
        f"{server.url}/alerts/stream", headers={"Authorization": f"Bearer {token}"}, timeout=READ_TIMEOUT_S
    )
    as_cookie = httpx.get(
        f"{server.url}/alerts/stream",
        cookies={cookie_name(server.settings, SESSION_COOKIE): token},
        timeout=READ_TIMEOUT_S,
    )
    assert (as_bearer.status_code, as_cookie.status_code) == (403, 401)


def test_a_token_narrowed_to_less_than_the_alerts_gets_no_stream(server: Server) -> None:
    narrowed = mint_token(
        server.settings,
        role="nurse",
        municipality_id=OWN,
        subject=NURSE_NORD.username,
        scopes=("user/Observation.read",),
    )
    refused = httpx.get(
        f"{server.url}/alerts/stream", headers={"Authorization": f"Bearer {narrowed}"}, timeout=READ_TIMEOUT_S
    )
    assert refused.status_code == 403
    with open_stream(server, NURSE_NORD, bearer=True) as granted:  # the role's scopes, user/Flag.read too
        granted.next_of("count")


def test_a_stream_is_audited_when_it_opens_and_for_each_patient_it_tells_of(server: Server) -> None:
    with open_stream(server, GP) as gp, open_stream(server, NURSE_SYD) as syd:
        gp.next_of("count")
        syd.next_of("count")
        raise_alert(server.database_url, "pt-nord")
        raise_alert(server.database_url, "pt-frb")
        raise_alert(server.database_url, "pt-syd")
        seen = set()
        while seen != {"pt-nord", "pt-frb"}:
            seen.add(gp.next_of("alert").json()["patient_id"])
        syd.next_of("alert")
    with psycopg.connect(server.database_url) as conn:
        rows = conn.execute(
            "SELECT username, patient_id, detail FROM audit_log WHERE action = %s ORDER BY id",
            (alert_stream.STREAM_ACTION,),
        ).fetchall()
    opened = {(user, detail) for user, pid, detail in rows if pid is None}
    assert opened == {(GP.username, "new"), (NURSE_SYD.username, "new")}
    told = {(user, pid) for user, pid, _ in rows if pid is not None}
    assert {(GP.username, "pt-nord"), (GP.username, "pt-frb"), (NURSE_SYD.username, "pt-syd")} <= told
    assert told <= {(u, p) for u, ps in VISIBLE.items() for p in ps}


# --- coming back --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["last-event-id", "after"])
def test_a_stream_resumed_after_an_id_gets_exactly_the_events_missed(server: Server, how: str) -> None:
    with open_stream(server, NURSE_NORD) as nord:
        nord.next_of("count")
        first = raise_alert(server.database_url, "pt-nord")
        got = nord.next_of("alert")
        assert got.id == str(first[0])
    last_seen = first[0]
    # While the browser is away: its own patient twice, another team's once.
    raise_alert(server.database_url, "pt-nord")
    raise_alert(server.database_url, "pt-syd")
    raise_alert(server.database_url, "pt-nord")
    missed = visible_events_after(server.database_url, NURSE_NORD.username, last_seen)
    resume = {"last_event_id": last_seen} if how == "last-event-id" else {"after": last_seen}
    with open_stream(server, NURSE_NORD, **resume) as again:  # type: ignore[arg-type]
        alerts, count = again.alerts_until_count()
    assert [int(m.id or 0) for m in alerts] == missed
    assert len(missed) >= 3  # the rest of the first alert's events, and the two new alerts'
    assert count.json() == {"open": 3}


def test_a_new_stream_starts_with_what_happens_next_not_with_history(server: Server) -> None:
    raise_alert(server.database_url, "pt-nord")
    with open_stream(server, NURSE_NORD) as nord:
        alerts, count = nord.alerts_until_count()
        assert alerts == [] and count.json() == {"open": 1}
        later = raise_alert(server.database_url, "pt-nord")
        assert nord.next_of("alert").id == str(later[0])


# --- nobody waits for anybody -------------------------------------------------------------------------------


def test_a_client_that_does_not_read_holds_up_no_one_and_a_closed_one_is_let_go(server: Server) -> None:
    with open_stream(server, NURSE_NORD) as idle, open_stream(server, GP) as gp:
        idle.next_of("count")
        gp.next_of("count")
        with open_stream(server, NURSE_NORD) as closing:
            closing.next_of("count")
            assert server.hub.stream_count == 3
        assert _wait_for(lambda: server.hub.stream_count == 2), "the closed client's stream lives on"
        raised = [raise_alert(server.database_url, "pt-nord")[0] for _ in range(20)]
        # The idle nurse reads nothing meanwhile; the GP gets every one.
        received: list[int] = []
        while len(received) < len(raised):
            event_id = gp.next_of("alert").json()["event_id"]
            if event_id in raised:
                received.append(event_id)
        assert received == raised
        # And the idle one's stream kept them for her.
        got = []
        while len(got) < len(raised):
            event_id = idle.next_of("alert").json()["event_id"]
            if event_id in raised:
                got.append(event_id)
        assert got == raised


def test_a_stream_whose_queue_overflows_is_ended_and_the_others_are_not() -> None:
    async def scenario() -> tuple[str | None, list[int] | None, list[int] | None]:
        behind = alert_stream.Subscription(size=10)
        keeping_up = alert_stream.Subscription(size=10)
        for event_id in range(1, 8):
            behind.offer(event_id)
            keeping_up.offer(event_id)
        first = await keeping_up.next_ids()
        for event_id in range(8, 15):  # 14 ids for 10 places: the one that does not read overflows
            behind.offer(event_id)
            keeping_up.offer(event_id)
        return behind.ended, await behind.next_ids(), (first or []) + (await keeping_up.next_ids() or [])

    ended, behind_gets, keeping_up_gets = asyncio.run(scenario())
    assert ended == "overflow" and behind_gets is None  # its stream ends; the browser resumes by id
    assert keeping_up_gets == list(range(1, 15))


def test_ending_the_streams_ends_them_and_the_browser_may_come_back(server: Server) -> None:
    with open_stream(server, NURSE_NORD) as nord:
        nord.next_of("count")
        alert_stream.end_streams(server.app)  # what stopping the server does first
        with pytest.raises(EOFError):
            nord.next_message()
    assert _wait_for(lambda: server.hub.stream_count == 0)
    with open_stream(server, NURSE_NORD) as again:
        again.next_of("count")
        later = raise_alert(server.database_url, "pt-nord")
        assert again.next_of("alert").id == str(later[0])


# --- the listener ------------------------------------------------------------------------------------------


def _listener_pids(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
        (alert_stream.APPLICATION_NAME,),
    ).fetchall()
    return [row[0] for row in rows]


def test_the_listener_reconnects_after_its_connection_is_killed_and_catches_up_by_id(
    server: Server, pg_admin_url: str
) -> None:
    database = server.database_url.partition("?")[0].rsplit("/", 1)[1]
    with (
        open_stream(server, NURSE_NORD) as nord,
        psycopg.connect(server.database_url, autocommit=True) as conn,
        psycopg.connect(pg_admin_url, autocommit=True) as admin,
    ):
        nord.next_of("count")
        [old] = _listener_pids(conn)
        # While nobody may connect, the listener cannot come back: what is committed meanwhile is
        # announced to no one, and must be read from the table when it does.
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            conn.execute("SELECT pg_terminate_backend(%s)", (old,))
            assert _wait_for(lambda: _listener_pids(conn) == []), "the listener's connection is still there"
            with conn.transaction():
                trigger = Trigger(
                    OWN, "pt-nord", "news2", "", "high", "NEWS2 7", datetime.now(UTC) - timedelta(minutes=1)
                )
                outcome = record_trigger(conn, trigger, now=datetime.now(UTC))
            time.sleep(alert_stream.LISTEN_RETRY_FIRST_S * 3)  # a retry or two fail meanwhile
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        message = nord.next_of("alert")
        assert message.id == str(outcome.event_id)
        assert _wait_for(lambda: len(_listener_pids(conn)) == 1)
        assert _listener_pids(conn) != [old]
        # And it listens again: the next alert comes as it is committed.
        later = raise_alert(server.database_url, "pt-nord")
        got = [int(message.id or 0)]
        while got[-1] != later[-1]:
            got.append(int(nord.next_of("alert").id or 0))
        assert got == visible_events_after(server.database_url, NURSE_NORD.username, got[0] - 1)


def test_an_idle_stream_gets_a_ping_every_ping_interval(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alert_stream, "PING_S", 2)  # 15 s in service; read when a stream opens
    with open_stream(server, NURSE_NORD) as nord:
        nord.next_of("count")
        started = datetime.now(UTC)
        message = nord.next_message()
        waited = (datetime.now(UTC) - started).total_seconds()
    assert message.comment is not None and message.comment.startswith("ping")
    assert alert_stream.PING_S - 1 <= waited <= alert_stream.PING_S + 3
