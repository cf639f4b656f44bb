"""A small municipality for the alert delivery tests, a clock they move by hand, and the real servers
deliveries go to: an SMTP server (aiosmtpd) and an HTTP receiver (http.server), each on a free port.

The world: municipality 0101 with its default care team (nurses Anna and Bo with addresses, Cille
without), a second team (nurse Ditte, with an address, not the patient's), GP Hansen with an address,
and patient Karen Margrethe Jensen of the default team with GP Hansen. Alerts are raised through the
real lifecycle (``record_trigger``), which queues their deliveries in the same transaction.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.alerts.lifecycle import Outcome, Trigger, record_trigger
from gateway.broker import free_port
from gateway.settings import GatewaySettings
from gateway.store.repository import Municipality, Patient, enroll_municipality, enroll_patient
from gateway.store.users import create_care_team, insert_user, join_care_team

Conn = psycopg.Connection[Any]

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
M = "0101"
PATIENT = "p-karen"
PATIENT_NAME = "Karen Margrethe Jensen"
BASE_URL = "https://homewatch.kommune.example"
ADDRESSES = {
    "nurse.anna": "anna@kommune.example",
    "nurse.bo": "bo@kommune.example",
    "nurse.ditte": "ditte@kommune.example",
    "gp.hansen": "hansen@laege.example",
}
TEAM_ADDRESSES = {"anna@kommune.example", "bo@kommune.example"}
GP_ADDRESS = "hansen@laege.example"


class Clock:
    """The gateway's "now", moved by the test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True, slots=True)
class Person:
    """A viewer for ``gateway.store.alert_actions`` (``access.Viewer``)."""

    username: str
    municipality_id: str
    role: str


NURSE = Person("nurse.anna", M, "nurse")


def make_world(conn: Conn, *, with_addresses: bool = True) -> None:
    """The municipality, teams, people and patient of the module docstring."""
    enroll_municipality(conn, Municipality(M, "Testkommune"))
    create_care_team(conn, M, "0101-nord", "Team Nord")
    for username, role in (
        ("nurse.anna", "nurse"),
        ("nurse.bo", "nurse"),
        ("nurse.cille", "nurse"),
        ("nurse.ditte", "nurse"),
        ("gp.hansen", "gp"),
    ):
        insert_user(conn, username, M, role, "not-a-real-hash")
        if with_addresses and username in ADDRESSES:
            conn.execute("UPDATE users SET email = %s WHERE username = %s", (ADDRESSES[username], username))
    for nurse in ("nurse.anna", "nurse.bo", "nurse.cille"):
        join_care_team(conn, M, M, nurse)
    join_care_team(conn, M, "0101-nord", "nurse.ditte")
    enroll_patient(conn, Patient(M, PATIENT, PATIENT_NAME, gp_username="gp.hansen"))


def set_alert_settings(conn: Conn, **columns: object) -> None:
    """Give the municipality an ``alert_settings`` row with ``columns``."""
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns)
    conn.execute(
        f"INSERT INTO alert_settings (municipality_id, {names}) VALUES (%s, {marks})"
        f" ON CONFLICT (municipality_id) DO UPDATE SET {updates}",
        (M, *columns.values()),
    )


def raise_alert(
    conn: Conn, at: datetime, severity: str = "high", *, kind: Any = "news2", key: str = ""
) -> Outcome:
    """Raise (or worsen) an alert of Karen through the lifecycle, committed."""
    with conn.transaction():
        return record_trigger(
            conn, Trigger(M, PATIENT, kind, key, severity, "NEWS2 7: SpO2 88 %, pulse 131", at), now=at
        )


def events(conn: Conn, alert_id: int) -> list[tuple[str, dict[str, Any]]]:
    rows = conn.execute(
        "SELECT action, detail FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    return [(action, detail) for action, detail in rows]


def actions(conn: Conn, alert_id: int) -> list[str]:
    return [action for action, _ in events(conn, alert_id)]


def alert_state(conn: Conn, alert_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT status, escalation_level, escalate_at, snoozed_until FROM alerts WHERE id = %s", (alert_id,)
    ).fetchone()
    assert row is not None
    return dict(zip(("status", "escalation_level", "escalate_at", "snoozed_until"), row, strict=True))


def settings(smtp_port: int | None = None, **changes: Any) -> GatewaySettings:
    """Development settings with e-mail to ``smtp_port`` on loopback (None: no SMTP server)."""
    return GatewaySettings(
        environment="development",
        smtp_host=None if smtp_port is None else "127.0.0.1",
        smtp_port=smtp_port or 25,
        smtp_from="alarm@homewatch.example",
        public_url=BASE_URL,
        **changes,
    )


# --- a real SMTP server -----------------------------------------------------------------------------------


@dataclass
class SmtpSink:
    """An aiosmtpd handler that keeps every message it is given (and refuses the addresses in
    ``refuse``, waits ``delay`` seconds before taking each message)."""

    refuse: set[str] = field(default_factory=set)
    delay: float = 0.0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)


class _Login:
    """aiosmtpd authenticator accepting one login and password."""

    def __init__(self, login: str, password: str) -> None:
        self.login, self.password = login.encode(), password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.login,
            self.password,
        )
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(sink: SmtpSink, *, login: tuple[str, str] | None = None) -> Iterator[int]:
    """Run aiosmtpd with ``sink`` on a free loopback port; yields the port."""
    port = free_port()
    extra: dict[str, Any] = {}
    if login is not None:
        extra = {"authenticator": _Login(*login), "auth_required": True, "auth_require_tls": False}
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10, **extra)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


# --- a real HTTP receiver ---------------------------------------------------------------------------------


@dataclass
class Call:
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """An HTTP server on a free loopback port that takes webhook calls and answers each with the next of
    ``answers`` (then 200); ``check`` is run on each call and its result kept."""

    def __init__(self, answers: list[int], check: Callable[[dict[str, str], bytes], bool]) -> None:
        self.answers = list(answers)
        self.calls: list[Call] = []
        self.checked: list[bool] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.calls.append(Call(headers, body, status))
                receiver.checked.append(check(headers, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/homewatch"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
